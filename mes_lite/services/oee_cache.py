"""The hourly OEE cache (`OeeHourCache`): fill settled hours from the raw tables, read sums, invalidate.

An hour is settled once it ended `SETTLE_NS` ago. Filling is one GROUP BY over the raw rows of
the missing hours (closed intervals never cross an hour, see `MachineStateInterval`), plus the
few open intervals clipped in Python; every hour gets a row, empty or not, so coverage is a
row count. Writers call `invalidate` for any change that lands in a possibly cached hour.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, case, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from mes_lite.models import (
    MachineStateInterval,
    OeeHourCache,
    ProductionCount,
    ScrapCategory,
    ScrapReason,
    StateCategory,
)
from mes_lite.spans import NS_PER_S

HOUR_NS = 3600 * NS_PER_S
SETTLE_NS = 15 * 60 * NS_PER_S
BUCKETS = ("production", "micro", "setup", "fault", "idle", "planned_down")


def hour_floor(ts_ns: int) -> int:
    return ts_ns // HOUR_NS * HOUR_NS


def hour_ceil(ts_ns: int) -> int:
    return -(-ts_ns // HOUR_NS) * HOUR_NS


def settled_until(now_ns: int) -> int:
    """Hours ending at or before this instant may be cached."""
    return hour_floor(now_ns - SETTLE_NS)


def invalidate(session: Session, work_center_id: int, start_ns: int, end_ns: int) -> None:
    """Forget cached hours overlapping [start_ns, end_ns] of one work center (cheap when none are cached)."""
    if start_ns >= settled_until(time.time_ns()):
        return
    session.execute(
        delete(OeeHourCache).where(
            OeeHourCache.work_center_id == work_center_id,
            OeeHourCache.hour_ns >= hour_floor(start_ns),
            OeeHourCache.hour_ns <= end_ns,
        )
    )


def micro_bucket(threshold_ns: int, now_ns: int):  # type: ignore[no-untyped-def]
    """SQL: the time-model bucket of an interval, 'micro' for a stop episode shorter than the threshold."""
    m = MachineStateInterval
    end = func.coalesce(m.end_ns, literal(now_ns))
    episode = func.coalesce(m.episode_ns, end - m.start_ns)
    is_micro = and_(m.category.in_((StateCategory.FAULT.value, StateCategory.IDLE.value)), episode < threshold_ns)
    return case((is_micro, literal("micro")), else_=m.category)


def _fill(session: Session, ids: Sequence[int], h0: int, h1: int, threshold_ns: int, now_ns: int) -> None:
    m, c = MachineStateInterval, ProductionCount
    threshold_ms = threshold_ns // 1_000_000
    sums: dict[tuple[int, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    bucket = micro_bucket(threshold_ns, now_ns)
    hour = (m.start_ns // HOUR_NS).label("hour")  # integer division on both databases
    closed = (
        select(m.work_center_id, hour, bucket, func.sum(m.end_ns - m.start_ns))
        .where(m.work_center_id.in_(ids), m.planned_busy.is_(True), m.end_ns.is_not(None))
        .where(m.start_ns >= h0, m.start_ns < h1)
        .group_by(m.work_center_id, hour, bucket)
    )
    for wc, hour_index, name, total_ns in session.execute(closed):
        sums[(wc, int(hour_index) * HOUR_NS)][name] += int(total_ns or 0)
    open_rows = select(m.work_center_id, m.start_ns, bucket).where(
        m.work_center_id.in_(ids), m.planned_busy.is_(True), m.end_ns.is_(None), m.start_ns < h1
    )
    for wc, start_ns, name in session.execute(open_rows):
        for hour_ns in range(max(hour_floor(start_ns), h0), h1, HOUR_NS):
            sums[(wc, hour_ns)][name] += min(hour_ns + HOUR_NS, now_ns) - max(hour_ns, start_ns)
    startup = case((ScrapReason.category == ScrapCategory.STARTUP.value, c.reject_qty), else_=literal(0.0))
    count_hour = (c.ts_ns // HOUR_NS).label("hour")
    counts = (
        select(
            c.work_center_id,
            count_hour,
            func.sum(c.produced_qty),
            func.sum(c.reject_qty),
            func.sum(startup),
            func.sum(c.produced_qty * func.coalesce(c.ideal_cycle_time_s, 0.0)),
        )
        .outerjoin(ScrapReason, c.scrap_reason_id == ScrapReason.id)
        .where(c.work_center_id.in_(ids), c.planned_busy.is_(True), c.ts_ns >= h0, c.ts_ns < h1)
        .group_by(c.work_center_id, count_hour)
    )
    for wc, hour_index, produced, reject, startup_reject, ideal in session.execute(counts):
        entry = sums[(wc, int(hour_index) * HOUR_NS)]
        entry["produced_qty"] += float(produced or 0)
        entry["reject_qty"] += float(reject or 0)
        entry["startup_reject_qty"] += float(startup_reject or 0)
        entry["ideal_production_s"] += float(ideal or 0)
    session.execute(
        delete(OeeHourCache).where(
            OeeHourCache.work_center_id.in_(ids),
            OeeHourCache.micro_threshold_ms == threshold_ms,
            OeeHourCache.hour_ns >= h0,
            OeeHourCache.hour_ns < h1,
        )
    )
    rows = []
    for wc in ids:
        for hour_ns in range(h0, h1, HOUR_NS):
            s = sums.get((wc, hour_ns), {})
            rows.append(
                {
                    "work_center_id": wc,
                    "hour_ns": hour_ns,
                    "micro_threshold_ms": threshold_ms,
                    **{f"{b}_ns": int(s.get(b, 0)) for b in BUCKETS},
                    "produced_qty": s.get("produced_qty", 0.0),
                    "reject_qty": s.get("reject_qty", 0.0),
                    "startup_reject_qty": s.get("startup_reject_qty", 0.0),
                    "ideal_production_s": s.get("ideal_production_s", 0.0),
                }
            )
    for start in range(0, len(rows), 5000):
        session.execute(insert(OeeHourCache), rows[start : start + 5000])
    session.commit()


def _cached_rows(ids: Sequence[int], h0: int, h1: int, threshold_s: float):  # type: ignore[no-untyped-def]
    """SQL: the cache rows of these work centers and this micro-stop threshold in the hours [h0, h1)."""
    q = OeeHourCache
    threshold_ms = int(threshold_s * NS_PER_S) // 1_000_000
    return and_(q.work_center_id.in_(ids), q.micro_threshold_ms == threshold_ms, q.hour_ns >= h0, q.hour_ns < h1)


def fill_missing(session: Session, ids: Sequence[int], h0: int, h1: int, threshold_s: float, now_ns: int) -> bool:
    """Fill the hours [h0, h1) of the work centers that lack any of them; True if something was filled."""
    q = OeeHourCache
    present = dict(
        session.execute(
            select(q.work_center_id, func.count())
            .where(_cached_rows(ids, h0, h1, threshold_s))
            .group_by(q.work_center_id)
        ).all()
    )
    missing = [wc for wc in ids if present.get(wc, 0) < (h1 - h0) // HOUR_NS]
    if missing:
        _fill(session, missing, h0, h1, int(threshold_s * NS_PER_S), now_ns)
    return bool(missing)


def hourly_sums(
    session: Session, ids: Sequence[int], h0: int, h1: int, threshold_s: float, now_ns: int
) -> dict[int, dict[str, float]]:
    """Per work center: seconds per bucket and counts over the whole hours [h0, h1), filling the cache as needed."""
    fill_missing(session, ids, h0, h1, threshold_s, now_ns)
    q = OeeHourCache
    in_range = _cached_rows(ids, h0, h1, threshold_s)
    columns = [func.sum(getattr(q, f"{b}_ns")) for b in BUCKETS]
    counts = [
        func.sum(q.produced_qty),
        func.sum(q.reject_qty),
        func.sum(q.startup_reject_qty),
        func.sum(q.ideal_production_s),
    ]
    result: dict[int, dict[str, float]] = {}
    for row in session.execute(select(q.work_center_id, *columns, *counts).where(in_range).group_by(q.work_center_id)):
        wc, *values = row
        entry = {b: int(v or 0) / NS_PER_S for b, v in zip(BUCKETS, values[: len(BUCKETS)], strict=True)}
        for name, v in zip(
            ("produced_qty", "reject_qty", "startup_reject_qty", "ideal_production_s"),
            values[len(BUCKETS) :],
            strict=True,
        ):
            entry[name] = float(v or 0)
        result[wc] = entry
    return result


DAY_NS = 24 * HOUR_NS


class CacheWarmer:
    """Fills the hourly cache in the background, newest day first, so a long OEE query reads it.

    Without it the first query over a long window fills the cache itself (20 machines x one year:
    42 s on SQLite, docs/mes.md). The MES ingest calls `step` every 30 s; each call fills the
    incomplete UTC days it reaches within `budget_s`, back to the first recorded state (at most
    `horizon_days`). A whole day found complete is not looked at again (the set is reset when the
    machines change); a late correction that invalidates some of its hours is refilled by the next
    query that needs them, as before.
    """

    def __init__(self, micro_stop_threshold_s: float, budget_s: float = 1.0, horizon_days: int = 400) -> None:
        self.threshold_s = micro_stop_threshold_s
        self.budget_s = budget_s
        self.horizon_ns = horizon_days * DAY_NS
        self._ids: tuple[int, ...] = ()
        self._first_ns: int | None = None
        self._complete_days: set[int] = set()

    def step(self, session: Session, ids: Sequence[int], now_ns: int) -> int:
        """Fill what the budget allows; the number of days filled (0: everything reachable is warm)."""
        if tuple(sorted(ids)) != self._ids or self._first_ns is None:  # new machines, or none had a state yet
            self._ids, self._complete_days = tuple(sorted(ids)), set()
            starts = [
                session.scalar(
                    select(func.min(MachineStateInterval.start_ns)).where(MachineStateInterval.work_center_id == wc)
                )
                for wc in self._ids
            ]
            self._first_ns = min((s for s in starts if s is not None), default=None)
        if not self._ids or self._first_ns is None:
            return 0
        end = settled_until(now_ns)
        start = max(hour_floor(self._first_ns), end - self.horizon_ns)
        deadline = time.monotonic() + self.budget_s
        filled = 0
        for day in range((end - 1) // DAY_NS, start // DAY_NS - 1, -1):
            if day in self._complete_days:
                continue
            h0, h1 = max(day * DAY_NS, start), min((day + 1) * DAY_NS, end)
            filled += fill_missing(session, self._ids, h0, h1, self.threshold_s, now_ns)
            if h1 == (day + 1) * DAY_NS:
                self._complete_days.add(day)  # settled to its end: final unless a correction comes
            if time.monotonic() > deadline:
                break
        session.commit()
        return filled
