"""Half-open time spans [start_ns, end_ns) and the set arithmetic the calendar and OEE need.

Pure functions on sorted, non-overlapping lists of spans ("span sets"); integers in UTC
nanoseconds, so results are exact and the same on every database.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True, order=True)
class Span:
    start_ns: int
    end_ns: int

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def duration_s(self) -> float:
        return self.duration_ns / NS_PER_S

    def clip(self, start_ns: int, end_ns: int) -> Span | None:
        """The part of this span inside [start_ns, end_ns), or None."""
        s, e = max(self.start_ns, start_ns), min(self.end_ns, end_ns)
        return Span(s, e) if e > s else None


def normalise(spans: Iterable[Span]) -> list[Span]:
    """Sorted, merged, without empty spans: the canonical form of a span set."""
    result: list[Span] = []
    for span in sorted(s for s in spans if s.end_ns > s.start_ns):
        if result and span.start_ns <= result[-1].end_ns:
            last = result[-1]
            result[-1] = Span(last.start_ns, max(last.end_ns, span.end_ns))
        else:
            result.append(span)
    return result


def subtract(spans: Iterable[Span], holes: Iterable[Span]) -> list[Span]:
    """`spans` minus `holes` (both any iterables; the result is normalised)."""
    holes_n = normalise(holes)
    result: list[Span] = []
    for span in normalise(spans):
        cursor = span.start_ns
        for hole in holes_n:
            if hole.end_ns <= cursor:
                continue
            if hole.start_ns >= span.end_ns:
                break
            if hole.start_ns > cursor:
                result.append(Span(cursor, hole.start_ns))
            cursor = max(cursor, hole.end_ns)
        if cursor < span.end_ns:
            result.append(Span(cursor, span.end_ns))
    return result


def intersect(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    a_n, b_n = normalise(a), normalise(b)
    result: list[Span] = []
    i = j = 0
    while i < len(a_n) and j < len(b_n):
        s = max(a_n[i].start_ns, b_n[j].start_ns)
        e = min(a_n[i].end_ns, b_n[j].end_ns)
        if e > s:
            result.append(Span(s, e))
        if a_n[i].end_ns < b_n[j].end_ns:
            i += 1
        else:
            j += 1
    return result


def total_ns(spans: Iterable[Span]) -> int:
    return sum(s.duration_ns for s in normalise(spans))


def edges(spans: Iterable[Span]) -> list[int]:
    """Every start and end of the span set, sorted: where intervals must be split."""
    return sorted({t for s in normalise(spans) for t in (s.start_ns, s.end_ns)})


def split_at(span: Span, cut_points: Iterable[int]) -> list[Span]:
    """`span` cut at every point strictly inside it; the pieces cover it exactly."""
    cuts = sorted(t for t in set(cut_points) if span.start_ns < t < span.end_ns)
    bounds = [span.start_ns, *cuts, span.end_ns]
    return [Span(a, b) for a, b in itertools.pairwise(bounds)]


def covered(span: Span, span_set: list[Span]) -> bool:
    """True if `span` lies entirely inside the (normalised) span set."""
    return total_ns(intersect([span], span_set)) == span.duration_ns
