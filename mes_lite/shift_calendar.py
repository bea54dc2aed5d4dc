"""Expand a shift calendar into concrete spans: planned operation time and planned down time.

Pure: shifts and breaks are wall-clock times in the site's time zone (DST handled by zoneinfo),
holidays are local dates, planned stops are absolute spans. A shift whose end is not after its
start runs over midnight and belongs to the day it starts on (a holiday cancels the shifts that
start on it). With no shifts at all, the whole window is planned (a 24/7 plant).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from mes_lite.spans import NS_PER_S, Span, intersect, normalise, subtract, total_ns


@dataclass(frozen=True)
class BreakRule:
    start: dt.time
    end: dt.time


@dataclass(frozen=True)
class ShiftRule:
    name: str
    start: dt.time
    end: dt.time
    weekdays: str = "1234567"  # ISO weekdays on which the shift starts
    breaks: tuple[BreakRule, ...] = ()


@dataclass(frozen=True)
class ShiftOccurrence:
    name: str
    day: dt.date
    span: Span
    breaks: tuple[Span, ...] = ()


@dataclass(frozen=True)
class CalendarSpans:
    """A window's calendar: planned operation time (POT), planned down time inside it (PDOT), PBT."""

    window: Span
    planned_operation: list[Span]
    planned_down: list[Span]
    shifts: list[ShiftOccurrence] = field(default_factory=list)

    @property
    def planned_busy(self) -> list[Span]:
        return subtract(self.planned_operation, self.planned_down)

    @property
    def planned_operation_s(self) -> float:
        return total_ns(self.planned_operation) / NS_PER_S

    @property
    def planned_down_s(self) -> float:
        return total_ns(self.planned_down) / NS_PER_S

    @property
    def planned_busy_s(self) -> float:
        return total_ns(self.planned_busy) / NS_PER_S

    def edges(self) -> list[int]:
        """Every shift, break and planned-stop boundary strictly inside the window: where intervals are split."""
        points = set()
        for spans in (self.planned_operation, self.planned_down):
            for s in spans:
                points.update((s.start_ns, s.end_ns))
        return sorted(p for p in points if self.window.start_ns < p < self.window.end_ns)


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000


def _local_span(day: dt.date, start: dt.time, end: dt.time, tz: ZoneInfo) -> Span:
    begin = dt.datetime.combine(day, start, tz)
    finish_day = day if end > start else day + dt.timedelta(days=1)
    finish = dt.datetime.combine(finish_day, end, tz)
    return Span(_ns(begin), _ns(finish))


def shift_occurrences(
    shifts: Sequence[ShiftRule], window: Span, tz_name: str = "UTC", holidays: Iterable[dt.date] = ()
) -> list[ShiftOccurrence]:
    """Every occurrence of every shift that overlaps the window (not clipped)."""
    tz = ZoneInfo(tz_name)
    holiday_set = set(holidays)
    first = dt.datetime.fromtimestamp(window.start_ns / NS_PER_S, tz).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(window.end_ns / NS_PER_S, tz).date()
    result = []
    day = first
    while day <= last:
        if day not in holiday_set:
            for shift in shifts:
                if str(day.isoweekday()) not in shift.weekdays:
                    continue
                span = _local_span(day, shift.start, shift.end, tz)
                if span.end_ns <= window.start_ns or span.start_ns >= window.end_ns:
                    continue
                breaks = []
                for rule in shift.breaks:
                    # a break belongs to its shift: if it starts before the shift's start it is on the next day
                    break_day = day if rule.start >= shift.start else day + dt.timedelta(days=1)
                    breaks.append(_local_span(break_day, rule.start, rule.end, tz))
                result.append(ShiftOccurrence(shift.name, day, span, tuple(intersect(breaks, [span]))))
        day += dt.timedelta(days=1)
    return sorted(result, key=lambda o: o.span)


def expand_calendar(
    shifts: Sequence[ShiftRule],
    window: Span,
    tz_name: str = "UTC",
    holidays: Iterable[dt.date] = (),
    planned_stops: Iterable[Span] = (),
) -> CalendarSpans:
    """Planned operation and planned down time of `window`; no shifts means the plant runs 24/7."""
    if not shifts:
        occurrences: list[ShiftOccurrence] = []
        operation = [window]
    else:
        occurrences = shift_occurrences(shifts, window, tz_name, holidays)
        operation = intersect((o.span for o in occurrences), [window])
    breaks = [b for o in occurrences for b in o.breaks]
    down = intersect(normalise([*breaks, *planned_stops]), operation)
    return CalendarSpans(window=window, planned_operation=operation, planned_down=down, shifts=occurrences)
