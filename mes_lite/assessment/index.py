"""An assessment index (评测指标) as data: the pydantic schema of `indexes/<id>.yaml` and its loader.

The scoring engine knows only this schema, never an edition: a future edition of the MIIT index is a
new YAML file. The loader resolves shared band and option sets so every item carries its own list,
and checks what the engine relies on (points add up, bands are contiguous, ids are unique).
"""

from __future__ import annotations

import datetime as dt
import itertools
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

INDEXES_DIR = Path(__file__).parent / "indexes"
DEFAULT_INDEX_ID = "miit-2024"
POINTS_TOLERANCE = 1e-6


class IndexFileError(ValueError):
    """An index file is missing or does not match the schema (one line, names the file and the field)."""


class Text(BaseModel):
    """A label in both page languages."""

    model_config = ConfigDict(extra="forbid")
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def text(self, locale: str) -> str:
        return self.zh if locale.startswith("zh") else self.en


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Band(Strict):
    """[from, to) of the answer (the last band includes `to`) earns `share` of the item's points."""

    lower: float = Field(alias="from")
    upper: float = Field(alias="to")
    share: float = Field(ge=0, le=1)


class Option(Strict):
    id: str
    label: Text
    share: float | None = Field(default=None, ge=0, le=1)  # choice: share of the item's points
    points: float | None = Field(default=None, ge=0)  # multi: points of this option


class ItemKind(StrEnum):
    BAND = "band"  # a number (e.g. a percentage) scored by bands
    CHOICE = "choice"  # one option
    MULTI = "multi"  # several options, points added up to the item's points


class Item(Strict):
    id: str
    label: Text
    help: Text | None = None
    kind: ItemKind
    points: float = Field(gt=0)
    unit: str | None = None
    bands: list[Band] | str | None = None
    options: list[Option] | str | None = None
    verified: bool
    source: str
    note: str | None = None

    @property
    def band_list(self) -> list[Band]:
        assert isinstance(self.bands, list)
        return self.bands

    @property
    def option_list(self) -> list[Option]:
        assert isinstance(self.options, list)
        return self.options

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.option_list if o.id == option_id), None)

    @property
    def max_points(self) -> float:
        """What the best answer earns (a multi item may cap below its nominal points, e.g. 14 x 0.7)."""
        if self.kind is ItemKind.MULTI:
            return min(self.points, sum(o.points or 0 for o in self.option_list))
        return self.points


class Group(Strict):
    id: str
    label: Text
    items: list[Item] = Field(min_length=1)


class Dimension(Strict):
    id: str
    label: Text
    points: float = Field(gt=0)
    verified: bool
    source: str
    groups: list[Group] = Field(min_length=1)

    @property
    def items(self) -> list[Item]:
        return [item for group in self.groups for item in group.items]


class ScenarioGroup(Strict):
    id: str
    label: Text


class ScenarioLevel(Strict):
    level: int = Field(ge=1)
    label: Text
    meaning: Text


class Scenario(Strict):
    id: str
    group: str
    label: Text
    binding: bool
    verified: bool
    source: str
    level_meanings: dict[int, Text] = Field(default_factory=dict)


class ScenarioDimension(Strict):
    id: str
    label: Text
    verified: bool
    source: str


class LevelThreshold(Strict):
    level: int = Field(ge=1)
    min_score: float = Field(ge=0)
    min_scenarios: int = Field(ge=0)
    min_binding: int = Field(ge=0)
    label: Text
    meaning: Text


class LevelRule(Strict):
    verified: bool
    source: str
    note: str | None = None
    not_reached: Text
    levels: list[LevelThreshold] = Field(min_length=1)


class Source(Strict):
    id: str
    url: str | None
    note: str


class AssessmentIndex(Strict):
    id: str
    edition: str
    document: str
    issued: dt.date
    title: Text
    sector: Text
    sources: list[Source]
    band_sets: dict[str, list[Band]] = Field(default_factory=dict)
    option_sets: dict[str, list[Option]] = Field(default_factory=dict)
    dimensions: list[Dimension] = Field(min_length=1)
    scenario_dimension: ScenarioDimension
    scenario_groups: list[ScenarioGroup]
    scenario_levels: list[ScenarioLevel]
    scenarios: list[Scenario] = Field(min_length=1)
    level_rule: LevelRule

    @model_validator(mode="after")
    def _resolve_and_check(self) -> AssessmentIndex:
        source_ids = {s.id for s in self.sources}
        item_ids: set[str] = set()
        for dimension in self.dimensions:
            _require(dimension.source in source_ids, f"dimension {dimension.id}: unknown source {dimension.source!r}")
            total = 0.0
            for item in dimension.items:
                where = f"item {item.id}"
                _require(item.id not in item_ids, f"{where}: id used twice")
                item_ids.add(item.id)
                _require(item.source in source_ids, f"{where}: unknown source {item.source!r}")
                _resolve_shared(self, item, where)
                total += item.points
            _require(
                abs(total - dimension.points) < POINTS_TOLERANCE,
                f"dimension {dimension.id}: items add up to {total:g} points, the dimension has {dimension.points:g}",
            )
        group_ids = {g.id for g in self.scenario_groups}
        scenario_ids: set[str] = set()
        for scenario in self.scenarios:
            _require(scenario.id not in scenario_ids, f"scenario {scenario.id}: id used twice")
            scenario_ids.add(scenario.id)
            _require(scenario.group in group_ids, f"scenario {scenario.id}: unknown group {scenario.group!r}")
            _require(scenario.source in source_ids, f"scenario {scenario.id}: unknown source {scenario.source!r}")
        levels = [t.level for t in self.level_rule.levels]
        _require(levels == list(range(1, len(levels) + 1)), "level_rule.levels: levels must be 1, 2, 3 ... in order")
        _require(
            [s.level for s in self.scenario_levels] == levels,
            "scenario_levels: must name the same levels as level_rule",
        )
        previous: LevelThreshold | None = None
        for threshold in self.level_rule.levels:
            _require(
                threshold.min_scenarios <= len(self.scenarios)
                and threshold.min_binding <= sum(s.binding for s in self.scenarios),
                f"level {threshold.level}: needs more scenarios than the index has",
            )
            if previous is not None:
                _require(
                    threshold.min_score >= previous.min_score
                    and threshold.min_scenarios >= previous.min_scenarios
                    and threshold.min_binding >= previous.min_binding,
                    f"level {threshold.level}: thresholds must not be lower than level {previous.level}'s",
                )
            previous = threshold
        return self

    # -- look-ups ---------------------------------------------------------------------------------
    @property
    def items(self) -> list[Item]:
        return [item for dimension in self.dimensions for item in dimension.items]

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    def scenario(self, scenario_id: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.id == scenario_id), None)

    @property
    def max_level(self) -> int:
        return len(self.level_rule.levels)

    def threshold(self, level: int) -> LevelThreshold:
        return self.level_rule.levels[level - 1]

    def level_label(self, level: int) -> Text:
        return self.threshold(level).label if level >= 1 else self.level_rule.not_reached

    @property
    def max_score(self) -> float:
        return sum(item.max_points for item in self.items)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _resolve_shared(index: AssessmentIndex, item: Item, where: str) -> None:
    """Replace a named band/option set by its list and check the item has what its kind needs."""
    if isinstance(item.bands, str):
        _require(item.bands in index.band_sets, f"{where}: unknown band set {item.bands!r}")
        item.bands = [b.model_copy() for b in index.band_sets[item.bands]]
    if isinstance(item.options, str):
        _require(item.options in index.option_sets, f"{where}: unknown option set {item.options!r}")
        item.options = [o.model_copy() for o in index.option_sets[item.options]]
    if item.kind is ItemKind.BAND:
        _require(bool(item.bands), f"{where}: a band item needs bands")
        bands = item.band_list
        for before, after in itertools.pairwise(bands):
            _require(
                before.upper == after.lower, f"{where}: bands must be contiguous ({before.upper:g} != {after.lower:g})"
            )
        _require(all(b.lower < b.upper for b in bands), f"{where}: every band needs from < to")
    else:
        _require(bool(item.options), f"{where}: a {item.kind.value} item needs options")
        ids = [o.id for o in item.option_list]
        _require(len(ids) == len(set(ids)), f"{where}: option ids must be unique")
        if item.kind is ItemKind.CHOICE:
            _require(all(o.share is not None for o in item.option_list), f"{where}: every choice option needs a share")
        else:
            _require(all(o.points is not None for o in item.option_list), f"{where}: every multi option needs points")


def parse_index(data: Any, name: str = "index") -> AssessmentIndex:
    """Validate already-loaded YAML data; a problem becomes one IndexFileError line naming the field."""
    try:
        return AssessmentIndex.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(top)"
        raise IndexFileError(f"{name}: {where}: {first.get('msg', 'invalid')}") from None


def load_index_file(path: Path) -> AssessmentIndex:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IndexFileError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise IndexFileError(f"{path}: not valid YAML: {exc}") from None
    return parse_index(data, str(path.name))


def available_indexes() -> list[str]:
    return sorted(p.stem for p in INDEXES_DIR.glob("*.yaml"))


@cache
def load_index(index_id: str = DEFAULT_INDEX_ID) -> AssessmentIndex:
    """The index shipped as `indexes/<index_id>.yaml` (cached: parsed once per process)."""
    if index_id not in available_indexes():
        raise IndexFileError(f"unknown assessment index {index_id!r}; available: {', '.join(available_indexes())}")
    return load_index_file(INDEXES_DIR / f"{index_id}.yaml")
