"""`edgefab modbus probe` as an integrator runs it: a subprocess against a live simulated device."""

from __future__ import annotations

import asyncio
import sys

import pytest

from connectors.modbus.address import Table
from connectors.modbus.decode import encode_value
from edge_config.schema import ByteOrder, DataType
from gateway.cli import main
from simulators.modbus_server import ModbusSimServer, RegisterBank
from tests.servers import free_port


async def probe_in_thread(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same command in this process (a thread, so the test's server keeps serving): faster than a subprocess."""
    status = await asyncio.to_thread(main, ["modbus", "probe", *args])
    out, err = capsys.readouterr()
    return status, out, err


async def probe(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "modbus", "probe", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_probe_prints_a_live_value_in_all_four_byte_orders(capsys: pytest.CaptureFixture[str]) -> None:
    bank = RegisterBank(sizes={Table.HOLDING_REGISTER: 100})
    bank.set_registers(Table.HOLDING_REGISTER, 9, encode_value(1234.5, DataType.FLOAT32, ByteOrder.CDAB))
    bank.forbid(Table.HOLDING_REGISTER, 50, 2, answer="silent")
    async with ModbusSimServer("127.0.0.1", free_port(), {4: bank}) as server:
        port = str(server.port)
        status, out, err = await probe("--host", "127.0.0.1", "--port", port, "--unit", "4", "hr40010")
        assert status == 0, err
        lines = out.splitlines()
        assert lines[0] == f"hr:9..10 from 127.0.0.1:{port} unit 4: 0x5000 0x449A"
        float_row = next(line.split() for line in lines if line.startswith("float32"))
        assert float_row[4] == "1234.5"  # the CDAB column

        status, _, err = await probe_in_thread(
            capsys, "--host", "127.0.0.1", "--port", port, "--unit", "4", "hr:99", "--count", "2"
        )
        assert (status, err.strip()) == (
            1,
            f"edgefab modbus probe: Modbus exception 2 (illegal data address) from 127.0.0.1:{port} unit 4 reading hr:99..100",
        )
        status, _, err = await probe_in_thread(
            capsys, "--host", "127.0.0.1", "--port", port, "--unit", "4", "hr:50", "--timeout", "0.3"
        )
        assert (status, err.strip()) == (
            1,
            f"edgefab modbus probe: no answer within 0.3 s from 127.0.0.1:{port} unit 4 reading hr:50..51",
        )


async def test_probe_says_in_one_line_when_nothing_listens_or_the_address_is_wrong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    status, out, err = await probe("--host", "127.0.0.1", "--port", str(port), "hr:0")
    assert (status, out) == (1, "")
    assert err.strip() == f"edgefab modbus probe: cannot connect to 127.0.0.1:{port}: connection refused"
    status, _, err = await probe_in_thread(capsys, "--host", "127.0.0.1", "hr99999x")
    assert status == 1 and len(err.strip().splitlines()) == 1 and "is not a Modbus address" in err
