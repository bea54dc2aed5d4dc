"""The machine model: deterministic, time-injected, and its ground truth adds up."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.machine import (
    CNC,
    INJECTION_MOULDING,
    MACHINE_KINDS,
    STAMPING_PRESS,
    STATE_BY_CODE,
    U32_RANGE,
    GroundTruth,
    Machine,
    MachineState,
    StateInterval,
    StatusBit,
)

ONE_HOUR_S = 3600.0


def test_state_codes_are_the_documented_plc_values() -> None:
    assert {s.value: s.code for s in MachineState} == {
        "idle": 0,
        "running": 1,
        "starved": 2,
        "blocked": 3,
        "planned_stop": 4,
        "fault": 5,
    }
    assert all(STATE_BY_CODE[s.code] is s for s in MachineState)


def test_the_same_seed_gives_the_same_history_and_a_different_seed_a_different_one() -> None:
    def run(seed: int) -> tuple[object, object]:
        machine = Machine("press01", STAMPING_PRESS, seed=seed)
        snapshot = machine.step_to(ONE_HOUR_S)
        return snapshot, machine.ground_truth()

    assert run(7) == run(7)
    assert run(7)[1] != run(8)[1]


def test_machines_of_one_factory_with_one_seed_do_not_mirror_each_other() -> None:
    a = Machine("press01", STAMPING_PRESS, seed=1).step_to(ONE_HOUR_S)
    b = Machine("press02", STAMPING_PRESS, seed=1).step_to(ONE_HOUR_S)
    assert a.parts_total != b.parts_total


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.floats(min_value=0.0, max_value=1800.0, allow_nan=False), max_size=40))
def test_how_often_the_caller_looks_never_changes_the_history(cuts: list[float]) -> None:
    """The factory's update loop runs at any rate; the history must not depend on it."""
    in_one_step = Machine("press01", STAMPING_PRESS, seed=3)
    in_one_step.step_to(1800.0)
    in_slices = Machine("press01", STAMPING_PRESS, seed=3)
    for t in sorted(cuts):
        in_slices.step_to(t)
    in_slices.step_to(1800.0)
    assert in_slices.ground_truth() == in_one_step.ground_truth()
    assert in_slices.snapshot() == in_one_step.snapshot()


@pytest.mark.parametrize("kind", list(MACHINE_KINDS.values()), ids=list(MACHINE_KINDS))
def test_ground_truth_durations_sum_to_the_elapsed_time_and_intervals_tile_it(kind) -> None:
    machine = Machine("m1", kind, seed=11)
    machine.step_to(4 * ONE_HOUR_S)
    truth = machine.ground_truth()
    assert math.isclose(sum(truth.state_durations_s().values()), 4 * ONE_HOUR_S, rel_tol=1e-12)
    assert truth.intervals[0].start_s == 0.0
    assert truth.intervals[-1].end_s == 4 * ONE_HOUR_S
    for before, after in zip(truth.intervals, truth.intervals[1:], strict=False):
        assert before.end_s == after.start_s
        assert before.state != after.state or before.state is MachineState.RUNNING
    # a stop is always followed by running again: the model has no stop-to-stop transitions
    for before, after in zip(truth.intervals, truth.intervals[1:], strict=False):
        assert MachineState.RUNNING in (before.state, after.state)


@pytest.mark.parametrize("kind", list(MACHINE_KINDS.values()), ids=list(MACHINE_KINDS))
def test_parts_are_made_only_while_running_and_rejects_never_exceed_the_total(kind) -> None:
    machine = Machine("m1", kind, seed=5)
    machine.step_to(4 * ONE_HOUR_S)
    truth = machine.ground_truth()
    for interval in truth.intervals:
        assert 0 <= interval.rejects <= interval.total
        if interval.state is not MachineState.RUNNING:
            assert interval.total == 0
    assert sum(i.total for i in truth.intervals) == truth.counts().total
    assert sum(i.rejects for i in truth.intervals) == truth.counts().rejects
    assert set(truth.reject_times_s) <= set(truth.part_times_s)


def test_every_kind_visits_several_states_including_a_fault_with_a_reason_within_a_shift() -> None:
    for kind in MACHINE_KINDS.values():
        truth = Machine("m1", kind, seed=2)
        truth.step_to(8 * ONE_HOUR_S)
        history = truth.ground_truth()
        seen = {i.state for i in history.intervals}
        assert {MachineState.RUNNING, MachineState.FAULT} <= seen, kind.name
        faults = [i for i in history.intervals if i.state is MachineState.FAULT]
        assert all(f.reason in kind.fault_codes.values() for f in faults)


def test_cycle_times_are_never_faster_than_ideal_and_the_press_makes_about_one_part_a_second() -> None:
    machine = Machine("press01", STAMPING_PRESS, seed=4)
    machine.step_to(ONE_HOUR_S)
    truth = machine.ground_truth()
    running_s = truth.state_durations_s()[MachineState.RUNNING]
    parts = truth.counts().total
    # performance = parts x ideal / running time: below 1 (never faster than ideal), above 0.8 (10 % slowdown)
    performance = parts * STAMPING_PRESS.ideal_cycle_time_s / running_s
    assert 0.8 < performance <= 1.0
    gaps = [b - a for a, b in zip(truth.part_times_s, truth.part_times_s[1:], strict=False)]
    assert min(gaps) >= STAMPING_PRESS.ideal_cycle_time_s - 1e-9


def test_kinds_differ_in_cycle_time() -> None:
    ideal = {k.name: k.ideal_cycle_time_s for k in (STAMPING_PRESS, CNC, INJECTION_MOULDING)}
    assert ideal["stamping_press"] < ideal["injection_moulding"] < ideal["cnc"]


def test_counters_only_increase_except_when_the_32_bit_counter_rolls_over() -> None:
    start = U32_RANGE - 200
    machine = Machine("press01", STAMPING_PRESS, seed=9, counter_start=start)
    previous = machine.snapshot()
    assert previous.total_count == start
    rollovers = 0
    for second in range(1, 1200):
        now = machine.step_to(float(second))
        if now.total_count < previous.total_count:
            rollovers += 1
            assert previous.total_count > U32_RANGE - 10 and now.total_count < 10
        assert now.reject_count >= previous.reject_count
        assert now.parts_total >= previous.parts_total
        assert now.energy_kwh >= previous.energy_kwh
        assert now.total_count == (start + now.parts_total) % U32_RANGE
        assert (now.total_count - now.reject_count) % U32_RANGE == now.good_count
        previous = now
    assert rollovers == 1


def test_temperature_and_pressure_drift_but_stay_inside_their_bands() -> None:
    machine = Machine("imm01", INJECTION_MOULDING, seed=1)
    temperatures, pressures = set(), set()
    for minute in range(1, 8 * 60):
        snap = machine.step_to(minute * 60.0)
        temperatures.add(round(snap.temperature_c, 3))
        pressures.add(round(snap.pressure_bar, 3))
        assert INJECTION_MOULDING.temperature_c.low <= snap.temperature_c <= INJECTION_MOULDING.temperature_c.high
        assert INJECTION_MOULDING.pressure_bar.low <= snap.pressure_bar <= INJECTION_MOULDING.pressure_bar.high
    assert len(temperatures) > 100 and len(pressures) > 100


def test_energy_is_the_integral_of_power_over_the_state_history() -> None:
    machine = Machine("cnc01", CNC, seed=6)
    snap = machine.step_to(2 * ONE_HOUR_S)
    durations = machine.ground_truth().state_durations_s()
    expected_kwh = sum(CNC.power_kw[state] * seconds / 3600 for state, seconds in durations.items())
    assert math.isclose(snap.energy_kwh, expected_kwh, rel_tol=1e-9)
    assert 2 * CNC.power_kw[MachineState.PLANNED_STOP] < snap.energy_kwh < 2 * CNC.power_kw[MachineState.RUNNING]


def test_the_status_word_has_exactly_the_bit_of_the_current_state() -> None:
    machine = Machine("press01", STAMPING_PRESS, seed=12)
    seen = set()
    for second in range(0, 3 * 3600, 5):
        snap = machine.step_to(float(second))
        state_bits = snap.status_word & ~(1 << StatusBit.TEMPERATURE_HIGH)
        if snap.state is MachineState.IDLE:
            assert state_bits == 0
        else:
            assert state_bits == 1 << getattr(StatusBit, snap.state.name)
        assert (snap.fault_code != 0) == (snap.state is MachineState.FAULT)
        seen.add(snap.state)
    assert len(seen) >= 4


def test_window_queries_clip_intervals_and_count_parts_half_open() -> None:
    truth = GroundTruth(
        machine="m",
        kind="stamping_press",
        ideal_cycle_time_s=1.0,
        intervals=(
            StateInterval(MachineState.RUNNING, 0.0, 10.0, total=3, rejects=1),
            StateInterval(MachineState.FAULT, 10.0, 15.0, reason="die_jam"),
            StateInterval(MachineState.RUNNING, 15.0, 20.0, total=2, rejects=0),
        ),
        part_times_s=(2.0, 5.0, 9.0, 16.0, 20.0 - 1.0),
        reject_times_s=(5.0,),
    )
    assert truth.state_durations_s((5.0, 12.0))[MachineState.RUNNING] == 5.0
    assert truth.state_durations_s((5.0, 12.0))[MachineState.FAULT] == 2.0
    assert truth.state_durations_s((5.0, 12.0))[MachineState.IDLE] == 0.0
    assert truth.counts((5.0, 16.0)).total == 2  # 5.0 and 9.0; 16.0 belongs to the next window
    assert truth.counts((5.0, 16.0)).rejects == 1
    assert truth.counts((5.0, 16.0)).good == 1
    assert truth.counts().total == 5
    assert truth.state_at(12.0) is MachineState.FAULT
    assert truth.state_at(25.0) is None
    assert [i.duration_s for i in truth.intervals_in((5.0, 12.0))] == [5.0, 2.0]


def test_ground_truth_round_trips_through_json() -> None:
    machine = Machine("press01", STAMPING_PRESS, seed=1, counter_start=123)
    machine.step_to(600.0)
    truth = machine.ground_truth().in_wall_clock(origin_ts=1_800_000_000.0, speed=10.0)
    again = GroundTruth.from_json(json.loads(json.dumps(truth.to_json())))
    assert again == truth
    assert truth.to_json()["counts"]["total"] == truth.counts().total


def test_on_the_wall_clock_durations_shrink_by_the_speed_and_ratios_stay() -> None:
    machine = Machine("press01", STAMPING_PRESS, seed=1)
    machine.step_to(1200.0)
    sim = machine.ground_truth()
    wall = sim.in_wall_clock(origin_ts=1000.0, speed=20.0)
    assert wall.start_s == 1000.0
    assert math.isclose(wall.end_s, 1000.0 + 60.0)
    for state, seconds in sim.state_durations_s().items():
        assert math.isclose(wall.state_durations_s()[state], seconds / 20.0, abs_tol=1e-6)
    assert wall.counts((1000.0, 1030.0)) == sim.counts((0.0, 600.0))

    # performance = parts x ideal / running time is the same on both clocks
    def performance(t: GroundTruth) -> float:
        return t.counts().total * t.ideal_cycle_time_s / t.state_durations_s()[MachineState.RUNNING]

    assert math.isclose(performance(wall), performance(sim), rel_tol=1e-6)


def test_time_cannot_go_backwards() -> None:
    machine = Machine("press01", STAMPING_PRESS)
    machine.step_to(10.0)
    with pytest.raises(ValueError, match="forward"):
        machine.step_to(5.0)
    with pytest.raises(ValueError, match="forward"):
        machine.advance(-1.0)


def test_a_counter_start_outside_32_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="counter_start"):
        Machine("press01", STAMPING_PRESS, counter_start=U32_RANGE)


def test_a_forced_fault_starts_now_lasts_its_duration_and_the_machine_runs_again_after() -> None:
    machine = Machine("press01", STAMPING_PRESS, seed=1)
    machine.step_to(10.0)
    parts_before = machine.snapshot().parts_total
    machine.force_state(MachineState.FAULT, 30.0, fault="misfeed")
    snap = machine.snapshot()
    assert snap.state is MachineState.FAULT and snap.fault_code == 2
    assert snap.status_word & (1 << StatusBit.FAULT)
    machine.step_to(39.9)
    assert machine.snapshot().parts_total == parts_before  # nothing is made during the fault
    machine.step_to(45.0)
    assert machine.state is MachineState.RUNNING
    truth = machine.ground_truth()
    fault = next(i for i in truth.intervals if i.state is MachineState.FAULT)
    assert (fault.start_s, fault.end_s, fault.reason) == (10.0, 40.0, "misfeed")
    assert math.isclose(sum(truth.state_durations_s().values()), 45.0)


def test_forcing_at_time_zero_leaves_no_empty_interval_and_bad_requests_are_refused() -> None:
    machine = Machine("cnc01", CNC, seed=1)
    machine.force_state(MachineState.PLANNED_STOP, 5.0)
    machine.step_to(6.0)
    intervals = machine.ground_truth().intervals
    assert [i.state for i in intervals] == [MachineState.PLANNED_STOP, MachineState.RUNNING]
    assert all(i.duration_s > 0 for i in intervals)
    with pytest.raises(ValueError, match="not a fault of cnc"):
        machine.force_state(MachineState.FAULT, 5.0, fault="die_jam")
    with pytest.raises(ValueError, match="only to state fault"):
        machine.force_state(MachineState.IDLE, 5.0, fault="coolant_low")
    with pytest.raises(ValueError, match="positive"):
        machine.force_state(MachineState.IDLE, 0.0)
