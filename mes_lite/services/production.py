"""Recording what machines do: state changes become intervals, counts become production rows.

Called by the ingest (from MQTT) and by the API (manual state events and counts). Intervals are
split at every shift, break and planned-stop edge so each stored piece is wholly inside or wholly
outside planned busy time (`planned_busy`). Counts are posted to the work order running on the
work center, with the ideal cycle time that applies (routing, else the work center's default).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mes_lite.models import (
    DowntimeReason,
    MachineStateInterval,
    ProductionCount,
    RoutingOperation,
    StateCategory,
    User,
    WorkCenter,
    WorkOrder,
    WorkOrderStatus,
)
from mes_lite.services import oee_cache
from mes_lite.services.calendar_query import CalendarCache
from mes_lite.services.errors import Conflict, InvalidInput, NotFound
from mes_lite.spans import Span, covered, split_at

DEFAULT_STATE_CATEGORIES: dict[str, StateCategory] = {
    "running": StateCategory.PRODUCTION,
    "run": StateCategory.PRODUCTION,
    "production": StateCategory.PRODUCTION,
    "executing": StateCategory.PRODUCTION,
    "setup": StateCategory.SETUP,
    "changeover": StateCategory.SETUP,
    "fault": StateCategory.FAULT,
    "error": StateCategory.FAULT,
    "alarm": StateCategory.FAULT,
    "breakdown": StateCategory.FAULT,
    "down": StateCategory.FAULT,
    "idle": StateCategory.IDLE,
    "starved": StateCategory.IDLE,
    "blocked": StateCategory.IDLE,
    "waiting": StateCategory.IDLE,
    "stopped": StateCategory.IDLE,
    "planned_stop": StateCategory.PLANNED_DOWN,
    "planned_down": StateCategory.PLANNED_DOWN,
    "maintenance": StateCategory.PLANNED_DOWN,
}
"""Machine state name -> time-model category; an unknown name is treated as idle (available, not producing)."""

STOP_CATEGORIES = {StateCategory.FAULT.value, StateCategory.IDLE.value, StateCategory.PLANNED_DOWN.value}


def category_of(state: str) -> StateCategory:
    return DEFAULT_STATE_CATEGORIES.get(state.strip().lower(), StateCategory.IDLE)


@dataclass(frozen=True)
class StateChange:
    """What `record_state` did: `changed` is False for a repeat of the current state or a duplicate."""

    changed: bool
    interval_id: int | None = None
    late: bool = False


class ProductionRecorder:
    """Writes states and counts for many work centers; keeps a calendar cache between calls."""

    def __init__(self, calendars: CalendarCache | None = None) -> None:
        self.calendars = calendars or CalendarCache()

    # -- states -------------------------------------------------------------------------------
    def open_interval(self, session: Session, work_center_id: int) -> MachineStateInterval | None:
        return session.scalar(
            select(MachineStateInterval)
            .where(MachineStateInterval.work_center_id == work_center_id, MachineStateInterval.end_ns.is_(None))
            .order_by(MachineStateInterval.start_ns.desc())
            .limit(1)
        )

    def _busy_at(self, session: Session, work_center_id: int, start_ns: int, end_ns: int) -> bool:
        calendar = self.calendars.for_work_center(session, work_center_id, Span(start_ns, end_ns))
        return covered(Span(start_ns, end_ns), calendar.planned_busy)

    def _episode_start(self, session: Session, interval: MachineStateInterval) -> int:
        """Start of the state episode `interval` continues (pieces split at edges share one episode)."""
        previous_other = session.scalar(
            select(func.max(MachineStateInterval.end_ns)).where(
                MachineStateInterval.work_center_id == interval.work_center_id,
                MachineStateInterval.end_ns <= interval.start_ns,
                MachineStateInterval.state != interval.state,
            )
        )
        if previous_other is None:
            previous_other = session.scalar(
                select(func.min(MachineStateInterval.start_ns)).where(
                    MachineStateInterval.work_center_id == interval.work_center_id,
                    MachineStateInterval.state == interval.state,
                )
            )
        return min(previous_other, interval.start_ns) if previous_other is not None else interval.start_ns

    def _close(self, session: Session, interval: MachineStateInterval, end_ns: int, episode_ends: bool = True) -> None:
        """End `interval` at `end_ns`, split at calendar edges and UTC hours (the first piece keeps the row)."""
        calendar = self.calendars.for_work_center(session, interval.work_center_id, Span(interval.start_ns, end_ns))
        hours = range(oee_cache.hour_ceil(interval.start_ns), end_ns, oee_cache.HOUR_NS)
        pieces = split_at(Span(interval.start_ns, end_ns), [*calendar.edges(), *hours])
        busy = calendar.planned_busy
        oee_cache.invalidate(session, interval.work_center_id, interval.start_ns, end_ns)
        episode_ns = None
        if episode_ends:
            episode_start = self._episode_start(session, interval)
            episode_ns = end_ns - episode_start
            if episode_start < interval.start_ns:
                session.execute(
                    update(MachineStateInterval)
                    .where(
                        MachineStateInterval.work_center_id == interval.work_center_id,
                        MachineStateInterval.start_ns >= episode_start,
                        MachineStateInterval.start_ns < interval.start_ns,
                    )
                    .values(episode_ns=episode_ns)
                )
                oee_cache.invalidate(session, interval.work_center_id, episode_start, interval.start_ns)
        first, *rest = pieces
        interval.end_ns = first.end_ns
        interval.planned_busy = covered(first, busy)
        interval.episode_ns = episode_ns
        for piece in rest:
            session.add(
                MachineStateInterval(
                    work_center_id=interval.work_center_id,
                    start_ns=piece.start_ns,
                    end_ns=piece.end_ns,
                    state=interval.state,
                    category=interval.category,
                    reason_id=interval.reason_id,
                    work_order_id=interval.work_order_id,
                    planned_busy=covered(piece, busy),
                    episode_ns=episode_ns,
                    source=interval.source,
                )
            )

    def record_state(
        self, session: Session, work_center_id: int, state: str, ts_ns: int, source: str = "ingest"
    ) -> StateChange:
        """The machine is in `state` from `ts_ns` on. Same state again is a no-op; older than the current one is late."""
        current = self.open_interval(session, work_center_id)
        if current is not None:
            if ts_ns < current.start_ns:
                return StateChange(changed=False, late=True)
            if current.state == state or ts_ns == current.start_ns:
                return StateChange(changed=False, interval_id=current.id)
            self._close(session, current, ts_ns)
        elif session.scalar(
            select(MachineStateInterval.id).where(
                MachineStateInterval.work_center_id == work_center_id,
                MachineStateInterval.start_ns <= ts_ns,
                MachineStateInterval.end_ns > ts_ns,
            )
        ):
            return StateChange(changed=False, late=True)
        running = self.running_order(session, work_center_id)
        interval = MachineStateInterval(
            work_center_id=work_center_id,
            start_ns=ts_ns,
            end_ns=None,
            state=state,
            category=category_of(state).value,
            work_order_id=running.id if running else None,
            planned_busy=self._busy_at(session, work_center_id, ts_ns, ts_ns + 1),
            source=source,
        )
        session.add(interval)
        session.flush()
        return StateChange(changed=True, interval_id=interval.id)

    def roll_open_interval(self, session: Session, work_center_id: int, now_ns: int) -> bool:
        """Split the current state at the last shift/break/hour edge before `now_ns`, keeping the state.

        The ingest calls this periodically, so an hours-long state is stored in pieces that respect
        the calendar and can be cached by the hour while it still lasts.
        """
        current = self.open_interval(session, work_center_id)
        if current is None or now_ns <= current.start_ns:
            return False
        calendar = self.calendars.for_work_center(session, work_center_id, Span(current.start_ns, now_ns))
        hours = range(oee_cache.hour_ceil(current.start_ns + 1), now_ns + 1, oee_cache.HOUR_NS)
        edges = [e for e in (*calendar.edges(), *hours) if current.start_ns < e <= now_ns]
        if not edges:
            return False
        at_ns = max(edges)
        kept = (current.state, current.category, current.reason_id, current.work_order_id, current.source)
        self._close(session, current, at_ns)  # the episode's duration so far; updated again when it ends
        state, category, reason_id, order_id, source = kept
        session.add(
            MachineStateInterval(
                work_center_id=work_center_id,
                start_ns=at_ns,
                state=state,
                category=category,
                reason_id=reason_id,
                work_order_id=order_id,
                planned_busy=self._busy_at(session, work_center_id, at_ns, at_ns + 1),
                source=source,
            )
        )
        session.flush()
        return True

    # -- counts -------------------------------------------------------------------------------
    def running_order(self, session: Session, work_center_id: int) -> WorkOrder | None:
        return session.scalar(
            select(WorkOrder)
            .where(WorkOrder.work_center_id == work_center_id, WorkOrder.status == WorkOrderStatus.RUNNING.value)
            .order_by(WorkOrder.started_ns.desc().nulls_last(), WorkOrder.id.desc())
            .limit(1)
        )

    def ideal_cycle_time_s(
        self, session: Session, work_center: WorkCenter, order: WorkOrder | None, fallback_s: float | None = None
    ) -> float | None:
        """Routing (product x work center), else the work center's default, else the machine's own value."""
        if order is not None:
            routed = session.scalar(
                select(RoutingOperation.ideal_cycle_time_s).where(
                    RoutingOperation.product_id == order.product_id,
                    RoutingOperation.work_center_id == work_center.id,
                )
            )
            if routed:
                return routed
        return work_center.ideal_cycle_time_s or fallback_s

    def record_count(
        self,
        session: Session,
        work_center_id: int,
        ts_ns: int,
        produced_qty: float,
        reject_qty: float = 0.0,
        source: str = "ingest",
        source_key: str | None = None,
        machine_ideal_cycle_time_s: float | None = None,
        scrap_reason_id: int | None = None,
        work_order: WorkOrder | None = None,
    ) -> ProductionCount | None:
        """Add a count; a `source_key` already recorded (a redelivered message) is ignored and returns None."""
        if produced_qty < 0 or reject_qty < 0:
            raise InvalidInput("quantities cannot be negative", "produced_qty" if produced_qty < 0 else "reject_qty")
        if source_key and session.scalar(select(ProductionCount.id).where(ProductionCount.source_key == source_key)):
            return None
        oee_cache.invalidate(session, work_center_id, ts_ns, ts_ns)
        work_center = session.get(WorkCenter, work_center_id)
        if work_center is None:
            raise NotFound(f"work center {work_center_id} does not exist", "work_center_id")
        order = work_order or self.running_order(session, work_center_id)
        count = ProductionCount(
            work_center_id=work_center_id,
            work_order_id=order.id if order else None,
            ts_ns=ts_ns,
            produced_qty=produced_qty,
            reject_qty=reject_qty,
            ideal_cycle_time_s=self.ideal_cycle_time_s(session, work_center, order, machine_ideal_cycle_time_s),
            scrap_reason_id=scrap_reason_id,
            planned_busy=self._busy_at(session, work_center_id, ts_ns, ts_ns + 1),
            source=source,
            source_key=source_key,
        )
        session.add(count)
        session.flush()
        return count


@dataclass(frozen=True)
class CountContext:
    """What a count on a work center is posted against; the ingest looks it up once per batch."""

    work_center_id: int
    work_order_id: int | None
    ideal_cycle_time_s: float | None


def count_context(
    recorder: ProductionRecorder, session: Session, work_center_id: int, machine_ideal_cycle_time_s: float | None
) -> CountContext:
    work_center = session.get(WorkCenter, work_center_id)
    if work_center is None:
        raise NotFound(f"work center {work_center_id} does not exist", "work_center_id")
    order = recorder.running_order(session, work_center_id)
    ideal = recorder.ideal_cycle_time_s(session, work_center, order, machine_ideal_cycle_time_s)
    return CountContext(work_center_id, order.id if order else None, ideal)


def add_ingest_count(
    recorder: ProductionRecorder,
    session: Session,
    context: CountContext,
    ts_ns: int,
    produced_qty: float,
    reject_qty: float,
    source_key: str,
) -> None:
    """The ingest's fast path: no duplicate lookup (the tag cursors already exclude repeats, the
    unique source_key is the backstop) and no flush per row (rows go in one batch at commit)."""
    oee_cache.invalidate(session, context.work_center_id, ts_ns, ts_ns)
    session.add(
        ProductionCount(
            work_center_id=context.work_center_id,
            work_order_id=context.work_order_id,
            ts_ns=ts_ns,
            produced_qty=produced_qty,
            reject_qty=reject_qty,
            ideal_cycle_time_s=context.ideal_cycle_time_s,
            planned_busy=recorder._busy_at(session, context.work_center_id, ts_ns, ts_ns + 1),
            source="ingest",
            source_key=source_key,
        )
    )


def assign_reason(
    session: Session, interval_id: int, reason_code: str | None, user: User | None
) -> MachineStateInterval:
    """Give a stop a reason; a planned reason turns it into planned down time, an unplanned one back."""
    interval = session.get(MachineStateInterval, interval_id)
    if interval is None:
        raise NotFound(f"state interval {interval_id} does not exist", "interval_id")
    natural = category_of(interval.state).value
    if natural not in STOP_CATEGORIES:
        raise Conflict(
            f"interval {interval_id} is {interval.state!r} ({natural}), not a stop: only stops take a downtime reason"
        )
    if reason_code is None:
        interval.reason_id, interval.category = None, natural
    else:
        reason = session.scalar(select(DowntimeReason).where(DowntimeReason.code == reason_code))
        if reason is None or not reason.active:
            raise InvalidInput(f"downtime reason {reason_code!r} does not exist or is inactive", "reason")
        interval.reason_id = reason.id
        interval.category = StateCategory.PLANNED_DOWN.value if reason.planned else natural
    oee_cache.invalidate(session, interval.work_center_id, interval.start_ns, interval.end_ns or time.time_ns())
    interval.reason_set_by_id = user.id if user else None
    interval.reason_set_at = dt.datetime.now(dt.UTC)
    session.flush()
    return interval
