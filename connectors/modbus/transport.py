"""The link to one Modbus device: read and write words, with errors the connector can name.

Two implementations share one small interface (`RegisterTransport`):

- `PymodbusTransport` (default, TCP and RTU): pymodbus 3.x's async clients. pymodbus
  holds a lock around every request, so exactly one request is in flight on a link:
  safe with every PLC, including those that answer only the first request of a packet.
- `PipelinedTcpTransport` (`pipelining: true` on a TCP device): a small MBAP client that
  keeps several requests in flight, matched by transaction id. pymodbus cannot do this,
  hence the second implementation. Only for devices known to answer pipelined requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

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


def _quiet_pymodbus() -> None:
    """pymodbus logs each failed connect and malformed frame with a traceback; the connector
    reports these itself (health, one log line per outage), so keep pymodbus quiet unless debugging."""
    pymodbus_log = logging.getLogger("pymodbus.logging")
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        pymodbus_log.setLevel(logging.CRITICAL)


class PymodbusTransport:
    """pymodbus' async TCP or RTU client; one request in flight; no automatic reconnect
    (the connector reconnects with its own backoff)."""

    max_in_flight = 1

    def __init__(self, connection: ModbusTcpConnection | ModbusRtuConnection) -> None:
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

        _quiet_pymodbus()
        self.timeout_s = connection.timeout
        if isinstance(connection, ModbusTcpConnection):
            self.description = f"{connection.host}:{connection.port}"
            self.client: AsyncModbusTcpClient | AsyncModbusSerialClient = AsyncModbusTcpClient(
                connection.host, port=connection.port, timeout=connection.timeout, retries=0, reconnect_delay=0
            )
        else:
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
        if not connected:
            raise LinkDown(f"cannot connect to {self.description}: {await self._why_not_connected()}")

    async def _why_not_connected(self) -> str:
        """pymodbus only says False; one plain TCP attempt tells refused from unreachable or timeout."""
        params = self.client.comm_params
        if params.comm_type is None or params.comm_type.name != "TCP":
            return "cannot open the serial port"
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(params.host, params.port), self.timeout_s)
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        except OSError as e:
            return os.strerror(e.errno).lower() if e.errno else str(e)
        writer.close()
        return "the device closed the connection"

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


class PipelinedTcpTransport:
    """Modbus TCP with up to `max_in_flight` requests outstanding, answers matched by
    transaction id. Used only for devices configured with `pipelining: true`."""

    def __init__(self, connection: ModbusTcpConnection, max_in_flight: int = 16) -> None:
        self.host, self.port = connection.host, connection.port
        self.description = f"{connection.host}:{connection.port}"
        self.timeout_s = connection.timeout
        self.max_in_flight = max_in_flight
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._next_tid = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._down_reason = ""

    async def connect(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout_s)
        except (TimeoutError, OSError) as e:
            raise LinkDown(f"cannot connect to {self.description}: {e or 'timeout'}") from e
        self._writer, self._down_reason = writer, ""
        self._reader_task = asyncio.create_task(self._read_answers(reader), name=f"modbus-answers {self.description}")

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(7)
                tid, pid, length, _unit = struct.unpack(">HHHB", header)
                if pid != 0 or not 2 <= length <= 254:
                    raise ValueError(f"malformed MBAP header {header.hex(' ')}")
                pdu = await reader.readexactly(length - 1)
                future = self._pending.pop(tid, None)
                if future is not None and not future.done():
                    future.set_result(pdu)
        except (asyncio.IncompleteReadError, OSError, ValueError) as e:
            self._fail_all(f"connection to {self.description} lost: {e}" if str(e) else "")

    def _fail_all(self, reason: str) -> None:
        self._down_reason = reason or f"connection to {self.description} closed by the device"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkDown(self._down_reason))
        self._pending.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _request(self, unit: int, pdu: bytes) -> bytes:
        async with self._slots:
            if self._writer is None or self._writer.is_closing():
                raise LinkDown(self._down_reason or f"connection to {self.description} lost")
            self._next_tid = self._next_tid % 65535 + 1
            tid = self._next_tid
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._pending[tid] = future
            self._writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
            try:
                answer = await asyncio.wait_for(future, self.timeout_s)
            except TimeoutError as e:
                self._pending.pop(tid, None)
                raise ReadTimeout(f"no answer within {self.timeout_s:g} s") from e
        if answer and answer[0] & 0x80:
            raise ModbusDeviceError(answer[1] if len(answer) > 1 else 0)
        if not answer or answer[0] != pdu[0]:
            raise ReadTimeout(f"malformed answer {answer.hex(' ')}")
        return answer

    async def read(self, unit: int, table: Table, offset: int, count: int) -> list[int]:
        fc = _READ_FC[table]
        answer = await self._request(unit, struct.pack(">BHH", fc, offset, count))
        data = answer[2:]
        if len(answer) < 2 or answer[1] != len(data):
            raise ReadTimeout(f"malformed answer: byte count {answer[1] if len(answer) > 1 else '?'} for {len(data)}")
        if table.is_bit_table:
            if len(data) != (count + 7) // 8:
                raise ReadTimeout(f"malformed answer: {len(data)} bytes for {count} bits")
            return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
        if len(data) != 2 * count:
            raise ReadTimeout(f"malformed answer: {len(data)} bytes for {count} registers")
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
        if self._reader_task is not None:
            self._reader_task.cancel()
            self._reader_task = None
        if self._writer is not None:
            with contextlib.suppress(RuntimeError):
                self._writer.close()
            self._writer = None


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


def open_transport(device: Device) -> RegisterTransport:
    """The transport a device's connection and `pipelining` setting call for (not yet connected).

    Call from inside the event loop: serial lines are shared per loop and port.
    """
    connection = device.connection
    if isinstance(connection, ModbusTcpConnection):
        return PipelinedTcpTransport(connection) if device.pipelining else PymodbusTransport(connection)
    if isinstance(connection, ModbusRtuConnection):
        return SharedSerialTransport(connection)  # a serial line carries one request at a time
    raise ValueError(f"device {device.name!r} has no Modbus connection")
