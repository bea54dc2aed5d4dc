"""Mosquitto killed mid-stream and restarted: every sample produced meanwhile arrives, in order per tag.

The broker is really killed (`kill -9`) and restarted on the same port. The gateway reaches
it through a `TcpGate` that the test opens again only after its own subscriber has
resubscribed to the restarted broker (which, without persistence, forgot every
subscription): otherwise the test, not the gateway, could miss the replay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.runtime import Gateway
from gateway.sinks.mqtt import MqttSink
from tests.integration.gateway_harness import (
    CountingSource,
    MqttRecorder,
    TcpGate,
    first_occurrences,
    site_config,
    wait_until,
)
from tests.servers import Mosquitto

OUTAGE_CYCLES = 40  # 2 s of production at 50 ms per cycle while the broker is down


@pytest.mark.slow
@pytest.mark.parametrize("mqtt_format", ["uns-json", "uns-batch"])
async def test_a_broker_outage_loses_nothing_and_replays_in_order(
    tmp_path: Path, mosquitto: Mosquitto, mqtt_format: str
) -> None:
    gate = TcpGate(mosquitto.port)
    gate.open()
    config = site_config(
        tmp_path,
        ["press01", "press02"],
        tags=5,
        mqtt={"url": f"mqtt://127.0.0.1:{gate.port}", "format": mqtt_format, "qos": 1},
    )
    sources = {d.name: CountingSource(config, d) for d in config.devices}
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    gateway = Gateway(config, connectors=sources)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    forwarder = gateway.forwarders[0]
    sink = gateway.sinks[0]
    assert isinstance(sink, MqttSink)
    press01 = sources["press01"]
    try:
        await wait_until(lambda: forwarder.stats.samples_delivered >= 100, 10, "live delivery")

        mosquitto.kill()
        gate.shut()
        killed_at = press01.cycles
        await wait_until(lambda: press01.cycles >= killed_at + OUTAGE_CYCLES, 10, "production during the outage")
        depth = (await gateway.buffer.metrics()).sinks["mqtt"].depth
        assert depth >= (OUTAGE_CYCLES - 2) * 10, "the outage's samples wait in the buffer"

        mosquitto.start()
        assert await asyncio.to_thread(recorder.subscribed.wait, 10), "the recorder resubscribed"
        gate.open()
        await wait_until(lambda: press01.cycles >= killed_at + OUTAGE_CYCLES + 10, 10, "production after the outage")
        for source in sources.values():
            source.running = False

        expected = {(s.tag, s.value, s.ts_ns) for src in sources.values() for s in src.emitted}
        missing = await asyncio.to_thread(recorder.wait_for_distinct, expected, 20.0)
        assert not missing, f"{len(missing)} of {len(expected)} samples never arrived"
        for tag, values in recorder.by_tag().items():
            firsts = first_occurrences(values)
            assert firsts == list(range(1, len(firsts) + 1)), f"{tag} out of order"
        duplicates = len(recorder.received) - len(set(recorder.received))
        print(f"{len(expected)} samples, {duplicates} duplicates, {sink.counters.samples_redelivered} redelivered")
        assert duplicates <= sink.counters.samples_redelivered, "every duplicate is a counted QoS-1 redelivery"
        assert duplicates <= forwarder.batch_size, "at most one unconfirmed batch is sent twice"
        assert (await gateway.buffer.metrics()).sinks["mqtt"].dropped == 0
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 20)
        recorder.close()
        gate.shut()


@pytest.mark.slow
async def test_the_backlog_after_an_outage_is_replayed_at_the_configured_message_rate(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    rate = 200
    gate = TcpGate(mosquitto.port)  # shut: the outage has already begun
    config = site_config(
        tmp_path,
        ["press01"],
        tags=10,
        mqtt={"url": f"mqtt://127.0.0.1:{gate.port}", "format": "uns-json", "max_messages_per_s": rate},
    )
    source = CountingSource(config, config.devices[0], interval_s=0.01)
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    gateway = Gateway(config, connectors={"press01": source})
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    try:
        await wait_until(lambda: source.cycles >= 80, 10, "a backlog of 800 samples")
        source.running = False
        await asyncio.sleep(0.1)
        backlog = len(source.emitted)
        opened = asyncio.get_running_loop().time()
        gate.open()
        expected = {(s.tag, s.value, s.ts_ns) for s in source.emitted}
        missing = await asyncio.to_thread(recorder.wait_for_distinct, expected, 30.0)
        replay_s = asyncio.get_running_loop().time() - opened
        assert not missing
        minimum_s = (backlog - rate) / rate  # one second's burst, then the rate
        print(f"{backlog} messages replayed in {replay_s:.1f} s at {rate}/s (at least {minimum_s:.1f} s)")
        assert replay_s >= 0.9 * minimum_s, "the replay did not flood the broker"
        assert replay_s <= minimum_s + 8, "nor was it much slower than the limit"
        assert gateway.forwarders[0].stats.rate_limited_s > 0
        for tag, values in recorder.by_tag().items():
            assert first_occurrences(values) == sorted(first_occurrences(values)), tag
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 15)
        recorder.close()
        gate.shut()
