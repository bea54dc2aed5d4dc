"""Plain-language messages for validation errors: the bad value, and what is allowed.

pydantic reports *that* a value is wrong; integrators need to know what to write instead.
The allowed values are read from the schema itself (types, enums, ranges, patterns), so the
messages stay true when the schema changes.
"""

from __future__ import annotations

import difflib
import types
import typing
from enum import Enum
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from connectors.modbus.address import ADDRESS_HELP
from edge_config.units import parse_duration_s, parse_size_bytes

FIELD_MEANING = {
    ("ModbusTag", "address"): "a Modbus address: " + ADDRESS_HELP,
    ("OpcUaTag", "node"): "an OPC UA node id such as ns=2;s=Machine/State or ns=2;i=1001",
    ("InfluxSink", "bucket"): "the bucket name (InfluxDB 1.x: database/retention_policy)",
    ("ModbusRtuConnection", "serial_port"): "a serial device such as /dev/ttyUSB0 or COM3",
    ("Device", "tags"): "a mapping of tag names to tags, e.g. temp: {address: ir30001, type: int16}",
    ("Profile", "tags"): "a mapping of tag names to tags, e.g. temp: {address: ir30001, type: int16}",
    ("ModbusTcpConnection", "host"): "a host name or IP address such as 192.168.1.21",
}
"""What a text field means, where 'text' alone would not tell the integrator what to write."""

SECRET_KEYS = frozenset({"password", "token", "private_key"})

PATTERN_MEANING = {
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$": "a name of letters, digits, '_', '.' and '-' (no spaces, '/', '+' or '#')",
    r"^opc\.tcp://": "an OPC UA URL such as opc.tcp://192.168.1.40:4840",
    r"^mqtts?://": "an MQTT URL such as mqtt://localhost:1883 or mqtts://broker:8883",
    r"^https?://": "an HTTP URL such as http://localhost:8086 or https://influx.example:8086",
}


def show(value: Any, key: Any = None) -> str:
    """A value as the integrator wrote it, short; secrets hidden."""
    if key in SECRET_KEYS and value is not None:
        return "(hidden)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (empty)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return str(value)


def did_you_mean(word: str, allowed: typing.Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_message(key: Any, allowed: typing.Iterable[str]) -> str:
    allowed = list(allowed)
    guess = did_you_mean(str(key), allowed)
    hint = f"; did you mean {guess!r}?" if guess else ";"
    return f"unknown key {str(key)!r}{hint} allowed: {', '.join(allowed)}"


def _strip_annotated(tp: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while typing.get_origin(tp) is typing.Annotated:
        metadata.extend(tp.__metadata__)
        tp = tp.__origin__
    return tp, metadata


def _non_none_args(tp: Any) -> list[Any]:
    return [a for a in typing.get_args(tp) if a is not type(None)]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def describe_type(tp: Any, metadata: list[Any] | None = None) -> str:
    """What a value of this annotation looks like, in words."""
    tp, more = _strip_annotated(tp)
    metadata = [*(metadata or []), *more]
    if _is_union(tp):
        args = _non_none_args(tp)
        return " or ".join(describe_type(a, metadata) for a in args) if args else "null"
    bounds = _bounds(metadata)
    validators = [getattr(m, "func", None) for m in metadata]
    if parse_duration_s in validators:
        return "a duration such as 500ms, 2s, 1m or 1h" + (f" ({bounds})" if bounds else "")
    if parse_size_bytes in validators:
        return "a size such as 64MiB, 500MB or 1GiB"
    for item in list(metadata):
        if isinstance(item, FieldInfo):  # Annotated[str, Field(pattern=...)]
            metadata.extend(item.metadata)
    bounds = _bounds(metadata)
    for item in metadata:
        pattern = getattr(item, "pattern", None)
        if pattern:
            return PATTERN_MEANING.get(pattern, f"text matching {pattern}")
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(show(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(show(m.value) for m in tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer" + (f" {bounds}" if bounds else "")
    if tp is float:
        return "a number" + (f" {bounds}" if bounds else "")
    if tp is str:
        return "text"
    if origin is dict:
        key_type, _value_type = typing.get_args(tp)
        if _strip_annotated(key_type)[0] is int:
            return "a mapping of integers to names, e.g. {0: stopped, 1: running}"
        return "a mapping"
    if origin is list:
        return "a list"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with keys " + ", ".join(tp.model_fields)
    return str(tp)


def _bounds(metadata: list[Any]) -> str:
    low = high = None
    low_op = high_op = ""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low, low_op = item.ge, ">="
        elif isinstance(item, annotated_types.Gt):
            low, low_op = item.gt, ">"
        elif isinstance(item, annotated_types.Le):
            high, high_op = item.le, "<="
        elif isinstance(item, annotated_types.Lt):
            high, high_op = item.lt, "<"
    if low is not None and high is not None and low_op == ">=" and high_op == "<=":
        return f"from {low} to {high}"
    parts = [f"{op} {v}" for op, v in ((low_op, low), (high_op, high)) if v is not None]
    return " and ".join(parts)


def field_at(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, FieldInfo | Any]:
    """Walk `loc` through the model's annotations.

    Returns (model owning the last key, annotation or FieldInfo of the last element);
    (owner, None) when the last key is not a field (an unknown key).
    """
    current: Any = model
    owner: type[BaseModel] | None = None
    found: Any = None
    for part in loc:
        current, _ = _strip_annotated(current)
        if _is_union(current):
            args = _non_none_args(current)
            if len(args) != 1:
                return owner, None
            current, _ = _strip_annotated(args[0])
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner = current
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return owner, None
            found = field
            current = field.annotation
            if field.metadata:
                current = typing.Annotated[(current, *field.metadata)]
        elif typing.get_origin(current) is dict:
            key_type, value_type = typing.get_args(current)
            current = key_type if part == "[key]" else value_type
            found = current
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
            found = current
        else:
            return owner, None
    return owner, found


def allowed_for(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    if not loc:
        return describe_type(model)
    _, found = field_at(model, loc)
    if found is None:
        return "see docs/configuration.md"
    if isinstance(found, FieldInfo):
        owner, _ = field_at(model, (*loc[:-1], "\x00"))
        meaning = FIELD_MEANING.get((owner.__name__ if owner else "", loc[-1]))
        if meaning:
            return meaning
        text = describe_type(found.annotation, list(found.metadata))
        return f"{text} ({found.description})" if found.description else text
    return describe_type(found)


def message_for(model: type[BaseModel], error: dict[str, Any]) -> str:
    """One plain sentence for one pydantic error, naming the bad value and what is allowed."""
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    key = loc[-1] if loc else None
    if kind == "extra_forbidden":
        owner, _ = field_at(model, (*loc[:-1], "\x00"))
        allowed = list(owner.model_fields) if owner else []
        return unknown_key_message(key, allowed)
    if kind == "missing":
        return f"missing required key {key!r}: expected {allowed_for(model, loc)}"
    if kind in ("value_error", "assertion_error"):
        text = error["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            text = text.removeprefix(prefix)
        return text
    if loc and loc[-1] == "[key]":
        return f"{show(loc[-2])} is not allowed as a key here: expected {allowed_for(model, (*loc[:-2], '[key]'))}"
    allowed = allowed_for(model, loc)
    if allowed == "text" and isinstance(value, int | float) and not isinstance(value, bool):
        allowed += "; put numbers meant as text in quotes"
    return f"got {show(value, key)}; expected {allowed}"
