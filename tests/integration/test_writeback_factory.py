"""Write-back over real sockets: MQTT command -> gateway -> simulated PLC (Modbus TCP and OPC UA).

Only tags marked `writable: true` in edge_config/examples/demo-factory.yaml are written; the
simulator's own write counters prove that a refused command sent nothing to the machine.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from connectors.modbus.address import Table
from edge_config.loader import load_config
from gateway.alarms.service import side_files
from gateway.runtime import Gateway
from gateway.writeback import AuditLog
from simulators.factory import SimulatedFactory
from tests.integration.alarm_harness import JsonRecorder
from tests.integration.gateway_harness import wait_until
from tests.servers import free_port

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "edge_config" / "examples" / "demo-factory.yaml"
PRESS = "acme/dongguan/stamping/line1/press01"
CNC = "acme/dongguan/machining/line2/cnc01"
TARGET_QUANTITY_OFFSET = 19  # hr40020


async def test_only_allow_listed_writes_reach_the_simulated_machines_and_each_is_audited(
    mosquitto, tmp_path: Path
) -> None:
    modbus_port, opcua_port = free_port(), free_port()
    env = dict(os.environ, DEMO_MODBUS_PORT=str(modbus_port), DEMO_OPCUA_PORT=str(opcua_port), MQTT_URL=mosquitto.url)
    env.update(EDGEFAB_BUFFER=str(tmp_path / "buffer.db"))
    env.pop("DEMO_PLC_HOST", None)
    config = load_config(DEMO_CONFIG, env=env)
    recorder = JsonRecorder(mosquitto.port, ["acme/dongguan/+/+/+/_cmd/+/response"])
    async with SimulatedFactory(seed=5, speed=1.0, modbus_port=modbus_port, opcua_port=opcua_port) as factory:
        assert factory.modbus is not None and factory.opcua is not None
        press_bank = factory.modbus.banks[factory.unit_of("press01")]
        gateway = Gateway(config, health_port=-1)
        ready = asyncio.Event()
        task = asyncio.create_task(gateway.run(install_signal_handlers=False, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 20)
            writeback = gateway.companions[-1]
            await wait_until(lambda: f"{PRESS}/target_quantity" in writeback._latest, 10, "a first read")  # type: ignore[attr-defined]
            writes_before = factory.modbus.write_count

            async def command(topic: str, doc: dict) -> dict:
                count = len(recorder.on(f"{topic}/response"))
                recorder.publish(topic, doc)
                await wait_until(lambda: len(recorder.on(f"{topic}/response")) > count, 5, f"an answer on {topic}")
                return recorder.on(f"{topic}/response")[-1]

            # allow-listed: the register changes on the machine
            answer = await command(
                f"{PRESS}/_cmd/target_quantity", {"value": 1200, "request_id": "wo-1", "user": "mes"}
            )
            assert (answer["ok"], answer["result"], answer["old_value"], answer["new_value"]) == (
                True,
                "written",
                0,
                1200,
            )
            assert press_bank.get_registers(Table.HOLDING_REGISTER, TARGET_QUANTITY_OFFSET, 2) == [0, 1200]
            assert factory.modbus.write_count == writes_before + 1

            # the same request delivered again (QoS 1) is answered, not written twice
            again = await command(f"{PRESS}/_cmd/target_quantity", {"value": 1200, "request_id": "wo-1", "user": "mes"})
            assert again["repeated"] is True and again["result"] == "written"
            assert factory.modbus.write_count == writes_before + 1

            # everything else is refused with a reason, and the machine sees nothing
            refused = {
                "total_count": ({"value": 5, "request_id": "x1", "user": "eve"}, "is not writable"),
                "target_quantity": ({"value": 2_000_000, "request_id": "x2", "user": "eve"}, "above the maximum 1e+06"),
                "nope": ({"value": 1, "request_id": "x3", "user": "eve"}, "press01 has no tag 'nope'"),
                "oil_temp": ({"value": 20.0, "request_id": "x4", "user": "eve"}, "is not writable"),
            }
            for tag, (doc, reason) in refused.items():
                answer = await command(f"{PRESS}/_cmd/{tag}", doc)
                assert (answer["ok"], answer["result"]) == (False, "refused"), answer
                assert reason in answer["reason"], answer
            wrong_type = await command(
                f"{PRESS}/_cmd/target_quantity", {"value": "lots", "request_id": "x5", "user": "eve"}
            )
            assert wrong_type["reason"] == 'target_quantity is a number: send a number (got "lots")'
            anonymous = await command(f"{PRESS}/_cmd/target_quantity", {"value": 3, "request_id": "x6"})
            assert anonymous["reason"] == "a write command needs the user who gives it"
            assert factory.modbus.write_count == writes_before + 1
            assert press_bank.get_registers(Table.HOLDING_REGISTER, TARGET_QUANTITY_OFFSET, 2) == [0, 1200]

            # OPC UA: the CNC's writable node
            answer = await command(f"{CNC}/_cmd/target_quantity", {"value": 50, "request_id": "wo-2", "user": "mes"})
            assert answer["ok"], answer
            assert [(w.path, w.value, w.status) for w in factory.opcua.write_log] == [
                ("cnc01/TargetQuantity", 50, "Good")
            ]
            refused_opcua = await command(f"{CNC}/_cmd/spindle_temp", {"value": 1.0, "request_id": "x7", "user": "eve"})
            assert not refused_opcua["ok"] and len(factory.opcua.write_log) == 1
        finally:
            gateway.request_stop()
            await asyncio.wait_for(task, 20)
            recorder.close()

    audit = AuditLog(side_files(tmp_path / "buffer.db")["audit"])
    entries = audit.entries()
    audit.close()
    by_request = {e.request_id: e for e in entries}
    assert len(entries) == 9  # one row per command, the repeated one included only once
    first = by_request["wo-1"]
    assert (first.user, first.tag_path, first.old_value, first.new_value, first.result) == (
        "mes", f"{PRESS}/target_quantity", 0, 1200, "written",
    )  # fmt: skip
    assert (by_request["x1"].result, by_request["x1"].user, by_request["x1"].new_value) == ("refused", "eve", None)
