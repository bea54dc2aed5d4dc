"""The roadmap: each gap to the next level tied to a concrete next step, most useful first.

Pure: (index, result, answers) -> ordered steps. A step is either an edgefab feature to switch on
(cheap: the factory already runs edgefab) or an outside action. Steps needed for the next level come
first: binding scenarios, then other scenarios, then the items that close the points gap with the
fewest steps; then further points. The step texts live in the locale catalogues
(`assessment.action.<action>`), keyed by item / scenario id here (edgefab's features, not an edition's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mes_lite.assessment.index import AssessmentIndex
from mes_lite.assessment.scoring import EPSILON, Answers, AssessmentResult

EDGEFAB = "edgefab"
OUTSIDE = "outside"
MAX_FURTHER_STEPS = 6


@dataclass(frozen=True)
class Action:
    kind: str  # edgefab | outside
    key: str  # catalogue key suffix: assessment.action.<key>
    params: dict[str, str] = field(default_factory=dict)


ITEM_ACTIONS: dict[str, Action] = {
    "network": Action(OUTSIDE, "network"),
    "equipment_digital_rate": Action(EDGEFAB, "retrofit_io", {"connector": "Modbus"}),
    "equipment_networked_rate": Action(EDGEFAB, "connect_machines", {"command": "edgefab run"}),
    "data_collection_links": Action(EDGEFAB, "collect_links"),
    "information_systems": Action(EDGEFAB, "use_mes_modules"),
    "network_security": Action(OUTSIDE, "network_security"),
    "data_security": Action(OUTSIDE, "data_security"),
    "awareness": Action(OUTSIDE, "awareness"),
    "rules": Action(OUTSIDE, "rules"),
    "talent": Action(OUTSIDE, "talent"),
    "funding": Action(OUTSIDE, "funding"),
    "energy_per_revenue_change": Action(EDGEFAB, "energy_meters"),
    "monthly_yield_change": Action(EDGEFAB, "reject_reasons"),
    "revenue_per_employee_change": Action(OUTSIDE, "revenue_per_employee"),
    "cost_per_revenue_change": Action(OUTSIDE, "cost_per_revenue"),
}

SCENARIO_ACTIONS: dict[str, Action] = {
    "equipment": Action(EDGEFAB, "scenario_equipment", {"command": "edgefab run"}),
    "production_control": Action(EDGEFAB, "scenario_production_control"),
    "quality": Action(EDGEFAB, "scenario_quality"),
    "warehouse": Action(EDGEFAB, "scenario_warehouse"),
    "purchasing": Action(EDGEFAB, "scenario_purchasing"),
    "energy": Action(EDGEFAB, "energy_meters"),
}
DEFAULT_ITEM_ACTION = Action(OUTSIDE, "improve_item")
DEFAULT_SCENARIO_ACTION = Action(OUTSIDE, "improve_scenario")

# Data-collection links edgefab collects itself once the matching part runs.
EDGEFAB_LINKS = ("production_control", "equipment", "quality", "warehouse", "energy")


@dataclass(frozen=True)
class Step:
    rank: int
    target: str  # "item" | "scenario"
    target_id: str
    action: Action
    needed: bool  # part of what the next level needs
    gain_points: float | None = None  # items: points this step can add at most
    from_level: int | None = None  # scenarios
    to_level: int | None = None
    links: tuple[str, ...] = ()  # data collection: the links to add

    @property
    def kind(self) -> str:
        return self.action.kind


def _scenario_picks(index: AssessmentIndex, result: AssessmentResult) -> list[str]:
    """The fewest scenarios to raise: binding ones first (edgefab-supported first), then any."""
    gap = result.gap
    if gap is None or (gap.scenarios_missing == 0 and gap.binding_missing == 0):
        return []

    def order(scenario_id: str) -> tuple[int, int, int]:
        scenario = index.scenario(scenario_id)
        assert scenario is not None
        distance = gap.target_level - result.scenario_levels.get(scenario_id, 0)
        supported = SCENARIO_ACTIONS.get(scenario_id, DEFAULT_SCENARIO_ACTION).kind == EDGEFAB
        return (distance, not supported, index.scenarios.index(scenario))

    below = list(gap.scenarios_below)
    binding = sorted((s for s in below if index.scenario(s).binding), key=order)  # type: ignore[union-attr]
    picks = binding[: gap.binding_missing]
    rest = sorted((s for s in below if s not in picks), key=order)
    while len(picks) < max(gap.scenarios_missing, gap.binding_missing) and rest:
        picks.append(rest.pop(0))
    return picks


def build_roadmap(index: AssessmentIndex, result: AssessmentResult, answers: Answers) -> list[Step]:
    """Ordered steps: first what the next level needs, then further points (at most MAX_FURTHER_STEPS)."""
    gap = result.gap
    steps: list[Step] = []
    for scenario_id in _scenario_picks(index, result):
        assert gap is not None
        steps.append(
            Step(
                0,
                "scenario",
                scenario_id,
                SCENARIO_ACTIONS.get(scenario_id, DEFAULT_SCENARIO_ACTION),
                needed=True,
                from_level=result.scenario_levels.get(scenario_id, 0),
                to_level=gap.target_level,
            )
        )
    chosen_links = set(answers.items.get("data_collection_links") or [])  # type: ignore[arg-type]
    candidates = []
    for dimension in result.dimensions:
        for item_score in dimension.items:
            if item_score.headroom <= EPSILON:
                continue
            action = ITEM_ACTIONS.get(item_score.item_id, DEFAULT_ITEM_ACTION)
            links: tuple[str, ...] = ()
            if item_score.item_id == "data_collection_links":
                item = index.item(item_score.item_id)
                assert item is not None
                missing = [o.id for o in item.option_list if o.id not in chosen_links]
                links = tuple(link for link in missing if link in EDGEFAB_LINKS)
                if not links:
                    action = Action(OUTSIDE, "collect_other_links")
                    links = tuple(missing)
            candidates.append((action.kind != EDGEFAB, -item_score.headroom, item_score, action, links))
    candidates.sort(key=lambda c: (c[0], c[1]))
    points_missing = gap.points_missing if gap is not None else 0.0
    covered = 0.0
    further = 0
    for _outside, _neg, item_score, action, links in candidates:
        needed = covered + EPSILON < points_missing
        if not needed:
            if further >= MAX_FURTHER_STEPS:
                continue
            further += 1
        covered += item_score.headroom
        steps.append(
            Step(
                0,
                "item",
                item_score.item_id,
                action,
                needed=needed,
                gain_points=round(item_score.headroom, 6),
                links=links,
            )
        )
    ordered = [s for s in steps if s.needed] + [s for s in steps if not s.needed]
    return [
        Step(rank, s.target, s.target_id, s.action, s.needed, s.gain_points, s.from_level, s.to_level, s.links)
        for rank, s in enumerate(ordered, start=1)
    ]
