"""Shift calendar and time accounting: planned busy time from shifts, breaks, holidays; states split at edges."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes_lite.oee import compute
from mes_lite.shift_calendar import BreakRule, ShiftRule, expand_calendar
from mes_lite.spans import NS_PER_S, Span, intersect, normalise, split_at, subtract, total_ns
from mes_lite.time_accounting import CountRecord, StateRecord, window_inputs

H = 3600 * NS_PER_S
MIN = 60 * NS_PER_S


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()) * NS_PER_S


DAY_SHIFT = ShiftRule(
    "day",
    dt.time(6),
    dt.time(14),
    breaks=(BreakRule(dt.time(10), dt.time(10, 30)), BreakRule(dt.time(12), dt.time(12, 30))),
)
NIGHT_SHIFT = ShiftRule("night", dt.time(22), dt.time(6), breaks=(BreakRule(dt.time(2), dt.time(2, 30)),))


def test_the_golden_shift_calendar_gives_420_minutes_of_planned_busy_time() -> None:
    shift = ShiftRule("golden", dt.time(6), dt.time(14), breaks=(BreakRule(dt.time(9), dt.time(10)),))
    window = Span(utc("2026-03-02T00:00"), utc("2026-03-03T00:00"))
    calendar = expand_calendar([shift], window)
    assert calendar.planned_operation_s == 480 * 60
    assert calendar.planned_down_s == 60 * 60
    assert calendar.planned_busy_s == 420 * 60


def test_a_night_shift_runs_over_midnight_and_its_break_falls_on_the_next_day() -> None:
    window = Span(utc("2026-03-02T00:00"), utc("2026-03-04T00:00"))  # Monday and Tuesday
    calendar = expand_calendar([NIGHT_SHIFT], window)
    # Sunday night's shift 00:00-06:00, Monday 22:00-Tuesday 06:00, Tuesday 22:00-24:00 (window end)
    assert calendar.planned_operation_s == (6 + 8 + 2) * 3600
    assert Span(utc("2026-03-03T02:00"), utc("2026-03-03T02:30")) in calendar.planned_down


def test_a_holiday_cancels_the_shifts_that_start_on_it_and_weekdays_are_respected() -> None:
    weekdays_only = ShiftRule("day", dt.time(6), dt.time(14), weekdays="12345")
    week = Span(utc("2026-03-02T00:00"), utc("2026-03-09T00:00"))  # Monday to Sunday
    calendar = expand_calendar([weekdays_only], week, holidays=[dt.date(2026, 3, 4)])
    assert calendar.planned_operation_s == 4 * 8 * 3600


def test_shift_times_are_local_times_of_the_site() -> None:
    window = Span(utc("2026-03-02T00:00"), utc("2026-03-03T00:00"))
    calendar = expand_calendar([ShiftRule("day", dt.time(8), dt.time(16))], window, tz_name="Asia/Shanghai")
    assert calendar.planned_operation == [Span(utc("2026-03-02T00:00"), utc("2026-03-02T08:00"))]


def test_planned_stops_are_planned_down_time_only_where_they_overlap_a_shift() -> None:
    window = Span(utc("2026-03-02T00:00"), utc("2026-03-03T00:00"))
    maintenance = Span(utc("2026-03-02T13:00"), utc("2026-03-02T15:00"))  # one hour inside the day shift
    calendar = expand_calendar([DAY_SHIFT], window, planned_stops=[maintenance])
    assert calendar.planned_down_s == (30 + 30 + 60) * 60


def test_no_shifts_means_the_plant_runs_around_the_clock() -> None:
    window = Span(utc("2026-03-02T00:00"), utc("2026-03-02T05:00"))
    assert expand_calendar([], window).planned_busy_s == 5 * 3600


def test_a_stop_across_a_shift_edge_counts_only_inside_planned_busy_time() -> None:
    window = Span(utc("2026-03-02T00:00"), utc("2026-03-03T00:00"))
    calendar = expand_calendar([DAY_SHIFT], window)
    states = [
        StateRecord(utc("2026-03-02T05:00"), utc("2026-03-02T06:20"), "fault"),  # 20 min inside the shift
        StateRecord(utc("2026-03-02T06:20"), utc("2026-03-02T13:55"), "production"),  # includes two breaks
        StateRecord(utc("2026-03-02T13:55"), utc("2026-03-02T13:56"), "idle"),  # 60 s: a micro stop
        StateRecord(utc("2026-03-02T13:56"), utc("2026-03-02T15:00"), "setup"),  # 4 min inside
    ]
    counts = [
        CountRecord(utc("2026-03-02T07:00"), 1000, 10, ideal_cycle_time_s=20.0),
        CountRecord(utc("2026-03-02T10:10"), 50, 0, ideal_cycle_time_s=20.0),  # during a break: not counted
        CountRecord(utc("2026-03-02T16:00"), 5, 0, ideal_cycle_time_s=20.0),  # after the shift: not counted
    ]
    inputs = window_inputs(calendar, states, counts, micro_stop_threshold_s=120)
    assert inputs.fault_s == 20 * 60
    assert inputs.production_s == (7 * 60 + 35 - 60) * 60
    assert inputs.micro_stop_s == 60
    assert inputs.setup_s == 4 * 60
    assert inputs.produced_qty == 1000 and inputs.reject_qty == 10
    result = compute(inputs)
    assert result.planned_busy_s == 7 * 3600
    assert result.unaccounted_s == 0
    assert result.availability == pytest.approx((7 * 3600 - 20 * 60 - 4 * 60) / (7 * 3600))


def test_a_planned_stop_reported_by_the_machine_inside_a_shift_is_planned_down_time() -> None:
    window = Span(utc("2026-03-02T06:00"), utc("2026-03-02T07:00"))
    calendar = expand_calendar([], window)
    states = [
        StateRecord(utc("2026-03-02T06:00"), utc("2026-03-02T06:30"), "production"),
        StateRecord(utc("2026-03-02T06:30"), utc("2026-03-02T07:00"), "planned_down"),
    ]
    result = compute(window_inputs(calendar, states, [], micro_stop_threshold_s=120))
    assert result.planned_busy_s == 1800
    assert result.availability == 1.0


spans_strategy = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(1, 200)).map(lambda t: Span(t[0], t[0] + t[1])), max_size=8
)


@given(spans_strategy, spans_strategy)
def test_a_span_set_is_split_exactly_into_the_part_inside_and_the_part_outside_another(a, b) -> None:
    inside, outside = intersect(a, b), subtract(a, b)
    assert total_ns(inside) + total_ns(outside) == total_ns(a)
    assert intersect(inside, outside) == []
    assert normalise([*inside, *outside]) == normalise(a)


@given(st.integers(0, 10_000), st.integers(1, 10_000), st.lists(st.integers(-100, 20_000)))
def test_splitting_a_span_at_edges_gives_pieces_that_cover_it_exactly(start, length, cuts) -> None:
    span = Span(start, start + length)
    pieces = split_at(span, cuts)
    assert pieces[0].start_ns == span.start_ns and pieces[-1].end_ns == span.end_ns
    assert all(a.end_ns == b.start_ns for a, b in itertools.pairwise(pieces))


CATEGORIES = st.sampled_from(["production", "setup", "fault", "idle", "planned_down"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 120), CATEGORIES), min_size=1, max_size=30),
    st.integers(1, 2000),
)
def test_splitting_the_window_at_any_minute_and_summing_both_halves_gives_the_whole(segments, cut_min) -> None:
    start = utc("2026-03-02T00:00")
    states, t = [], start
    for minutes, category in segments:
        states.append(StateRecord(t, t + minutes * MIN, category))
        t += minutes * MIN
    counts = [CountRecord(s.start_ns + MIN // 2, 10, 1, ideal_cycle_time_s=3.0) for s in states]
    whole = Span(start, t)
    cut = min(start + cut_min * MIN, t)
    shifts = [DAY_SHIFT, NIGHT_SHIFT]

    def inputs(window: Span):  # type: ignore[no-untyped-def]
        # the micro-stop rule looks at a stored interval's duration, so split at the window edge first
        pieces = [
            StateRecord(p.start_ns, p.end_ns, s.category)
            for s in states
            for p in split_at(Span(s.start_ns, s.end_ns), [cut])
        ]
        return window_inputs(expand_calendar(shifts, window), pieces, counts, micro_stop_threshold_s=300)

    total = inputs(whole)
    parts = inputs(Span(start, cut)) + inputs(Span(cut, t))
    for name in (
        "planned_operation_s",
        "planned_down_s",
        "production_s",
        "micro_stop_s",
        "setup_s",
        "fault_s",
        "idle_s",
    ):
        assert getattr(parts, name) == pytest.approx(getattr(total, name)), name
    assert parts.produced_qty == total.produced_qty and parts.ideal_production_s == pytest.approx(
        total.ideal_production_s
    )
    whole_oee, parts_oee = compute(total).oee, compute(parts).oee
    assert whole_oee == pytest.approx(parts_oee) if whole_oee is not None else parts_oee is None
