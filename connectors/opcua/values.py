"""OPC UA DataValue -> Sample: the timestamp, quality and engineering value of one reading.

Pure: the subscription path and the polling path both call `sample_from_data_value`, so a tag
reads the same whichever mode the integrator chose.
"""

from __future__ import annotations

import base64
import datetime
import enum
import json
import uuid
from typing import Any

from asyncua import ua

from connectors.modbus.decode import apply_scaling
from connectors.opcua.quality import quality_of_status
from edge_config.schema import OpcUaTag
from gateway.sample import Quality, Sample, Value


def timestamp_ns(moment: datetime.datetime) -> int:
    """UTC nanoseconds of an OPC UA DateTime (asyncua gives naive datetimes in UTC, or aware ones)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def source_time_ns(data_value: ua.DataValue, received_ns: int) -> int:
    """The source timestamp, else the server's, else when we received it."""
    for moment in (data_value.SourceTimestamp, data_value.ServerTimestamp):
        if moment is not None and moment.year > 1601:  # 1601-01-01 is OPC UA's "no timestamp"
            return timestamp_ns(moment)
    return received_ns


def plain_value(value: Any) -> Value:
    """An OPC UA value as one of the Sample value types (bool, int, float, str, None)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, ua.QualifiedName):
        return value.Name
    if isinstance(value, datetime.datetime):
        return datetime.datetime.fromtimestamp(timestamp_ns(value) / 1e9, datetime.UTC).isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, uuid.UUID | ua.NodeId):
        return value.to_string() if isinstance(value, ua.NodeId) else str(value)
    if isinstance(value, list | tuple):
        return json.dumps([plain_value(item) for item in value])
    return str(value)


def sample_from_data_value(tag_path: str, tag: OpcUaTag, data_value: ua.DataValue, received_ns: int) -> Sample:
    status = data_value.StatusCode.value if data_value.StatusCode is not None else 0
    quality, reason = quality_of_status(status)
    raw = plain_value(data_value.Value.Value if data_value.Value is not None else None)
    if quality is Quality.BAD or raw is None:
        value: Value = None
    else:
        value = apply_scaling(raw, tag)  # type: ignore[arg-type]  # uses only map, scale and offset
    return Sample(tag_path, value, source_time_ns(data_value, received_ns), quality, reason)


INTEGER_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}


def value_for_write(value: bool | int | float | str, tag: OpcUaTag, variant_type: ua.VariantType) -> Any:
    """Engineering value -> the raw value of the node's own type (inverse of map, scale and offset).

    Raises ValueError with a plain reason when the value cannot be represented: an unknown state
    name, a fraction or an out-of-range number for an integer node, text for a number.
    """
    raw: Any = value
    if tag.map is not None:
        by_name = {name: number for number, name in tag.map.items()}
        if isinstance(value, str) and value in by_name:
            raw = by_name[value]
        elif not (isinstance(value, int) and not isinstance(value, bool) and value in tag.map):
            raise ValueError(f"{value!r} is not one of {sorted(tag.map.values())}")
    elif isinstance(value, int | float) and not isinstance(value, bool) and (tag.scale != 1.0 or tag.offset != 0.0):
        if tag.scale == 0:
            raise ValueError("a tag with scale 0 cannot be written")
        raw = (value - tag.offset) / tag.scale
    kind = variant_type.name
    if variant_type == ua.VariantType.Boolean:
        if isinstance(raw, bool) or raw in (0, 1):
            return bool(raw)
        raise ValueError(f"{value!r} is not a boolean (node type Boolean)")
    if variant_type in INTEGER_RANGES:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{value!r} is not a number (node type {kind})")
        whole = round(raw)
        low, high = INTEGER_RANGES[variant_type]
        if not low <= whole <= high:
            raise ValueError(f"{value!r} does not fit the node's type {kind} ({low}..{high})")
        return whole
    if variant_type in (ua.VariantType.Float, ua.VariantType.Double):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{value!r} is not a number (node type {kind})")
        return float(raw)
    if variant_type == ua.VariantType.String:
        if not isinstance(raw, str):
            raise ValueError(f"{value!r} is not text (node type String)")
        return raw
    raise ValueError(f"writing {kind} nodes is not supported")
