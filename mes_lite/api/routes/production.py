"""Machine states and counts: post events by hand or from a script, list intervals, give a stop a reason."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user, require_role
from mes_lite.api.schemas import iso, to_ns
from mes_lite.db import get_session
from mes_lite.models import DowntimeReason, MachineStateInterval, User
from mes_lite.services.errors import Conflict
from mes_lite.services.master_data import work_center_by_path
from mes_lite.services.production import ProductionRecorder, assign_reason

router = APIRouter(prefix="/api", tags=["machine states and counts"])


def recorder(request: Request) -> ProductionRecorder:
    app_state = request.app.state
    if not hasattr(app_state, "recorder"):
        from mes_lite.services.calendar_query import CalendarCache

        app_state.recorder = ProductionRecorder(CalendarCache(app_state.settings.timezone, ttl_s=5.0))
    return app_state.recorder


class Timestamped(BaseModel):
    ts: dt.datetime | None = Field(default=None, description="when it happened (ISO 8601); default now")
    ts_ns: int | None = Field(default=None, ge=0, description="alternatively, UTC nanoseconds")

    @model_validator(mode="after")
    def _one_time(self) -> Timestamped:
        if self.ts is not None and self.ts_ns is not None:
            raise ValueError("give ts or ts_ns, not both")
        return self

    def at_ns(self) -> int:
        if self.ts_ns is not None:
            return self.ts_ns
        return to_ns(self.ts) if self.ts else time.time_ns()


class StateEventIn(Timestamped):
    work_center: str = Field(description="site/area/line/machine")
    state: str = Field(
        min_length=1, max_length=32, description="running, idle, starved, blocked, setup, fault, planned_stop ..."
    )


class CountIn(Timestamped):
    work_center: str
    produced_qty: float = Field(ge=0)
    reject_qty: float = Field(default=0, ge=0)
    source_key: str | None = Field(default=None, max_length=300, description="idempotency key: a repeat is ignored")

    @model_validator(mode="after")
    def _rejects_within_produced(self) -> CountIn:
        if self.reject_qty > self.produced_qty:
            raise ValueError("reject_qty cannot exceed produced_qty")
        return self


class ReasonIn(BaseModel):
    reason: str | None = Field(description="downtime reason code, or null to clear")


def interval_out(i: MachineStateInterval, reasons: dict[int, str]) -> dict[str, Any]:
    return {
        "id": i.id,
        "work_center_id": i.work_center_id,
        "start": iso(i.start_ns),
        "end": iso(i.end_ns),
        "start_ns": i.start_ns,
        "end_ns": i.end_ns,
        "state": i.state,
        "category": i.category,
        "planned_busy": i.planned_busy,
        "reason": reasons.get(i.reason_id) if i.reason_id else None,
        "work_order_id": i.work_order_id,
    }


@router.post("/state-events", status_code=201)
def post_state(
    body: StateEventIn,
    request: Request,
    _: User = Depends(require_role("supervisor")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A machine without a connection reports its state by hand or by script (supervisor: it changes OEE)."""
    wc = work_center_by_path(session, body.work_center)
    change = recorder(request).record_state(session, wc.id, body.state, body.at_ns(), source="api")
    if change.late:
        raise Conflict("this event is older than the machine's current state: states are recorded in time order")
    session.commit()
    return {"changed": change.changed, "interval_id": change.interval_id}


@router.post("/counts", status_code=201)
def post_count(
    body: CountIn,
    request: Request,
    _: User = Depends(require_role("supervisor")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    wc = work_center_by_path(session, body.work_center)
    count = recorder(request).record_count(
        session, wc.id, body.at_ns(), body.produced_qty, body.reject_qty, source="api", source_key=body.source_key
    )
    session.commit()
    return {
        "recorded": count is not None,
        "id": count.id if count else None,
        "work_order_id": count.work_order_id if count else None,
    }


@router.get("/state-intervals")
def list_intervals(
    work_center: str = Query(description="site/area/line/machine"),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = Query(default=500, ge=1, le=10_000),
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    wc = work_center_by_path(session, work_center)
    m = MachineStateInterval
    statement = select(m).where(m.work_center_id == wc.id)
    if start:
        statement = statement.where(or_(m.end_ns > to_ns(start), m.end_ns.is_(None)))
    if end:
        statement = statement.where(m.start_ns < to_ns(end))
    intervals = session.scalars(statement.order_by(m.start_ns.desc()).limit(limit)).all()
    reasons = dict(session.execute(select(DowntimeReason.id, DowntimeReason.code)).all())
    return [interval_out(i, reasons) for i in reversed(intervals)]


@router.put("/state-intervals/{interval_id}/reason")
def set_reason(
    interval_id: int, body: ReasonIn, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """An operator says why the machine stopped; a planned reason moves the stop out of planned busy time."""
    interval = assign_reason(session, interval_id, body.reason, user)
    session.commit()
    reasons = dict(session.execute(select(DowntimeReason.id, DowntimeReason.code)).all())
    return interval_out(interval, reasons)
