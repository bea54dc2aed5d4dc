"""A PLC that stops answering or answers garbage does not stall the other devices.

Two real simulated Modbus PLCs, the real Modbus connector, the gateway and Mosquitto. One
PLC is switched to a fault; the other device's values must keep arriving at their normal
rate, while the faulty device's tags turn bad with a reason.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from connectors.modbus.address import Table
from edge_config.schema import SiteConfig
from gateway.runtime import Gateway
from simulators.modbus_server import ModbusSimServer, RegisterBank
from tests.integration.gateway_harness import MqttRecorder, wait_until
from tests.servers import Mosquitto

TAGS = 5
POLL_S = 0.05
WINDOW_S = 1.5


def config_for(tmp_path: Path, ports: dict[str, int], mqtt_url: str) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "test"},
            "gateway": {"name": "gw1", "health_port": 0},
            "devices": [
                {
                    "name": name,
                    "area": "press",
                    "line": "line1",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1", "port": port, "unit": 1, "timeout": "300ms"},
                    "poll": POLL_S,
                    "tags": {f"t{i}": {"address": f"hr4{i + 1:04d}"} for i in range(TAGS)},
                }
                for name, port in ports.items()
            ],
            "sinks": {"mqtt": {"url": mqtt_url, "format": "uns-batch"}},
            "buffer": {"path": str(tmp_path / "buffer.db")},
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["silent", "garbage"])
async def test_a_faulty_plc_does_not_stall_the_other_device(tmp_path: Path, mosquitto: Mosquitto, fault: str) -> None:
    banks = {"healthy": RegisterBank(), "faulty": RegisterBank()}
    plcs = {name: ModbusSimServer("127.0.0.1", 0, {1: bank}) for name, bank in banks.items()}
    for plc in plcs.values():
        await plc.start()
    counting = True

    async def count_up() -> None:
        value = 0
        while counting:
            value = (value + 1) % 65536
            for bank in banks.values():
                bank.set_registers(Table.HOLDING_REGISTER, 0, [value] * TAGS)
            await asyncio.sleep(0.01)

    counter = asyncio.create_task(count_up())
    config = config_for(tmp_path, {name: plc.port for name, plc in plcs.items()}, mosquitto.url)
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    gateway = Gateway(config)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))

    def healthy_samples_between(t0_ns: int, t1_ns: int) -> int:
        return sum(1 for tag, _, ts in list(recorder.received) if "/healthy/" in tag and t0_ns <= ts < t1_ns)

    try:
        await wait_until(lambda: any("/faulty/" in t for t, _, _ in recorder.received), 10, "both devices live")
        t0 = time.time_ns()
        await asyncio.sleep(WINDOW_S)
        baseline = healthy_samples_between(t0, time.time_ns())

        plcs["faulty"].fault = fault
        t1 = time.time_ns()
        await asyncio.sleep(WINDOW_S)
        t2 = time.time_ns()
        await wait_until(lambda: any("/faulty/" in t for t, _, _ in recorder.not_good), 5, "the faulty tags to go bad")
        await asyncio.sleep(0.3)  # what was read until t2 is delivered
        during_fault = healthy_samples_between(t1, t2)
        print(f"{fault}: healthy device delivered {baseline} samples before, {during_fault} during the fault")
        assert during_fault >= 0.8 * baseline, "the healthy device kept its pace"
        assert during_fault >= 0.6 * TAGS * WINDOW_S / POLL_S
        bad = [(q, reason) for tag, q, reason in recorder.not_good if "/faulty/" in tag]
        assert bad and all(q == "bad" and reason for q, reason in bad), bad[:3]
        assert not [t for t, _, _ in recorder.not_good if "/healthy/" in t]
        health = (await gateway.snapshot()).document()["connectors"]
        assert health["healthy"]["state"] == "connected"
        assert health["faulty"]["last_error"]
    finally:
        counting = False
        await counter
        gateway.request_stop()
        await asyncio.wait_for(task, 15)
        recorder.close()
        for plc in plcs.values():
            await plc.stop()
