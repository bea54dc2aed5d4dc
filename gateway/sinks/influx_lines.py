"""Samples to InfluxDB line protocol (pure functions, no I/O).

Mapping (one measurement per machine, the hierarchy as tags, one field per tag):

    press01,area=stamping,enterprise=acme,line=line1,machine=press01,site=dongguan parts=1234i,temp=71.5 1764157080123456789

- measurement = machine name; tags enterprise, site, area, line, machine (sorted by key,
  as InfluxDB stores them), plus `quality=uncertain|bad` when the quality is not good;
- field = the tag's own name; samples of one machine with the same timestamp and quality
  share one line;
- field types are fixed per tag so that a series never changes type: booleans are
  booleans, enum-mapped and text tags are strings, Modbus integer tags without scale or
  offset are integers (`i`), every other number is a float (an integer value of a float
  tag is written `42.0`, never `42i`);
- timestamp = the sample's source time in nanoseconds, so a replay writes the same
  series + time again and InfluxDB overwrites instead of duplicating;
- a sample without a value (a bad read) and NaN / infinity, which line protocol cannot
  carry, write no field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

from edge_config.schema import DataType, ModbusTag, SiteConfig
from gateway.sample import PerRead, Quality, Sample, SampleBlock, parts_of

INTEGER_TYPES = {
    DataType.INT16,
    DataType.UINT16,
    DataType.INT32,
    DataType.UINT32,
    DataType.INT64,
    DataType.UINT64,
}


class FieldKind(StrEnum):
    FLOAT = "float"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"


def field_kinds(site: SiteConfig) -> dict[str, FieldKind]:
    """The field type of each configured tag whose configuration fixes it, by tag path."""
    kinds: dict[str, FieldKind] = {}
    for device in site.devices:
        for name, tag in device.tags.items():
            path = site.tag_path(device, name)
            if tag.map:
                kinds[path] = FieldKind.STRING
            elif isinstance(tag, ModbusTag):
                if tag.type is DataType.BOOL or tag.parsed_address.bit is not None:
                    kinds[path] = FieldKind.BOOLEAN
                elif tag.type is DataType.STRING:
                    kinds[path] = FieldKind.STRING
                elif tag.type in INTEGER_TYPES and tag.scale == 1.0 and tag.offset == 0.0:
                    kinds[path] = FieldKind.INTEGER
                else:
                    kinds[path] = FieldKind.FLOAT
    return kinds


def _escape_key(text: str) -> str:
    """Measurement names, tag keys/values and field keys: escape commas, spaces and '='."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ").replace("=", "\\=")


def _field_value(value: object, kind: FieldKind | None) -> str | None:
    """The line-protocol text of a field value, or None when it cannot be written."""
    if value is None:
        return None
    if isinstance(value, bool) and kind in (None, FieldKind.BOOLEAN):
        return "true" if value else "false"
    if isinstance(value, str) or kind is FieldKind.STRING:
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, int | float):
        if kind is FieldKind.INTEGER and (isinstance(value, int) or float(value).is_integer()):
            return f"{int(value)}i"
        number = float(value)
        return repr(number) if math.isfinite(number) else None
    return None


class LineEncoder:
    """Encodes samples to line protocol, caching each series' measurement-and-tags prefix."""

    def __init__(self, kinds: dict[str, FieldKind] | None = None) -> None:
        self.kinds = kinds or {}
        self._series: dict[tuple[str, Quality], str] = {}
        self._layouts = PerRead(self._block_layout)

    def series(self, machine_path: str, quality: Quality) -> str:
        key = (machine_path, quality)
        prefix = self._series.get(key)
        if prefix is None:
            levels = machine_path.split("/")
            if len(levels) == 5:
                enterprise, site, area, line, machine = levels
                tags = {"area": area, "enterprise": enterprise, "line": line, "machine": machine, "site": site}
            else:  # not an ISA-95 path (should not happen after config validation): keep it whole
                machine, tags = levels[-1], {"path": machine_path}
            if quality is not Quality.GOOD:
                tags["quality"] = str(quality)
            tag_text = ",".join(f"{k}={_escape_key(v)}" for k, v in sorted(tags.items()))
            prefix = self._series[key] = f"{_escape_key(machine)},{tag_text}"
        return prefix

    def lines(self, samples: Sequence[Sample]) -> tuple[list[str], int]:
        """Line-protocol lines for `samples`, and how many samples wrote no field.

        A `SampleBlock` of one machine (a read's columns) goes in as one point without a
        `Sample` per value; the lines are the same as for the samples one by one.
        """
        points: dict[tuple[str, Quality, int], dict[str, str]] = {}
        skipped = 0
        for part in parts_of(samples):
            layout = self._layouts(part.paths) if part.__class__ is SampleBlock else None  # type: ignore[attr-defined]
            if layout is not None:
                texts = layout.texts(part.values)  # type: ignore[attr-defined]
                written: Iterable[tuple[str, str]] = zip(layout.keys, texts, strict=True)  # type: ignore[assignment]
                if None in texts:
                    written = [(k, t) for k, t in written if t is not None]
                    skipped += len(texts) - len(written)
                if written and texts:
                    points.setdefault((layout.machine_path, Quality.GOOD, part.ts_ns), {}).update(written)  # type: ignore[attr-defined]
                continue
            for sample in part:
                machine_path, tag = sample.tag.rsplit("/", 1)
                text = _field_value(sample.value, self.kinds.get(sample.tag))
                if text is None:
                    skipped += 1
                    continue
                points.setdefault((machine_path, sample.quality, sample.ts_ns), {})[_escape_key(tag)] = text
        lines = [
            f"{self.series(machine_path, quality)} {','.join(f'{k}={v}' for k, v in fields.items())} {ts_ns}"
            for (machine_path, quality, ts_ns), fields in points.items()
        ]
        return lines, skipped

    def _block_layout(self, paths: tuple[str, ...]) -> _BlockLayout | None:
        """Series, field keys and kinds of a block whose tags belong to one machine, else None."""
        split = [path.rsplit("/", 1) for path in paths]
        machines = {machine for machine, _ in split}
        if len(machines) != 1:
            return None
        return _BlockLayout(machines.pop(), [_escape_key(tag) for _, tag in split], [self.kinds.get(p) for p in paths])


class _BlockLayout:
    """What a block of one machine writes: its series, escaped field keys and field kinds."""

    __slots__ = ("all_floats", "all_integers", "keys", "kinds", "machine_path")

    def __init__(self, machine_path: str, keys: list[str], kinds: list[FieldKind | None]) -> None:
        self.machine_path, self.keys, self.kinds = machine_path, keys, kinds
        self.all_integers = all(kind is FieldKind.INTEGER for kind in kinds)
        self.all_floats = all(kind is FieldKind.FLOAT for kind in kinds)

    def texts(self, values: list[object]) -> list[str | None]:
        """Each value's field text (None: writes no field), in C-level steps for plain numbers."""
        if self.all_integers or self.all_floats:
            types = set(map(type, values))
            if self.all_integers and types == {int}:
                return list(map("{}i".format, values))
            if self.all_floats and types <= {int, float} and all(map(math.isfinite, values)):  # type: ignore[arg-type]
                return list(map(repr, map(float, values)))  # type: ignore[arg-type]
        return list(map(_field_value, values, self.kinds))
