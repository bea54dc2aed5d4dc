"""Work orders: create (supervisor), list, transitions, partial quantities, scrap, notes (operator)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user, require_role
from mes_lite.api.schemas import iso, to_ns
from mes_lite.db import get_session
from mes_lite.models import Product, User, WorkOrder, WorkOrderStatus
from mes_lite.services import work_orders as wo
from mes_lite.services.master_data import work_center_by_path
from mes_lite.services.oee_query import work_center_paths

router = APIRouter(prefix="/api/work-orders", tags=["work orders"])


class WorkOrderIn(BaseModel):
    number: str = Field(min_length=1, max_length=64)
    product: str = Field(description="product code")
    work_center: str = Field(description="site/area/line/machine")
    planned_qty: float = Field(gt=0)
    planned_start: dt.datetime | None = None
    planned_end: dt.datetime | None = None


class TransitionIn(BaseModel):
    action: Literal["release", "unrelease", "start", "pause", "resume", "complete", "close", "reopen"]
    note: str = Field(default="", max_length=500)


class QuantityIn(BaseModel):
    good_qty: float = Field(ge=0)
    reject_qty: float = Field(default=0, ge=0)


class ScrapIn(BaseModel):
    quantity: float = Field(gt=0)
    reason: str = Field(min_length=1, description="scrap reason code")
    note: str = Field(default="", max_length=500)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)


def order_out(session: Session, order: WorkOrder, detail: bool = False) -> dict[str, Any]:
    q = wo.quantities(session, order)
    product = session.get(Product, order.product_id)
    out: dict[str, Any] = {
        "id": order.id,
        "number": order.number,
        "product": product.code if product else None,
        "work_center": work_center_paths(session, [order.work_center_id]).get(order.work_center_id),
        "status": order.status,
        "planned_qty": order.planned_qty,
        "produced_qty": q.produced_qty,
        "good_qty": q.good_qty,
        "reject_qty": q.reject_qty,
        "remaining_qty": q.remaining_qty,
        "progress": q.progress,
        "planned_start": iso(order.planned_start_ns),
        "planned_end": iso(order.planned_end_ns),
        "started": iso(order.started_ns),
        "completed": iso(order.completed_ns),
        "allowed_actions": sorted(wo.TRANSITIONS[WorkOrderStatus(order.status)]),
    }
    if detail:
        out["history"] = [
            {"from": h.from_status, "to": h.to_status, "at": iso(h.at_ns), "user_id": h.user_id, "note": h.note}
            for h in order.history
        ]
        out["notes"] = [{"at": iso(n.at_ns), "user_id": n.user_id, "text": n.text} for n in order.notes]
    return out


@router.get("")
def list_orders(
    status: WorkOrderStatus | None = None,
    work_center: str | None = Query(default=None, description="site/area/line/machine"),
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    statement = select(WorkOrder).order_by(WorkOrder.id)
    if status:
        statement = statement.where(WorkOrder.status == status.value)
    if work_center:
        statement = statement.where(WorkOrder.work_center_id == work_center_by_path(session, work_center).id)
    return [order_out(session, o) for o in session.scalars(statement)]


@router.post("", status_code=201)
def create_order(
    body: WorkOrderIn, user: User = Depends(require_role("supervisor")), session: Session = Depends(get_session)
) -> dict[str, Any]:
    order = wo.create_order(
        session,
        body.number,
        body.product,
        body.work_center,
        body.planned_qty,
        user,
        to_ns(body.planned_start) if body.planned_start else None,
        to_ns(body.planned_end) if body.planned_end else None,
    )
    session.commit()
    return order_out(session, order, detail=True)


@router.get("/{work_order_id}")
def get_order(
    work_order_id: int, _: User = Depends(current_user), session: Session = Depends(get_session)
) -> dict[str, Any]:
    return order_out(session, wo.get_order(session, work_order_id), detail=True)


@router.post("/{work_order_id}/transitions")
def transition(
    work_order_id: int,
    body: TransitionIn,
    request: Request,
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Operators start, pause, resume and complete; releasing, closing and reopening need a supervisor."""
    if body.action in ("release", "unrelease", "close", "reopen"):
        require_role("supervisor")(user)
    settings = request.app.state.settings
    order = wo.transition(
        session, work_order_id, body.action, user, body.note, allow_parallel_orders=settings.allow_parallel_orders
    )
    session.commit()
    return order_out(session, order, detail=True)


@router.post("/{work_order_id}/quantities", status_code=201)
def report_quantity(
    work_order_id: int, body: QuantityIn, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> dict[str, Any]:
    wo.report_quantity(session, work_order_id, body.good_qty, body.reject_qty, user)
    session.commit()
    return order_out(session, wo.get_order(session, work_order_id))


@router.post("/{work_order_id}/scrap", status_code=201)
def report_scrap(
    work_order_id: int, body: ScrapIn, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> dict[str, Any]:
    wo.report_scrap(session, work_order_id, body.quantity, body.reason, user, body.note)
    session.commit()
    return order_out(session, wo.get_order(session, work_order_id))


@router.post("/{work_order_id}/notes", status_code=201)
def add_note(
    work_order_id: int, body: NoteIn, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> dict[str, Any]:
    wo.add_note(session, work_order_id, body.text, user)
    session.commit()
    return order_out(session, wo.get_order(session, work_order_id), detail=True)
