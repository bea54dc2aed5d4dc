"""Request planning: a device's tags -> the fewest Modbus reads that serve them all.

Pure, no I/O. Tags are grouped by unit id, table and poll interval (a read serves one
of each), sorted by offset and coalesced greedily: the next tag joins the current read
when the registers between them are at most `max_gap` and the read stays within the
per-request limit (125 registers / 2000 bits by the protocol, less where a device says
so). Because any stretch of a feasible read is itself feasible, this greedy cut (each
read extends as far as it can) gives the fewest reads for tags that do not overlap; a
contiguous map of one-register tags costs ceil(registers / limit) reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from connectors.modbus.address import Address, Table
from edge_config.schema import ByteOrder, DataType, Device, ModbusRtuConnection, ModbusTag, ModbusTcpConnection

PROTOCOL_MAX_REGISTERS = 125
PROTOCOL_MAX_BITS = 2000
_TABLE_ORDER = {Table.COIL: 0, Table.DISCRETE_INPUT: 1, Table.INPUT_REGISTER: 2, Table.HOLDING_REGISTER: 3}


@dataclass(frozen=True, slots=True)
class TagSlot:
    """Where one tag's words sit in a read's answer, and how to decode them."""

    name: str
    tag: ModbusTag
    index: int  # first word (or bit) of the tag, relative to the read's offset
    count: int  # words (or bits) the tag occupies
    bit: int | None
    data_type: DataType
    byte_order: ByteOrder


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read (function code 1-4) and the tags its answer serves."""

    unit: int
    table: Table
    offset: int
    count: int
    poll_interval_s: float
    slots: tuple[TagSlot, ...]

    @property
    def end(self) -> int:
        return self.offset + self.count

    @property
    def label(self) -> str:
        """How people read the range in a reason text: `hr:100..109` (inclusive)."""
        return f"{self.table.value}:{self.offset}..{self.end - 1}"

    @property
    def tag_names(self) -> list[str]:
        return [slot.name for slot in self.slots]


class PlanError(ValueError):
    """The tags cannot be read within the device's limits (a configuration error)."""


@dataclass(frozen=True, slots=True)
class _Span:
    name: str
    tag: ModbusTag
    address: Address
    count: int

    @property
    def start(self) -> int:
        return self.address.offset

    @property
    def end(self) -> int:
        return self.address.offset + self.count


def plan_reads(
    tags: Mapping[str, ModbusTag],
    *,
    unit: int = 1,
    poll_interval_s: float = 1.0,
    byte_order: ByteOrder = ByteOrder.ABCD,
    max_gap: int = 0,
    max_registers: int = PROTOCOL_MAX_REGISTERS,
    max_bits: int = PROTOCOL_MAX_BITS,
) -> list[ReadRequest]:
    """The reads for `tags` of one unit; a tag's own `poll` overrides `poll_interval_s`.

    Every tag appears in exactly one read. Reads are ordered by poll interval, table and
    offset. Raises PlanError when one tag alone exceeds the per-read limit or the table.
    """
    if max_gap < 0:
        raise PlanError(f"max_gap must be 0 or more, not {max_gap}")
    register_limit = min(max_registers, PROTOCOL_MAX_REGISTERS)
    bit_limit = min(max_bits, PROTOCOL_MAX_BITS)
    groups: dict[tuple[float, Table], list[_Span]] = defaultdict(list)
    for name, tag in tags.items():
        address = tag.parsed_address
        span = _Span(name, tag, address, tag.register_count)
        limit = bit_limit if address.table.is_bit_table else register_limit
        if span.count > limit:
            raise PlanError(f"tag {name!r} needs {span.count} registers, more than the {limit} a read may carry")
        if span.end > 65536:
            raise PlanError(f"tag {name!r} at {address} runs past the end of the table (offset 65535)")
        groups[(tag.poll or poll_interval_s, address.table)].append(span)

    reads: list[ReadRequest] = []
    for (interval_s, table), spans in sorted(groups.items(), key=lambda item: (item[0][0], _TABLE_ORDER[item[0][1]])):
        limit = bit_limit if table.is_bit_table else register_limit
        for run in _coalesce(sorted(spans, key=lambda s: (s.start, s.end, s.name)), limit, max_gap):
            reads.append(_request(unit, table, interval_s, run, byte_order))
    return reads


def _coalesce(spans: Iterable[_Span], limit: int, max_gap: int) -> list[list[_Span]]:
    """Cut offset-sorted spans into runs that each fit one read."""
    runs: list[list[_Span]] = []
    run: list[_Span] = []
    run_start = run_end = 0
    for span in spans:
        if run and span.start - run_end <= max_gap and max(run_end, span.end) - run_start <= limit:
            run.append(span)
            run_end = max(run_end, span.end)
            continue
        if run:
            runs.append(run)
        run, run_start, run_end = [span], span.start, span.end
    if run:
        runs.append(run)
    return runs


def _request(unit: int, table: Table, interval_s: float, run: list[_Span], byte_order: ByteOrder) -> ReadRequest:
    offset = run[0].start
    end = max(span.end for span in run)
    slots = tuple(
        TagSlot(
            name=span.name,
            tag=span.tag,
            index=span.start - offset,
            count=span.count,
            bit=span.address.bit,
            data_type=DataType.BOOL if table.is_bit_table else span.tag.type,
            byte_order=span.tag.byte_order or byte_order,
        )
        for span in run
    )
    return ReadRequest(unit, table, offset, end - offset, interval_s, slots)


def device_unit(device: Device) -> int:
    connection = device.connection
    if isinstance(connection, ModbusTcpConnection | ModbusRtuConnection):
        return connection.unit
    raise PlanError(f"device {device.name!r} has no Modbus connection")


def plan_device(device: Device) -> list[ReadRequest]:
    """The reads for every Modbus tag of `device`, with the device's limits and defaults."""
    tags = {name: tag for name, tag in device.tags.items() if isinstance(tag, ModbusTag)}
    return plan_reads(
        tags,
        unit=device_unit(device),
        poll_interval_s=device.poll,
        byte_order=device.byte_order,
        max_gap=device.max_gap,
        max_registers=device.max_registers,
        max_bits=device.max_bits,
    )


def minimum_reads(register_counts: Iterable[int], limit: int) -> int:
    """Reads needed for a contiguous block, a lower bound for any plan: ceil(total / limit)."""
    total = sum(register_counts)
    return -(-total // limit)
