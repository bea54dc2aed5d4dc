"""`edgefab run` killed with -9 and restarted: nothing committed is lost, and what the broker already
confirmed is not sent again beyond the at-least-once window (the one batch in flight at the kill).

The kill comes while the broker is unreachable for the gateway (a `TcpGate` cut), so the
buffer holds a backlog of committed but unconfirmed samples that must survive it.

Real parts: a simulated Modbus PLC whose registers the test counts up, the `edgefab run`
process, a private Mosquitto, and a subscriber. What counts as collected is what the
gateway committed to its buffer: the test reads the buffer file right after the kill.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from connectors.modbus.address import Table
from gateway.buffer import decode_segment
from simulators.modbus_server import ModbusSimServer, RegisterBank
from tests.integration.gateway_harness import MqttRecorder, TcpGate, wait_until
from tests.servers import Mosquitto

TAGS = 20
CONFIG = """
site: {{enterprise: acme, site: test}}
gateway: {{name: gw-kill9, health_port: 0}}
devices:
  - name: press01
    area: press
    line: line1
    protocol: modbus
    connection: {{host: 127.0.0.1, port: {modbus_port}, unit: 1, timeout: 500ms}}
    poll: 50ms
    tags:
{tags}
sinks:
  mqtt: {{url: "{mqtt_url}", format: uns-batch, qos: 1}}
buffer: {{path: "{buffer}", fsync: batch}}
"""


def buffer_contents(path: Path) -> tuple[int, dict[tuple[str, int], int]]:
    """(mqtt's acknowledged seq, {(tag, ts_ns): seq} of every stored sample) read from the file after the kill."""
    db = sqlite3.connect(path)
    try:
        acked = db.execute("SELECT acked_seq FROM cursor WHERE sink = 'mqtt'").fetchone()[0]
        paths = dict(db.execute("SELECT id, path FROM tag"))
        stored: dict[tuple[str, int], int] = {}
        for first_seq, payload in db.execute("SELECT first_seq, payload FROM segment ORDER BY first_seq"):
            for i, s in enumerate(decode_segment(payload, paths)):
                stored[(s.tag, s.ts_ns)] = first_seq + i
        return acked, stored
    finally:
        db.close()


def unconfirmed(path: Path) -> int:
    acked, stored = buffer_contents(path)
    return sum(seq > acked for seq in stored.values())


async def start_gateway(config_path: Path, log_path: Path) -> asyncio.subprocess.Process:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "run", str(config_path), stdout=log, stderr=log, cwd=config_path.parent
    )


@pytest.mark.slow
async def test_a_gateway_killed_with_9_loses_nothing_and_resends_at_most_the_batch_in_flight(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    bank = RegisterBank()
    plc = ModbusSimServer("127.0.0.1", 0, {1: bank})
    await plc.start()
    counting = True

    async def count_up() -> None:
        value = 0
        while counting:
            value = (value + 1) % 65536
            bank.set_registers(Table.HOLDING_REGISTER, 0, [value] * TAGS)
            await asyncio.sleep(0.02)

    counter = asyncio.create_task(count_up())
    gate = TcpGate(mosquitto.port)  # the gateway's way to the broker, which the test can cut
    gate.open()
    buffer_path = tmp_path / "buffer.db"
    config_path = tmp_path / "site.yaml"
    config_path.write_text(
        CONFIG.format(
            modbus_port=plc.port,
            mqtt_url=f"mqtt://127.0.0.1:{gate.port}",
            buffer=buffer_path,
            tags="\n".join(f"      t{i}: {{address: hr4{i + 1:04d}}}" for i in range(TAGS)),
        )
    )
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    log_path = tmp_path / "gateway.log"
    gateway = await start_gateway(config_path, log_path)
    try:
        await wait_until(lambda: len(recorder.received) >= 400, 30, f"live delivery ({log_path})")
        gate.shut()  # the broker becomes unreachable: a backlog builds up in the buffer
        await wait_until(lambda: unconfirmed(buffer_path) >= 1000, 30, "a backlog of 1000 samples")
        gateway.send_signal(signal.SIGKILL)
        await gateway.wait()
        received_before = set(recorder.received)
        acked, stored = buffer_contents(buffer_path)
        unacked = {key for key, seq in stored.items() if seq > acked}
        print(f"at the kill: {len(received_before)} received, {len(unacked)} committed but unconfirmed")

        assert len(unacked) >= 1000
        gate.open()
        gateway = await start_gateway(config_path, log_path)
        received_keys = lambda: {(tag, ts) for tag, _, ts in recorder.received}  # noqa: E731
        await wait_until(lambda: unacked <= received_keys(), 30, "the buffered samples after the restart")
        await wait_until(lambda: len(recorder.received) >= len(received_before) + 400, 30, "live delivery again")
        gateway.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gateway.wait(), 20) == 0, log_path.read_text()[-2000:]
    finally:
        counting = False
        await counter
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()
        recorder.close()
        gate.shut()
        await plc.stop()

    after = recorder.received[len(received_before) :]
    sent_twice = {(tag, ts) for tag, _, ts in after} & {(tag, ts) for tag, _, ts in received_before}
    print(f"{len(sent_twice)} samples sent twice (window: the unconfirmed batch at the kill)")
    assert sent_twice <= unacked, "nothing the broker had confirmed was sent again"
    assert len(sent_twice) <= 5000, "at most one batch (the forwarder's batch_size) is sent twice"
    values = sorted({v for tag, v, _ in recorder.received if tag.endswith("/t0")})
    assert len(values) > 50
    _, stored_after = buffer_contents(buffer_path)
    assert not stored_after, "a graceful stop delivered everything and compaction emptied the buffer"
    assert os.path.exists(buffer_path)
