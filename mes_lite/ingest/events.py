"""The pure core of the ingest: from UNS messages to state and count events.

- `parse_message` reads `uns-json` (one sample per tag topic) and `uns-batch` (`.../_batch`).
- `ReorderBuffer` holds messages for a short window and releases them in timestamp order, so
  out-of-order delivery inside the window is harmless; exact duplicates (same tag and ts_ns)
  are dropped there.
- `MachineTranslator` keeps one cursor per tag (last ts_ns, last counter value): anything not
  newer than the cursor is a duplicate or too late and is ignored, so QoS-1 redelivery and a
  replay after an outage count nothing twice. Counter steps go through `counter_step`: a 32-bit
  rollover counts the parts across the wrap, a reset (or an implausible jump) counts nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edge_config.schema import Role

BATCH_TAG = "_batch"
COUNTER_ROLES = frozenset({Role.TOTAL_COUNT, Role.GOOD_COUNT, Role.REJECT_COUNT})


class PayloadError(ValueError):
    """A message the ingest cannot read; it is logged and skipped."""


@dataclass(frozen=True, slots=True)
class TagMessage:
    tag_path: str  # enterprise/site/area/line/machine/tag
    value: Any
    ts_ns: int
    quality: str = "good"

    @property
    def machine_path(self) -> str:
        return self.tag_path.rsplit("/", 1)[0]

    @property
    def tag(self) -> str:
        return self.tag_path.rsplit("/", 1)[1]


def parse_message(topic_path: str, payload: bytes) -> list[TagMessage]:
    """`topic_path` is the tag path the topic stands for (`.../_batch` for a batch)."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PayloadError(f"{topic_path}: not JSON ({e})") from None
    if not isinstance(document, dict):
        raise PayloadError(f"{topic_path}: expected a JSON object")
    if topic_path.rsplit("/", 1)[-1] == BATCH_TAG:
        machine = topic_path.rsplit("/", 1)[0]
        samples = document.get("samples")
        if not isinstance(samples, list):
            raise PayloadError(f"{topic_path}: a batch needs a 'samples' list")
        return [_sample(f"{machine}/{s.get('tag')}", s, topic_path) for s in samples if isinstance(s, dict)]
    return [_sample(topic_path, document, topic_path)]


def _sample(tag_path: str, document: Mapping[str, Any], where: str) -> TagMessage:
    ts_ns = document.get("ts_ns")
    if not isinstance(ts_ns, int) or isinstance(ts_ns, bool) or ts_ns <= 0:
        raise PayloadError(f"{where}: 'ts_ns' must be a positive integer (UTC nanoseconds)")
    if "value" not in document:
        raise PayloadError(f"{where}: no 'value'")
    return TagMessage(tag_path, document["value"], ts_ns, str(document.get("quality", "good")))


class ReorderBuffer:
    """Holds messages `window_s` (by arrival) and releases them sorted by timestamp.

    A message is released once it has waited the window, or once a message `window_s` newer (by
    source time) has arrived. Duplicates (same tag and ts_ns) seen within the last `memory`
    messages are dropped.
    """

    def __init__(self, window_s: float, memory: int = 100_000) -> None:
        self.window_ns = int(window_s * 1e9)
        self.memory = memory
        self._pending: list[tuple[int, str, float, TagMessage]] = []
        self._seen: dict[tuple[str, int], None] = {}
        self._max_ts_ns = 0
        self.duplicates = 0

    def push(self, message: TagMessage, arrived_s: float | None = None) -> None:
        key = (message.tag_path, message.ts_ns)
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen[key] = None
        if len(self._seen) > self.memory:
            for old in list(self._seen)[: self.memory // 10]:
                del self._seen[old]
        self._max_ts_ns = max(self._max_ts_ns, message.ts_ns)
        self._pending.append(
            (message.ts_ns, message.tag_path, time.monotonic() if arrived_s is None else arrived_s, message)
        )

    def release(self, now_s: float | None = None, everything: bool = False) -> list[TagMessage]:
        now_s = time.monotonic() if now_s is None else now_s
        window_s = self.window_ns / 1e9
        ready, keep = [], []
        for entry in self._pending:
            ts_ns, _tag, arrived, _msg = entry
            if everything or now_s - arrived >= window_s or ts_ns <= self._max_ts_ns - self.window_ns:
                ready.append(entry)
            else:
                keep.append(entry)
        self._pending = keep
        ready.sort(key=lambda e: (e[0], e[1]))
        return [e[3] for e in ready]

    def __len__(self) -> int:
        return len(self._pending)


class StepKind(StrEnum):
    FIRST = "first"  # first value seen: a baseline, nothing counted
    NORMAL = "normal"
    ROLLOVER = "rollover"  # wrapped past 2**bits: the parts across the wrap count
    RESET = "reset"  # went back (counter cleared): nothing counted, new baseline
    GLITCH = "glitch"  # jumped up implausibly far: nothing counted, new baseline


@dataclass(frozen=True)
class CounterStep:
    delta: int
    kind: StepKind


def counter_step(previous: int | None, current: int, max_delta: int, bits: int = 32) -> CounterStep:
    """Parts produced between two readings of a cumulative counter."""
    if previous is None:
        return CounterStep(0, StepKind.FIRST)
    if current >= previous:
        delta = current - previous
        return CounterStep(delta, StepKind.NORMAL) if delta <= max_delta else CounterStep(0, StepKind.GLITCH)
    wrapped = current + (1 << bits) - previous
    if 0 < wrapped <= max_delta and previous >= (1 << bits) - max_delta:
        return CounterStep(wrapped, StepKind.ROLLOVER)
    return CounterStep(0, StepKind.RESET)


@dataclass(frozen=True, slots=True)
class StateEvent:
    machine_path: str
    state: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class CountEvent:
    machine_path: str
    ts_ns: int
    produced_qty: int
    reject_qty: int
    source_key: str


@dataclass(frozen=True, slots=True)
class CycleTimeEvent:
    machine_path: str
    ideal_cycle_time_s: float
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    tag_path: str
    ts_ns: int
    kind: str  # duplicate, late, bad_quality, bad_value, reset, glitch, rollover
    detail: str = ""


Event = StateEvent | CountEvent | CycleTimeEvent | Anomaly


@dataclass
class TagCursor:
    last_ts_ns: int = 0
    last_counter: int | None = None


@dataclass(frozen=True)
class TagBinding:
    """One ingested tag: its path, OEE role and (for states) the enum map of raw codes."""

    tag_path: str
    role: Role
    value_map: Mapping[int, str] | None = None


@dataclass
class MachineTranslator:
    """Turns one machine's tag messages (in timestamp order) into events; holds its cursors."""

    machine_path: str
    bindings: Mapping[str, TagBinding]  # by tag path
    max_counter_delta: int = 100_000
    counter_bits: int = 32
    cursors: dict[str, TagCursor] = field(default_factory=dict)

    @property
    def has_total(self) -> bool:
        return any(b.role == Role.TOTAL_COUNT for b in self.bindings.values())

    def state_name(self, binding: TagBinding, value: Any) -> str | None:
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (int, float)) and binding.value_map is not None:
            return binding.value_map.get(int(value))
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
        if isinstance(value, (int, float)):
            return str(int(value))
        return None

    def apply(self, message: TagMessage) -> list[Event]:
        binding = self.bindings.get(message.tag_path)
        if binding is None:
            return []
        cursor = self.cursors.setdefault(message.tag_path, TagCursor())
        if message.ts_ns <= cursor.last_ts_ns:
            kind = "duplicate" if message.ts_ns == cursor.last_ts_ns else "late"
            return [Anomaly(message.tag_path, message.ts_ns, kind)]
        if message.quality != "good":
            return [Anomaly(message.tag_path, message.ts_ns, "bad_quality", str(message.quality))]
        cursor.last_ts_ns = message.ts_ns
        if binding.role == Role.STATE:
            name = self.state_name(binding, message.value)
            if name is None:
                return [Anomaly(message.tag_path, message.ts_ns, "bad_value", repr(message.value))]
            return [StateEvent(self.machine_path, name, message.ts_ns)]
        if binding.role == Role.IDEAL_CYCLE_TIME:
            if isinstance(message.value, (int, float)) and not isinstance(message.value, bool) and message.value > 0:
                return [CycleTimeEvent(self.machine_path, float(message.value), message.ts_ns)]
            return [Anomaly(message.tag_path, message.ts_ns, "bad_value", repr(message.value))]
        if binding.role in COUNTER_ROLES:
            return self._counter(binding, cursor, message)
        return []

    def _counter(self, binding: TagBinding, cursor: TagCursor, message: TagMessage) -> list[Event]:
        value = message.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            return [Anomaly(message.tag_path, message.ts_ns, "bad_value", repr(value))]
        step = counter_step(cursor.last_counter, int(value), self.max_counter_delta, self.counter_bits)
        cursor.last_counter = int(value)
        events: list[Event] = []
        if step.kind in (StepKind.RESET, StepKind.GLITCH, StepKind.ROLLOVER):
            events.append(Anomaly(message.tag_path, message.ts_ns, step.kind.value, f"now {int(value)}"))
        if step.delta <= 0:
            return events
        key = f"{message.tag_path}@{message.ts_ns}"
        if binding.role == Role.TOTAL_COUNT:
            events.append(CountEvent(self.machine_path, message.ts_ns, step.delta, 0, key))
        elif binding.role == Role.REJECT_COUNT:
            # with a total counter the rejects are already in the total; without, they add to it
            produced = 0 if self.has_total else step.delta
            events.append(CountEvent(self.machine_path, message.ts_ns, produced, step.delta, key))
        elif binding.role == Role.GOOD_COUNT and not self.has_total:
            events.append(CountEvent(self.machine_path, message.ts_ns, step.delta, 0, key))
        return events


def translators_for(
    bindings: Iterable[TagBinding], max_counter_delta: int = 100_000, counter_bits: int = 32
) -> dict[str, MachineTranslator]:
    """One translator per machine path."""
    by_machine: dict[str, dict[str, TagBinding]] = {}
    for binding in bindings:
        by_machine.setdefault(binding.tag_path.rsplit("/", 1)[0], {})[binding.tag_path] = binding
    return {
        machine: MachineTranslator(machine, tags, max_counter_delta, counter_bits)
        for machine, tags in by_machine.items()
    }
