"""Unified Namespace topics and JSON payloads (pure functions, no I/O).

Two formats share the topic tree `{enterprise}/{site}/{area}/{line}/{machine}/{tag}`:

- `uns-json`: one message per sample on the tag's own topic, easy to consume, retained
  last value possible, but one MQTT message (and one PUBACK) per value;
- `uns-batch`: one message per machine per delivered batch on the machine's `_batch`
  topic (the template with `{tag}` = `_batch`), a JSON object with many values: this is
  how a Pi publishes 10,000 values/s at QoS 1 without spending its CPU on MQTT framing.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from edge_config.schema import SiteConfig
from gateway.sample import PerRead, Quality, Sample, SampleBlock, parts_of

BATCH_TAG = "_batch"
"""The `{tag}` level of a machine's batch topic (tag names may not start with '_' by this convention)."""

PATH_LEVELS = ("enterprise", "site", "area", "line", "machine", "tag")


def iso_utc_ms(ts_ns: int) -> str:
    """`2026-11-26T11:38:00.123Z`: ISO-8601, UTC, millisecond precision (truncated)."""
    seconds, rest_ns = divmod(ts_ns, 1_000_000_000)
    return f"{_iso_second(seconds)}.{rest_ns // 1_000_000:03d}Z"


@lru_cache(maxsize=64)
def _iso_second(seconds: int) -> str:
    """Formatting a date is the slow part, and a batch's samples share a few seconds."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def path_fields(tag_path: str) -> dict[str, str]:
    """The six ISA-95 levels of `enterprise/site/area/line/machine/tag` by name.

    A path with more levels keeps the extra ones in `tag` (joined by '/'); one with fewer
    raises, since it cannot be placed in the namespace.
    """
    parts = tag_path.split("/", 5)
    if len(parts) != 6:
        raise ValueError(f"tag path {tag_path!r} is not enterprise/site/area/line/machine/tag")
    return dict(zip(PATH_LEVELS, parts, strict=True))


class TopicMapper:
    """Maps tag paths to topics with the configured template, caching each answer.

    The cache matters: the same few hundred tags are mapped thousands of times a second.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self._tag_topics: dict[str, str] = {}
        self.render(dict.fromkeys(PATH_LEVELS, "x"))  # fail at start-up on an unknown placeholder

    def render(self, fields: dict[str, str]) -> str:
        try:
            return self.template.format(**fields)
        except KeyError as e:
            raise ValueError(
                f"topic_template {self.template!r} has an unknown placeholder {e}: use {{{'}, {'.join(PATH_LEVELS)}}}"
            ) from None

    def tag_topic(self, tag_path: str) -> str:
        """The tag's topic; a path that is not six levels is published on itself (never refused:
        a sample the sink cannot place must not block the buffer)."""
        topic = self._tag_topics.get(tag_path)
        if topic is None:
            try:
                topic = self.render(path_fields(tag_path))
            except ValueError:
                topic = tag_path
            self._tag_topics[tag_path] = topic
        return topic

    def batch_topic(self, machine_path: str) -> str:
        """The machine's batch topic: the template with `{tag}` = `_batch`."""
        return self.tag_topic(f"{machine_path}/{BATCH_TAG}")


def units_by_tag_path(site: SiteConfig) -> dict[str, str]:
    """Engineering unit of every configured tag that declares one, keyed by tag path."""
    return {
        site.tag_path(device, name): tag.unit
        for device in site.devices
        for name, tag in device.tags.items()
        if tag.unit
    }


def sample_document(sample: Sample, unit: str | None = None) -> dict[str, Any]:
    """The `uns-json` payload of one sample (before JSON encoding)."""
    doc: dict[str, Any] = {
        "value": sample.value,
        "ts": iso_utc_ms(sample.ts_ns),
        "ts_ns": sample.ts_ns,
        "quality": str(sample.quality),
    }
    if sample.reason:
        doc["reason"] = sample.reason
    if unit:
        doc["unit"] = unit
    return doc


def sample_payload(sample: Sample, unit: str | None = None) -> bytes:
    return encode_document(sample_document(sample, unit))


def batch_documents(samples: Iterable[Sample]) -> dict[str, dict[str, Any]]:
    """`uns-batch` payloads keyed by machine path, samples in delivery order.

    One entry per sample: `{"tag", "value", "ts_ns"}`, plus `quality` and `reason` only when
    the quality is not good (the common case stays small).
    """
    batches: dict[str, dict[str, Any]] = {}
    for sample in samples:
        machine_path, tag = sample.tag.rsplit("/", 1)
        batch = batches.get(machine_path)
        if batch is None:
            batch = batches[machine_path] = {"machine": machine_path, "samples": []}
        entry: dict[str, Any] = {"tag": tag, "value": sample.value, "ts_ns": sample.ts_ns}
        if sample.quality is not Quality.GOOD:
            entry["quality"] = str(sample.quality)
            if sample.reason:
                entry["reason"] = sample.reason
        batch["samples"].append(entry)
    return batches


class BatchEncoder:
    """The `uns-batch` payloads written straight to JSON text, byte for byte what
    `encode_document(batch_documents(...))` gives, at a fraction of its CPU.

    Each entry is assembled from a cached `{"tag":"<name>","value":` prefix; only the value
    is formatted per sample, and the `,"ts_ns":<ts>}` tail and the machine's entry list are
    reused while consecutive samples share them (a read cycle: one machine, one timestamp).
    A `SampleBlock` (one read's columns) is encoded without a Python step per value when
    its tags belong to one machine and its values are plain numbers. This is the gateway's
    hottest loop (benchmarks/gateway_hot_path.py).
    """

    def __init__(self) -> None:
        self._prefixes: dict[str, tuple[str, str]] = {}  # tag path -> (machine path, entry prefix)
        self._layouts = PerRead(self._layout)  # block paths -> (machine, template), or None
        self._heads: dict[str, str] = {}

    def encode(self, samples: Sequence[Sample]) -> dict[str, bytes]:
        entries: dict[str, list[str]] = {}
        for part in parts_of(samples):
            if part.__class__ is SampleBlock and self._encode_block(part, entries):  # type: ignore[arg-type]
                continue
            self._encode_samples(part, entries)
        return {machine: (self._head(machine) + ",".join(items) + "]}").encode() for machine, items in entries.items()}

    def _prefix(self, tag_path: str) -> tuple[str, str]:
        cached = self._prefixes.get(tag_path)
        if cached is None:
            machine_path, tag = tag_path.rsplit("/", 1)
            # interned: one object per machine, so an identity test is an equality test
            cached = self._prefixes[tag_path] = (sys.intern(machine_path), '{"tag":' + json.dumps(tag) + ',"value":')
        return cached

    def _encode_block(self, block: SampleBlock, entries: dict[str, list[str]]) -> bool:
        """One machine's read of plain numbers with one %-format; False to take the per-sample path.

        The block's layout is a template of its entries with `%s` for each value and a NUL
        (which JSON text never contains raw) for the timestamp: `str` of an int or a finite
        float is its JSON text, so one C-level format and one replace write the whole read.
        """
        kinds = set(map(type, block.values))
        if not (kinds == {int} or (kinds <= {int, float} and all(map(math.isfinite, block.values)))):
            return False
        layout = self._layouts(block.paths)
        if layout is None:
            return False
        machine, template = layout
        text = (template % tuple(block.values)).replace("\0", str(block.ts_ns))
        machine_entries = entries.get(machine)
        if machine_entries is None:
            entries[machine] = [text]
        else:
            machine_entries.append(text)
        return True

    def _layout(self, paths: tuple[str, ...]) -> tuple[str, str] | None:
        """(machine, entry template) of a block whose tags belong to one machine, else None."""
        machines = {self._prefix(path)[0] for path in paths}
        if len(machines) != 1:
            return None
        template = ",".join(self._prefix(p)[1].replace("%", "%%") + '%s,"ts_ns":\0}' for p in paths)
        return machines.pop(), template

    def _encode_samples(self, samples: Iterable[Sample], entries: dict[str, list[str]]) -> None:
        good = Quality.GOOD
        last_tag_machine = None  # consecutive samples mostly come from one machine and share a timestamp
        machine_entries: list[str] = []
        last_ts_ns = -1
        ts_tail = ts_end = ""
        prefixes = self._prefixes
        for sample in samples:
            machine_path, prefix = prefixes.get(sample.tag) or self._prefix(sample.tag)
            if machine_path is not last_tag_machine:
                last_tag_machine = machine_path
                machine_entries = entries.get(machine_path)  # type: ignore[assignment]
                if machine_entries is None:
                    machine_entries = entries[machine_path] = []
            text = _value_text(sample.value)
            if sample.ts_ns != last_ts_ns:
                last_ts_ns = sample.ts_ns
                ts_tail = f',"ts_ns":{last_ts_ns}'
                ts_end = ts_tail + "}"
            if sample.quality is good:
                machine_entries.append(prefix + text + ts_end)
            else:
                extra = f',"reason":{json.dumps(sample.reason)}' if sample.reason else ""
                machine_entries.append(f'{prefix}{text}{ts_tail},"quality":"{sample.quality}"{extra}}}')

    def _head(self, machine_path: str) -> str:
        head = self._heads.get(machine_path)
        if head is None:
            head = self._heads[machine_path] = '{"machine":' + json.dumps(machine_path) + ',"samples":['
        return head


def _value_text(value: Any) -> str:
    """One value as JSON text (NaN and infinities are not JSON: null)."""
    cls = value.__class__
    if cls is int:
        return int.__repr__(value)
    if cls is float:
        return float.__repr__(value) if value - value == 0 else "null"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return float.__repr__(value) if value - value == 0 else "null"
    if isinstance(value, int):
        return int.__repr__(value)
    return json.dumps(value)


def encode_document(document: dict[str, Any]) -> bytes:
    """Compact JSON; NaN and infinity are not JSON, so they become null."""
    try:
        return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return json.dumps(_without_non_finite(document), separators=(",", ":")).encode()


def _without_non_finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _without_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_non_finite(v) for v in value]
    return value
