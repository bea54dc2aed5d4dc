"""From factory facts to proposed answers (pure), and from a result to the roadmap (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes_lite.assessment.evidence import FactoryFacts, MachineFacts, YieldFacts
from mes_lite.assessment.index import load_index
from mes_lite.assessment.proposals import (
    data_collection_links,
    energy_per_revenue,
    equipment_scenario,
    monthly_yield_change,
    networked_rate,
    production_control_scenario,
    propose,
    proposed_answers,
)
from mes_lite.assessment.roadmap import EDGEFAB, build_roadmap
from mes_lite.assessment.scoring import score_assessment, validate_answers

INDEX = load_index("miit-2024")
NOW = 1_800_000_000 * 10**9


def facts(live: int = 0, silent: int = 0, **overrides: object) -> FactoryFacts:
    machines = [MachineFacts(f"acme/site/a/l/m{i}", True, NOW) for i in range(live)]
    machines += [MachineFacts(f"acme/site/a/l/s{i}", False, None) for i in range(silent)]
    values: dict[str, object] = {
        "now_ns": NOW,
        "live_window_s": 86400,
        "period_s": 30 * 86400,
        "machines": machines,
        "automatic_counts": 0,
        "automatic_state_intervals": 0,
        "automatic_reject_counts": 0,
        "scrap_reports": 0,
        "stock_moves": 0,
        "work_orders": 0,
        "machines_with_ideal_cycle_time": 0,
        "reasons_assigned": 0,
        "energy_meter_tags": None,
    }
    values.update(overrides)
    return FactoryFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("live", "silent", "rate", "points"),
    [(0, 4, 0.0, 0), (1, 4, 20.0, 3), (2, 3, 40.0, 4.5), (3, 2, 60.0, 6), (1, 9, 10.0, 1.5), (2, 1, 66.7, 6)],
)
def test_the_networked_rate_is_live_machines_over_registered_ones(
    live: int, silent: int, rate: float, points: float
) -> None:
    proposal = networked_rate(facts(live, silent))
    assert proposal.value == rate
    assert proposal.evidence[0].params == {"live": live, "registered": live + silent, "hours": 24}
    answers = validate_answers(INDEX, {"equipment_networked_rate": proposal.value}, {})
    assert score_assessment(INDEX, answers).item("equipment_networked_rate").points == pytest.approx(points)


def test_no_registered_machines_means_no_networked_rate_is_proposed() -> None:
    proposal = networked_rate(facts())
    assert proposal.value is None and proposal.evidence[0].key == "no_machines"


def test_silent_machines_are_named_in_the_evidence_at_most_five() -> None:
    evidence = networked_rate(facts(1, 7)).evidence[1]
    assert evidence.key == "machines_silent"
    assert str(evidence.params["machines"]).count("acme/") == 5 and str(evidence.params["machines"]).endswith("…")


def test_links_are_proposed_only_for_modules_that_hold_data() -> None:
    assert data_collection_links(facts(1, 0)).value == []
    busy = facts(
        1, 0, automatic_counts=10, automatic_state_intervals=4, scrap_reports=2, stock_moves=3, energy_meter_tags=3
    )
    assert data_collection_links(busy).value == ["production_control", "equipment", "quality", "warehouse", "energy"]
    keys = [e.key for e in data_collection_links(busy).evidence]
    assert "link_scrap_reports" in keys  # typed-in scrap is flagged as such
    no_warehouse = data_collection_links(facts(1, 0, stock_moves=None))
    assert "link_no_warehouse" in [e.key for e in no_warehouse.evidence]


def test_equipment_management_reaches_level_three_only_with_real_time_states_and_oee() -> None:
    assert equipment_scenario(facts(0, 2)).value is None
    states_only = facts(2, 0, automatic_state_intervals=5)
    assert equipment_scenario(states_only).value == 2
    no_cycle_time = facts(2, 0, automatic_state_intervals=5, automatic_counts=9)
    assert equipment_scenario(no_cycle_time).value == 2
    assert [e.key for e in equipment_scenario(no_cycle_time).evidence] == ["equipment_realtime_yes", "equipment_oee_no"]
    full = facts(2, 0, automatic_state_intervals=5, automatic_counts=9, machines_with_ideal_cycle_time=1)
    assert equipment_scenario(full).value == 3


def test_production_control_needs_work_orders_and_is_level_three_with_machine_counts() -> None:
    assert production_control_scenario(facts(1, 0)).value is None
    assert production_control_scenario(facts(1, 0, work_orders=2)).value == 2
    assert production_control_scenario(facts(1, 0, work_orders=2, automatic_counts=50)).value == 3


@pytest.mark.parametrize(
    ("now", "before", "trend"),
    [
        ((1000, 20), (1000, 40), "better"),  # 98 % vs 96 %
        ((1000, 40), (1000, 20), "worse"),
        ((1000, 20), (1000, 24), "same"),  # +0.4 points: inside the 0.5-point band
        ((1000, 20), (1000, 26), "better"),  # +0.6 points
    ],
)
def test_the_yield_trend_compares_this_period_with_the_one_before(now: tuple, before: tuple, trend: str) -> None:
    proposal = monthly_yield_change(facts(yield_current=YieldFacts(*now), yield_previous=YieldFacts(*before)))
    assert proposal.value == trend
    assert proposal.evidence[0].params["now"] == round(100 * (now[0] - now[1]) / now[0], 2)


def test_no_yield_trend_without_production_in_both_periods() -> None:
    proposal = monthly_yield_change(facts(yield_current=YieldFacts(500, 5), yield_previous=YieldFacts(0, 0)))
    assert proposal.value is None and proposal.evidence[0].key == "yield_not_enough_data"


def test_energy_is_never_guessed_and_the_evidence_says_where_the_data_is() -> None:
    assert [e.key for e in energy_per_revenue(facts()).evidence] == ["energy_not_stored"]
    with_meters = energy_per_revenue(facts(energy_meter_tags=4))
    assert with_meters.value is None and with_meters.evidence[0].params == {"tags": 4}


def test_proposals_are_valid_answers_for_the_index() -> None:
    busy = facts(
        3, 1, automatic_counts=10, automatic_state_intervals=4, automatic_reject_counts=2, stock_moves=3,
        work_orders=2, machines_with_ideal_cycle_time=3, energy_meter_tags=3,
        yield_current=YieldFacts(1000, 10), yield_previous=YieldFacts(1000, 30),
    )  # fmt: skip
    items, scenarios = proposed_answers(propose(busy))
    answers = validate_answers(INDEX, items, scenarios)
    assert answers.scenarios == {"production_control": 3, "quality": 2, "equipment": 3, "warehouse": 2}
    assert answers.items["monthly_yield_change"] == "better"


# -- roadmap --------------------------------------------------------------------------------------


def test_the_roadmap_puts_what_the_next_level_needs_first_binding_scenarios_before_others() -> None:
    answers = validate_answers(
        INDEX,
        {"equipment_networked_rate": 20, "data_collection_links": ["production_control", "equipment"]},
        {"equipment": 3, "quality": 2, "finance": 1},
    )
    result = score_assessment(INDEX, answers)
    assert result.level == 0 and result.gap is not None
    steps = build_roadmap(INDEX, result, answers)
    needed = [s for s in steps if s.needed]
    assert steps[: len(needed)] == needed and [s.rank for s in steps] == list(range(1, len(steps) + 1))
    scenario_steps = [s for s in needed if s.target == "scenario"]
    # level 1 needs 6 scenarios (3 there) of which 3 binding (2 there): one binding, then two more
    assert len(scenario_steps) == 3
    assert INDEX.scenario(scenario_steps[0].target_id).binding  # type: ignore[union-attr]
    assert all(s.to_level == 1 for s in scenario_steps)
    point_steps = [s for s in needed if s.target == "item"]
    assert sum(s.gain_points or 0 for s in point_steps) >= result.gap.points_missing
    assert point_steps[0].kind == EDGEFAB  # what edgefab can switch on comes before outside actions
    links_step = next(s for s in steps if s.target_id == "data_collection_links")
    assert links_step.links == ("quality", "energy", "warehouse")  # the links edgefab can still add


def test_at_the_top_level_the_roadmap_only_lists_remaining_headroom() -> None:
    items = {"network": "industrial", "equipment_digital_rate": 100, "equipment_networked_rate": 100}
    items |= {"information_systems": "full", "network_security": "optimising", "data_security": "optimising"}
    items |= {"awareness": "optimising", "rules": "optimising", "talent": "optimising", "funding": 60}
    items |= {"energy_per_revenue_change": "better", "monthly_yield_change": "better"}
    items |= {"revenue_per_employee_change": "better", "cost_per_revenue_change": "better"}
    answers = validate_answers(INDEX, items, {s.id: 4 for s in INDEX.scenarios})
    result = score_assessment(INDEX, answers)
    assert result.level == 4 and result.gap is None
    steps = build_roadmap(INDEX, result, answers)
    assert [s.target_id for s in steps] == ["data_collection_links"] and not steps[0].needed


def _best_answer(item):  # type: ignore[no-untyped-def]
    if item.kind.value == "band":
        return 100
    if item.kind.value == "choice":
        return max(item.option_list, key=lambda o: o.share or 0).id
    return [o.id for o in item.option_list]


item_answers = st.fixed_dictionaries(
    {},
    optional={
        item.id: (
            st.floats(0, 100, allow_nan=False)
            if item.kind.value == "band"
            else st.sampled_from([o.id for o in item.option_list])
            if item.kind.value == "choice"
            else st.lists(st.sampled_from([o.id for o in item.option_list]), unique=True)
        )
        for item in INDEX.items
    },
)
scenario_answers = st.fixed_dictionaries({}, optional={s.id: st.integers(0, 4) for s in INDEX.scenarios})


@settings(max_examples=40, deadline=None)
@given(item_answers, scenario_answers)
def test_doing_the_needed_steps_of_the_roadmap_reaches_the_next_level(items: dict, scenarios: dict) -> None:
    answers = validate_answers(INDEX, items, scenarios)
    result = score_assessment(INDEX, answers)
    if result.gap is None:
        return
    done_items, done_scenarios = dict(answers.items), dict(answers.scenarios)
    for step in build_roadmap(INDEX, result, answers):
        if not step.needed:
            continue
        if step.target == "item":
            done_items[step.target_id] = _best_answer(INDEX.item(step.target_id))
        else:
            done_scenarios[step.target_id] = step.to_level
    after = score_assessment(INDEX, validate_answers(INDEX, done_items, done_scenarios))
    assert after.level >= result.gap.target_level
