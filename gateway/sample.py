"""The one value type that flows from every connector to every sink.

Everything after a connector speaks only `Sample`s: the protocol details stay in the
connector, the delivery details stay in the sink. A read cycle may travel as a
`SampleBlock` (columns) and a batch as a `SampleChain`; both are sequences of `Sample`s.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar, overload

Value = bool | int | float | str | None
T = TypeVar("T")


class Quality(StrEnum):
    """OPC UA style quality, reduced to the three classes an operator understands."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class Sample:
    """One observed value of one tag.

    `tag` is the full ISA-95 path `enterprise/site/area/line/machine/tag`;
    `ts_ns` is the source timestamp in UTC nanoseconds; `reason` explains a
    quality other than good in plain language ("timeout after 1.0 s", "Modbus
    exception 2: illegal data address").
    """

    tag: str
    value: Value
    ts_ns: int
    quality: Quality = Quality.GOOD
    reason: str = ""

    @property
    def machine_path(self) -> str:
        """The path of the machine the tag belongs to (everything before the last segment)."""
        return self.tag.rsplit("/", 1)[0]

    @property
    def tag_name(self) -> str:
        """The last path segment: the tag's own name on its machine."""
        return self.tag.rsplit("/", 1)[-1]


def now_ns() -> int:
    """Wall-clock time in UTC nanoseconds, the timestamp unit of every Sample."""
    return time.time_ns()


def _equal_as_lists(self: Sequence[Sample], other: object) -> bool:
    """Column forms compare equal to any sequence of the same samples (a list in a test, say)."""
    if not isinstance(other, Sequence) or isinstance(other, str | bytes):
        return NotImplemented
    return len(self) == len(other) and list(self) == list(other)


class SampleBlock(Sequence[Sample]):
    """Good samples of one read as columns: tag paths, values, one source timestamp.

    A Modbus read of 100 registers gives 100 values that share a timestamp and good
    quality. Building 100 `Sample` objects only to take them apart again in the buffer
    and the sinks was about a third of the gateway's Python time, so the hot path
    (connector -> buffer -> sinks) passes the columns on and reads them directly. Everything
    else sees an ordinary sequence of `Sample`s, built when it is read.

    Treat it as immutable: `paths` is usually the connector's cached tuple, shared by
    every block of that read.
    """

    __slots__ = ("paths", "ts_ns", "values")

    def __init__(self, paths: tuple[str, ...], values: list[Value], ts_ns: int) -> None:
        if len(paths) != len(values):
            raise ValueError(f"{len(paths)} tag paths for {len(values)} values")
        self.paths, self.values, self.ts_ns = paths, values, ts_ns

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> SampleBlock: ...
    def __getitem__(self, index: int | slice) -> Sample | SampleBlock:
        if isinstance(index, slice):
            if index.step is None and not index.start and (index.stop is None or index.stop >= len(self.values)):
                return self  # the whole block (a forwarder taking a stored segment): no copy
            return SampleBlock(self.paths[index], self.values[index], self.ts_ns)
        return Sample(self.paths[index], self.values[index], self.ts_ns)

    def __iter__(self) -> Iterator[Sample]:
        return map(Sample, self.paths, self.values, itertools.repeat(self.ts_ns, len(self.values)))

    __eq__ = _equal_as_lists
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SampleBlock({list(self)!r})"


class SampleChain(Sequence[Sample]):
    """Several sample sequences read as one, without copying (a forwarder's batch of stored
    segments, a read cycle of several reads). `parts` keeps each part's own form, so a
    consumer with a fast path for `SampleBlock`s still finds them (`parts_of`)."""

    __slots__ = ("_ends", "parts")

    def __init__(self, parts: Iterable[Sequence[Sample]]) -> None:
        self.parts = [p for p in parts if len(p)]
        self._ends = list(itertools.accumulate(map(len, self.parts)))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> SampleChain: ...
    def __getitem__(self, index: int | slice) -> Sample | SampleChain:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return SampleChain([list(self)[index]])
            parts, begin = [], 0
            for part, end in zip(self.parts, self._ends, strict=True):
                if end > start and begin < stop:
                    parts.append(part[max(0, start - begin) : min(len(part), stop - begin)])
                begin = end
            return SampleChain(parts)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("sample index out of range")
        i = bisect.bisect_right(self._ends, index)
        return self.parts[i][index - (self._ends[i - 1] if i else 0)]

    def __iter__(self) -> Iterator[Sample]:
        return itertools.chain.from_iterable(self.parts)

    __eq__ = _equal_as_lists
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SampleChain({list(self)!r})"


def parts_of(samples: Sequence[Sample]) -> list[Sequence[Sample]]:
    """The parts of a `SampleChain` (each possibly a `SampleBlock`), or `[samples]`."""
    return samples.parts if samples.__class__ is SampleChain else [samples]  # type: ignore[attr-defined]


def chain_samples(parts: Iterable[Sequence[Sample]]) -> Sequence[Sample]:
    """One sequence of `parts`: the part itself when there is only one."""
    kept = [p for p in parts if len(p)]
    return kept[0] if len(kept) == 1 else SampleChain(kept)


class PerRead(Generic[T]):
    """What a sink works out once per read layout (a `SampleBlock`'s `paths`): its series, its
    metrics, its payload template. Keyed by the paths tuple (a connector reuses one per read),
    bounded: beyond `max_layouts` distinct layouts the cache starts over."""

    __slots__ = ("_build", "_cache", "max_layouts")

    def __init__(self, build: Callable[[tuple[str, ...]], T], max_layouts: int = 4096) -> None:
        self._build, self.max_layouts = build, max_layouts
        self._cache: dict[tuple[str, ...], T] = {}

    def __call__(self, paths: tuple[str, ...]) -> T:
        try:
            return self._cache[paths]
        except KeyError:
            if len(self._cache) >= self.max_layouts:
                self._cache.clear()
            built = self._cache[paths] = self._build(paths)
            return built
