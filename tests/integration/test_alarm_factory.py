"""Alarms from the simulated factory, end to end over real sockets:

simulated press (Modbus TCP) -> `edgefab run`'s Gateway with an `alarms:` section -> Mosquitto.
A forced fault raises a state alarm (after its on-delay) and a limit alarm (fault code above 0),
and clears them when the press runs again; an operator acknowledges over the MQTT command topic;
stopping the PLC's server makes the data stale, restarting it clears the stale alarm.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from edge_config.loader import load_config
from gateway.alarms.service import side_files
from gateway.alarms.store import AlarmStateStore
from gateway.health import metrics_text
from gateway.runtime import Gateway
from simulators.factory import DEMO_MACHINES, SimulatedFactory
from simulators.machine import MachineState
from tests.integration.alarm_harness import JsonRecorder
from tests.integration.gateway_harness import wait_until

CONFIG = """
site: {enterprise: acme, site: alarmtest}
gateway: {name: gw-alarms}
devices:
  - name: press01
    area: stamping
    line: line1
    protocol: modbus
    connection: {host: 127.0.0.1, port: PORT, unit: 1, timeout: 300ms}
    poll: 100ms
    tags:
      state: {address: hr40001, role: state, map: {0: idle, 1: running, 2: starved, 3: blocked, 4: planned_stop, 5: fault}}
      fault_code: {address: hr40003}
alarms:
  evaluate_every: 100ms
  definitions:
    long_fault:
      kind: state
      states: [fault]
      on_delay: 1s
      priority: high
      message: {en: "{machine} in fault", zh-CN: "{machine} 故障"}
    fault_code:
      kind: limit
      tag: fault_code
      hi: 0.5
      priority: medium
    no_data: {kind: stale, tag: state, after: 1s, priority: low}
sinks:
  mqtt: {url: "MQTT_URL", qos: 1}
buffer: {path: buffer.db}
"""


async def test_state_limit_and_stale_alarms_are_raised_and_cleared_from_the_simulated_factory(
    mosquitto, tmp_path: Path
) -> None:
    press = [m for m in DEMO_MACHINES if m.name == "press01"]
    async with SimulatedFactory(seed=3, speed=1.0, modbus_port=0, machines=press) as factory:
        await factory.force_state("press01", MachineState.RUNNING, 120)
        text = textwrap.dedent(CONFIG).replace("PORT", str(factory.modbus_port)).replace("MQTT_URL", mosquitto.url)
        (tmp_path / "site.yaml").write_text(text)
        config = load_config(tmp_path / "site.yaml")
        recorder = JsonRecorder(mosquitto.port, ["acme/alarmtest/+/+/+/_alarms/#"])
        gateway = Gateway(config, health_port=-1, config_dir=tmp_path)
        ready = asyncio.Event()
        task = asyncio.create_task(gateway.run(install_signal_handlers=False, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            await asyncio.sleep(0.5)
            assert recorder.transitions("long_fault") == [] and recorder.transitions("fault_code.hi") == []

            await factory.force_state("press01", MachineState.FAULT, 60, fault="die_jam")
            await wait_until(lambda: recorder.transitions("fault_code.hi") != [], 3, "the fault-code limit alarm")
            assert recorder.transitions("long_fault") == []  # the state alarm waits for its 1 s on-delay
            await wait_until(lambda: recorder.transitions("long_fault") != [], 3, "the long-fault alarm")
            (raised,) = recorder.on("/_alarms/long_fault")
            assert raised["message"] == {"en": "press01 in fault", "zh-CN": "press01 故障"}
            assert (raised["state"], raised["priority"], raised["path"]) == (
                "active_unacked", "high", "acme/alarmtest/stamping/line1/press01",
            )  # fmt: skip
            assert recorder.on("/_alarms/fault_code.hi")[0]["value"] == 1  # die_jam

            # the operator acknowledges over MQTT; the answer and the new state come back
            recorder.publish(
                "acme/alarmtest/stamping/line1/press01/_alarms/long_fault/cmd",
                {"action": "ack", "user": "wang.fang", "request_id": "r1"},
            )
            await wait_until(lambda: ("acknowledged", "active_acked") in recorder.transitions("long_fault"), 3, "ack")
            (answer,) = recorder.on("/_alarms/long_fault/cmd/response")
            assert answer == {"request_id": "r1", "ok": True, "alarm": raised["key"], "state": "active_acked"}
            assert recorder.on("/_alarms/long_fault")[-1]["acked_by"] == "wang.fang"

            await factory.force_state("press01", MachineState.RUNNING, 120)
            await wait_until(lambda: ("cleared", "normal") in recorder.transitions("long_fault"), 3, "clear")
            await wait_until(
                lambda: ("cleared", "cleared_unacked") in recorder.transitions("fault_code.hi"), 3, "limit clear"
            )

            # the PLC stops answering: no good value for 1 s raises the stale alarm
            assert factory.modbus is not None
            await factory.modbus.stop()
            await wait_until(lambda: ("raised", "active_unacked") in recorder.transitions("no_data"), 5, "stale")
            # what /healthz and /metrics show now
            alarms = (await gateway.snapshot()).alarms
            assert alarms is not None and alarms.alarms == 3
            assert (alarms.by_state["active_unacked"], alarms.by_state["cleared_unacked"]) == (1, 1)  # stale, limit
            assert alarms.transitions["raised"] >= 3 and alarms.transitions["acknowledged"] == 1
            for _ in range(60):  # the recorder has every event; the broker's PUBACK for the last may still be coming
                if (await gateway.snapshot()).alarms.events_unpublished == 0:  # type: ignore[union-attr]
                    break
                await asyncio.sleep(0.05)
            assert (await gateway.snapshot()).alarms.events_unpublished == 0  # type: ignore[union-attr]
            assert (
                'edgefab_alarm_events_total{transition="acknowledged"} 1.0'
                in metrics_text(await gateway.snapshot()).decode()
            )
            await factory.modbus.start()
            await wait_until(lambda: ("cleared", "cleared_unacked") in recorder.transitions("no_data"), 8, "fresh")
        finally:
            gateway.request_stop()
            await asyncio.wait_for(task, 20)
            recorder.close()
    # every transition was stored on disk: a restart keeps what the operators saw and did
    store = AlarmStateStore(side_files(tmp_path / "buffer.db")["state"])
    saved = {key.rsplit("/", 1)[-1]: status for key, status in store.load().items()}
    store.close()
    assert (saved["long_fault"].state, saved["long_fault"].acked_by) == ("normal", "wang.fang")
    assert saved["fault_code.hi"].state == "cleared_unacked"
