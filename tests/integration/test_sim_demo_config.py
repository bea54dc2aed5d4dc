"""demo-factory.yaml and `edgefab simulate` agree: edgefab's own connectors read every tag as a good value.

This is the proof behind the demo: the config is loaded exactly as `edgefab run` loads it
(only the ports moved to free ones through DEMO_MODBUS_PORT / DEMO_OPCUA_PORT), and the
project's Modbus and OPC UA connectors collect from the simulated factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from connectors.modbus.address import Table
from connectors.modbus.client import ModbusConnector
from connectors.modbus.decode import decode_registers
from connectors.opcua.client import OpcUaConnector
from edge_config.loader import load_config
from edge_config.schema import Protocol, SiteConfig
from gateway.sample import Quality, Sample
from simulators.factory import SimulatedFactory
from simulators.machine import U32_RANGE, MachineState
from tests.servers import free_port

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "edge_config" / "examples" / "demo-factory.yaml"
SPEED = 20.0
STATES = {s.value for s in MachineState}


def demo_config(modbus_port: int, opcua_port: int) -> SiteConfig:
    env = dict(os.environ, DEMO_MODBUS_PORT=str(modbus_port), DEMO_OPCUA_PORT=str(opcua_port))
    env.pop("DEMO_PLC_HOST", None)
    return load_config(DEMO_CONFIG, env=env)


async def test_every_tag_of_the_demo_config_gets_a_good_value_from_the_simulated_factory() -> None:
    modbus_port, opcua_port = free_port(), free_port()
    config = demo_config(modbus_port, opcua_port)
    expected_paths = {config.tag_path(d, name) for d in config.devices for name in d.tags}
    latest: dict[str, Sample] = {}
    batches: dict[str, list[dict[str, Sample]]] = {d.name: [] for d in config.devices}
    all_good = asyncio.Event()

    async def emit(samples: list[Sample]) -> None:
        batch = {s.tag_name: s for s in samples}
        batches[samples[0].machine_path.rsplit("/", 1)[-1]].append(batch)
        latest.update((s.tag, s) for s in samples)
        if all(p in latest and latest[p].quality is Quality.GOOD for p in expected_paths):
            all_good.set()

    async with SimulatedFactory(seed=2, speed=SPEED, modbus_port=modbus_port, opcua_port=opcua_port) as factory:
        assert {d.name for d in config.devices} == set(factory.machines)
        connectors = {
            d.name: ModbusConnector(config, d) if d.protocol == Protocol.MODBUS else OpcUaConnector(config, d)
            for d in config.devices
        }
        tasks = [asyncio.create_task(c.run(emit)) for c in connectors.values()]
        try:
            try:
                await asyncio.wait_for(all_good.wait(), 15.0)
            except TimeoutError:
                missing = sorted(p for p in expected_paths if p not in latest or latest[p].quality is not Quality.GOOD)
                raise AssertionError(f"no good value for {missing}: {[latest.get(p) for p in missing][:5]}") from None

            # A setpoint written through the connector lands in the simulated PLC, decoded per the map.
            await connectors["press01"].write("target_quantity", 1234)
            entry = factory.setups["press01"].register_map.tag("target_quantity")
            words = factory._banks["press01"].get_registers(Table.HOLDING_REGISTER, 19, 2)
            assert decode_registers(words, entry.tag.type, entry.byte_order) == 1234
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    for device in config.devices:
        kind = factory.setups[device.name].kind
        value = {name: latest[config.tag_path(device, name)].value for name in device.tags}
        assert value["state"] in STATES, device.name
        assert value["ideal_cycle_time"] == _approx(kind.ideal_cycle_time_s / SPEED), device.name
        assert value["fault_code"] in {"none", *kind.fault_codes.values()}, device.name
        assert kind.temperature_c.low <= value[kind.temperature_label] <= kind.temperature_c.high, device.name
        assert kind.pressure_bar.low <= value[kind.pressure_label] <= kind.pressure_bar.high, device.name
        assert value["energy"] >= 0, device.name  # the first read may come at simulated time 0
        if device.protocol != Protocol.MODBUS:
            continue
        # One Modbus poll cycle reads all registers at once: within it the decoded values must agree.
        for batch in batches[device.name]:
            if any(s.quality is not Quality.GOOD for s in batch.values()):
                continue
            v = {name: s.value for name, s in batch.items()}
            assert (v["total_count"] - v["reject_count"]) % U32_RANGE == v["good_count"], device.name
            assert v["running"] == (v["state"] == "running"), device.name
            assert v["fault"] == (v["state"] == "fault"), device.name
            assert v["power"] == _approx(kind.power_kw[MachineState(v["state"])]), device.name


class _approx(float):
    """Equal within float32 precision (the Modbus floats are 32-bit)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int | float) and abs(other - self) <= 1e-6 * max(1.0, abs(self))

    __hash__ = float.__hash__
