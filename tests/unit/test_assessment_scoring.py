"""The scoring engine on worked examples (computed by hand below) and its properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes_lite.assessment.index import AssessmentIndex, ItemKind, load_index
from mes_lite.assessment.scoring import (
    AnswerError,
    Answers,
    item_points,
    progress_between,
    score_assessment,
    validate_answers,
)

INDEX = load_index("miit-2024")
BINDING = [s.id for s in INDEX.scenarios if s.binding]
NON_BINDING = [s.id for s in INDEX.scenarios if not s.binding]


def score(items: dict | None = None, scenarios: dict | None = None):  # type: ignore[no-untyped-def]
    return score_assessment(INDEX, validate_answers(INDEX, items or {}, scenarios or {}))


def best_items(index: AssessmentIndex) -> dict[str, object]:
    answers: dict[str, object] = {}
    for item in index.items:
        if item.kind is ItemKind.BAND:
            answers[item.id] = 100
        elif item.kind is ItemKind.CHOICE:
            answers[item.id] = max(item.option_list, key=lambda o: o.share or 0).id
        else:
            answers[item.id] = [o.id for o in item.option_list]
    return answers


# -- band edges: a value on an edge belongs to the higher band -----------------------------------


@pytest.mark.parametrize(
    ("rate_percent", "points"),
    [(0, 0), (9.99, 0), (10, 1.5), (19.99, 1.5), (20, 3), (39.9, 3), (40, 4.5), (59.99, 4.5), (60, 6), (100, 6)],
)
def test_networked_rate_bands_put_an_edge_value_in_the_higher_band(rate_percent: float, points: float) -> None:
    item = INDEX.item("equipment_networked_rate")
    assert item is not None
    assert item_points(item, rate_percent) == pytest.approx(points)


def test_funding_uses_the_same_bands_scaled_to_its_seven_and_a_half_points() -> None:
    item = INDEX.item("funding")
    assert item is not None
    assert [item_points(item, v) for v in (5, 10, 20, 40, 60)] == pytest.approx([0, 1.875, 3.75, 5.625, 7.5])


def test_each_automatically_collected_link_is_worth_0_7_points_up_to_9_8() -> None:
    item = INDEX.item("data_collection_links")
    assert item is not None
    assert item_points(item, ["production_control", "equipment", "quality"]) == pytest.approx(2.1)
    assert item_points(item, [o.id for o in item.option_list]) == pytest.approx(9.8)
    assert item.max_points == pytest.approx(9.8)


def test_trend_items_give_nothing_half_or_all_of_their_points() -> None:
    item = INDEX.item("monthly_yield_change")
    assert item is not None
    assert [item_points(item, v) for v in ("worse", "same", "better")] == [0, 3.5, 7]


# -- worked examples --------------------------------------------------------------------------------


def test_an_empty_questionnaire_scores_zero_and_needs_everything_for_level_one() -> None:
    result = score()
    assert result.score == 0 and result.level == 0
    assert result.gap is not None
    assert (result.gap.target_level, result.gap.points_missing) == (1, 20)
    assert (result.gap.scenarios_missing, result.gap.binding_missing) == (6, 3)
    assert result.gap.scenarios_below[: len(BINDING)] == BINDING  # binding scenarios are listed first


TYPICAL_SHOP_ITEMS = {
    "network": "full_shop",  # 0.75 x 8 = 6
    "equipment_digital_rate": 50,  # 4.5
    "equipment_networked_rate": 40,  # 4.5 (edge: the 40-60 % band)
    "data_collection_links": ["production_control", "equipment", "quality", "warehouse", "energy"],  # 5 x 0.7 = 3.5
    "information_systems": "several",  # 0.5 x 10 = 5
    "network_security": "defined",  # 0.5 x 5 = 2.5
    "data_security": "started",  # 0.25 x 5 = 1.25            -> foundation 27.25
    "awareness": "defined",  # 3.75
    "rules": "started",  # 1.875
    "talent": "started",  # 1.875
    "funding": 5,  # 0                                      -> management 7.5
    "energy_per_revenue_change": "same",  # 3.5
    "monthly_yield_change": "better",  # 7
    "revenue_per_employee_change": "same",  # 1.5
    "cost_per_revenue_change": "worse",  # 0                  -> results 12
}
TYPICAL_SHOP_SCENARIOS = {
    "equipment": 3,
    "production_control": 3,
    "quality": 2,
    "warehouse": 2,
    "planning": 2,
    "purchasing": 2,
    "finance": 2,
    "office": 2,
    "hr": 1,
}


def test_a_typical_small_shop_reaches_level_two_with_the_hand_computed_scores() -> None:
    result = score(TYPICAL_SHOP_ITEMS, TYPICAL_SHOP_SCENARIOS)
    assert result.dimension("foundation").points == pytest.approx(27.25)
    assert result.dimension("management").points == pytest.approx(7.5)
    assert result.dimension("results").points == pytest.approx(12)
    assert result.score == pytest.approx(46.75)
    assert result.level == 2  # 46.75 >= 40; 8 scenarios at 二级+ (>= 6), 6 of them binding (>= 3)
    gap = result.gap
    assert gap is not None and gap.target_level == 3
    assert gap.points_missing == pytest.approx(13.25)  # 60 - 46.75
    assert gap.scenarios_missing == 6  # 8 needed at 三级+, only equipment and production_control are
    assert gap.binding_missing == 3  # 5 binding needed, 2 are there
    assert gap.scenarios_below[:2] == ["planning", "quality"]  # binding, one level below the target


def test_a_full_score_without_scenarios_is_not_graded() -> None:
    result = score(best_items(INDEX), {s: 4 for s in NON_BINDING[:5]})
    assert result.score == pytest.approx(99.8)  # the 14 links give 9.8 of their 10 points
    assert result.level == 0  # only 5 scenarios at 一级+, level 1 needs 6
    assert result.gap is not None and result.gap.points_missing == 0 and result.gap.scenarios_missing == 1


def test_binding_scenarios_are_required_even_when_enough_others_are_rated() -> None:
    all_non_binding_top = {s: 4 for s in NON_BINDING}
    assert score(best_items(INDEX), all_non_binding_top).level == 0  # 8 scenarios, none binding
    two_binding = all_non_binding_top | {s: 4 for s in BINDING[:2]}
    assert score(best_items(INDEX), two_binding).level == 0
    three_binding = all_non_binding_top | {s: 4 for s in BINDING[:3]}
    assert score(best_items(INDEX), three_binding).level == 2  # 3 binding: levels 1-2; level 3 needs 5
    six_binding = all_non_binding_top | {s: 4 for s in BINDING[:6]}
    assert score(best_items(INDEX), six_binding).level == 4
    assert score(best_items(INDEX), six_binding).gap is None


def test_the_score_threshold_is_inclusive_at_exactly_twenty_points() -> None:
    scenarios = {s: 1 for s in BINDING[:6]}
    exactly_20 = {"network": "industrial", "equipment_digital_rate": 60, "equipment_networked_rate": 60}  # 8+6+6
    assert score(exactly_20, scenarios).score == 20
    assert score(exactly_20, scenarios).level == 1
    just_below = exactly_20 | {"equipment_networked_rate": 59.9}  # 8+6+4.5
    assert score(just_below, scenarios).level == 0


def test_progress_shows_what_changed_between_two_assessments() -> None:
    earlier = score(TYPICAL_SHOP_ITEMS | {"equipment_networked_rate": 20}, TYPICAL_SHOP_SCENARIOS | {"quality": 1})
    later = score(TYPICAL_SHOP_ITEMS, TYPICAL_SHOP_SCENARIOS)
    progress = progress_between(earlier, later)
    assert progress.score_change == pytest.approx(1.5)  # networked rate 20 % -> 40 %: 3 -> 4.5 points
    assert progress.dimension_changes == {"foundation": 1.5, "management": 0, "results": 0}
    assert progress.scenario_changes == {"quality": 1}
    assert progress.level_change == 0


# -- validation: bad answers are refused with one line ------------------------------------------------


@pytest.mark.parametrize(
    ("items", "scenarios", "message"),
    [
        ({"no_such_item": 1}, {}, "unknown item 'no_such_item'"),
        ({"equipment_networked_rate": 120}, {}, "120 is outside 0..100 %"),
        ({"equipment_networked_rate": "lots"}, {}, "a number is needed"),
        ({"network": "wifi"}, {}, "'wifi' is not one of none, office"),
        ({"data_collection_links": ["equipment", "teleport"]}, {}, "'teleport' is not one of"),
        ({}, {"equipment": 5}, "level must be 0..4"),
        ({}, {"equipment": "2.5"}, "level must be"),
        ({}, {"moon_base": 1}, "unknown scenario 'moon_base'"),
    ],
)
def test_answers_that_do_not_fit_the_index_are_refused(items: dict, scenarios: dict, message: str) -> None:
    with pytest.raises(AnswerError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate_answers(INDEX, items, scenarios)


def test_blank_answers_mean_unanswered_and_options_keep_the_index_order() -> None:
    answers = validate_answers(
        INDEX,
        {"network": "", "data_collection_links": ["equipment", "production_control", "equipment"]},
        {"equipment": ""},
    )
    assert answers.items == {"data_collection_links": ["production_control", "equipment"]}
    assert answers.scenarios == {}


# -- properties ----------------------------------------------------------------------------------------


def _item_value(item):  # type: ignore[no-untyped-def]
    if item.kind is ItemKind.BAND:
        return st.floats(min_value=0, max_value=100, allow_nan=False)
    if item.kind is ItemKind.CHOICE:
        return st.sampled_from([o.id for o in item.option_list])
    return st.lists(st.sampled_from([o.id for o in item.option_list]), unique=True)


answers_strategy = st.builds(
    Answers,
    st.fixed_dictionaries({}, optional={item.id: _item_value(item) for item in INDEX.items}),
    st.fixed_dictionaries({}, optional={s.id: st.integers(0, 4) for s in INDEX.scenarios}),
)


@settings(max_examples=40, deadline=None)
@given(answers_strategy)
def test_every_score_stays_within_its_bounds_and_the_level_meets_its_thresholds(answers: Answers) -> None:
    result = score_assessment(INDEX, answers)
    assert 0 <= result.score <= INDEX.max_score + 1e-9
    for dimension in INDEX.dimensions:
        assert 0 <= result.dimension(dimension.id).points <= dimension.points + 1e-9
    if result.level:
        threshold = INDEX.threshold(result.level)
        assert result.score + 1e-9 >= threshold.min_score
    assert result.gap is None or not result.gap.closed


def _better(item, value, data):  # type: ignore[no-untyped-def]
    """An answer at least as good as `value` for `item`."""
    if item.kind is ItemKind.BAND:
        return data.draw(st.floats(min_value=value, max_value=100, allow_nan=False))
    if item.kind is ItemKind.CHOICE:
        share = item.option(value).share
        return data.draw(st.sampled_from([o.id for o in item.option_list if o.share >= share]))
    extra = data.draw(st.lists(st.sampled_from([o.id for o in item.option_list]), unique=True))
    return sorted(set(value) | set(extra))


@settings(max_examples=40, deadline=None)
@given(answers_strategy, st.data())
def test_a_better_answer_never_lowers_the_score_or_the_level(answers: Answers, data: st.DataObject) -> None:
    before = score_assessment(INDEX, answers)
    items = dict(answers.items)
    scenarios = dict(answers.scenarios)
    for item in INDEX.items:
        if item.id in items and data.draw(st.booleans()):
            items[item.id] = _better(item, items[item.id], data)
        elif item.id not in items and data.draw(st.booleans()):
            items[item.id] = data.draw(_item_value(item))  # answering an open item can only add points
    for scenario in INDEX.scenarios:
        if data.draw(st.booleans()):
            scenarios[scenario.id] = data.draw(st.integers(scenarios.get(scenario.id, 0), 4))
    after = score_assessment(INDEX, Answers(items, scenarios))
    assert after.score + 1e-9 >= before.score
    assert after.level >= before.level
