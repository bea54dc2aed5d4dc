"""The link to one Modbus device: read and write words, with errors the connector can name.

Two implementations share one small interface (`RegisterTransport`):

- `MbapTransport` (every TCP device): a small MBAP client on an asyncio Protocol. One
  request in flight by default (safe with every PLC, including those that answer only the
  first request of a packet); several, matched by transaction id, for a device configured
  with `pipelining: true`, which pymodbus cannot do. It is also about three times cheaper
  per request than pymodbus' client, which matters at 100 requests/s on a Raspberry Pi.
- `PymodbusTransport` (RTU): pymodbus 3.x's async serial client.
  Serial framing (silent intervals, CRC) and line sharing are where a maintained library
  earns its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, Protocol

from connectors.modbus.address import Table
from edge_config.schema import Device, ModbusRtuConnection, ModbusTcpConnection

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
_READ_FC = {Table.COIL: 1, Table.DISCRETE_INPUT: 2, Table.HOLDING_REGISTER: 3, Table.INPUT_REGISTER: 4}


class ModbusDeviceError(Exception):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def __str__(self) -> str:
        return f"Modbus exception {self.code} ({EXCEPTION_NAMES.get(self.code, 'unknown code')})"


class ReadTimeout(Exception):
    """No (valid) answer within the timeout; the link itself is still up."""


class LinkDown(Exception):
    """The connection is refused, lost or unusable; the connector reconnects."""


class RegisterTransport(Protocol):
    description: str  # "127.0.0.1:502" or "/dev/ttyUSB0"
    timeout_s: float
    max_in_flight: int  # 1 unless the device allows pipelining

    async def connect(self) -> None: ...

    async def read(self, unit: int, table: Table, offset: int, count: int) -> list[int]:
        """Words (or 0/1 for coils and discrete inputs) read from the device."""
        ...

    async def write(self, unit: int, table: Table, offset: int, values: list[int]) -> None: ...

    def close(self) -> None: ...


def connect_error_text(error: OSError) -> str:
    """ "connection refused", "no route to host"...: the OS's words, without errno noise."""
    return os.strerror(error.errno).lower() if error.errno else str(error)


def _quiet_pymodbus() -> None:
    """pymodbus logs each failed connect and malformed frame with a traceback; the connector
    reports these itself (health, one log line per outage), so keep pymodbus quiet unless debugging."""
    pymodbus_log = logging.getLogger("pymodbus.logging")
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        pymodbus_log.setLevel(logging.CRITICAL)


class PymodbusTransport:
    """pymodbus' async RTU (serial) client; one request in flight; no automatic reconnect
    (the connector reconnects with its own backoff)."""

    max_in_flight = 1

    def __init__(self, connection: ModbusRtuConnection) -> None:
        from pymodbus.client import AsyncModbusSerialClient

        _quiet_pymodbus()
        self.timeout_s = connection.timeout
        self.description = connection.serial_port
        self.client = AsyncModbusSerialClient(
            connection.serial_port,
            baudrate=connection.baudrate,
            parity=connection.parity,
            stopbits=connection.stopbits,
            bytesize=connection.bytesize,
            timeout=connection.timeout,
            retries=0,
            reconnect_delay=0,
        )

    async def connect(self) -> None:
        try:
            connected = await asyncio.wait_for(self.client.connect(), self.timeout_s + 1.0)
        except (TimeoutError, OSError) as e:
            raise LinkDown(f"cannot connect to {self.description}: {e or 'timeout'}") from e
        if not connected:  # pymodbus only says False
            raise LinkDown(f"cannot connect to {self.description}: cannot open the serial port")

    async def read(self, unit: int, table: Table, offset: int, count: int) -> list[int]:
        client = self.client
        call = {
            Table.COIL: client.read_coils,
            Table.DISCRETE_INPUT: client.read_discrete_inputs,
            Table.HOLDING_REGISTER: client.read_holding_registers,
            Table.INPUT_REGISTER: client.read_input_registers,
        }[table]
        response = await self._execute(lambda: call(offset, count=count, device_id=unit))
        values = [int(b) for b in response.bits[:count]] if table.is_bit_table else list(response.registers)
        if len(values) != count:
            raise ReadTimeout(f"answer carried {len(values)} values instead of {count}")
        return values

    async def write(self, unit: int, table: Table, offset: int, values: list[int]) -> None:
        client = self.client
        if table == Table.HOLDING_REGISTER:
            if len(values) == 1:
                await self._execute(lambda: client.write_register(offset, values[0], device_id=unit))
            else:
                await self._execute(lambda: client.write_registers(offset, values, device_id=unit))
        elif table == Table.COIL:
            bits = [bool(v) for v in values]
            if len(bits) == 1:
                await self._execute(lambda: client.write_coil(offset, bits[0], device_id=unit))
            else:
                await self._execute(lambda: client.write_coils(offset, bits, device_id=unit))
        else:
            raise ValueError(f"{table.value} is read-only in Modbus: only holding registers and coils can be written")

    async def _execute(self, make_request: Callable[[], Awaitable[Any]]) -> Any:
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        if not self.client.connected:
            raise LinkDown(f"connection to {self.description} lost")
        try:
            response = await make_request()
        except ConnectionException as e:
            raise LinkDown(f"connection to {self.description} lost") from e
        except ModbusIOException as e:
            if not self.client.connected:
                raise LinkDown(f"connection to {self.description} closed after a missing or malformed answer") from e
            raise ReadTimeout(f"no answer within {self.timeout_s:g} s") from e
        if response.isError():
            raise ModbusDeviceError(getattr(response, "exception_code", 0))
        return response

    def close(self) -> None:
        self.client.close()


class MbapTransport:
    """Modbus TCP (MBAP framing) on an asyncio `Protocol`: answers are matched to requests
    by transaction id as they arrive, in the event loop's own callback.

    `max_in_flight` is 1 unless the device is configured with `pipelining: true` (then
    16): one request on the wire is safe with every PLC, including those that answer
    only the first request of a packet. Used for every TCP device: at 100 requests/s it
    costs about a third of pymodbus' client (benchmarks/modbus_poll.py). An answer that
    does not parse closes the link: after a framing error nothing later in the stream
    can be trusted, so the connector reconnects and says why.
    """

    def __init__(self, connection: ModbusTcpConnection, max_in_flight: int = 1) -> None:
        self.host, self.port = connection.host, connection.port
        self.description = f"{connection.host}:{connection.port}"
        self.timeout_s = connection.timeout
        self.max_in_flight = max_in_flight
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._next_tid = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._down_reason = ""

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _MbapProtocol(self), self.host, self.port), self.timeout_s
            )
        except TimeoutError as e:
            raise LinkDown(f"cannot connect to {self.description}: no answer within {self.timeout_s:g} s") from e
        except OSError as e:
            raise LinkDown(f"cannot connect to {self.description}: {connect_error_text(e)}") from e
        self._transport, self._down_reason = transport, ""  # type: ignore[assignment]

    def _answer(self, tid: int, pdu: bytes) -> None:
        future = self._pending.pop(tid, None)
        if future is not None and not future.done():
            future.set_result(pdu)  # an answer after its request timed out finds no future: dropped

    def _fail_all(self, reason: str) -> None:
        self._down_reason = reason or f"connection to {self.description} closed by the device"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkDown(self._down_reason))
        self._pending.clear()
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    async def _request(self, unit: int, pdu: bytes) -> bytes:
        async with self._slots:
            transport = self._transport
            if transport is None or transport.is_closing():
                raise LinkDown(self._down_reason or f"connection to {self.description} lost")
            self._next_tid = tid = self._next_tid % 65535 + 1
            loop = asyncio.get_running_loop()
            future: asyncio.Future[bytes] = loop.create_future()
            self._pending[tid] = future
            transport.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
            timer = loop.call_later(self.timeout_s, self._expire, tid)
            try:
                answer = await future
            finally:
                timer.cancel()
                self._pending.pop(tid, None)
        if answer and answer[0] & 0x80:
            raise ModbusDeviceError(answer[1] if len(answer) > 1 else 0)
        if not answer or answer[0] != pdu[0]:
            self._malformed(f"function code {answer[:1].hex() or 'missing'} for {pdu[0]:02x}")
        return answer

    def _expire(self, tid: int) -> None:
        future = self._pending.pop(tid, None)
        if future is not None and not future.done():
            future.set_exception(ReadTimeout(f"no answer within {self.timeout_s:g} s"))

    def _malformed(self, what: str) -> NoReturn:
        reason = f"malformed answer from {self.description} ({what}): reconnecting"
        self._fail_all(reason)
        raise LinkDown(reason)

    async def read(self, unit: int, table: Table, offset: int, count: int) -> list[int]:
        answer = await self._request(unit, struct.pack(">BHH", _READ_FC[table], offset, count))
        data = answer[2:]
        if len(answer) < 2 or answer[1] != len(data):
            self._malformed(f"byte count {answer[1] if len(answer) > 1 else '?'} for {len(data)} data bytes")
        if table.is_bit_table:
            if len(data) != (count + 7) // 8:
                self._malformed(f"{len(data)} bytes for {count} bits")
            return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
        if len(data) != 2 * count:
            self._malformed(f"{len(data)} bytes for {count} registers")
        return list(struct.unpack(f">{count}H", data))

    async def write(self, unit: int, table: Table, offset: int, values: list[int]) -> None:
        if table == Table.HOLDING_REGISTER:
            pdu = struct.pack(f">BHHB{len(values)}H", 16, offset, len(values), 2 * len(values), *values)
        elif table == Table.COIL:
            packed = bytearray((len(values) + 7) // 8)
            for i, value in enumerate(values):
                if value:
                    packed[i // 8] |= 1 << (i % 8)
            pdu = struct.pack(">BHHB", 15, offset, len(values), len(packed)) + bytes(packed)
        else:
            raise ValueError(f"{table.value} is read-only in Modbus: only holding registers and coils can be written")
        await self._request(unit, pdu)

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            with contextlib.suppress(RuntimeError):
                transport.close()


class _MbapProtocol(asyncio.Protocol):
    """Splits the byte stream into MBAP frames and hands each answer to its request."""

    def __init__(self, owner: MbapTransport) -> None:
        self.owner = owner
        self.received = bytearray()

    def data_received(self, data: bytes) -> None:
        received = self.received
        received += data
        while len(received) >= 7:
            tid, pid, length = struct.unpack_from(">HHH", received)
            if pid != 0 or not 2 <= length <= 254:
                header = bytes(received[:7]).hex(" ")
                self.owner._fail_all(f"connection to {self.owner.description} lost: malformed MBAP header {header}")
                received.clear()
                return
            end = 6 + length
            if len(received) < end:
                return
            pdu = bytes(received[7:end])
            del received[:end]
            self.owner._answer(tid, pdu)

    def connection_lost(self, exc: Exception | None) -> None:
        detail = f": {exc}" if exc else ""
        self.owner._fail_all(f"connection to {self.owner.description} lost{detail}" if exc else "")


class _SerialLine:
    """One opened serial port, shared by every device (unit id) on that RS-485 line.

    A tty opened twice splits the incoming bytes between the two readers, so devices on one
    line must share one client; pymodbus' request lock then keeps one request on the wire.
    """

    def __init__(self, connection: ModbusRtuConnection) -> None:
        self.transport = PymodbusTransport(connection)
        self.users = 0
        self._connecting = asyncio.Lock()

    async def connect(self) -> None:
        async with self._connecting:
            if not self.transport.client.connected:
                self.transport.client.close()
                await self.transport.connect()


_serial_lines: dict[tuple[int, str], _SerialLine] = {}


class SharedSerialTransport:
    """A device's handle on a shared `_SerialLine`; closing the last handle closes the port."""

    max_in_flight = 1

    def __init__(self, connection: ModbusRtuConnection) -> None:
        self._key = (id(asyncio.get_running_loop()), connection.serial_port)
        line = _serial_lines.get(self._key)
        if line is None:
            line = _serial_lines[self._key] = _SerialLine(connection)
        line.users += 1
        self._line: _SerialLine | None = line
        self.description = line.transport.description
        self.timeout_s = connection.timeout

    def _open_line(self) -> _SerialLine:
        if self._line is None:
            raise LinkDown(f"{self.description} is closed")
        return self._line

    async def connect(self) -> None:
        await self._open_line().connect()

    async def read(self, unit: int, table: Table, offset: int, count: int) -> list[int]:
        return await self._open_line().transport.read(unit, table, offset, count)

    async def write(self, unit: int, table: Table, offset: int, values: list[int]) -> None:
        await self._open_line().transport.write(unit, table, offset, values)

    def close(self) -> None:
        line, self._line = self._line, None
        if line is None:
            return
        line.users -= 1
        if line.users <= 0:
            line.transport.close()
            if _serial_lines.get(self._key) is line:
                del _serial_lines[self._key]


def transport_for(
    connection: ModbusTcpConnection | ModbusRtuConnection, *, pipelining: bool = False
) -> RegisterTransport:
    """A transport of its own for one connection (not yet connected): `MbapTransport` for TCP,
    `PymodbusTransport` for a serial line (not shared: for `edgefab modbus probe`)."""
    if isinstance(connection, ModbusTcpConnection):
        return MbapTransport(connection, max_in_flight=16 if pipelining else 1)
    return PymodbusTransport(connection)


def open_transport(device: Device) -> RegisterTransport:
    """The transport a device's connection and `pipelining` setting call for (not yet connected).

    Call from inside the event loop: serial lines are shared per loop and port.
    """
    connection = device.connection
    if isinstance(connection, ModbusTcpConnection):
        return transport_for(connection, pipelining=device.pipelining)
    if isinstance(connection, ModbusRtuConnection):
        return SharedSerialTransport(connection)  # a serial line carries one request at a time
    raise ValueError(f"device {device.name!r} has no Modbus connection")
