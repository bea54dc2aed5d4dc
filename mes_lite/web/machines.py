"""Machine pages: `/machines` (all machines) and `/machines/{site/area/line/machine}`.

One machine's page shows its state timeline for the current shift (Gantt), OEE by hour over the
shift and by day over two weeks, the downtime Pareto of the last seven days, and live tag values
from the gateway's MQTT topics (`live_tags`), refreshed over SSE (`/machines/.../events`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mes_lite.db import get_session
from mes_lite.models import DowntimeReason, MachineStateInterval, WorkCenter
from mes_lite.services.calendar_query import load_site_calendar
from mes_lite.services.errors import ServiceError
from mes_lite.services.master_data import work_center_by_path
from mes_lite.services.oee_query import downtime_pareto_query, oee_series
from mes_lite.shift_calendar import shift_occurrences
from mes_lite.spans import NS_PER_S, Span
from mes_lite.web import alarms_view, charts
from mes_lite.web.board import active_machines
from mes_lite.web.i18n import Translator, translator
from mes_lite.web.live_tags import live_tags_for
from mes_lite.web.plant_labels import STATE_ICONS, reason_label, state_key, state_label
from mes_lite.web.session import page_user
from mes_lite.web.sse import event_stream
from mes_lite.web.templating import render, render_fragment, request_locale
from mes_lite.web.writes import read_committing

router = APIRouter(include_in_schema=False)

GANTT_WIDTH, GANTT_ROW = 1200.0, 40.0
TREND_WIDTH, TREND_HEIGHT = 560.0, 200.0
PARETO_WIDTH, PARETO_HEIGHT = 560.0, 200.0
DAYS_OF_TREND = 14
HOURS_OF_TREND = 12
DAYS_OF_PARETO = 7
FALLBACK_WINDOW_S = 8 * 3600
LIVE_POLL_S = 1.0
WINDOW = "__window__"
"""Timeline name of an explicit from/to window (a lot's production time, linked from the trace page)."""


def _tick_step_s(window_s: float) -> int:
    """An axis tick every hour for a shift, fewer for days, more for minutes: about 6 to 24 ticks."""
    for step_s in (300, 900, 1800, 3600, 7200, 14400, 43200, 86400):
        if window_s / step_s <= 24:
            return step_s
    return 7 * 86400


def recent_shifts(
    session: Session, site_id: int, now_ns: int, default_tz: str, count: int = 2
) -> list[tuple[str, Span]]:
    """The shift occurrence around now and the ones before it (newest first); without a calendar, 8-hour blocks."""
    site = load_site_calendar(session, site_id, default_tz)
    around = Span(now_ns - 3 * 24 * 3600 * NS_PER_S, now_ns + 1)
    started = [
        o for o in shift_occurrences(site.shifts, around, site.timezone, site.holidays) if o.span.start_ns <= now_ns
    ]
    started.sort(key=lambda o: o.span.start_ns, reverse=True)
    if started:
        return [(o.name, o.span) for o in started[:count]]
    block = FALLBACK_WINDOW_S * NS_PER_S
    return [("", Span(now_ns - (i + 1) * block, now_ns - i * block)) for i in range(count)]


def _local(ts_ns: int, tz: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns / NS_PER_S, ZoneInfo(tz))


def _pareto_label(t: Translator, label: str, reasons: dict[str, str]) -> str:
    if label.startswith("unassigned (") and label.endswith(")"):
        return t("machine.unassigned", state=state_label(t, label[len("unassigned (") : -1]))
    return reason_label(t, label, reasons.get(label))


def _timeline(
    session: Session,
    t: Translator,
    work_center_id: int,
    shift_name: str,
    shift: Span,
    now_ns: int,
    tz: str,
    reason_codes: dict[int, str],
    reason_names: dict[str, str],
) -> dict[str, object]:
    """One Gantt row: the machine's states over one shift occurrence, with a table of the same intervals."""
    m = MachineStateInterval
    shown_end = min(shift.end_ns, now_ns)
    rows = session.scalars(
        select(m)
        .where(
            m.work_center_id == work_center_id,
            m.start_ns < shown_end,
            or_(m.end_ns > shift.start_ns, m.end_ns.is_(None)),
        )
        .order_by(m.start_ns)
    ).all()

    def clock(ns: int) -> str:
        return t.datetime(dt.datetime.fromtimestamp(ns / NS_PER_S, dt.UTC), tz, with_date=False)

    name = t(f"shift.{shift_name}") if shift_name and t.has(f"shift.{shift_name}") else shift_name
    if shift_name == WINDOW:
        title = t("machine.window")
    else:
        title = t("machine.shift", name=name) if name else t("machine.recent_hours")
    window_s = (shift.end_ns - shift.start_ns) / NS_PER_S
    return {
        "title": title,
        "span": f"{t.datetime(dt.datetime.fromtimestamp(shift.start_ns / NS_PER_S, dt.UTC), tz)} – {clock(shift.end_ns)}",
        "bars": charts.gantt(
            [(r.start_ns, min(r.end_ns or now_ns, now_ns), state_key(r.state)) for r in rows],
            shift.start_ns,
            shift.end_ns,
            GANTT_WIDTH,
        ),
        "now_x": (now_ns - shift.start_ns) / max(1, shift.end_ns - shift.start_ns) * GANTT_WIDTH
        if now_ns < shift.end_ns
        else None,
        "ticks": charts.time_ticks(
            shift.start_ns,
            shift.end_ns,
            GANTT_WIDTH,
            _tick_step_s(window_s),
            lambda ns: _local(ns, tz).strftime("%H:%M"),
        ),
        "rows": [
            {
                "start": clock(r.start_ns),
                "end": clock(r.end_ns) if r.end_ns else t("machine.now"),
                "duration": t.duration(((r.end_ns or now_ns) - r.start_ns) / NS_PER_S),
                "state": state_label(t, r.state),
                "state_key": state_key(r.state),
                "reason": reason_label(
                    t, reason_codes.get(r.reason_id), reason_names.get(reason_codes.get(r.reason_id, ""))
                )
                if r.reason_id
                else "",
            }
            for r in rows
        ],
    }


@router.get("/machines")
def machine_list(
    request: Request, _user: object = Depends(page_user), session: Session = Depends(get_session)
) -> Response:
    machines = active_machines(session)
    return render(request, "machines/list.html", {"machines": machines})


@router.get("/machines/{path:path}/events")
async def machine_events(request: Request, path: str) -> StreamingResponse:
    """`event: live` with the live-values table (and the state badge) when it changed."""
    request_locale(request)

    async def changes() -> AsyncIterator[tuple[str, str]]:
        last = None
        while True:
            html = await asyncio.to_thread(_live_html, request, path)
            if html != last:
                last = html
                yield "live", html
            else:
                yield "", ""
            await asyncio.sleep(LIVE_POLL_S)

    return event_stream(request, changes())


def _live_context(request: Request, session: Session, work_center: WorkCenter, path: str) -> dict[str, object]:
    t = translator(request_locale(request))
    live = live_tags_for(request.app.state, request.app.state.session_factory)
    values = {}
    if live is not None:
        live.watch(path)
        values = live.values(path)
    interval = session.scalar(
        select(MachineStateInterval).where(
            MachineStateInterval.work_center_id == work_center.id, MachineStateInterval.end_ns.is_(None)
        )
    )
    key = state_key(interval.state if interval else None)
    return {
        "live_configured": live is not None,
        "tag_values": sorted(values.items()),
        "state_key": key,
        "state_icon": STATE_ICONS[key],
        "state_label": state_label(t, interval.state if interval else None),
        "alarms": alarms_view.active_alarms_by_work_center(session).get(work_center.id, []),
    }


def _live_html(request: Request, path: str) -> str:
    with request.app.state.session_factory() as session:
        work_center = work_center_by_path(session, path)
        context = _live_context(request, session, work_center, path)
    return render_fragment(request, "machines/_live.html", context)


@router.get("/machines/{path:path}")
def machine_page(
    request: Request,
    path: str,
    from_ns: int | None = None,
    to_ns: int | None = None,
    _user: object = Depends(page_user),
) -> Response:
    """The machine's page; `from_ns`/`to_ns` (a lot trace's production window) replace the recent shifts."""
    context = read_committing(
        request.app.state.session_factory, lambda session: _machine_context(request, session, path, from_ns, to_ns)
    )
    if context is None:
        t = translator(request_locale(request))
        return render(request, "error.html", {"message": t("error.not_found", what=path)}, status_code=404)
    return render(request, "machines/page.html", context)


def _machine_context(
    request: Request, session: Session, path: str, from_ns: int | None, to_ns: int | None
) -> dict[str, object] | None:
    t = translator(request_locale(request))
    settings = request.app.state.settings
    try:
        work_center = work_center_by_path(session, path)
    except ServiceError:
        return None
    site_id = work_center.line.area.site_id
    tz = load_site_calendar(session, site_id, settings.timezone).timezone
    now_ns = time.time_ns()
    reason_codes = dict(session.execute(select(DowntimeReason.id, DowntimeReason.code)).all())
    reason_names = dict(session.execute(select(DowntimeReason.code, DowntimeReason.name)).all())
    if from_ns is not None and to_ns is not None and to_ns > from_ns:
        windows = [(WINDOW, Span(from_ns, to_ns))]
    else:
        windows = recent_shifts(session, site_id, now_ns, settings.timezone)
    timelines = [
        _timeline(session, t, work_center.id, name, shift, now_ns, tz, reason_codes, reason_names)
        for name, shift in windows
    ]

    threshold = settings.micro_stop_threshold_s
    hours_start = now_ns - HOURS_OF_TREND * 3600 * NS_PER_S
    hourly = oee_series(
        session,
        path,
        Span(hours_start, now_ns + 1),
        "hour",
        threshold,
        settings.timezone,
        now_ns,
    )
    today = _local(now_ns, tz).date()
    days_start = dt.datetime.combine(today - dt.timedelta(days=DAYS_OF_TREND - 1), dt.time(0), ZoneInfo(tz))
    daily = oee_series(
        session,
        path,
        Span(int(days_start.timestamp()) * NS_PER_S, now_ns + 1),
        "day",
        threshold,
        settings.timezone,
        now_ns,
    )
    hour_bars = charts.bars(
        [(_local(span.start_ns, tz).strftime("%H:%M"), r.oee) for _, span, r in hourly], TREND_WIDTH, TREND_HEIGHT
    )
    day_bars = charts.bars(
        [(t.month_day(_local(span.start_ns, tz)), r.oee) for _, span, r in daily], TREND_WIDTH, TREND_HEIGHT
    )
    pareto_window = Span(now_ns - DAYS_OF_PARETO * 86400 * NS_PER_S, now_ns + 1)
    pareto_rows = downtime_pareto_query(session, path, pareto_window, now_ns)
    pareto = charts.pareto(
        [(_pareto_label(t, b.reason, reason_names), b.duration_s, b.cumulative_share) for b in pareto_rows],
        PARETO_WIDTH,
        PARETO_HEIGHT,
    )
    context = {
        "path": path,
        "code": work_center.code,
        "timelines": timelines,
        "gantt_width": GANTT_WIDTH,
        "gantt_row": GANTT_ROW,
        "state_legend": [(k, STATE_ICONS[k], state_label(t, k if k != "unknown" else None)) for k in STATE_ICONS],
        "hour_bars": hour_bars,
        "hourly": [(b.label, r) for b, (_, _, r) in zip(hour_bars, hourly, strict=True)],
        "day_bars": day_bars,
        "daily": [(b.label, r) for b, (_, _, r) in zip(day_bars, daily, strict=True)],
        "trend_width": TREND_WIDTH,
        "trend_height": TREND_HEIGHT,
        "pareto": pareto,
        "pareto_rows": [(bar.label, row) for bar, row in zip(pareto.bars, pareto_rows, strict=True)],
        "pareto_width": PARETO_WIDTH,
        "pareto_height": PARETO_HEIGHT,
        "days_of_trend": DAYS_OF_TREND,
        "days_of_pareto": DAYS_OF_PARETO,
        "hours_of_trend": HOURS_OF_TREND,
        **_live_context(request, session, work_center, path),
    }
    return context
