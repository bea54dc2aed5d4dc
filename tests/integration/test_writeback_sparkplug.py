"""Write-back through Sparkplug B: a host application's DCMD (encoded with Eclipse Tahu's classes,
independent of edgefab's encoder) writes an allow-listed register of the simulated press; a DCMD
for a tag that is not writable changes nothing on the machine. Both are audited."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sparkplub_b_packets.core import sparkplug_b_pb2 as tahu

from connectors.modbus.address import Table
from edge_config.loader import load_config
from gateway.alarms.service import side_files
from gateway.runtime import Gateway
from gateway.writeback import AuditLog
from simulators.factory import DEMO_MACHINES, SimulatedFactory
from tests.integration.gateway_harness import wait_until

CONFIG = """
site: {enterprise: acme, site: spbsite}
gateway: {name: edge7}
devices:
  - name: press01
    area: stamping
    line: line1
    protocol: modbus
    connection: {host: 127.0.0.1, port: PORT, unit: 1}
    poll: 200ms
    tags:
      state: {address: hr40001, map: {0: idle, 1: running, 2: starved, 3: blocked, 4: planned_stop, 5: fault}}
      target_quantity: {address: hr40020, type: uint32, writable: true, min: 0, max: 1000000}
sinks:
  mqtt: {url: "MQTT_URL", format: sparkplug-b}
buffer: {path: buffer.db}
"""


def dcmd(metric_name: str, value: int) -> bytes:
    payload = tahu.Payload(seq=0)
    metric = payload.metrics.add()
    metric.name = metric_name
    metric.datatype = tahu.DataType.Value("UInt32")
    metric.int_value = value
    return payload.SerializeToString()


async def test_a_sparkplug_dcmd_writes_only_allow_listed_tags(mosquitto, tmp_path: Path) -> None:
    press = [m for m in DEMO_MACHINES if m.name == "press01"]
    async with SimulatedFactory(seed=4, speed=1.0, modbus_port=0, machines=press) as factory:
        assert factory.modbus is not None
        bank = factory.modbus.banks[factory.unit_of("press01")]
        text = textwrap.dedent(CONFIG).replace("PORT", str(factory.modbus_port)).replace("MQTT_URL", mosquitto.url)
        (tmp_path / "site.yaml").write_text(text)
        gateway = Gateway(load_config(tmp_path / "site.yaml"), health_port=-1, config_dir=tmp_path)
        ready = asyncio.Event()
        task = asyncio.create_task(gateway.run(install_signal_handlers=False, ready=ready))
        host = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        host.connect("127.0.0.1", mosquitto.port)
        host.loop_start()
        try:
            await asyncio.wait_for(ready.wait(), 10)
            writeback = gateway.companions[-1]
            await wait_until(lambda: writeback.channel.connected, 10, "the command connection")  # type: ignore[attr-defined]
            topic = "spBv1.0/spbsite/DCMD/edge7/press01"
            host.publish(topic, dcmd("target_quantity", 777), qos=1).wait_for_publish(5)
            await wait_until(
                lambda: bank.get_registers(Table.HOLDING_REGISTER, 19, 2) == [0, 777], 10, "the DCMD write"
            )
            host.publish(topic, dcmd("state", 5), qos=1).wait_for_publish(5)
            await wait_until(lambda: len(writeback.audit.entries()) == 2, 5, "the refused DCMD's audit row")  # type: ignore[attr-defined]
            assert factory.modbus.write_count == 1
        finally:
            host.disconnect()
            host.loop_stop()
            gateway.request_stop()
            await asyncio.wait_for(task, 20)
    audit = AuditLog(side_files(tmp_path / "buffer.db")["audit"])
    written, refused = audit.entries()
    audit.close()
    assert (written.source, written.user, written.new_value, written.result) == (
        "sparkplug",
        "sparkplug",
        777,
        "written",
    )
    assert (refused.tag_path, refused.result) == ("acme/spbsite/stamping/line1/press01/state", "refused")
    assert "not writable" in refused.reason
