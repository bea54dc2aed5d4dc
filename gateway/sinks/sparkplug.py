"""Sparkplug B 3.0 edge node state: topics, bdSeq, seq, aliases, births and deaths.

This module decides *what* to publish; `gateway.sinks.mqtt.MqttSink` publishes it. It
does no I/O, so every rule below is tested without a broker.

Mapping from the edgefab site:

- group id = the site name (`site.site`): two sites' gateways may share the default
  gateway name `edge1`, and group + edge node must be unique on a broker;
- edge node id = the gateway name; device id = the machine (device) name;
- metric name = the tag name; each metric gets a numeric alias in NBIRTH/DBIRTH, and
  DDATA carries only aliases;
- datatypes come from the tag configuration (Modbus type; scaled values are Double;
  enum-mapped values are String); a tag whose type the configuration does not say
  (OPC UA, derived tags) gets one from its first value (bool Boolean, int Int64,
  float Double, str String).

Sequence rules: bdSeq (0..255) is incremented before each MQTT connection and carried by
that connection's NDEATH (the will) and its NBIRTH. seq is 0 on NBIRTH and incremented
(mod 256) on every later DBIRTH / DDATA / DDEATH of the session. A rebirth (NCMD
`Node Control/Rebirth` = true) republishes NBIRTH (seq 0, same bdSeq) and every DBIRTH.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from edge_config.schema import DataType as TagType
from edge_config.schema import ModbusTag, OpcUaTag, SiteConfig
from gateway.sample import PerRead, Quality, Sample, SampleBlock, Value, parts_of
from gateway.sinks.sparkplug_proto import DataType, Payload

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"

QUALITY_PROPERTY = "Quality"
"""Metric property carrying a quality other than good, with OPC DA codes (the Ignition convention)."""
QUALITY_CODES = {Quality.GOOD: 192, Quality.UNCERTAIN: 64, Quality.BAD: 0}
UNIT_PROPERTY = "engUnit"

_TAG_TYPES = {
    TagType.BOOL: DataType.Boolean,
    TagType.INT16: DataType.Int16,
    TagType.UINT16: DataType.UInt16,
    TagType.INT32: DataType.Int32,
    TagType.UINT32: DataType.UInt32,
    TagType.INT64: DataType.Int64,
    TagType.UINT64: DataType.UInt64,
    TagType.FLOAT32: DataType.Float,
    TagType.FLOAT64: DataType.Double,
    TagType.STRING: DataType.String,
}
_INT32_TYPES = {DataType.Int8, DataType.Int16, DataType.Int32, DataType.UInt8, DataType.UInt16, DataType.UInt32}
_INT64_TYPES = {DataType.Int64, DataType.UInt64, DataType.DateTime}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One MQTT message to publish."""

    topic: str
    payload: bytes
    qos: int
    retain: bool = False


def declared_datatype(tag: ModbusTag | OpcUaTag) -> DataType | None:
    """The Sparkplug datatype the configuration implies, or None when only a value can tell."""
    if tag.map:
        return DataType.String
    if isinstance(tag, ModbusTag):
        if tag.type is TagType.BOOL:
            return DataType.Boolean
        if tag.scale != 1.0 or tag.offset != 0.0:
            return DataType.Double
        return _TAG_TYPES[tag.type]
    return None


def inferred_datatype(value: Value) -> DataType | None:
    if isinstance(value, bool):
        return DataType.Boolean
    if isinstance(value, int):
        return DataType.Int64
    if isinstance(value, float):
        return DataType.Double
    if isinstance(value, str):
        return DataType.String
    return None


_VALUE_FIELDS: dict[DataType, tuple[str, object]] = {
    **{t: ("int_value", 0xFFFF_FFFF) for t in _INT32_TYPES},
    **{t: ("long_value", 0xFFFF_FFFF_FFFF_FFFF) for t in _INT64_TYPES},
    DataType.Float: ("float_value", float),
    DataType.Double: ("double_value", float),
    DataType.Boolean: ("boolean_value", bool),
}


def metric_value(datatype: DataType, value: Value) -> dict[str, object]:
    """The Metric field that carries `value` for `datatype` (`is_null` if it does not fit).

    Signed integers are stored two's complement in the unsigned wire fields, as the
    specification and Tahu do. Returned as keyword arguments, because one
    `metrics.add(**fields)` call costs a third of setting the fields one by one.
    """
    if value is None:
        return {"is_null": True}
    name, convert = _VALUE_FIELDS.get(datatype, ("string_value", str))
    try:
        if isinstance(convert, int):
            return {name: int(value) & convert}
        return {name: convert(value)}  # type: ignore[operator]
    except (TypeError, ValueError, OverflowError):
        return {"is_null": True}


def set_metric_value(metric: object, datatype: DataType, value: Value) -> None:
    """Store `value` in an existing metric (see `metric_value`)."""
    for name, field_value in metric_value(datatype, value).items():
        setattr(metric, name, field_value)


@dataclass
class _Metric:
    name: str
    alias: int
    datatype: DataType
    unit: str | None = None
    last_seen: Sample | tuple[SampleBlock, int] | None = None
    """The last value sent (its DBIRTH shows it): a Sample, or a read block and the value's index,
    so the block path does not build a Sample per value for a rebirth that rarely comes."""

    @property
    def last(self) -> Sample | None:
        seen = self.last_seen
        if seen is None or seen.__class__ is Sample:
            return seen  # type: ignore[return-value]
        block, index = seen  # type: ignore[misc]
        return block[index]


@dataclass
class _Device:
    name: str
    metrics: dict[str, _Metric] = field(default_factory=dict)
    born: bool = False


class SparkplugNode:
    """The state of one Sparkplug edge node (this gateway) across MQTT sessions."""

    def __init__(self, site: SiteConfig, qos: int = 1) -> None:
        self.group_id = site.site.site
        self.edge_node_id = site.gateway.name
        self.qos = qos
        self.bd_seq = -1  # the first session makes it 0
        self.seq = 0
        self._next_alias = 1
        self._rebirth_alias = self._take_alias()
        self._bdseq_alias = self._take_alias()
        self._devices: dict[str, _Device] = {}
        self._device_by_machine_path: dict[str, _Device] = {}
        self._block_plans = PerRead(self._block_plan)
        for device in site.devices:
            spb_device = self._device(device.name)
            for name, tag in device.tags.items():
                datatype = declared_datatype(tag)
                if datatype is not None:
                    self._add_metric(spb_device, name, datatype, tag.unit)
            machine_path = "/".join((site.site.enterprise, site.site.site, device.area, device.line, device.name))
            self._device_by_machine_path[machine_path] = spb_device

    # ------------------------------------------------------------------ topics

    def topic(self, message_type: str, device: str | None = None) -> str:
        base = f"{NAMESPACE}/{self.group_id}/{message_type}/{self.edge_node_id}"
        return f"{base}/{device}" if device else base

    @property
    def ncmd_topic(self) -> str:
        return self.topic("NCMD")

    # ------------------------------------------------------------------ session

    def new_session(self) -> Outgoing:
        """Advance bdSeq for a new MQTT connection; returns the NDEATH to set as its will."""
        self.bd_seq = (self.bd_seq + 1) % 256
        return self._ndeath()

    def births(self, now_ms: int) -> list[Outgoing]:
        """NBIRTH (seq 0) then a DBIRTH per device with its current values: on connect and on rebirth."""
        self.seq = 0
        payload = Payload(timestamp=now_ms, seq=0)
        self._control_metric(payload, BDSEQ_METRIC, self._bdseq_alias, DataType.Int64, self.bd_seq, now_ms)
        self._control_metric(payload, REBIRTH_METRIC, self._rebirth_alias, DataType.Boolean, False, now_ms)
        out = [Outgoing(self.topic("NBIRTH"), payload.SerializeToString(), self.qos)]
        for device in self._devices.values():
            device.born = False
            if device.metrics:
                out.append(self._dbirth(device, now_ms))
        return out

    def data(self, samples: Sequence[Sample], now_ms: int) -> list[Outgoing]:
        """DDATA per device for `samples` (in order), preceded by a DBIRTH where a metric is new.

        A read block whose tags are all declared metrics of one device goes in without a
        `Sample` per value; the payload is the same as for the samples one by one.
        """
        by_device: dict[str, list[Sample | tuple[SampleBlock, list[_Metric]]]] = {}
        for part in parts_of(samples):
            plan = self._block_plans(part.paths) if part.__class__ is SampleBlock else None  # type: ignore[attr-defined]
            if plan is not None:
                by_device.setdefault(plan[0].name, []).append((part, plan[1]))  # type: ignore[arg-type]
            else:
                self._sort_samples(part, by_device)

        out: list[Outgoing] = []
        for device_name, entries in by_device.items():
            device = self._devices[device_name]
            if not device.born:
                out.append(self._dbirth(device, now_ms))
            payload = Payload(timestamp=now_ms, seq=self._next_seq())
            add = payload.metrics.add
            metrics = device.metrics
            for entry in entries:
                if entry.__class__ is tuple:
                    block, block_metrics = entry  # type: ignore[misc]
                    ts_ms = block.ts_ns // 1_000_000
                    for index, (known, value) in enumerate(zip(block_metrics, block.values, strict=True)):
                        known.last_seen = (block, index)
                        add(alias=known.alias, timestamp=ts_ms, datatype=known.datatype,
                            **metric_value(known.datatype, value))  # fmt: skip
                    continue
                sample: Sample = entry  # type: ignore[assignment]
                known = metrics[sample.tag.rsplit("/", 1)[1]]
                known.last_seen = sample
                datatype = known.datatype
                metric = add(
                    alias=known.alias,
                    timestamp=sample.ts_ns // 1_000_000,
                    datatype=datatype,
                    **metric_value(datatype, sample.value),
                )
                if sample.quality is not Quality.GOOD:
                    self._add_quality(metric, sample.quality)
            out.append(Outgoing(self.topic("DDATA", device_name), payload.SerializeToString(), self.qos))
        return out

    def _block_plan(self, paths: tuple[str, ...]) -> tuple[_Device, list[_Metric]] | None:
        """The device and metrics of a block's tags, when all are declared metrics of one device."""
        split = [path.rsplit("/", 1) for path in paths]
        machines = {machine_path for machine_path, _ in split}
        device = self._device_by_machine_path.get(machines.pop()) if len(machines) == 1 else None
        if device is None:
            return None
        found = [device.metrics.get(tag) for _, tag in split]
        return (device, found) if all(metric is not None for metric in found) else None  # type: ignore[return-value]

    def _sort_samples(self, samples: Iterable[Sample], by_device: dict[str, list]) -> None:  # type: ignore[type-arg]
        """Samples to their device's list, declaring metrics seen for the first time."""
        for sample in samples:
            machine_path, tag_name = sample.tag.rsplit("/", 1)
            device = self._device_by_machine_path.get(machine_path)
            if device is None:
                device = self._device_by_machine_path[machine_path] = self._device(machine_path.rsplit("/", 1)[-1])
            metric = device.metrics.get(tag_name)
            if metric is None:
                datatype = inferred_datatype(sample.value)
                if datatype is None:
                    continue  # a null value of a never-seen tag: nothing to declare yet
                self._add_metric(device, tag_name, datatype, None)
                device.metrics[tag_name].last_seen = sample  # its DBIRTH shows the first value, not null
                device.born = False
            by_device.setdefault(device.name, []).append(sample)

    def deaths(self, now_ms: int) -> list[Outgoing]:
        """A graceful goodbye: DDEATH per born device, then the NDEATH (the will is not sent then)."""
        out = []
        for device in self._devices.values():
            if device.born:
                payload = Payload(timestamp=now_ms, seq=self._next_seq())
                out.append(Outgoing(self.topic("DDEATH", device.name), payload.SerializeToString(), self.qos))
                device.born = False
        out.append(self._ndeath())
        return out

    def is_rebirth_request(self, payload: bytes) -> bool:
        """True when an NCMD payload sets `Node Control/Rebirth` (by name or alias) to true."""
        try:
            command = Payload.FromString(payload)
        except Exception:  # a garbage NCMD must not take the sink down
            return False
        return any(
            (m.name == REBIRTH_METRIC or (not m.name and m.alias == self._rebirth_alias))
            and m.WhichOneof("value") == "boolean_value"
            and m.boolean_value
            for m in command.metrics
        )

    # ------------------------------------------------------------------ helpers

    def _take_alias(self) -> int:
        alias, self._next_alias = self._next_alias, self._next_alias + 1
        return alias

    def _device(self, name: str) -> _Device:
        device = self._devices.get(name)
        if device is None:
            device = self._devices[name] = _Device(name)
        return device

    def _add_metric(self, device: _Device, name: str, datatype: DataType, unit: str | None) -> None:
        device.metrics[name] = _Metric(name, self._take_alias(), datatype, unit)

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) % 256
        return self.seq

    def _ndeath(self) -> Outgoing:
        payload = Payload()
        self._control_metric(payload, BDSEQ_METRIC, None, DataType.Int64, self.bd_seq, None)
        return Outgoing(self.topic("NDEATH"), payload.SerializeToString(), 1)

    @staticmethod
    def _control_metric(
        payload: object, name: str, alias: int | None, datatype: DataType, value: Value, now_ms: int | None
    ) -> None:
        metric = payload.metrics.add(name=name, datatype=datatype)  # type: ignore[attr-defined]
        if alias is not None:
            metric.alias = alias
        if now_ms is not None:
            metric.timestamp = now_ms
        set_metric_value(metric, datatype, value)

    def _dbirth(self, device: _Device, now_ms: int) -> Outgoing:
        payload = Payload(timestamp=now_ms, seq=self._next_seq())
        for known in device.metrics.values():
            last = known.last
            ts_ms = last.ts_ns // 1_000_000 if last else now_ms
            metric = payload.metrics.add(name=known.name, alias=known.alias, timestamp=ts_ms)
            if known.unit:
                metric.properties.keys.append(UNIT_PROPERTY)
                metric.properties.values.add(type=DataType.String, string_value=known.unit)
            if last is None:
                metric.datatype = known.datatype
                metric.is_null = True
            else:
                self._fill(metric, known.datatype, last)
        device.born = True
        return Outgoing(self.topic("DBIRTH", device.name), payload.SerializeToString(), self.qos)

    @staticmethod
    def _fill(metric: object, datatype: DataType, sample: Sample) -> None:
        metric.datatype = datatype  # type: ignore[attr-defined]
        set_metric_value(metric, datatype, sample.value)
        if sample.quality is not Quality.GOOD:
            SparkplugNode._add_quality(metric, sample.quality)

    @staticmethod
    def _add_quality(metric: object, quality: Quality) -> None:
        properties = metric.properties  # type: ignore[attr-defined]
        properties.keys.append(QUALITY_PROPERTY)
        properties.values.add(type=DataType.Int32, int_value=QUALITY_CODES[quality])
