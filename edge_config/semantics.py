"""Checks that need more than one key: overlapping registers, roles, names, sinks.

Each check reports through `report_at(container, key, key_path, message)`, which places the
message at the key's line in the YAML. The rules are documented in docs/configuration.md.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from connectors.modbus.address import Table
from edge_config.messages import did_you_mean
from edge_config.schema import Buffer, ByteOrder, DataType, Device, ModbusTag, Protocol, Role, Sinks

if TYPE_CHECKING:
    from edge_config.loader import ResolvedDevice

ReportAt = Callable[..., None]

INTEGER_TYPES = frozenset(
    {DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32, DataType.INT64, DataType.UINT64}
)
NUMERIC_TYPES = INTEGER_TYPES | {DataType.FLOAT32, DataType.FLOAT64}
COUNT_ROLES = frozenset({Role.GOOD_COUNT, Role.REJECT_COUNT, Role.TOTAL_COUNT})
TOPIC_FIELDS = ("enterprise", "site", "area", "line", "machine", "tag")
MIN_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class _Span:
    """Registers [start, end) of one table read by one tag, and how they are decoded."""

    table: Table
    start: int
    end: int
    decoding: tuple[Any, ...]
    tag: str
    address: str


def _byte_order(value: Any) -> ByteOrder:
    try:
        return ByteOrder(value) if value is not None else ByteOrder.ABCD
    except ValueError:
        return ByteOrder.ABCD


def check_tags(
    tags: dict[str, Any],
    nodes: Any,
    path: tuple[Any, ...],
    byte_order: Any,
    report_at: ReportAt,
    device: Device | None = None,
) -> None:
    """Per-tag rules and overlaps among the (already valid) tags of one device or profile."""
    roles: dict[Role, str] = {}
    spans: list[_Span] = []
    default_order = _byte_order(byte_order)
    for name, tag in tags.items():
        node = nodes[name]
        tpath = (*path, name)
        if tag.role is not None:
            if tag.role in roles:
                first = roles[tag.role]
                report_at(
                    node,
                    "role",
                    (*tpath, "role"),
                    f"role {tag.role.value!r} is already carried by tag {first!r}; each role may be on one tag per device",
                )
            else:
                roles[tag.role] = name
        if tag.min is not None and tag.max is not None and tag.min > tag.max:
            report_at(node, "min", (*tpath, "min"), f"min {tag.min:g} is greater than max {tag.max:g}")
        if isinstance(tag, ModbusTag):
            span = _check_modbus_tag(name, tag, node, tpath, default_order, report_at, device)
            if span is not None:
                spans.append(span)
    _check_overlaps(spans, nodes, path, report_at)


def _check_modbus_tag(
    name: str,
    tag: ModbusTag,
    node: Any,
    tpath: tuple[Any, ...],
    default_order: ByteOrder,
    report_at: ReportAt,
    device: Device | None,
) -> _Span | None:
    address = tag.parsed_address
    single_bit = address.bit is not None or address.table.is_bit_table
    kind = f"type {tag.type.value!r}"
    if single_bit and tag.type != DataType.BOOL:
        what = "one bit of a register" if address.bit is not None else f"a {_table_name(address.table)}, a single bit"
        report_at(node, "type", (*tpath, "type"), f"{tag.address!r} reads {what}, so type must be 'bool' (got {kind})")
        return None
    if tag.type == DataType.STRING and tag.length is None:
        report_at(
            node,
            "type",
            (*tpath, "type"),
            "type 'string' needs length: the number of registers to read (2 characters each), from 1 to 125",
        )
        return None
    if tag.length is not None and tag.type != DataType.STRING:
        report_at(
            node, "length", (*tpath, "length"), f"length applies only to type 'string' (this tag has {kind}): remove it"
        )
    if tag.role == Role.STATE and tag.type not in INTEGER_TYPES | {DataType.BOOL}:
        report_at(
            node,
            "type",
            (*tpath, "type"),
            f"role 'state' needs an integer or bool type (got {kind}): a state is a code, named with map:",
        )
    elif tag.role in COUNT_ROLES and tag.type not in INTEGER_TYPES:
        report_at(
            node, "type", (*tpath, "type"), f"role {tag.role.value!r} needs an integer type such as uint32 (got {kind})"
        )
    elif tag.role == Role.IDEAL_CYCLE_TIME and tag.type not in NUMERIC_TYPES:
        report_at(node, "type", (*tpath, "type"), f"role 'ideal_cycle_time' needs a numeric type (got {kind})")
    if tag.map is not None and tag.type not in INTEGER_TYPES | {DataType.BOOL}:
        report_at(
            node, "map", (*tpath, "map"), f"map: names integer codes, so it needs an integer or bool type (got {kind})"
        )
    if tag.writable and address.table in (Table.INPUT_REGISTER, Table.DISCRETE_INPUT):
        report_at(
            node,
            "writable",
            (*tpath, "writable"),
            f"{tag.address!r} is an {_table_name(address.table)}, which Modbus cannot write: "
            "use a holding register (hr) or coil (co), or remove writable",
        )
    count = tag.register_count
    if address.offset + count > 65536:
        report_at(
            node,
            "address",
            (*tpath, "address"),
            f"{tag.address!r} with {kind} needs {count} registers and runs past the last register (offset 65535)",
        )
        return None
    if device is not None and not address.table.is_bit_table and count > device.max_registers:
        report_at(
            node,
            "address",
            (*tpath, "address"),
            f"{tag.address!r} needs {count} registers in one read, more than this device's max_registers {device.max_registers}",
        )
    if single_bit:
        return None  # bits are views of a register: they never conflict with the register's other uses
    order = tag.byte_order or default_order
    return _Span(
        address.table,
        address.offset,
        address.offset + count,
        (address.offset, tag.type, count, order),
        name,
        tag.address,
    )


def _table_name(table: Table) -> str:
    return {
        Table.COIL: "coil",
        Table.DISCRETE_INPUT: "discrete input",
        Table.INPUT_REGISTER: "input register",
        Table.HOLDING_REGISTER: "holding register",
    }[table]


def _describe(span: _Span) -> str:
    _, data_type, count, order = span.decoding
    regs = f"{span.table.value}:{span.start}" if count == 1 else f"{span.table.value}:{span.start}..{span.end - 1}"
    order_text = f" {order.value}" if count > 1 else ""
    return f"{data_type.value}{order_text} at {regs}"


def _check_overlaps(spans: list[_Span], nodes: Any, path: tuple[Any, ...], report_at: ReportAt) -> None:
    """A register may be read by several tags only if they decode it identically (same start, type, order)."""
    spans.sort(key=lambda s: (s.table.value, s.start, s.end, s.tag))
    active: list[_Span] = []
    for span in spans:
        active = [a for a in active if a.table == span.table and a.end > span.start]
        for other in active:
            if other.decoding != span.decoding:
                report_at(
                    nodes[span.tag],
                    "address",
                    (*path, span.tag, "address"),
                    f"{span.address!r} ({_describe(span)}) overlaps tag {other.tag!r} ({_describe(other)}): "
                    "a register can be decoded only one way; fix the address or the type of one of them",
                )
                break
        active.append(span)


def check_devices(devices: list[ResolvedDevice] | None, report_at: ReportAt) -> None:
    """Rules across devices: consistent serial lines, derived tags that refer to real tags (names: loader)."""
    if not devices:
        return
    serial_lines: dict[str, ResolvedDevice] = {}
    for item in devices:
        device = item.device
        if device.protocol == Protocol.MODBUS_RTU:
            _check_serial_line(item, serial_lines, report_at)
        _check_derived(item, report_at)


def _check_serial_line(item: ResolvedDevice, lines: dict[str, ResolvedDevice], report_at: ReportAt) -> None:
    connection = item.device.connection
    settings = ("baudrate", "parity", "stopbits", "bytesize")
    port = connection.serial_port
    if port not in lines:
        lines[port] = item
        return
    first = lines[port].device.connection
    if first.unit == connection.unit:
        report_at(
            item.node["connection"],
            "unit",
            (*item.path, "connection", "unit"),
            f"unit {connection.unit} on {port} is already used by device {lines[port].device.name!r}; "
            "each device on one serial line needs its own unit id",
        )
    differing = [s for s in settings if getattr(first, s) != getattr(connection, s)]
    if differing:
        key = differing[0]
        report_at(
            item.node["connection"],
            key,
            (*item.path, "connection", key),
            f"{key} {getattr(connection, key)!r} differs from device {lines[port].device.name!r} on the same serial "
            f"port {port} ({getattr(first, key)!r}): one serial line has one setting",
        )


def _check_derived(item: ResolvedDevice, report_at: ReportAt) -> None:
    derived = getattr(item.device, "derived", None) or {}
    nodes = item.node.get("derived")
    if not derived or not hasattr(nodes, "key_pos"):
        return
    known = list(item.device.tags)
    for name, spec in derived.items():
        dpath = (*item.path, "derived", name)
        if name in item.device.tags:
            report_at(nodes, name, dpath, f"derived tag {name!r} has the name of a read tag; choose another name")
        referenced = [("rate_of", spec.rate_of)] if spec.rate_of else []
        if spec.expr:
            from gateway.expression import parse_expression

            referenced += [("expr", n) for n in sorted(parse_expression(spec.expr).names)]
        for key, ref in referenced:
            if ref not in item.device.tags:  # derived tags read only read tags, never other derived tags
                guess = did_you_mean(ref, known)
                hint = f"; did you mean {guess!r}?" if guess else ""
                report_at(
                    nodes[name],
                    key,
                    (*dpath, key),
                    f"{ref!r} is not a read tag of device {item.device.name!r}{hint} read tags: {', '.join(known)}",
                )


def check_sinks(sinks: Sinks, node: Any, report_at: ReportAt) -> None:
    """URLs that parse, TLS only with mqtts, topic templates that name known levels and keep topics unique."""
    if sinks.mqtt is not None and hasattr(node.get("mqtt"), "key_pos"):
        mqtt, mnode = sinks.mqtt, node["mqtt"]
        _check_url(mqtt.url, mnode, ("sinks", "mqtt", "url"), report_at)
        if mqtt.tls is not None and mqtt.url.startswith("mqtt://"):
            report_at(
                mnode,
                "tls",
                ("sinks", "mqtt", "tls"),
                f"tls is set but url {mqtt.url!r} is plain mqtt://: use mqtts://",
            )
        _check_topic_template(mqtt.topic_template, mnode, report_at)
    if sinks.influxdb is not None and hasattr(node.get("influxdb"), "key_pos"):
        inode = node["influxdb"]
        _check_url(sinks.influxdb.url, inode, ("sinks", "influxdb", "url"), report_at)
        if not sinks.influxdb.bucket.strip():
            report_at(
                inode,
                "bucket",
                ("sinks", "influxdb", "bucket"),
                "bucket is empty: name the InfluxDB bucket (or database/retention policy)",
            )


def _check_url(url: str, node: Any, path: tuple[Any, ...], report_at: ReportAt) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        report_at(node, "url", path, f"{url!r} is not a valid URL ({error}): expected scheme://host:port")
        return
    if not parts.hostname:
        report_at(node, "url", path, f"{url!r} has no host name: expected scheme://host:port")
    elif port == 0:
        report_at(node, "url", path, f"{url!r}: port 0 is not allowed; expected a port from 1 to 65535")


def _check_topic_template(template: str, node: Any, report_at: ReportAt) -> None:
    path = ("sinks", "mqtt", "topic_template")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as error:
        report_at(
            node, "topic_template", path, f"{template!r} is not a valid template ({error}); write levels as {{machine}}"
        )
        return
    for field in fields:
        if field not in TOPIC_FIELDS:
            guess = did_you_mean(field, TOPIC_FIELDS)
            hint = f"did you mean {{{guess}}}? " if guess else ""
            report_at(
                node,
                "topic_template",
                path,
                f"unknown placeholder {{{field}}} in {template!r}; {hint}allowed: "
                + ", ".join(f"{{{f}}}" for f in TOPIC_FIELDS),
            )
            return
    missing = [f for f in ("machine", "tag") if f not in fields]
    if missing:
        report_at(
            node,
            "topic_template",
            path,
            f"{template!r} lacks {', '.join('{' + m + '}' for m in missing)}: topics of different tags would collide",
        )


def check_buffer(buffer: Buffer, node: Any, report_at: ReportAt) -> None:
    if buffer.max_bytes < MIN_BUFFER_BYTES:
        report_at(
            node,
            "max_bytes",
            ("buffer", "max_bytes"),
            f"max_bytes {buffer.max_bytes} is too small to ride out an outage: expected at least 1MiB",
        )
