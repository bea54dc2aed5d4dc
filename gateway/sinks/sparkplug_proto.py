"""The Sparkplug B payload message, built from its descriptor in Python.

The field numbers and types are those of Eclipse Tahu's `sparkplug_b.proto`
(org.eclipse.tahu.protobuf, Sparkplug B 3.0; Eclipse Tahu is EPL-2.0, and this module
re-states only the wire schema, no Tahu code). We keep the subset a gateway sends and
reads: Payload, Metric, PropertySet and PropertyValue; DataSet, Template and MetaData
fields are left out, so a parser simply skips them if a host ever sends them.

Why no generated `_pb2` module: generated code is tied to the protoc version that made
it, and it registers `sparkplug_b.proto` in protobuf's *default* pool, where it would
clash with any other Sparkplug library in the same process. A private pool has neither
problem, and the `protobuf` runtime (upb, C) still does the encoding.
"""

from __future__ import annotations

from enum import IntEnum

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

PACKAGE = "org.eclipse.tahu.protobuf"

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


class DataType(IntEnum):
    """Sparkplug B metric datatypes (the scalar ones a gateway uses)."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    *,
    label: int = _OPTIONAL,
    type_name: str = "",
    oneof: int | None = None,
) -> None:
    field = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = f".{PACKAGE}.{type_name}"
    if oneof is not None:
        field.oneof_index = oneof


def _value_fields(message: descriptor_pb2.DescriptorProto, first_number: int, *, with_bytes: bool) -> None:
    """The `oneof value` every Sparkplug value-carrying message has, numbered from `first_number`."""
    message.oneof_decl.add(name="value")
    kinds = [
        ("int_value", _F.TYPE_UINT32),
        ("long_value", _F.TYPE_UINT64),
        ("float_value", _F.TYPE_FLOAT),
        ("double_value", _F.TYPE_DOUBLE),
        ("boolean_value", _F.TYPE_BOOL),
        ("string_value", _F.TYPE_STRING),
    ]
    if with_bytes:
        kinds.append(("bytes_value", _F.TYPE_BYTES))
    for offset, (name, kind) in enumerate(kinds):
        _field(message, name, first_number + offset, kind, oneof=0)


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="edgefab/sparkplug_b.proto", package=PACKAGE, syntax="proto2")
    payload = file.message_type.add(name="Payload")

    property_value = payload.nested_type.add(name="PropertyValue")
    _field(property_value, "type", 1, _F.TYPE_UINT32)
    _field(property_value, "is_null", 2, _F.TYPE_BOOL)
    _value_fields(property_value, 3, with_bytes=False)

    property_set = payload.nested_type.add(name="PropertySet")
    _field(property_set, "keys", 1, _F.TYPE_STRING, label=_REPEATED)
    _field(property_set, "values", 2, _F.TYPE_MESSAGE, label=_REPEATED, type_name="Payload.PropertyValue")

    metric = payload.nested_type.add(name="Metric")
    _field(metric, "name", 1, _F.TYPE_STRING)
    _field(metric, "alias", 2, _F.TYPE_UINT64)
    _field(metric, "timestamp", 3, _F.TYPE_UINT64)
    _field(metric, "datatype", 4, _F.TYPE_UINT32)
    _field(metric, "is_historical", 5, _F.TYPE_BOOL)
    _field(metric, "is_transient", 6, _F.TYPE_BOOL)
    _field(metric, "is_null", 7, _F.TYPE_BOOL)
    _field(metric, "properties", 9, _F.TYPE_MESSAGE, type_name="Payload.PropertySet")
    _value_fields(metric, 10, with_bytes=True)

    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(payload, "metrics", 2, _F.TYPE_MESSAGE, label=_REPEATED, type_name="Payload.Metric")
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    return file


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file_descriptor())

Payload: type[Message] = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))
"""`Payload()` builds a message; `Payload.FromString(raw)` parses one."""
