"""From machine-state intervals and counts to the time model of one window (`OeeInputs`).

Pure reference implementation: the database query in `mes_lite.services.oee_query` computes the
same sums in SQL (tests compare the two). Only time inside planned busy time counts; a stop
(fault or idle) shorter than the micro-stop threshold counts as a minor stop (speed loss); a
machine-reported planned stop inside planned busy time is planned down time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mes_lite.models.machine_state import StateCategory
from mes_lite.oee import OeeInputs
from mes_lite.shift_calendar import CalendarSpans
from mes_lite.spans import NS_PER_S, Span, intersect

STOP_CATEGORIES = frozenset({StateCategory.FAULT.value, StateCategory.IDLE.value})


@dataclass(frozen=True)
class StateRecord:
    start_ns: int
    end_ns: int
    category: str
    reason: str | None = None


@dataclass(frozen=True)
class CountRecord:
    ts_ns: int
    produced_qty: float
    reject_qty: float = 0.0
    ideal_cycle_time_s: float | None = None
    startup_reject_qty: float = 0.0


def is_micro_stop(state: StateRecord, micro_stop_threshold_s: float) -> bool:
    return state.category in STOP_CATEGORIES and (state.end_ns - state.start_ns) < micro_stop_threshold_s * NS_PER_S


def window_inputs(
    calendar: CalendarSpans,
    states: Iterable[StateRecord],
    counts: Iterable[CountRecord],
    micro_stop_threshold_s: float,
) -> OeeInputs:
    """The time model and counts of `calendar.window` for one machine."""
    busy = calendar.planned_busy
    totals = dict.fromkeys(("production", "micro", "setup", "fault", "idle", "planned_down"), 0)
    for state in states:
        inside_ns = sum(s.duration_ns for s in intersect([Span(state.start_ns, state.end_ns)], busy))
        if not inside_ns:
            continue
        if is_micro_stop(state, micro_stop_threshold_s):
            totals["micro"] += inside_ns
        elif state.category == StateCategory.PRODUCTION:
            totals["production"] += inside_ns
        elif state.category == StateCategory.SETUP:
            totals["setup"] += inside_ns
        elif state.category == StateCategory.FAULT:
            totals["fault"] += inside_ns
        elif state.category == StateCategory.IDLE:
            totals["idle"] += inside_ns
        elif state.category == StateCategory.PLANNED_DOWN:
            totals["planned_down"] += inside_ns
    produced = reject = startup = ideal = 0.0
    for count in counts:
        if any(s.start_ns <= count.ts_ns < s.end_ns for s in busy):
            produced += count.produced_qty
            reject += count.reject_qty
            startup += count.startup_reject_qty
            ideal += count.produced_qty * (count.ideal_cycle_time_s or 0.0)
    return OeeInputs(
        planned_operation_s=calendar.planned_operation_s,
        planned_down_s=calendar.planned_down_s + totals["planned_down"] / NS_PER_S,
        production_s=totals["production"] / NS_PER_S,
        micro_stop_s=totals["micro"] / NS_PER_S,
        setup_s=totals["setup"] / NS_PER_S,
        fault_s=totals["fault"] / NS_PER_S,
        idle_s=totals["idle"] / NS_PER_S,
        produced_qty=produced,
        reject_qty=reject,
        startup_reject_qty=startup,
        ideal_production_s=ideal,
    )
