"""A full buffer does what its policy declares, and the counters say exactly what happened.

The broker is really there but cut off from the gateway (a `TcpGate`), so the real MQTT
sink cannot deliver and the bounded buffer fills up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.runtime import Gateway
from tests.integration.gateway_harness import CountingSource, MqttRecorder, TcpGate, site_config, wait_until
from tests.servers import Mosquitto

MAX_BYTES = 12_000  # about 30 read cycles of one device with 10 tags


@pytest.mark.slow
async def test_drop_oldest_drops_the_oldest_samples_and_counts_exactly_those(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gate = TcpGate(mosquitto.port)  # shut: the gateway cannot reach the broker yet
    config = site_config(
        tmp_path,
        ["press01"],
        tags=10,
        mqtt={"url": f"mqtt://127.0.0.1:{gate.port}", "format": "uns-batch"},
        buffer={"max_bytes": MAX_BYTES, "when_full": "drop_oldest"},
    )
    source = CountingSource(config, config.devices[0], interval_s=0.01)
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    gateway = Gateway(config, connectors={"press01": source})
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    try:
        await wait_until(lambda: source.cycles >= 100, 10, "100 read cycles")
        source.running = False
        await asyncio.sleep(0.1)  # the last emit is committed
        metrics = (await gateway.buffer.metrics()).sinks["mqtt"]
        emitted = list(source.emitted)
        assert metrics.dropped > 0 and metrics.dropped % 10 == 0, "whole read cycles were dropped"
        assert (await gateway.buffer.metrics()).bytes <= MAX_BYTES

        gate.open()
        kept = emitted[metrics.dropped :]
        expected = {(s.tag, s.value, s.ts_ns) for s in kept}
        missing = await asyncio.to_thread(recorder.wait_for_distinct, expected, 15.0)
        assert not missing, f"{len(missing)} kept samples never arrived"
        received = set(recorder.received)
        dropped = {(s.tag, s.value, s.ts_ns) for s in emitted[: metrics.dropped]}
        assert not received & dropped, "the oldest samples are the ones dropped"
        assert len(received) + metrics.dropped == len(emitted), "the drop counter equals what did not arrive"
        doc = (await gateway.snapshot()).document()
        assert doc["sinks"]["mqtt"]["dropped"] == metrics.dropped
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 15)
        recorder.close()
        gate.shut()


@pytest.mark.slow
async def test_stop_reading_pauses_polling_drops_nothing_and_resumes_when_the_sink_catches_up(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gate = TcpGate(mosquitto.port)
    config = site_config(
        tmp_path,
        ["press01"],
        tags=10,
        mqtt={"url": f"mqtt://127.0.0.1:{gate.port}", "format": "uns-batch"},
        buffer={"max_bytes": MAX_BYTES, "when_full": "stop_reading"},
    )
    source = CountingSource(config, config.devices[0], interval_s=0.01)
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    gateway = Gateway(config, connectors={"press01": source})
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    run = gateway.devices["press01"]
    try:
        await wait_until(lambda: run.paused, 10, "the buffer to fill and polling to pause")
        paused_at = source.cycles
        await asyncio.sleep(0.3)
        assert source.cycles == paused_at, "no polling while the buffer is full"
        snapshot = await gateway.snapshot()
        assert snapshot.connectors[0].paused and snapshot.buffer_refused_appends >= 1
        assert snapshot.sinks[0].dropped == 0

        gate.open()
        await wait_until(lambda: source.cycles >= paused_at + 30, 15, "polling to resume after the backlog drained")
        source.running = False
        await asyncio.sleep(0.1)
        expected = {(s.tag, s.value, s.ts_ns) for s in source.emitted}
        missing = await asyncio.to_thread(recorder.wait_for_distinct, expected, 15.0)
        assert not missing, f"{len(missing)} samples never arrived"
        assert (await gateway.buffer.metrics()).sinks["mqtt"].dropped == 0
        assert not run.paused
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 15)
        recorder.close()
        gate.shut()
