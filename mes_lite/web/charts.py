"""Chart geometry for server-rendered SVG: a state timeline (Gantt), bars with a target line, a Pareto.

Pure functions from data to rectangles and points in a fixed viewBox; the templates draw them.
Drawing on the server keeps the Pi free of a JavaScript chart bundle and makes the charts print
and read without scripts; each chart also has a table of its numbers for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GanttBar:
    x: float
    width: float
    state_key: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


def gantt(
    intervals: Sequence[tuple[int, int, str]], window_start_ns: int, window_end_ns: int, width: float
) -> list[GanttBar]:
    """(start_ns, end_ns, state_key) clipped to the window and scaled to `width`; nothing outside it."""
    span = window_end_ns - window_start_ns
    if span <= 0 or width <= 0:
        return []
    bars = []
    for start, end, key in sorted(intervals):
        start, end = max(start, window_start_ns), min(end, window_end_ns)
        if end <= start:
            continue
        x = (start - window_start_ns) / span * width
        bars.append(GanttBar(x, (end - start) / span * width, key, start, end))
    return bars


def time_ticks(
    window_start_ns: int,
    window_end_ns: int,
    width: float,
    step_s: int,
    label_of: callable,  # type: ignore[valid-type]
) -> list[Tick]:
    """A tick every `step_s` seconds aligned to whole steps (UTC-aligned; plant offsets are whole hours)."""
    span = window_end_ns - window_start_ns
    if span <= 0 or step_s <= 0:
        return []
    step_ns = step_s * 1_000_000_000
    first = -(-window_start_ns // step_ns) * step_ns
    ticks = []
    at = first
    while at <= window_end_ns and len(ticks) < 100:
        ticks.append(Tick((at - window_start_ns) / span * width, label_of(at)))
        at += step_ns
    return ticks


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: float | None
    label: str


def bars(values: Sequence[tuple[str, float | None]], width: float, height: float, max_value: float = 1.0) -> list[Bar]:
    """Vertical bars for ratios (0..max_value); a missing value is a zero-height bar that keeps its slot."""
    if not values or width <= 0:
        return []
    slot = width / len(values)
    gap = min(slot * 0.2, 12)
    result = []
    for index, (label, value) in enumerate(values):
        clipped = 0.0 if value is None else max(0.0, min(value, max_value))
        bar_height = clipped / max_value * height if max_value else 0.0
        result.append(Bar(index * slot + gap / 2, height - bar_height, slot - gap, bar_height, value, label))
    return result


@dataclass(frozen=True)
class ParetoChart:
    bars: list[Bar]
    cumulative: list[tuple[float, float]]  # points of the cumulative-share line


def pareto(items: Sequence[tuple[str, float, float]], width: float, height: float) -> ParetoChart:
    """(label, duration_s, cumulative_share) largest first: bars scaled to the largest, line 0..100 %."""
    if not items:
        return ParetoChart([], [])
    largest = max(duration for _, duration, _ in items) or 1.0
    slot = width / len(items)
    gap = min(slot * 0.2, 16)
    chart_bars = []
    points = []
    for index, (label, duration, cumulative) in enumerate(items):
        bar_height = duration / largest * height
        x = index * slot + gap / 2
        chart_bars.append(Bar(x, height - bar_height, slot - gap, bar_height, duration, label))
        points.append((index * slot + slot / 2, height - max(0.0, min(cumulative, 1.0)) * height))
    return ParetoChart(chart_bars, points)
