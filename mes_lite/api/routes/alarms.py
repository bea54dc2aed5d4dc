"""Alarms: active alarms (per work center for the board), history, ISA-18.2 KPIs, acknowledge and shelve.

Acknowledging and shelving are commands for the gateway, which owns the alarm state: the
API queues them (202 Accepted) and `edgefab mes run` publishes them; the gateway's new alarm
event then updates the lists here. `GET /api/alarms/commands/{request_id}` shows the answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.alarms import service as alarms
from mes_lite.alarms.models import MesCommand
from mes_lite.api.auth import current_user, require_role
from mes_lite.api.schemas import iso, to_ns
from mes_lite.db import get_session
from mes_lite.models import User
from mes_lite.services.errors import NotFound

router = APIRouter(prefix="/api/alarms", tags=["alarms"])


def _view(row: Any) -> dict[str, Any]:
    view = alarms.alarm_view(row)
    view["active_since"] = iso(row.active_since_ns)
    view["acked_at"] = iso(row.acked_ns)
    return view


@router.get("/active")
def active(
    path: str | None = Query(default=None, description="enterprise/site[/area[/line[/machine]]]"),
    include_shelved: bool = False,
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Alarms that are active or not yet acknowledged: unacknowledged first, then by priority."""
    return [_view(r) for r in alarms.active_alarms(session, path, include_shelved)]


@router.get("/work-centers")
def by_work_center(
    path: str | None = Query(default=None, description="enterprise/site[/area[/line]]"),
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """For the andon board: per work center, its active alarms, highest priority and unacknowledged count."""
    return alarms.active_by_work_center(session, path)


def _window(start: dt.datetime | None, end: dt.datetime | None) -> tuple[int, int]:
    end_ns = to_ns(end) if end else alarms.now_ns()
    start_ns = to_ns(start) if start else end_ns - 24 * 3600 * 1_000_000_000
    return start_ns, end_ns


@router.get("/history")
def history(
    path: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = Query(default=500, ge=1, le=5000),
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Alarm events, newest first (default: the last 24 hours)."""
    start_ns, end_ns = _window(start, end)
    return [
        {
            "event_id": e.event_id,
            "key": e.key,
            "alarm": e.alarm,
            "path": e.path,
            "priority": e.priority,
            "transition": e.transition,
            "state": e.state,
            "ts": iso(e.ts_ns),
            "ts_ns": e.ts_ns,
            "user": e.user,
        }
        for e in alarms.history(session, path, start_ns, end_ns, limit)
    ]


@router.get("/kpis")
def kpis(
    path: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    operators: int = Query(default=1, ge=1, description="operators sharing these alarms"),
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """ISA-18.2: alarms per operator per 10 minutes, flood share, top 10 bad actors, chattering alarms."""
    start_ns, end_ns = _window(start, end)
    result = alarms.kpis(session, path, start_ns, end_ns, operators)
    return {"start": iso(start_ns), "end": iso(end_ns), **vars(result)}


class AckIn(BaseModel):
    key: str = Field(description="the alarm key: enterprise/site/area/line/machine/alarm")


class ShelveIn(BaseModel):
    key: str
    duration_s: float = Field(gt=0, le=24 * 3600)


@router.post("/ack", status_code=202)
def acknowledge(
    body: AckIn, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """Operators acknowledge; the command goes to the gateway (see GET /api/alarms/commands/{request_id})."""
    command = alarms.request_ack(session, body.key, user.username)
    session.commit()
    return alarms.command_view(command)


@router.post("/shelve", status_code=202)
def shelve(
    body: ShelveIn, user: User = Depends(require_role("supervisor")), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """Supervisors shelve an alarm for a while (the gateway bounds it by its `max_shelve`)."""
    command = alarms.request_shelve(session, body.key, user.username, body.duration_s)
    session.commit()
    return alarms.command_view(command)


@router.get("/commands/{request_id}")
def command_status(
    request_id: str, _: User = Depends(current_user), session: Session = Depends(get_session)
) -> dict[str, Any]:
    command = session.scalar(select(MesCommand).where(MesCommand.request_id == request_id))
    if command is None:
        raise NotFound(f"no command {request_id!r}")
    return alarms.command_view(command)
