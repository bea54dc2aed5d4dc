"""The scoring engine: answers -> item, group and dimension points, scenario levels, the overall level, the gap.

Pure functions of (index, answers); no database, no locale. An unanswered item scores 0 and an
unrated scenario is at level 0 (not reached 一级), so a half-finished questionnaire gives a lower
bound. The overall level is the highest level whose three thresholds all hold (score, scenarios at
that level or higher, binding scenarios at that level or higher).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from mes_lite.assessment.index import AssessmentIndex, Band, Item, ItemKind

EPSILON = 1e-9
AnswerValue = float | int | str | list[str]


class AnswerError(ValueError):
    """An answer does not fit its item (unknown id, option or out-of-range number): one line for the user."""

    def __init__(
        self, message: str, field: str | None = None, code: str = "invalid", params: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code  # for a localised message: unknown, not_a_number, out_of_range, unknown_option, level
        self.params = params or {}


@dataclass(frozen=True)
class Answers:
    """What the user answered: item id -> value (number, option id or option ids), scenario id -> level 0..4."""

    items: Mapping[str, AnswerValue] = field(default_factory=dict)
    scenarios: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, dict]:
        return {"items": dict(self.items), "scenarios": dict(self.scenarios)}


def validate_answers(index: AssessmentIndex, items: Mapping[str, object], scenarios: Mapping[str, object]) -> Answers:
    """Check raw answers (from a form or JSON) against the index and return them normalised.

    None / "" means "not answered" and is dropped. Raises AnswerError naming the first bad field.
    """
    clean_items: dict[str, AnswerValue] = {}
    for item_id, raw in items.items():
        item = index.item(item_id)
        if item is None:
            raise AnswerError(f"unknown item {item_id!r} in index {index.id}", field=f"items.{item_id}", code="unknown")
        value = _clean_item_value(item, raw)
        if value is not None:
            clean_items[item_id] = value
    clean_scenarios: dict[str, int] = {}
    for scenario_id, raw in scenarios.items():
        if index.scenario(scenario_id) is None:
            raise AnswerError(
                f"unknown scenario {scenario_id!r} in index {index.id}",
                field=f"scenarios.{scenario_id}",
                code="unknown",
            )
        if raw is None or raw == "":
            continue
        try:
            level = int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise AnswerError(
                f"scenario {scenario_id}: level must be a whole number 0..{index.max_level}, not {raw!r}",
                field=f"scenarios.{scenario_id}",
                code="level",
                params={"max": index.max_level},
            ) from None
        if not 0 <= level <= index.max_level or str(raw).strip() not in (str(level), f"{level}.0"):
            raise AnswerError(
                f"scenario {scenario_id}: level must be 0..{index.max_level}, not {raw!r}",
                field=f"scenarios.{scenario_id}",
                code="level",
                params={"max": index.max_level},
            )
        clean_scenarios[scenario_id] = level
    return Answers(clean_items, clean_scenarios)


def _clean_item_value(item: Item, raw: object) -> AnswerValue | None:
    where = f"items.{item.id}"
    if raw is None or raw == "":
        return None
    if item.kind is ItemKind.BAND:
        try:
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise AnswerError(f"{item.id}: a number is needed, not {raw!r}", field=where, code="not_a_number") from None
        if not math.isfinite(number):
            raise AnswerError(f"{item.id}: a finite number is needed, not {raw!r}", field=where, code="not_a_number")
        upper = 100.0 if item.unit == "percent" else item.band_list[-1].upper
        if not item.band_list[0].lower <= number <= upper:
            raise AnswerError(
                f"{item.id}: {number:g} is outside {item.band_list[0].lower:g}..{upper:g}"
                + (" %" if item.unit == "percent" else ""),
                field=where,
                code="out_of_range",
                params={"min": item.band_list[0].lower, "max": upper},
            )
        return number
    known = [o.id for o in item.option_list]
    if item.kind is ItemKind.CHOICE:
        if not isinstance(raw, str) or raw not in known:
            raise AnswerError(
                f"{item.id}: {raw!r} is not one of {', '.join(known)}", field=where, code="unknown_option"
            )
        return raw
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise AnswerError(f"{item.id}: a list of options is needed", field=where, code="unknown_option")
    unknown = [v for v in values if v not in known]
    if unknown:
        raise AnswerError(
            f"{item.id}: {unknown[0]!r} is not one of {', '.join(known)}", field=where, code="unknown_option"
        )
    return [o for o in known if o in values]  # index order, no duplicates


# -- points -----------------------------------------------------------------------------------------


def band_share(bands: list[Band], value: float) -> float:
    """Share of the band holding `value`; a value on an edge belongs to the higher band; the top edge is inclusive."""
    for band in bands:
        if band.lower <= value < band.upper:
            return band.share
    if value >= bands[-1].upper:
        return bands[-1].share
    return 0.0


def item_points(item: Item, value: AnswerValue | None) -> float:
    """Points of one answer (0 when unanswered)."""
    if value is None:
        return 0.0
    if item.kind is ItemKind.BAND:
        return item.points * band_share(item.band_list, float(value))  # type: ignore[arg-type]
    if item.kind is ItemKind.CHOICE:
        option = item.option(str(value))
        return item.points * (option.share or 0.0) if option else 0.0
    chosen = set(value) if isinstance(value, list) else {str(value)}
    total = sum(o.points or 0.0 for o in item.option_list if o.id in chosen)
    return min(item.points, total)


@dataclass(frozen=True)
class ItemScore:
    item_id: str
    points: float
    max_points: float
    answered: bool

    @property
    def headroom(self) -> float:
        return max(0.0, self.max_points - self.points)


@dataclass(frozen=True)
class GroupScore:
    group_id: str
    points: float
    max_points: float
    items: list[ItemScore]


@dataclass(frozen=True)
class DimensionScore:
    dimension_id: str
    points: float
    max_points: float
    nominal_points: float
    groups: list[GroupScore]

    @property
    def items(self) -> list[ItemScore]:
        return [i for g in self.groups for i in g.items]


@dataclass(frozen=True)
class LevelCheck:
    """One level's three conditions, with what the answers reach."""

    level: int
    min_score: float
    min_scenarios: int
    min_binding: int
    score: float
    scenarios: int
    binding: int

    @property
    def score_ok(self) -> bool:
        return self.score + EPSILON >= self.min_score

    @property
    def scenarios_ok(self) -> bool:
        return self.scenarios >= self.min_scenarios

    @property
    def binding_ok(self) -> bool:
        return self.binding >= self.min_binding

    @property
    def met(self) -> bool:
        return self.score_ok and self.scenarios_ok and self.binding_ok


@dataclass(frozen=True)
class LevelGap:
    """What is missing for `target_level`: points, scenarios and binding scenarios at that level or higher."""

    target_level: int
    points_missing: float
    scenarios_missing: int
    binding_missing: int
    scenarios_below: list[str]  # scenarios under the target level: binding first, then the closest to it

    @property
    def closed(self) -> bool:
        return self.points_missing <= EPSILON and self.scenarios_missing == 0 and self.binding_missing == 0


@dataclass(frozen=True)
class AssessmentResult:
    index_id: str
    score: float
    max_score: float
    dimensions: list[DimensionScore]
    scenario_levels: dict[str, int]
    level: int  # 0 = not reached level 1 (未达级)
    checks: list[LevelCheck]
    gap: LevelGap | None  # None at the top level
    answered_items: int
    total_items: int
    rated_scenarios: int

    def dimension(self, dimension_id: str) -> DimensionScore:
        return next(d for d in self.dimensions if d.dimension_id == dimension_id)

    def item(self, item_id: str) -> ItemScore:
        return next(i for d in self.dimensions for i in d.items if i.item_id == item_id)


def scenarios_at_or_above(index: AssessmentIndex, levels: Mapping[str, int], level: int) -> tuple[int, int]:
    """(all, binding) scenarios rated `level` or higher."""
    reached = [s for s in index.scenarios if levels.get(s.id, 0) >= level]
    return len(reached), sum(1 for s in reached if s.binding)


def level_checks(index: AssessmentIndex, score: float, levels: Mapping[str, int]) -> list[LevelCheck]:
    checks = []
    for threshold in index.level_rule.levels:
        count, binding = scenarios_at_or_above(index, levels, threshold.level)
        checks.append(
            LevelCheck(
                threshold.level,
                threshold.min_score,
                threshold.min_scenarios,
                threshold.min_binding,
                score,
                count,
                binding,
            )
        )
    return checks


def overall_level(checks: list[LevelCheck]) -> int:
    """The highest level whose conditions all hold (0 if none)."""
    return max((c.level for c in checks if c.met), default=0)


def gap_to(index: AssessmentIndex, score: float, levels: Mapping[str, int], target_level: int) -> LevelGap:
    threshold = index.threshold(target_level)
    count, binding = scenarios_at_or_above(index, levels, target_level)
    below = [s for s in index.scenarios if levels.get(s.id, 0) < target_level]
    below.sort(key=lambda s: (not s.binding, target_level - levels.get(s.id, 0)))
    return LevelGap(
        target_level=target_level,
        points_missing=round(max(0.0, threshold.min_score - score), 6)
        if score + EPSILON < threshold.min_score
        else 0.0,
        scenarios_missing=max(0, threshold.min_scenarios - count),
        binding_missing=max(0, threshold.min_binding - binding),
        scenarios_below=[s.id for s in below],
    )


def score_assessment(index: AssessmentIndex, answers: Answers) -> AssessmentResult:
    """Everything the report shows, from the answers alone."""
    dimensions: list[DimensionScore] = []
    answered = 0
    for dimension in index.dimensions:
        groups = []
        for group in dimension.groups:
            item_scores = []
            for item in group.items:
                value = answers.items.get(item.id)
                answered += value is not None
                item_scores.append(
                    ItemScore(item.id, round(item_points(item, value), 6), item.max_points, value is not None)
                )
            groups.append(
                GroupScore(
                    group.id,
                    round(sum(i.points for i in item_scores), 6),
                    round(sum(i.max_points for i in item_scores), 6),
                    item_scores,
                )
            )
        dimensions.append(
            DimensionScore(
                dimension.id,
                round(sum(g.points for g in groups), 6),
                round(sum(g.max_points for g in groups), 6),
                dimension.points,
                groups,
            )
        )
    score = round(sum(d.points for d in dimensions), 6)
    levels = {s.id: int(answers.scenarios.get(s.id, 0)) for s in index.scenarios}
    checks = level_checks(index, score, levels)
    level = overall_level(checks)
    gap = gap_to(index, score, levels, level + 1) if level < index.max_level else None
    return AssessmentResult(
        index_id=index.id,
        score=score,
        max_score=round(index.max_score, 6),
        dimensions=dimensions,
        scenario_levels=levels,
        level=level,
        checks=checks,
        gap=gap,
        answered_items=answered,
        total_items=len(index.items),
        rated_scenarios=sum(1 for s in index.scenarios if s.id in answers.scenarios),
    )


@dataclass(frozen=True)
class Progress:
    """Change from an earlier assessment to a later one (the 'optimise' step of assess-plan-do-optimise)."""

    score_change: float
    level_change: int
    dimension_changes: dict[str, float]
    scenario_changes: dict[str, int]  # only scenarios whose level changed

    @property
    def improved_scenarios(self) -> list[str]:
        return [s for s, d in self.scenario_changes.items() if d > 0]


def progress_between(earlier: AssessmentResult, later: AssessmentResult) -> Progress:
    return Progress(
        score_change=round(later.score - earlier.score, 6),
        level_change=later.level - earlier.level,
        dimension_changes={
            d.dimension_id: round(d.points - earlier.dimension(d.dimension_id).points, 6)
            for d in later.dimensions
            if any(e.dimension_id == d.dimension_id for e in earlier.dimensions)
        },
        scenario_changes={
            s: level - earlier.scenario_levels.get(s, 0)
            for s, level in later.scenario_levels.items()
            if level != earlier.scenario_levels.get(s, 0)
        },
    )
