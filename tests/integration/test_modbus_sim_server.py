"""The simulated Modbus server answers like a PLC: every request of a pipelined packet, or,
when told to behave like pymodbus 3.16 / some PLCs, only the first; and it injects faults."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient

from connectors.modbus.address import Table
from simulators.modbus_server import ModbusSimServer, RegisterBank
from tests.servers import free_port


def _read_request(transaction_id: int, unit: int, fc: int, offset: int, count: int) -> bytes:
    return struct.pack(">HHHBBHH", transaction_id, 0, 6, unit, fc, offset, count)


async def _answers(reader: asyncio.StreamReader, timeout_s: float = 0.25) -> list[tuple[int, bytes]]:
    """(transaction id, PDU) of every response that arrives before a quiet period."""
    data = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(4096), timeout_s)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    out = []
    while len(data) >= 7:
        tid, _pid, length = struct.unpack(">HHH", data[:6])
        out.append((tid, data[7 : 6 + length]))
        data = data[6 + length :]
    return out


@pytest.fixture
def bank() -> RegisterBank:
    bank = RegisterBank(sizes={Table.HOLDING_REGISTER: 200, Table.INPUT_REGISTER: 200})
    bank.set_registers(Table.HOLDING_REGISTER, 0, [1000 + i for i in range(200)])
    return bank


@pytest.fixture
async def server(bank: RegisterBank) -> AsyncIterator[ModbusSimServer]:
    async with ModbusSimServer("127.0.0.1", free_port(), {1: bank}) as server:
        yield server


async def test_three_requests_in_one_packet_get_three_answers(server: ModbusSimServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"".join(_read_request(tid, 1, 3, tid * 10, 2) for tid in (1, 2, 3)))
    answers = await _answers(reader)
    writer.close()
    assert [tid for tid, _ in answers] == [1, 2, 3]
    assert answers[1][1] == bytes((3, 4)) + struct.pack(">HH", 1020, 1021)
    assert server.request_count == 3


async def test_a_server_with_broken_pipelining_answers_only_the_first_request_of_a_packet(bank: RegisterBank) -> None:
    async with ModbusSimServer("127.0.0.1", free_port(), {1: bank}, pipelining_broken=True) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"".join(_read_request(tid, 1, 3, tid, 1) for tid in (1, 2, 3)))
        answers = await _answers(reader)
        writer.close()
    assert [tid for tid, _ in answers] == [1]
    assert (server.request_count, server.requests_dropped) == (1, 2)


async def test_reads_writes_and_exceptions_through_the_pymodbus_client(
    server: ModbusSimServer, bank: RegisterBank
) -> None:
    bank.set_registers(Table.COIL, 3, [1, 0, 1])
    client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=1, retries=0)
    await client.connect()
    try:
        assert (await client.read_holding_registers(5, count=3, device_id=1)).registers == [1005, 1006, 1007]
        assert (await client.read_coils(3, count=3, device_id=1)).bits[:3] == [True, False, True]
        past_end = await client.read_holding_registers(199, count=2, device_id=1)
        assert past_end.isError() and past_end.exception_code == 2
        await client.write_registers(150, [7, 8], device_id=1)
        await client.write_coil(9, True, device_id=1)
    finally:
        client.close()
    assert bank.get_registers(Table.HOLDING_REGISTER, 150, 2) == [7, 8]
    assert bank.get_registers(Table.COIL, 9, 1) == [1]
    assert server.write_count == 2
    assert server.requests_by_unit[1] == 5


async def test_a_forbidden_range_answers_exception_2_and_neighbours_still_read(
    server: ModbusSimServer, bank: RegisterBank
) -> None:
    bank.forbid(Table.HOLDING_REGISTER, 100, 10)
    client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=1, retries=0)
    await client.connect()
    try:
        assert (await client.read_holding_registers(95, count=10, device_id=1)).exception_code == 2
        assert not (await client.read_holding_registers(90, count=10, device_id=1)).isError()
    finally:
        client.close()


async def test_a_read_of_126_registers_is_refused_with_exception_3(server: ModbusSimServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(_read_request(7, 1, 4, 0, 126) + _read_request(8, 1, 1, 0, 2001))
    assert await _answers(reader) == [(7, bytes((0x84, 3))), (8, bytes((0x81, 3)))]
    writer.close()


async def test_injected_faults_silent_exception_and_garbage(server: ModbusSimServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    server.fault = "exception"
    writer.write(_read_request(1, 1, 3, 0, 1))
    assert await _answers(reader) == [(1, bytes((0x83, 4)))]
    server.fault = "silent"
    writer.write(_read_request(2, 1, 3, 0, 1))
    assert await _answers(reader, 0.2) == []
    server.fault = "garbage"
    writer.write(_read_request(3, 1, 3, 0, 1))
    (tid, pdu), *_ = await _answers(reader)
    assert tid == 3 and pdu[0] == 3 and pdu[1] != len(pdu) - 2  # byte count does not match the data
    writer.close()


async def test_write_listeners_see_writes_from_clients_but_not_from_the_simulator(
    server: ModbusSimServer, bank: RegisterBank
) -> None:
    seen: list[tuple[Table, int, list[int]]] = []
    bank.add_write_listener(lambda table, offset, values: seen.append((table, offset, values)))
    bank.set_registers(Table.HOLDING_REGISTER, 0, [5])
    client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=1, retries=0)
    await client.connect()
    await client.write_register(42, 4242, device_id=1)
    client.close()
    assert seen == [(Table.HOLDING_REGISTER, 42, [4242])]
