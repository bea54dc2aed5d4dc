"""OEE after ISO 22400-2: worked examples and properties of the pure functions in mes_lite.oee."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes_lite.oee import OeeInputs, compute, downtime_pareto, ideal_production_s, sum_inputs

MIN = 60.0


def golden_shift() -> OeeInputs:
    """480 min shift, 60 min breaks, 47 min unplanned stops, ideal cycle 1.0 s, 19,271 parts, 423 rejects."""
    return OeeInputs(
        planned_operation_s=480 * MIN,
        planned_down_s=60 * MIN,
        production_s=(480 - 60 - 47) * MIN,
        fault_s=47 * MIN,
        produced_qty=19_271,
        reject_qty=423,
        ideal_production_s=ideal_production_s(19_271, 1.0),
    )


def test_the_golden_shift_gives_the_published_availability_performance_quality_and_oee() -> None:
    result = compute(golden_shift())
    # PBT = 480 - 60 = 420 min; APT = 420 - 47 = 373 min
    assert result.planned_busy_s == 420 * MIN
    assert result.actual_production_s == 373 * MIN
    assert round(result.availability, 4) == 0.8881  # 373 / 420
    assert round(result.effectiveness, 4) == 0.8611  # 19,271 x 1.0 s / 22,380 s
    assert round(result.quality_ratio, 4) == 0.9780  # 18,848 / 19,271
    assert round(result.oee, 4) == 0.7479  # 0.8881 x 0.8611 x 0.9780 = 18,848 s / 25,200 s
    assert result.oee == pytest.approx(18_848 * 1.0 / (420 * MIN))
    assert not result.effectiveness_over_100
    assert round(result.scrap_ratio, 4) == round(423 / 19_271, 4)
    assert result.technical_efficiency == pytest.approx(373 / 420)


def test_the_six_big_losses_and_the_good_time_add_up_to_planned_busy_time() -> None:
    result = compute(golden_shift())
    losses = result.losses
    assert losses.equipment_failure_s == 47 * MIN
    assert losses.reduced_speed_s == pytest.approx(373 * MIN - 19_271)
    assert losses.process_defects_s == pytest.approx(423)
    assert result.fully_productive_s + losses.total_s == pytest.approx(result.planned_busy_s)


def test_micro_stops_are_a_speed_loss_not_an_availability_loss() -> None:
    # 8 h shift, no breaks; 30 stops of 60 s (below the threshold) and one 20 min fault; cycle 2 s
    inputs = OeeInputs(
        planned_operation_s=480 * MIN,
        production_s=480 * MIN - 30 * MIN - 20 * MIN,
        micro_stop_s=30 * MIN,
        fault_s=20 * MIN,
        produced_qty=12_000,
        reject_qty=0,
        ideal_production_s=12_000 * 2.0,
    )
    result = compute(inputs)
    assert result.availability == pytest.approx(460 / 480)  # only the fault costs availability
    assert result.effectiveness == pytest.approx(24_000 / (460 * MIN))  # micro stops cost speed
    assert result.losses.idling_minor_stops_s == 30 * MIN
    assert result.losses.reduced_speed_s == pytest.approx((430 - 400) * MIN)
    assert result.oee == pytest.approx(24_000 / (480 * MIN))


def test_setup_costs_availability_for_oee_but_not_for_nee() -> None:
    inputs = OeeInputs(
        planned_operation_s=8 * 3600,
        production_s=7 * 3600,
        setup_s=3600,
        produced_qty=7 * 3600 / 3,
        ideal_production_s=7 * 3600,  # cycle 3 s, running at ideal speed
    )
    result = compute(inputs)
    assert result.availability == pytest.approx(7 / 8)
    assert result.oee == pytest.approx(7 / 8)
    assert result.nee == pytest.approx(1.0)
    assert result.losses.setup_adjustment_s == 3600


def test_time_without_data_lowers_availability_and_is_reported_as_unaccounted() -> None:
    inputs = OeeInputs(planned_operation_s=3600, production_s=3000, produced_qty=3000, ideal_production_s=3000)
    result = compute(inputs)
    assert result.unaccounted_s == 600
    assert result.availability == pytest.approx(3000 / 3600)


def test_effectiveness_above_100_percent_is_reported_and_flagged_not_capped() -> None:
    inputs = OeeInputs(planned_operation_s=3600, production_s=3600, produced_qty=4000, ideal_production_s=4000)
    result = compute(inputs)
    assert result.effectiveness == pytest.approx(4000 / 3600)
    assert result.effectiveness_over_100
    assert any("above 100 %" in w for w in result.warnings)


def test_a_window_without_planned_time_has_no_kpis_instead_of_a_division_by_zero() -> None:
    result = compute(OeeInputs())
    assert result.availability is None and result.oee is None and result.quality_ratio is None


def test_aggregating_two_machines_sums_times_and_counts_instead_of_averaging_percentages() -> None:
    fast = OeeInputs(planned_operation_s=3600, production_s=3600, produced_qty=3600, ideal_production_s=3600)
    idle = OeeInputs(planned_operation_s=3600 * 3, production_s=0, idle_s=3600 * 3)
    line = compute(fast + idle)
    assert line.oee == pytest.approx(3600 / (4 * 3600))  # 25 %, not the 50 % mean of 100 % and 0 %
    assert line.effectiveness == pytest.approx(1.0)


def test_the_downtime_pareto_puts_the_longest_reason_first_with_cumulative_share() -> None:
    bars = downtime_pareto([("jam", 300), (None, 100), ("tool", 600), ("jam", 200)])
    assert [b.reason for b in bars] == ["tool", "jam", "unassigned"]
    assert [b.stops for b in bars] == [1, 2, 1]
    assert bars[0].share == pytest.approx(0.5)
    assert bars[-1].cumulative_share == pytest.approx(1.0)


seconds = st.integers(min_value=0, max_value=10_000_000).map(lambda ms: ms / 1000)  # times are exact to 1 ms


@st.composite
def single_product_windows(draw: st.DrawFn, cycle: float | None = None) -> tuple[OeeInputs, float]:
    """A consistent window: states fill at most PBT, rejects at most produced, one ideal cycle time."""
    production, micro, setup, fault, idle = (draw(seconds) for _ in range(5))
    planned_down = draw(seconds)
    spare = draw(seconds)
    cycle = cycle or draw(st.floats(min_value=0.1, max_value=60))
    produced = draw(st.integers(min_value=0, max_value=100_000))
    rejects = draw(st.integers(min_value=0, max_value=produced))
    inputs = OeeInputs(
        planned_operation_s=production + micro + setup + fault + idle + spare + planned_down,
        planned_down_s=planned_down,
        production_s=production,
        micro_stop_s=micro,
        setup_s=setup,
        fault_s=fault,
        idle_s=idle,
        produced_qty=produced,
        reject_qty=rejects,
        ideal_production_s=produced * cycle,
    )
    return inputs, cycle


@settings(max_examples=60)
@given(single_product_windows())
def test_oee_equals_good_count_times_ideal_cycle_time_over_planned_busy_time(case: tuple[OeeInputs, float]) -> None:
    inputs, cycle = case
    result = compute(inputs)
    if result.oee is not None:
        assert result.oee == pytest.approx(inputs.good_qty * cycle / inputs.planned_busy_s, rel=1e-9, abs=1e-12)


@settings(max_examples=60)
@given(
    st.floats(min_value=0.1, max_value=60).flatmap(
        lambda cycle: st.lists(single_product_windows(cycle), min_size=1, max_size=6)
    )
)
def test_splitting_a_window_and_summing_the_parts_gives_the_kpis_of_the_whole(
    parts: list[tuple[OeeInputs, float]],
) -> None:
    """The parts of one product's window, split in time or by machine: KPIs of the sum = KPIs of the whole."""
    whole = sum_inputs(p for p, _ in parts)
    result = compute(whole)
    assert result.planned_busy_s == pytest.approx(sum(compute(p).planned_busy_s for p, _ in parts))
    if result.oee is not None:
        good_ideal = sum(p.good_qty * c for p, c in parts)
        assert result.oee == pytest.approx(good_ideal / result.planned_busy_s, rel=1e-9, abs=1e-12)


@settings(max_examples=60)
@given(single_product_windows())
def test_losses_plus_fully_productive_time_fill_planned_busy_time_when_speed_is_at_most_ideal(
    case: tuple[OeeInputs, float],
) -> None:
    inputs, _ = case
    result = compute(inputs)
    if result.effectiveness is not None and not result.effectiveness_over_100 and inputs.planned_busy_s > 0:
        assert result.fully_productive_s + result.losses.total_s == pytest.approx(result.planned_busy_s, abs=1e-6)
