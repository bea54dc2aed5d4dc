"""Master data: list and create-or-update by code; import a YAML/CSV file. Changing it needs a supervisor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user, require_role
from mes_lite.db import get_session
from mes_lite.models import (
    Area,
    DowntimeReason,
    Line,
    Product,
    RoutingOperation,
    ScrapReason,
    Shift,
    Site,
    User,
    WorkCenter,
)
from mes_lite.services import master_data as md
from mes_lite.services.master_data_import import ImportFailed, import_text

router = APIRouter(prefix="/api/master-data", tags=["master data"])
SUPERVISOR = Depends(require_role("supervisor"))


def _created(session: Session, upsert, row) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    entity = upsert(session, row)
    session.commit()
    return {"id": entity.id, **row.model_dump(mode="json")}


@router.get("/sites")
def list_sites(_: User = Depends(current_user), session: Session = Depends(get_session)) -> list[dict[str, Any]]:
    return [
        {"id": s.id, "enterprise": s.enterprise, "code": s.code, "name": s.name, "timezone": s.timezone}
        for s in session.scalars(select(Site).order_by(Site.code))
    ]


@router.post("/sites", status_code=201)
def put_site(row: md.SiteIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_site, row)


@router.post("/areas", status_code=201)
def put_area(row: md.AreaIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_area, row)


@router.post("/lines", status_code=201)
def put_line(row: md.LineIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_line, row)


@router.get("/work-centers")
def list_work_centers(_: User = Depends(current_user), session: Session = Depends(get_session)) -> list[dict[str, Any]]:
    rows = session.execute(
        select(WorkCenter, Line.code, Area.code, Site.code, Site.enterprise)
        .join(Line, WorkCenter.line_id == Line.id)
        .join(Area, Line.area_id == Area.id)
        .join(Site, Area.site_id == Site.id)
        .order_by(Site.code, Area.code, Line.code, WorkCenter.code)
    )
    return [
        {
            "id": wc.id,
            "path": f"{site}/{area}/{line}/{wc.code}",
            "uns_path": f"{enterprise}/{site}/{area}/{line}/{wc.code}",
            "code": wc.code,
            "name": wc.name,
            "ideal_cycle_time_s": wc.ideal_cycle_time_s,
            "allow_parallel_orders": wc.allow_parallel_orders,
            "active": wc.active,
        }
        for wc, line, area, site, enterprise in rows
    ]


@router.post("/work-centers", status_code=201)
def put_work_center(
    row: md.WorkCenterIn, _: User = SUPERVISOR, session: Session = Depends(get_session)
) -> dict[str, Any]:
    return _created(session, md.upsert_work_center, row)


@router.get("/products")
def list_products(_: User = Depends(current_user), session: Session = Depends(get_session)) -> list[dict[str, Any]]:
    return [
        {"id": p.id, "code": p.code, "name": p.name, "unit_of_measure": p.unit_of_measure, "active": p.active}
        for p in session.scalars(select(Product).order_by(Product.code))
    ]


@router.post("/products", status_code=201)
def put_product(row: md.ProductIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_product, row)


@router.post("/bom-lines", status_code=201)
def put_bom_line(row: md.BomLineIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_bom_line, row)


@router.get("/routing")
def list_routing(_: User = Depends(current_user), session: Session = Depends(get_session)) -> list[dict[str, Any]]:
    return [
        {
            "id": op.id,
            "product_id": op.product_id,
            "work_center_id": op.work_center_id,
            "sequence": op.sequence,
            "ideal_cycle_time_s": op.ideal_cycle_time_s,
        }
        for op in session.scalars(select(RoutingOperation).order_by(RoutingOperation.id))
    ]


@router.post("/routing", status_code=201)
def put_routing(row: md.RoutingIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_routing, row)


@router.get("/shifts")
def list_shifts(_: User = Depends(current_user), session: Session = Depends(get_session)) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "site_id": s.site_id,
            "name": s.name,
            "start": s.start_time.isoformat(),
            "end": s.end_time.isoformat(),
            "weekdays": s.weekdays,
            "breaks": [
                {"start": b.start_time.isoformat(), "end": b.end_time.isoformat(), "name": b.name} for b in s.breaks
            ],
        }
        for s in session.scalars(select(Shift).order_by(Shift.site_id, Shift.start_time))
    ]


@router.post("/shifts", status_code=201)
def put_shift(row: md.ShiftIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_shift, row)


@router.post("/holidays", status_code=201)
def put_holiday(row: md.HolidayIn, _: User = SUPERVISOR, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _created(session, md.upsert_holiday, row)


@router.post("/planned-stops", status_code=201)
def put_planned_stop(
    row: md.PlannedStopIn, _: User = SUPERVISOR, session: Session = Depends(get_session)
) -> dict[str, Any]:
    """Planned down time for a work center or a whole site (already recorded intervals keep their split)."""
    return _created(session, md.upsert_planned_stop, row)


@router.get("/downtime-reasons")
def list_downtime_reasons(
    _: User = Depends(current_user), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    reasons = session.scalars(select(DowntimeReason).order_by(DowntimeReason.code)).all()
    codes = {r.id: r.code for r in reasons}
    return [
        {
            "id": r.id,
            "code": r.code,
            "name": r.name,
            "parent": codes.get(r.parent_id) if r.parent_id else None,
            "planned": r.planned,
            "category": r.category,
            "active": r.active,
        }
        for r in reasons
    ]


@router.post("/downtime-reasons", status_code=201)
def put_downtime_reason(
    row: md.DowntimeReasonIn, _: User = SUPERVISOR, session: Session = Depends(get_session)
) -> dict[str, Any]:
    return _created(session, md.upsert_downtime_reason, row)


@router.get("/scrap-reasons")
def list_scrap_reasons(
    _: User = Depends(current_user), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "code": r.code, "name": r.name, "category": r.category, "active": r.active}
        for r in session.scalars(select(ScrapReason).order_by(ScrapReason.code))
    ]


@router.post("/scrap-reasons", status_code=201)
def put_scrap_reason(
    row: md.ScrapReasonIn, _: User = SUPERVISOR, session: Session = Depends(get_session)
) -> dict[str, Any]:
    return _created(session, md.upsert_scrap_reason, row)


class ImportResult(BaseModel):
    imported: dict[str, int]


@router.post("/import", response_model=ImportResult)
async def import_master_data(
    file: UploadFile = File(..., description="a YAML file with sections, or a CSV file of one section"),
    kind: str | None = Form(default=None, description="CSV only: the section (sites, areas, lines, ...)"),
    _: User = SUPERVISOR,
    session: Session = Depends(get_session),
) -> ImportResult:
    """All or nothing: on any error nothing is stored and every row error is listed (422)."""
    text = (await file.read()).decode("utf-8-sig", errors="replace")
    try:
        summary = import_text(session, text, file.filename or "upload.yaml", kind)
    except ImportFailed as e:
        session.rollback()
        raise HTTPException(
            422, {"message": f"{len(e.errors)} error(s); nothing was imported", "errors": e.errors}
        ) from None
    session.commit()
    return ImportResult(imported=summary)
