"""The Modbus connector against the simulated Modbus server over real loopback sockets."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from connectors.backoff import Backoff
from connectors.base import LinkState
from connectors.modbus.address import Table, parse_address
from connectors.modbus.client import ModbusConnector, read_once
from connectors.modbus.decode import encode_value
from connectors.modbus.plan import plan_device
from edge_config.schema import ByteOrder, DataType, SiteConfig
from gateway.sample import Quality, Sample
from simulators.modbus_server import ModbusSimServer, RegisterBank
from tests.servers import free_port

PREFIX = "acme/dongguan/stamping/line1/press01/"


def site(port: int, tags: dict[str, dict[str, Any]], **device: Any) -> SiteConfig:
    return SiteConfig(
        site={"enterprise": "acme", "site": "dongguan"},
        devices=[
            {
                "name": "press01",
                "area": "stamping",
                "line": "line1",
                "protocol": "modbus",
                "connection": {"host": "127.0.0.1", "port": port, "unit": 1, "timeout": "500ms"},
                "poll": "100ms",
                "tags": tags,
                **device,
            }
        ],
    )


class Collector:
    """Runs a connector in the background and keeps every batch it emits."""

    def __init__(self, connector: ModbusConnector) -> None:
        self.connector = connector
        self.batches: list[list[Sample]] = []
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def emit(self, samples: list[Sample]) -> None:
        self.batches.append(samples)
        self._changed.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self.connector.run(self.emit))

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    async def wait_for(
        self, predicate: Callable[[list[Sample]], bool], *, since: int = 0, timeout_s: float = 5.0
    ) -> list[Sample]:
        """The first batch from index `since` on (received or yet to come) that satisfies `predicate`."""
        seen = since
        async with asyncio.timeout(timeout_s):
            while True:
                for batch in self.batches[seen:]:
                    if predicate(batch):
                        return batch
                seen = len(self.batches)
                self._changed.clear()
                await self._changed.wait()

    def latest(self, name: str) -> Sample:
        return next(s for batch in reversed(self.batches) for s in batch if s.tag == PREFIX + name)


def by_name(samples: list[Sample]) -> dict[str, Sample]:
    return {s.tag_name: s for s in samples}


@pytest.fixture
def bank() -> RegisterBank:
    return RegisterBank(sizes={table: 2000 for table in Table})


@pytest.fixture
async def server(bank: RegisterBank) -> AsyncIterator[ModbusSimServer]:
    async with ModbusSimServer("127.0.0.1", free_port(), {1: bank}) as server:
        yield server


@pytest.fixture
async def run_connector() -> AsyncIterator[Callable[[SiteConfig], Collector]]:
    collectors: list[Collector] = []

    def start(config: SiteConfig) -> Collector:
        collector = Collector(ModbusConnector(config, config.devices[0], backoff=Backoff(initial_s=0.05, max_s=0.2)))
        collector.start()
        collectors.append(collector)
        return collector

    yield start
    for collector in collectors:
        await collector.stop()


VALUES: dict[DataType, Any] = {
    DataType.INT16: -12345,
    DataType.UINT16: 54321,
    DataType.INT32: -123456789,
    DataType.UINT32: 3_000_000_000,
    DataType.INT64: -(2**62) - 12345,
    DataType.UINT64: 2**64 - 3,
    DataType.FLOAT32: -1234.5,
    DataType.FLOAT64: math.pi * 1e100,
}


async def test_every_data_type_and_byte_order_round_trips_through_a_real_socket(
    server: ModbusSimServer, bank: RegisterBank
) -> None:
    tags: dict[str, dict[str, Any]] = {}
    expected: dict[str, Any] = {}
    offset = 0
    for byte_order in ByteOrder:
        for data_type, value in VALUES.items():
            name = f"{data_type.value}_{byte_order.value}"
            tags[name] = {"address": f"hr:{offset}", "type": data_type.value, "byte_order": byte_order.value}
            bank.set_registers(Table.HOLDING_REGISTER, offset, encode_value(value, data_type, byte_order))
            expected[name] = value
            offset += data_type.register_count
        name = f"string_{byte_order.value}"
        tags[name] = {"address": f"ir:{offset}", "type": "string", "length": 6, "byte_order": byte_order.value}
        bank.set_registers(
            Table.INPUT_REGISTER, offset, encode_value("PRESS-01", DataType.STRING, byte_order, length=6)
        )
        expected[name] = "PRESS-01"
        offset += 6
    bank.set_registers(Table.HOLDING_REGISTER, 1500, [0b0000_0000_0010_0100])
    tags |= {"bit2": {"address": "hr:1500.2", "type": "bool"}, "bit3": {"address": "hr:1500.3", "type": "bool"}}
    expected |= {"bit2": True, "bit3": False}
    bank.set_registers(Table.COIL, 7, [1])
    bank.set_registers(Table.DISCRETE_INPUT, 9, [1, 0])
    tags |= {"coil": {"address": "co:7", "type": "bool"}, "door": {"address": "di:9"}, "door2": {"address": "di:10"}}
    expected |= {"coil": True, "door": True, "door2": False}

    config = site(server.port, tags)
    samples = by_name(await read_once(config, config.devices[0]))

    assert {name: s.value for name, s in samples.items()} == expected
    assert all(s.quality == Quality.GOOD for s in samples.values())
    assert isinstance(samples["door"].value, bool)


async def test_the_value_read_equals_what_the_bank_holds_as_it_changes(
    server: ModbusSimServer, bank: RegisterBank, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    config = site(
        server.port,
        {
            "temp": {"address": "ir30001", "type": "int16", "scale": 0.1, "unit": "degC"},
            "state": {"address": "hr40001", "map": {0: "stopped", 1: "running", 2: "fault"}},
        },
    )
    bank.set_registers(Table.INPUT_REGISTER, 0, encode_value(-215, DataType.INT16, ByteOrder.ABCD))
    bank.set_registers(Table.HOLDING_REGISTER, 0, [1])
    collector = run_connector(config)
    first = by_name(await collector.wait_for(lambda b: len(b) == 2))
    assert first["temp"].value == pytest.approx(-21.5)
    assert first["state"].value == "running"
    assert first["temp"].tag == PREFIX + "temp"

    bank.set_registers(Table.HOLDING_REGISTER, 0, [2])
    await collector.wait_for(lambda b: by_name(b).get("state", first["state"]).value == "fault")


async def test_the_plan_issues_the_minimum_number_of_requests_counted_on_the_server(
    server: ModbusSimServer, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    # 150 contiguous holding registers (2 reads at 125), 3 input registers with a 2-register gap
    # spanned by max_gap (1 read), 40 coils (1 read), and one slow tag (1 read, every 10 s).
    tags = {f"hr{i}": {"address": f"hr:{i}"} for i in range(150)}
    tags |= {"ir_a": {"address": "ir:10"}, "ir_b": {"address": "ir:13"}, "ir_c": {"address": "ir:14"}}
    tags |= {f"co{i}": {"address": f"co:{i}", "type": "bool"} for i in range(40)}
    tags |= {"slow": {"address": "hr:1000", "poll": "10s"}}
    config = site(server.port, tags, max_gap=2)
    assert len(plan_device(config.devices[0])) == 5

    collector = run_connector(config)
    await collector.wait_for(lambda b: len(b) == 1)  # the slow tag's first and only cycle in this test
    await collector.wait_for(lambda b: len(b) == 193)
    server.reset_counts()  # between two fast cycles: the connector sleeps until the next one is due
    start = len(collector.batches)
    for _ in range(5):
        await collector.wait_for(lambda b: len(b) == 193, since=len(collector.batches))
    fast_cycles = sum(1 for b in collector.batches[start:] if len(b) == 193)
    assert fast_cycles >= 5
    # every fast cycle costs exactly 4 requests: ceil(150/125) + 1 + 1
    assert server.request_count == 4 * fast_cycles
    assert server.requests_by_function == {3: 2 * fast_cycles, 4: fast_cycles, 1: fast_cycles}


async def test_a_modbus_exception_marks_only_the_affected_tags_bad(
    server: ModbusSimServer, bank: RegisterBank, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    bank.forbid(Table.HOLDING_REGISTER, 100, 11)
    bank.set_registers(Table.HOLDING_REGISTER, 0, [42])
    tags = {"good": {"address": "hr:0"}, "gap_a": {"address": "hr:100"}, "gap_b": {"address": "hr:110"}}
    tags |= {"good_ir": {"address": "ir:5"}}
    collector = run_connector(site(server.port, tags, max_gap=9))
    batch = by_name(await collector.wait_for(lambda b: len(b) == 4))

    assert batch["good"].quality == Quality.GOOD and batch["good"].value == 42
    assert batch["good_ir"].quality == Quality.GOOD
    for name in ("gap_a", "gap_b"):
        assert batch[name].quality == Quality.BAD
        assert batch[name].value is None
        assert batch[name].reason == "Modbus exception 2 (illegal data address) reading hr:100..110"
    assert collector.connector.health.state == LinkState.CONNECTED


async def test_a_timeout_marks_only_the_affected_tags_bad_and_the_cycle_goes_on(
    server: ModbusSimServer, bank: RegisterBank, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    bank.forbid(Table.INPUT_REGISTER, 50, 1, answer="silent")
    tags = {"before": {"address": "hr:0"}, "silent": {"address": "ir:50"}, "after": {"address": "co:3"}}
    collector = run_connector(site(server.port, tags))
    for _ in range(2):  # twice: a timed-out request does not poison the next cycle
        batch = by_name(await collector.wait_for(lambda b: len(b) == 3, since=len(collector.batches)))
        assert batch["silent"].quality == Quality.BAD
        assert batch["silent"].reason == "no answer within 0.5 s reading ir:50..50"
        assert batch["before"].quality == batch["after"].quality == Quality.GOOD
    assert collector.connector.health.reads_failed >= 1


async def test_a_server_stopped_and_restarted_on_the_same_port_is_reconnected_without_restarting_the_connector(
    server: ModbusSimServer, bank: RegisterBank, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    bank.set_registers(Table.HOLDING_REGISTER, 3, [7])
    collector = run_connector(site(server.port, {"a": {"address": "hr:3"}, "b": {"address": "co:0", "type": "bool"}}))
    await collector.wait_for(lambda b: by_name(b)["a"].value == 7)

    await server.stop()
    outage = await collector.wait_for(lambda b: all(s.quality == Quality.BAD for s in b), since=len(collector.batches))
    assert {s.tag_name for s in outage} == {"a", "b"}
    assert collector.connector.health.state in (LinkState.DISCONNECTED, LinkState.CONNECTING)
    await asyncio.sleep(0.5)  # several reconnect attempts fail while the server is down ...
    bad_batches = [b for b in collector.batches if b[0].quality == Quality.BAD]
    assert len(bad_batches) == 1  # ... but the tags are reported bad once, not at every attempt

    bank.set_registers(Table.HOLDING_REGISTER, 3, [8])
    await server.start()
    await collector.wait_for(lambda b: "a" in by_name(b) and by_name(b)["a"].value == 8, since=len(collector.batches))
    health = collector.connector.health
    assert health.state == LinkState.CONNECTED
    assert health.reconnects == 1
    assert "127.0.0.1" in health.last_error


async def test_a_device_that_is_down_at_start_is_reported_bad_then_read_when_it_comes_up(
    bank: RegisterBank, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    port = free_port()
    collector = run_connector(site(port, {"a": {"address": "hr:0"}}))
    refused = await collector.wait_for(lambda b: True)
    assert refused[0].quality == Quality.BAD
    assert refused[0].reason.startswith(f"cannot connect to 127.0.0.1:{port}")
    async with ModbusSimServer("127.0.0.1", port, {1: bank}):
        await collector.wait_for(lambda b: b[0].quality == Quality.GOOD)
    health = collector.connector.health
    assert health.reconnects == 0  # a first connection is not a reconnection
    assert health.last_error.startswith(f"cannot connect to 127.0.0.1:{port}: connection refused")


async def test_the_collector_does_not_pipeline_so_a_device_that_drops_pipelined_requests_still_reads(
    bank: RegisterBank, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    bank.set_registers(Table.HOLDING_REGISTER, 0, list(range(1, 401)))
    tags = {f"r{i}": {"address": f"hr:{i * 100}"} for i in range(4)}  # 4 reads per cycle
    async with ModbusSimServer("127.0.0.1", free_port(), {1: bank}, pipelining_broken=True) as server:
        collector = run_connector(site(server.port, tags))
        for _ in range(3):
            batch = by_name(await collector.wait_for(lambda b: len(b) == 4, since=len(collector.batches)))
            assert all(s.quality == Quality.GOOD for s in batch.values()), batch
        assert [batch[f"r{i}"].value for i in range(4)] == [1, 101, 201, 301]
        assert server.pipelined_packets == 0
        assert server.requests_dropped == 0


async def test_a_pipelining_device_gets_several_requests_per_packet_and_a_broken_one_shows_the_difference(
    bank: RegisterBank,
) -> None:
    bank.set_registers(Table.HOLDING_REGISTER, 0, list(range(1, 401)))
    tags = {f"r{i}": {"address": f"hr:{i * 100}"} for i in range(4)}
    for broken in (False, True):
        async with ModbusSimServer("127.0.0.1", free_port(), {1: bank}, pipelining_broken=broken) as server:
            config = site(server.port, tags, pipelining=True)
            samples = by_name(await read_once(config, config.devices[0]))
        good = [n for n, s in samples.items() if s.quality == Quality.GOOD]
        if broken:
            assert server.requests_dropped > 0
            assert len(good) < 4  # requests the device dropped time out: pipelining needs a device that allows it
        else:
            assert server.pipelined_packets >= 1
            assert sorted(good) == ["r0", "r1", "r2", "r3"]


async def test_a_cycle_that_overruns_is_skipped_not_piled_up(
    server: ModbusSimServer, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    server.response_delay_s = 0.25  # each cycle takes 250 ms; the poll interval is 100 ms
    collector = run_connector(site(server.port, {"a": {"address": "hr:0"}}))
    await collector.wait_for(lambda b: True)
    await asyncio.sleep(1.0)
    health = collector.connector.health
    assert health.extra["cycles_skipped"] >= 4
    assert health.extra["requests"] <= 7  # ~1.25 s / 0.25 s, never one request per missed 100 ms slot


async def test_writing_a_writable_tag_changes_the_device_and_a_read_only_tag_is_refused(
    server: ModbusSimServer, bank: RegisterBank, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    tags = {
        "target": {"address": "hr:20", "type": "uint32", "writable": True, "max": 100000},
        "setpoint": {"address": "hr:22", "type": "int16", "scale": 0.1, "writable": True},
        "lamp": {"address": "hr:23.4", "type": "bool", "writable": True},
        "count": {"address": "hr:24"},
    }
    bank.set_registers(Table.HOLDING_REGISTER, 23, [0b1])
    collector = run_connector(site(server.port, tags))
    await collector.wait_for(lambda b: b[0].quality == Quality.GOOD)
    connector = collector.connector
    await connector.write("target", 70000)
    await connector.write("setpoint", -12.5)
    await connector.write("lamp", True)
    assert bank.get_registers(Table.HOLDING_REGISTER, 20, 4) == [1, 70000 - 65536, 0x10000 - 125, 0b10001]
    with pytest.raises(ValueError, match="not writable"):
        await connector.write("count", 5)
    with pytest.raises(ValueError, match="above the maximum"):
        await connector.write("target", 100001)
    assert bank.get_registers(Table.HOLDING_REGISTER, 24, 1) == [0]
    assert server.write_count == 3
    assert parse_address(tags["lamp"]["address"]).bit == 4


async def test_a_device_failure_exception_marks_the_tags_bad_and_the_link_stays_up(
    server: ModbusSimServer, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    collector = run_connector(site(server.port, {"a": {"address": "hr:0"}, "b": {"address": "ir:0"}}))
    await collector.wait_for(lambda b: b[0].quality == Quality.GOOD)
    server.fault = "exception"
    batch = await collector.wait_for(lambda b: b[0].quality == Quality.BAD, since=len(collector.batches))
    assert {s.reason for s in batch} == {
        "Modbus exception 4 (server device failure) reading hr:0..0",
        "Modbus exception 4 (server device failure) reading ir:0..0",
    }
    server.fault = None
    await collector.wait_for(lambda b: b[0].quality == Quality.GOOD, since=len(collector.batches))
    assert collector.connector.health.reconnects == 0


async def test_a_garbled_answer_marks_the_tags_bad_and_the_link_is_reopened(
    server: ModbusSimServer, run_connector: Callable[[SiteConfig], Collector]
) -> None:
    collector = run_connector(site(server.port, {"a": {"address": "hr:0"}}))
    await collector.wait_for(lambda b: b[0].quality == Quality.GOOD)
    server.fault = "garbage"
    bad = await collector.wait_for(lambda b: b[0].quality == Quality.BAD, since=len(collector.batches))
    assert "malformed answer" in bad[0].reason
    server.fault = None
    await collector.wait_for(lambda b: b[0].quality == Quality.GOOD, since=len(collector.batches))
    assert collector.connector.health.reconnects >= 1
    assert server.connection_count >= 2
