"""OEE queries: any scope (site, area, line, machine) over any window, bucketed series, downtime Pareto."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user
from mes_lite.api.schemas import OeeOut, iso, to_ns
from mes_lite.db import get_session
from mes_lite.models import User
from mes_lite.services import oee_query
from mes_lite.spans import NS_PER_S, Span

router = APIRouter(prefix="/api/oee", tags=["OEE"])

PATH = Query(description="scope: site, site/area, site/area/line or site/area/line/machine")
START = Query(default=None, description="window start, ISO 8601 (default: 24 h before end)")
END = Query(default=None, description="window end, ISO 8601 (default: now)")


def window_of(start: dt.datetime | None, end: dt.datetime | None) -> Span:
    end_ns = to_ns(end) if end else time.time_ns()
    start_ns = to_ns(start) if start else end_ns - 24 * 3600 * NS_PER_S
    return Span(start_ns, end_ns)


@router.get("")
def oee(
    request: Request,
    path: str = PATH,
    start: dt.datetime | None = START,
    end: dt.datetime | None = END,
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """KPIs of the scope (times and counts of its machines summed) and of each machine."""
    settings = request.app.state.settings
    window = window_of(start, end)
    report = oee_query.oee_report(session, path, window, settings.micro_stop_threshold_s, settings.timezone)
    return {
        "scope": path,
        "start": iso(window.start_ns),
        "end": iso(window.end_ns),
        "total": OeeOut.of(report.total).model_dump(),
        "work_centers": {p: OeeOut.of(r).model_dump() for p, r in report.per_work_center.items()},
    }


@router.get("/series")
def oee_series(
    request: Request,
    path: str = PATH,
    bucket: Literal["hour", "shift", "day", "week"] = "day",
    start: dt.datetime | None = START,
    end: dt.datetime | None = END,
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """One KPI set per hour, shift (from the calendar), local day or ISO week of the window."""
    settings = request.app.state.settings
    series = oee_query.oee_series(
        session, path, window_of(start, end), bucket, settings.micro_stop_threshold_s, settings.timezone
    )
    return [
        {"label": label, "start": iso(span.start_ns), "end": iso(span.end_ns), **OeeOut.of(result).model_dump()}
        for label, span, result in series
    ]


@router.get("/downtime-pareto")
def downtime_pareto(
    path: str = PATH,
    start: dt.datetime | None = START,
    end: dt.datetime | None = END,
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    bars = oee_query.downtime_pareto_query(session, path, window_of(start, end))
    return [vars(b) for b in bars]
