"""Modbus RTU over a real serial line: a pseudo-terminal pair made by socat, the simulated
RTU server on one end and the connector (pymodbus' serial client) on the other."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest

from connectors.modbus.address import Table
from connectors.modbus.client import ModbusConnector, read_once
from connectors.modbus.decode import encode_value
from edge_config.schema import ByteOrder, DataType, SiteConfig
from gateway.sample import Quality, Sample
from simulators.modbus_server import ModbusRtuSimServer, RegisterBank
from tests.servers import require_program


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    socat = require_program("socat", "socat")
    proc = subprocess.Popen([socat, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    paths: list[str] = []
    while len(paths) < 2:
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            pytest.fail("socat exited before creating the pseudo-terminal pair")
        if match := re.search(r"PTY is (\S+)", line):
            paths.append(match.group(1))
    try:
        yield paths[0], paths[1]
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def bank() -> RegisterBank:
    bank = RegisterBank(sizes={table: 500 for table in Table})
    bank.set_registers(Table.HOLDING_REGISTER, 0, encode_value(123456, DataType.UINT32, ByteOrder.CDAB))
    bank.set_registers(Table.HOLDING_REGISTER, 2, encode_value(-3.25, DataType.FLOAT32, ByteOrder.ABCD))
    bank.set_registers(Table.INPUT_REGISTER, 10, [215])
    bank.set_registers(Table.COIL, 4, [1])
    return bank


@pytest.fixture
async def rtu_server(pty_pair: tuple[str, str], bank: RegisterBank) -> AsyncIterator[ModbusRtuSimServer]:
    async with ModbusRtuSimServer(pty_pair[0], {5: bank}) as server:
        yield server


def rtu_site(serial_port: str) -> SiteConfig:
    return SiteConfig(
        site={"enterprise": "acme", "site": "dongguan"},
        devices=[
            {
                "name": "oven3",
                "area": "curing",
                "line": "line2",
                "protocol": "modbus-rtu",
                "connection": {"serial_port": serial_port, "baudrate": 19200, "unit": 5, "timeout": "500ms"},
                "poll": "100ms",
                "byte_order": "CDAB",
                "tags": {
                    "parts": {"address": "hr40001", "type": "uint32"},
                    "temp": {"address": "hr40003", "type": "float32", "byte_order": "ABCD"},
                    "zone": {"address": "ir30011", "scale": 0.1},
                    "heater": {"address": "co00005", "type": "bool"},
                    "missing": {"address": "hr:400"},
                },
            }
        ],
    )


async def test_rtu_over_a_pseudo_terminal_pair_reads_every_tag(
    pty_pair: tuple[str, str], rtu_server: ModbusRtuSimServer
) -> None:
    config = rtu_site(pty_pair[1])
    samples = {s.tag_name: s for s in await read_once(config, config.devices[0])}
    assert samples["parts"].value == 123456
    assert samples["temp"].value == -3.25
    assert samples["zone"].value == pytest.approx(21.5)
    assert samples["heater"].value is True
    assert samples["parts"].tag == "acme/dongguan/curing/line2/oven3/parts"
    assert rtu_server.requests_by_unit[5] == 4  # hr 0..3, hr 400, ir 10, co 4
    assert rtu_server.crc_errors == 0


async def test_rtu_polling_follows_changes_and_an_exception_marks_only_that_tag_bad(
    pty_pair: tuple[str, str], rtu_server: ModbusRtuSimServer, bank: RegisterBank
) -> None:
    bank.forbid(Table.HOLDING_REGISTER, 400)
    config = rtu_site(pty_pair[1])
    batches: list[list[Sample]] = []
    changed = asyncio.Event()

    async def emit(samples: list[Sample]) -> None:
        batches.append(samples)
        changed.set()

    connector = ModbusConnector(config, config.devices[0])
    task = asyncio.create_task(connector.run(emit))
    try:
        async with asyncio.timeout(5):
            while not batches:
                await changed.wait()
                changed.clear()
            first = {s.tag_name: s for s in batches[0]}
            assert first["missing"].quality == Quality.BAD
            assert first["missing"].reason == "Modbus exception 2 (illegal data address) reading hr:400..400"
            assert all(s.quality == Quality.GOOD for name, s in first.items() if name != "missing")
            bank.set_registers(Table.INPUT_REGISTER, 10, [300])
            while not any(s.tag_name == "zone" and s.value == pytest.approx(30.0) for s in batches[-1]):
                changed.clear()
                await changed.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_devices_sharing_one_serial_line_are_read_in_turn_and_an_absent_unit_disturbs_no_other(
    pty_pair: tuple[str, str], bank: RegisterBank
) -> None:
    other = RegisterBank(sizes={Table.HOLDING_REGISTER: 10})
    other.set_registers(Table.HOLDING_REGISTER, 0, [606])

    def device(name: str, unit: int) -> dict[str, object]:
        return {
            "name": name,
            "area": "curing",
            "line": "line2",
            "protocol": "modbus-rtu",
            "connection": {"serial_port": pty_pair[1], "baudrate": 19200, "unit": unit, "timeout": "200ms"},
            "poll": "100ms",
            "tags": {"word": {"address": "hr:0"}},
        }

    config = SiteConfig(
        site={"enterprise": "acme", "site": "dongguan"},
        devices=[device("oven5", 5), device("oven6", 6), device("oven7_absent", 7)],
    )
    latest: dict[str, Sample] = {}
    both_read = asyncio.Event()

    async def emit(samples: list[Sample]) -> None:
        for s in samples:
            latest[s.tag.split("/")[-2]] = s
        if {"oven5", "oven6", "oven7_absent"} <= latest.keys() and latest["oven6"].quality == Quality.GOOD:
            both_read.set()

    async with ModbusRtuSimServer(pty_pair[0], {5: bank, 6: other}) as server:
        tasks = [asyncio.create_task(ModbusConnector(config, d).run(emit)) for d in config.devices]
        try:
            await asyncio.wait_for(both_read.wait(), 5)
            await asyncio.sleep(0.5)  # several cycles, with the absent unit timing out in each
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert latest["oven5"].value == encode_value(123456, DataType.UINT32, ByteOrder.CDAB)[0]
    assert latest["oven6"].value == 606
    assert latest["oven5"].quality == latest["oven6"].quality == Quality.GOOD
    assert latest["oven7_absent"].quality == Quality.BAD
    assert latest["oven7_absent"].reason == "no answer within 0.2 s reading hr:0..0"
    assert server.requests_by_unit[5] >= 3 and server.requests_by_unit[6] >= 3
    assert server.crc_errors == 0  # one port, one request at a time: no frames interleaved
