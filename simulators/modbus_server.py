"""A small Modbus TCP and RTU server over in-memory register banks, for simulators and tests.

Why not pymodbus' server: pymodbus 3.16 answers only the first of several requests that
arrive in one TCP packet, so a collector that pipelines would look fine against a PLC
that drops requests, or broken against one that does not. This server answers every
request of a packet (`pipelining_broken=False`, the default) or mimics the dropping
devices (`pipelining_broken=True`), and it counts what it answered, so tests can check
the number of requests a collector sends. It also injects faults on demand.

Function codes 1, 2, 3, 4, 5, 6, 15, 16; exceptions 1 (illegal function), 2 (illegal
data address), 3 (illegal data value) and 4 (server device failure, as an injected fault).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import termios
import tty
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

from connectors.modbus.address import Table

log = logging.getLogger(__name__)

Fault = Literal[None, "silent", "garbage", "exception"]
WriteListener = Callable[[Table, int, list[int]], None]

ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
SERVER_DEVICE_FAILURE = 4
GATEWAY_TARGET_FAILED = 11

MAX_READ_BITS = 2000
MAX_READ_REGISTERS = 125
MAX_WRITE_BITS = 1968
MAX_WRITE_REGISTERS = 123

_READ_TABLE = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING_REGISTER, 4: Table.INPUT_REGISTER}


class RegisterBank:
    """The four Modbus tables of one unit id. Bit tables hold 0/1, register tables 16-bit words.

    `sizes` limits a table (reads past it get exception 2, like a PLC with a small map);
    `forbid` makes a range answer exception 2 even inside the table (a gap in a PLC's map).
    Writes that arrive over Modbus are counted and passed to write listeners, so a machine
    model can react to a setpoint written by the gateway; `set_registers` does neither.
    """

    def __init__(self, sizes: dict[Table, int] | None = None, default_size: int = 65536) -> None:
        sizes = sizes or {}
        self.tables: dict[Table, array[int]] = {
            table: array("H", bytes(2 * sizes.get(table, default_size))) for table in Table
        }
        self.forbidden: list[tuple[Table, int, int, str]] = []
        self.write_count = 0
        self.write_listeners: list[WriteListener] = []

    def size(self, table: Table) -> int:
        return len(self.tables[table])

    def set_registers(self, table: Table, offset: int, values: Sequence[int]) -> None:
        """Set consecutive words (or bits 0/1) starting at `offset`."""
        target = self.tables[table]
        if offset < 0 or offset + len(values) > len(target):
            raise IndexError(f"{table.value}:{offset}+{len(values)} is outside the table of {len(target)}")
        limit = 1 if table.is_bit_table else 0xFFFF
        for i, value in enumerate(values):
            word = int(value)
            if not 0 <= word <= limit:
                raise ValueError(f"{table.value}:{offset + i} cannot hold {value!r} (0..{limit})")
            target[offset + i] = word

    def get_registers(self, table: Table, offset: int, count: int) -> list[int]:
        source = self.tables[table]
        if offset < 0 or count < 0 or offset + count > len(source):
            raise IndexError(f"{table.value}:{offset}+{count} is outside the table of {len(source)}")
        return source[offset : offset + count].tolist()

    def forbid(
        self, table: Table, offset: int, count: int = 1, *, answer: Literal["exception", "silent"] = "exception"
    ) -> None:
        """Answer exception 2 (or nothing at all, `answer="silent"`) to any request touching
        table[offset : offset + count]: a gap in a PLC's map, or a request that times out."""
        self.forbidden.append((table, offset, offset + count, answer))

    def add_write_listener(self, listener: WriteListener) -> None:
        self.write_listeners.append(listener)

    def addressable(self, table: Table, offset: int, count: int) -> bool:
        return self.refusal(table, offset, count) is None

    def refusal(self, table: Table, offset: int, count: int) -> str | None:
        """None if the range may be accessed, else "exception" or "silent"."""
        if offset < 0 or offset + count > len(self.tables[table]):
            return "exception"
        end = offset + count
        for t, f_start, f_end, answer in self.forbidden:
            if t == table and offset < f_end and f_start < end:
                return answer
        return None

    def write_from_client(self, table: Table, offset: int, values: list[int]) -> None:
        self.set_registers(table, offset, values)
        self.write_count += 1
        for listener in self.write_listeners:
            try:
                listener(table, offset, values)
            except Exception:  # a broken listener must not take the server down
                log.exception("write listener failed for %s:%d", table.value, offset)


def exception_pdu(function_code: int, code: int) -> bytes:
    return bytes((function_code | 0x80, code))


def _pack_bits(bits: Sequence[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _unpack_bits(data: bytes, count: int) -> list[int]:
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]


def handle_pdu(bank: RegisterBank, pdu: bytes) -> bytes | None:
    """Answer one request PDU (function code + data) from `bank`: the response PDU, or None
    where the bank says a range stays silent."""
    if not pdu:
        return exception_pdu(0, ILLEGAL_FUNCTION)
    fc = pdu[0]
    if fc in _READ_TABLE:
        if len(pdu) != 5:
            return exception_pdu(fc, ILLEGAL_DATA_VALUE)
        table = _READ_TABLE[fc]
        offset, count = struct.unpack(">HH", pdu[1:5])
        limit = MAX_READ_BITS if table.is_bit_table else MAX_READ_REGISTERS
        if not 1 <= count <= limit:
            return exception_pdu(fc, ILLEGAL_DATA_VALUE)
        if refusal := bank.refusal(table, offset, count):
            return None if refusal == "silent" else exception_pdu(fc, ILLEGAL_DATA_ADDRESS)
        values = bank.get_registers(table, offset, count)
        data = _pack_bits(values) if table.is_bit_table else struct.pack(f">{count}H", *values)
        return bytes((fc, len(data))) + data
    if fc in (5, 6):
        if len(pdu) != 5:
            return exception_pdu(fc, ILLEGAL_DATA_VALUE)
        offset, value = struct.unpack(">HH", pdu[1:5])
        table = Table.COIL if fc == 5 else Table.HOLDING_REGISTER
        if fc == 5 and value not in (0x0000, 0xFF00):
            return exception_pdu(fc, ILLEGAL_DATA_VALUE)
        if refusal := bank.refusal(table, offset, 1):
            return None if refusal == "silent" else exception_pdu(fc, ILLEGAL_DATA_ADDRESS)
        bank.write_from_client(table, offset, [1 if value else 0] if fc == 5 else [value])
        return pdu
    if fc in (15, 16):
        if len(pdu) < 6:
            return exception_pdu(fc, ILLEGAL_DATA_VALUE)
        offset, count, byte_count = struct.unpack(">HHB", pdu[1:6])
        data = pdu[6:]
        table = Table.COIL if fc == 15 else Table.HOLDING_REGISTER
        limit = MAX_WRITE_BITS if fc == 15 else MAX_WRITE_REGISTERS
        expected_bytes = (count + 7) // 8 if fc == 15 else 2 * count
        if not 1 <= count <= limit or byte_count != expected_bytes or len(data) != byte_count:
            return exception_pdu(fc, ILLEGAL_DATA_VALUE)
        if refusal := bank.refusal(table, offset, count):
            return None if refusal == "silent" else exception_pdu(fc, ILLEGAL_DATA_ADDRESS)
        values = _unpack_bits(data, count) if fc == 15 else list(struct.unpack(f">{count}H", data))
        bank.write_from_client(table, offset, values)
        return struct.pack(">BHH", fc, offset, count)
    return exception_pdu(fc, ILLEGAL_FUNCTION)


class _Counting:
    """Banks, counters and fault injection shared by the TCP and the RTU server."""

    def __init__(self, banks: dict[int, RegisterBank]) -> None:
        self.banks = banks
        self.fault: Fault = None
        self.fault_units: set[int] | None = None
        self.response_delay_s = 0.0
        self.reset_counts()

    def reset_counts(self) -> None:
        self.request_count = 0
        self.requests_received = 0
        self.requests_dropped = 0
        self.pipelined_packets = 0  # packets that carried more than one request
        self.requests_by_unit: Counter[int] = Counter()
        self.requests_by_function: Counter[int] = Counter()

    @property
    def write_count(self) -> int:
        return sum(bank.write_count for bank in self.banks.values())

    def _bank(self, unit: int) -> RegisterBank | None:
        bank = self.banks.get(unit)
        if bank is None and unit in (0, 255) and len(self.banks) == 1:
            bank = next(iter(self.banks.values()))
        return bank

    def _fault_for(self, unit: int) -> Fault:
        if self.fault_units is not None and unit not in self.fault_units:
            return None
        return self.fault

    def answer(self, unit: int, pdu: bytes) -> bytes | None:
        """The response PDU, or None for no answer (silent fault or unknown unit)."""
        self.requests_received += 1
        fault = self._fault_for(unit)
        if fault == "silent":
            return None
        fc = pdu[0] if pdu else 0
        if fault == "exception":
            response = exception_pdu(fc, SERVER_DEVICE_FAILURE)
        elif fault == "garbage":
            response = bytes((fc, 0xF0)) + b"\xde\xad"  # claims 240 data bytes, carries 2
        else:
            bank = self._bank(unit)
            if bank is None:
                response = self._unknown_unit(fc)
                if response is None:
                    return None
            else:
                response = handle_pdu(bank, pdu)
                if response is None:
                    return None
        self.request_count += 1
        self.requests_by_unit[unit] += 1
        self.requests_by_function[fc] += 1
        return response

    def _unknown_unit(self, fc: int) -> bytes | None:
        return exception_pdu(fc, GATEWAY_TARGET_FAILED)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, server: ModbusSimServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, though not necessarily an asyncio.Transport subclass (uvloop's is not)
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.server.connection_count += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        frames_in_packet = 0
        while len(self.buffer) >= 7:
            tid, pid, length, unit = struct.unpack(">HHHB", self.buffer[:7])
            if pid != 0 or not 2 <= length <= 254:
                log.debug("dropping a malformed MBAP header %r", self.buffer[:7])
                self.buffer = b""
                if self.transport:
                    self.transport.close()
                return
            if len(self.buffer) < 6 + length:
                break
            pdu, self.buffer = self.buffer[7 : 6 + length], self.buffer[6 + length :]
            frames_in_packet += 1
            if self.server.pipelining_broken and frames_in_packet > 1:
                self.server.requests_received += 1
                self.server.requests_dropped += 1
                continue
            response = self.server.answer(unit, pdu)
            if response is None:
                continue
            frame = struct.pack(">HHHB", tid, 0, len(response) + 1, unit) + response
            self._send(frame)
        if frames_in_packet > 1:
            self.server.pipelined_packets += 1
        if self.server.pipelining_broken and frames_in_packet > 0:
            self.buffer = b""  # like pymodbus 3.16: the rest of the packet is gone

    def _send(self, frame: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        delay = self.server.response_delay_s
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._write_if_open, frame)
        else:
            self.transport.write(frame)

    def _write_if_open(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)


class ModbusSimServer(_Counting):
    """Modbus TCP server over `banks` (unit id -> RegisterBank), on loopback in tests.

    `port=0` picks a free port (read `.port` after `start`). Stop and start again on the
    same port to simulate a PLC power cycle; `drop_connections` simulates a network cut.
    """

    def __init__(
        self,
        host: str,
        port: int,
        banks: dict[int, RegisterBank],
        *,
        pipelining_broken: bool = False,
    ) -> None:
        super().__init__(banks)
        self.host, self.port = host, port
        self.pipelining_broken = pipelining_broken
        self.connections: set[_TcpConnection] = set()
        self.connection_count = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _TcpConnection(self), self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self.drop_connections()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None

    def drop_connections(self) -> None:
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        self.connections.clear()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> ModbusSimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def crc16(data: bytes) -> int:
    """Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF), sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _rtu_request_length(buffer: bytes) -> int | None:
    """Total length of the RTU request at the start of `buffer`, or None if not yet known."""
    if len(buffer) < 2:
        return None
    fc = buffer[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return 9 + buffer[6] if len(buffer) >= 7 else None
    return 4  # unknown function: unit, fc, crc; answered with exception 1 if the CRC fits


class ModbusRtuSimServer(_Counting):
    """Modbus RTU server on a serial device, e.g. one end of a socat pseudo-terminal pair.

    Frames are delimited by their function code's length (requests have fixed layouts), and
    a frame with a bad CRC is dropped without an answer, as a serial slave does.
    """

    def __init__(self, serial_path: str, banks: dict[int, RegisterBank]) -> None:
        super().__init__(banks)
        self.serial_path = serial_path
        self._fd: int | None = None
        self._buffer = b""
        self.crc_errors = 0

    async def start(self) -> None:
        fd = os.open(self.serial_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        with contextlib.suppress(termios.error):
            tty.setraw(fd)
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    async def stop(self) -> None:
        if self._fd is None:
            return
        asyncio.get_running_loop().remove_reader(self._fd)
        os.close(self._fd)
        self._fd = None

    def _unknown_unit(self, fc: int) -> bytes | None:
        return None  # an absent serial slave does not answer

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            chunk = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        self._buffer += chunk
        while True:
            length = _rtu_request_length(self._buffer)
            if length is None or len(self._buffer) < length:
                return
            frame, self._buffer = self._buffer[:length], self._buffer[length:]
            body, crc = frame[:-2], int.from_bytes(frame[-2:], "little")
            if crc16(body) != crc:
                self.crc_errors += 1
                self._buffer = b""  # resynchronise on the next request
                return
            unit, pdu = body[0], body[1:]
            if unit == 0:  # broadcast: writes apply, nobody answers
                for bank in self.banks.values():
                    handle_pdu(bank, pdu)
                continue
            response = self.answer(unit, pdu)
            if response is None:
                continue
            out = bytes((unit,)) + response
            out += crc16(out).to_bytes(2, "little")
            delay = self.response_delay_s
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self._write, out)
            else:
                self._write(out)

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._fd, data)

    async def __aenter__(self) -> ModbusRtuSimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
