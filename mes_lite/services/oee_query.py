"""OEE from the database: the sums of the time model in SQL, the KPIs from `mes_lite.oee`.

One query sums state time per work center and category inside planned busy time, clipped at the
window's edges (intervals are already split at calendar edges, see `production`); one sums the
counts. The calendar gives POT and PDOT. Lines and sites add their machines' inputs: times and
counts are summed, percentages never averaged. Same numbers as `time_accounting.window_inputs`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from mes_lite.models import (
    Area,
    DowntimeReason,
    Line,
    MachineStateInterval,
    PlannedStop,
    ProductionCount,
    ScrapCategory,
    ScrapReason,
    Site,
    StateCategory,
    WorkCenter,
)
from mes_lite.oee import OeeInputs, OeeResult, ParetoBar, compute, sum_inputs
from mes_lite.services import oee_cache
from mes_lite.services.calendar_query import load_site_calendar
from mes_lite.services.errors import InvalidInput, NotFound
from mes_lite.shift_calendar import CalendarSpans, expand_calendar, shift_occurrences
from mes_lite.spans import NS_PER_S, Span

SCOPES = ("work_center", "line", "area", "site")
BUCKETS = ("hour", "shift", "day", "week")


@dataclass(frozen=True)
class Scope:
    """A set of work centers named by a path: `site`, `site/area`, `site/area/line` or `site/area/line/machine`."""

    path: str
    work_center_ids: tuple[int, ...]
    site_ids: dict[int, int]  # work center id -> site id


def resolve_scope(session: Session, path: str) -> Scope:
    parts = [p for p in path.strip("/").split("/") if p]
    if not 1 <= len(parts) <= 4:
        raise InvalidInput(
            f"{path!r} is not a scope: write site, site/area, site/area/line or site/area/line/machine", "path"
        )
    statement = (
        select(WorkCenter.id, Site.id)
        .join(Line, WorkCenter.line_id == Line.id)
        .join(Area, Line.area_id == Area.id)
        .join(Site, Area.site_id == Site.id)
        .where(WorkCenter.active.is_(True))
    )
    for column, value in zip((Site.code, Area.code, Line.code, WorkCenter.code), parts, strict=False):
        statement = statement.where(column == value)
    rows = session.execute(statement.order_by(WorkCenter.id)).all()
    if not rows:
        raise NotFound(f"no work center under {path!r}", "path")
    return Scope(path, tuple(r[0] for r in rows), {r[0]: r[1] for r in rows})


def _clip(column_start, column_end, window: Span):  # type: ignore[no-untyped-def]
    end = case((column_end < window.end_ns, column_end), else_=literal(window.end_ns))
    start = case((column_start > window.start_ns, column_start), else_=literal(window.start_ns))
    return end - start


def overlapping(window: Span) -> tuple[tuple, tuple]:
    """Conditions for intervals overlapping `window`, as two index-friendly sets: closed and open.

    A closed interval never spans more than one hour (it is split at hours when it ends), so it
    starts less than an hour before the window: a range on (work_center_id, start_ns). Open
    intervals are found on (work_center_id, end_ns IS NULL). One OR of both would make SQLite scan.
    """
    m = MachineStateInterval
    closed = (
        m.end_ns.is_not(None),
        m.start_ns >= window.start_ns - oee_cache.HOUR_NS,
        m.start_ns < window.end_ns,
        m.end_ns > window.start_ns,
    )
    still_open = (m.end_ns.is_(None), m.start_ns < window.end_ns)
    return closed, still_open


def state_sums(
    session: Session, work_center_ids: Sequence[int], window: Span, micro_stop_threshold_s: float, now_ns: int
) -> dict[int, dict[str, float]]:
    """Seconds per work center and bucket (production, micro, setup, fault, idle, planned_down) from the raw rows."""
    m = MachineStateInterval
    end = func.coalesce(m.end_ns, literal(min(now_ns, window.end_ns)))
    clipped = _clip(m.start_ns, end, window)
    bucket = oee_cache.micro_bucket(int(micro_stop_threshold_s * NS_PER_S), now_ns)
    result: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for conditions in overlapping(window):
        statement = (
            select(m.work_center_id, bucket.label("bucket"), func.sum(clipped))
            .where(m.work_center_id.in_(work_center_ids), m.planned_busy.is_(True), m.start_ns < now_ns, *conditions)
            .group_by(m.work_center_id, bucket)
        )
        for wc_id, name, total_ns in session.execute(statement):
            result[wc_id][name] += max(0, int(total_ns or 0)) / NS_PER_S
    return result


def count_sums(session: Session, work_center_ids: Sequence[int], window: Span) -> dict[int, tuple[float, ...]]:
    """(produced, reject, startup reject, ideal production s) per work center, inside planned busy time."""
    c = ProductionCount
    startup = case((ScrapReason.category == ScrapCategory.STARTUP.value, c.reject_qty), else_=literal(0.0))
    statement = (
        select(
            c.work_center_id,
            func.sum(c.produced_qty),
            func.sum(c.reject_qty),
            func.sum(startup),
            func.sum(c.produced_qty * func.coalesce(c.ideal_cycle_time_s, 0.0)),
        )
        .outerjoin(ScrapReason, c.scrap_reason_id == ScrapReason.id)
        .where(
            c.work_center_id.in_(work_center_ids),
            c.planned_busy.is_(True),
            c.ts_ns >= window.start_ns,
            c.ts_ns < window.end_ns,
        )
        .group_by(c.work_center_id)
    )
    return {row[0]: tuple(float(v or 0) for v in row[1:]) for row in session.execute(statement)}


CACHE_MIN_HOURS = 6
"""Windows with fewer whole settled hours than this are summed from the raw rows directly."""


def _sums(
    session: Session, ids: Sequence[int], window: Span, micro_stop_threshold_s: float, now_ns: int
) -> tuple[dict[int, dict[str, float]], dict[int, tuple[float, ...]]]:
    """State seconds and counts per work center: whole settled hours from the hourly cache, the edges raw."""
    h0 = oee_cache.hour_ceil(window.start_ns)
    h1 = min(oee_cache.hour_floor(window.end_ns), oee_cache.settled_until(now_ns))
    if h1 - h0 < CACHE_MIN_HOURS * oee_cache.HOUR_NS:
        return (
            state_sums(session, ids, window, micro_stop_threshold_s, now_ns),
            count_sums(session, ids, window),
        )
    states: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for edge in (Span(window.start_ns, h0), Span(h1, window.end_ns)):
        if edge.duration_ns <= 0:
            continue
        for wc, buckets in state_sums(session, ids, edge, micro_stop_threshold_s, now_ns).items():
            for name, seconds in buckets.items():
                states[wc][name] += seconds
        for wc, values in count_sums(session, ids, edge).items():
            for i, v in enumerate(values):
                counts[wc][i] += v
    cached = oee_cache.hourly_sums(session, ids, h0, h1, micro_stop_threshold_s, now_ns)
    for wc, entry in cached.items():
        for name in oee_cache.BUCKETS:
            states[wc][name] += entry[name]
        for i, name in enumerate(("produced_qty", "reject_qty", "startup_reject_qty", "ideal_production_s")):
            counts[wc][i] += entry[name]
    return states, {wc: tuple(v) for wc, v in counts.items()}


class CalendarsForScope:
    """Calendars per work center, expanding each site's rules once per window."""

    def __init__(self, session: Session, scope: Scope, default_tz: str) -> None:
        self.session = session
        self.scope = scope
        self.sites = {sid: load_site_calendar(session, sid, default_tz) for sid in set(scope.site_ids.values())}
        self._stops_window: Span | None = None
        self._stop_rows: list = []

    def _stops_for(self, work_center_id: int, window: Span) -> list[Span]:
        """Planned stops of a work center (its own and its site's), loaded for the whole scope in one query."""
        if self._stops_window != window:
            ps = PlannedStop
            self._stop_rows = self.session.execute(
                select(ps.site_id, ps.work_center_id, ps.start_ns, ps.end_ns).where(
                    ps.site_id.in_(set(self.scope.site_ids.values())),
                    ps.start_ns < window.end_ns,
                    ps.end_ns > window.start_ns,
                )
            ).all()
            self._stops_window = window
        site_id = self.scope.site_ids[work_center_id]
        return [
            Span(a, b) for site, wc, a, b in self._stop_rows if site == site_id and (wc is None or wc == work_center_id)
        ]

    def calendar(self, work_center_id: int, window: Span, base: dict[int, CalendarSpans]) -> CalendarSpans:
        site_id = self.scope.site_ids[work_center_id]
        stops = self._stops_for(work_center_id, window)
        site = self.sites[site_id]
        if not stops:
            if site_id not in base:
                base[site_id] = expand_calendar(site.shifts, window, site.timezone, site.holidays)
            return base[site_id]
        return expand_calendar(site.shifts, window, site.timezone, site.holidays, stops)


def inputs_per_work_center(
    session: Session,
    scope: Scope,
    window: Span,
    micro_stop_threshold_s: float,
    default_tz: str = "UTC",
    now_ns: int | None = None,
    calendars: CalendarsForScope | None = None,
) -> dict[int, OeeInputs]:
    now_ns = now_ns or time.time_ns()
    calendars = calendars or CalendarsForScope(session, scope, default_tz)
    # time after "now" has not happened yet: it is not planned busy time of this window (yet)
    effective = Span(window.start_ns, min(window.end_ns, max(now_ns, window.start_ns)))
    states, counts = _sums(session, scope.work_center_ids, effective, micro_stop_threshold_s, now_ns)
    base: dict[int, CalendarSpans] = {}
    result = {}
    for wc_id in scope.work_center_ids:
        calendar = calendars.calendar(wc_id, effective, base) if effective.duration_ns else None
        s = states.get(wc_id, {})
        produced, reject, startup, ideal = counts.get(wc_id, (0.0, 0.0, 0.0, 0.0))
        result[wc_id] = OeeInputs(
            planned_operation_s=calendar.planned_operation_s if calendar else 0.0,
            planned_down_s=(calendar.planned_down_s if calendar else 0.0)
            + s.get(StateCategory.PLANNED_DOWN.value, 0.0),
            production_s=s.get(StateCategory.PRODUCTION.value, 0.0),
            micro_stop_s=s.get("micro", 0.0),
            setup_s=s.get(StateCategory.SETUP.value, 0.0),
            fault_s=s.get(StateCategory.FAULT.value, 0.0),
            idle_s=s.get(StateCategory.IDLE.value, 0.0),
            produced_qty=produced,
            reject_qty=reject,
            startup_reject_qty=startup,
            ideal_production_s=ideal,
        )
    return result


@dataclass(frozen=True)
class OeeReport:
    scope: str
    window: Span
    total: OeeResult
    per_work_center: dict[str, OeeResult]


def work_center_paths(session: Session, ids: Sequence[int]) -> dict[int, str]:
    statement = (
        select(WorkCenter.id, Site.code, Area.code, Line.code, WorkCenter.code)
        .join(Line, WorkCenter.line_id == Line.id)
        .join(Area, Line.area_id == Area.id)
        .join(Site, Area.site_id == Site.id)
        .where(WorkCenter.id.in_(ids))
    )
    return {row[0]: "/".join(row[1:]) for row in session.execute(statement)}


def oee_report(
    session: Session,
    path: str,
    window: Span,
    micro_stop_threshold_s: float,
    default_tz: str = "UTC",
    now_ns: int | None = None,
) -> OeeReport:
    if window.end_ns <= window.start_ns:
        raise InvalidInput("the window's end must be after its start", "end")
    scope = resolve_scope(session, path)
    per_wc = inputs_per_work_center(session, scope, window, micro_stop_threshold_s, default_tz, now_ns)
    paths = work_center_paths(session, scope.work_center_ids)
    return OeeReport(
        scope=path,
        window=window,
        total=compute(sum_inputs(per_wc.values())),
        per_work_center={paths[wc]: compute(inputs) for wc, inputs in per_wc.items()},
    )


def _local_midnight(ts_ns: int, tz: ZoneInfo) -> dt.datetime:
    local = dt.datetime.fromtimestamp(ts_ns / NS_PER_S, tz)
    return dt.datetime.combine(local.date(), dt.time(0), tz)


def bucket_windows(
    session: Session, path: str, window: Span, bucket: str, default_tz: str = "UTC"
) -> list[tuple[str, Span]]:
    """Consecutive windows (label, span) covering `window`: hours, shifts, local days or ISO weeks."""
    if bucket not in BUCKETS:
        raise InvalidInput(f"bucket must be one of {', '.join(BUCKETS)}", "bucket")
    scope = resolve_scope(session, path)
    site = load_site_calendar(session, next(iter(scope.site_ids.values())), default_tz)
    tz = ZoneInfo(site.timezone)
    if bucket == "shift":
        return [
            (f"{o.day.isoformat()} {o.name}", clipped)
            for o in shift_occurrences(site.shifts, window, site.timezone, site.holidays)
            if (clipped := o.span.clip(window.start_ns, window.end_ns))
        ]
    start = _local_midnight(window.start_ns, tz)
    if bucket == "week":
        start -= dt.timedelta(days=start.weekday())
    if bucket == "hour":
        start = dt.datetime.fromtimestamp(window.start_ns / NS_PER_S, tz).replace(minute=0, second=0, microsecond=0)
    step = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1), "week": dt.timedelta(days=7)}[bucket]
    result = []
    cursor = start
    while int(cursor.timestamp() * NS_PER_S) < window.end_ns and len(result) < 10_000:
        nxt = cursor + step
        if bucket != "hour":  # whole local days across DST changes
            nxt = dt.datetime.combine(nxt.date(), dt.time(0), tz)
        span = Span(int(cursor.timestamp()) * NS_PER_S, int(nxt.timestamp()) * NS_PER_S).clip(
            window.start_ns, window.end_ns
        )
        if span:
            label = {"hour": cursor.strftime("%Y-%m-%dT%H:00"), "day": cursor.date().isoformat()}.get(
                bucket, f"{cursor.isocalendar().year}-W{cursor.isocalendar().week:02d}"
            )
            result.append((label, span))
        cursor = nxt
    return result


def oee_series(
    session: Session,
    path: str,
    window: Span,
    bucket: str,
    micro_stop_threshold_s: float,
    default_tz: str = "UTC",
    now_ns: int | None = None,
) -> list[tuple[str, Span, OeeResult]]:
    scope = resolve_scope(session, path)
    calendars = CalendarsForScope(session, scope, default_tz)
    series = []
    for label, span in bucket_windows(session, path, window, bucket, default_tz):
        per_wc = inputs_per_work_center(session, scope, span, micro_stop_threshold_s, default_tz, now_ns, calendars)
        series.append((label, span, compute(sum_inputs(per_wc.values()))))
    return series


def downtime_pareto_query(
    session: Session, path: str, window: Span, now_ns: int | None = None, include_micro_stops: bool = True
) -> list[ParetoBar]:
    """Unplanned stops (fault, idle) inside planned busy time by reason; without a reason, by machine state."""
    from mes_lite.oee import downtime_pareto

    now_ns = now_ns or time.time_ns()
    scope = resolve_scope(session, path)
    m = MachineStateInterval
    end = func.coalesce(m.end_ns, literal(min(now_ns, window.end_ns)))
    clipped = _clip(m.start_ns, end, window)
    stops: list[tuple[str | None, float]] = []
    counts: dict[str, int] = defaultdict(int)
    for conditions in overlapping(window):
        statement = (
            select(DowntimeReason.code, m.state, func.sum(clipped), func.count())
            .outerjoin(DowntimeReason, m.reason_id == DowntimeReason.id)
            .where(
                m.work_center_id.in_(scope.work_center_ids),
                m.planned_busy.is_(True),
                m.category.in_((StateCategory.FAULT.value, StateCategory.IDLE.value)),
                *conditions,
            )
            .group_by(DowntimeReason.code, m.state)
        )
        for code, state, total_ns, n in session.execute(statement):
            label = code or f"unassigned ({state})"
            stops.append((label, max(0, int(total_ns or 0)) / NS_PER_S))
            counts[label] += int(n)
    bars = downtime_pareto(stops)
    return [ParetoBar(b.reason, b.duration_s, counts[b.reason], b.share, b.cumulative_share) for b in bars]
