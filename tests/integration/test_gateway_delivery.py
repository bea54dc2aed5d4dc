"""The running gateway delivers every collected sample to a real Mosquitto and reports on itself."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from gateway.health import fetch_health, status_table
from gateway.runtime import Gateway
from gateway.sinks.mqtt import MqttSink
from tests.integration.gateway_harness import (
    CountingSource,
    MqttRecorder,
    first_occurrences,
    site_config,
    wait_until,
)
from tests.servers import Mosquitto


@pytest.mark.parametrize("mqtt_format", ["uns-json", "uns-batch"])
async def test_every_sample_of_every_device_arrives_in_order(
    tmp_path: Path, mosquitto: Mosquitto, mqtt_format: str
) -> None:
    config = site_config(tmp_path, ["press01", "press02"], tags=4, mqtt={"url": mosquitto.url, "format": mqtt_format})
    sources = {d.name: CountingSource(config, d) for d in config.devices}
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    gateway = Gateway(config, connectors=sources)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    try:
        await wait_until(lambda: all(s.cycles >= 20 for s in sources.values()), 10, "20 cycles per device")
        for source in sources.values():
            source.running = False
        expected = {(s.tag, s.value, s.ts_ns) for src in sources.values() for s in src.emitted}
        missing = await asyncio.to_thread(recorder.wait_for_distinct, expected, 10.0)
        assert not missing, f"{len(missing)} samples never arrived"
        for tag, values in recorder.by_tag().items():
            assert first_occurrences(values) == list(range(1, len(first_occurrences(values)) + 1)), tag
        assert len(recorder.received) == len(expected), "no duplicates without a fault"
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 15)
        recorder.close()


async def test_healthz_metrics_and_the_status_table_describe_the_running_gateway(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = site_config(tmp_path, ["press01"], tags=2, mqtt={"url": mosquitto.url, "format": "uns-batch"})
    sources = {d.name: CountingSource(config, d) for d in config.devices}
    gateway = Gateway(config, connectors=sources)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    try:
        sink = gateway.sinks[0]
        assert isinstance(sink, MqttSink)
        await wait_until(lambda: gateway.forwarders[0].stats.samples_delivered >= 10, 10, "deliveries")
        url = f"http://127.0.0.1:{gateway.health_port}"
        doc = await asyncio.to_thread(fetch_health, url)
        assert doc["status"] == "running"
        assert doc["connectors"]["press01"]["state"] == "connected"
        assert doc["connectors"]["press01"]["samples_read"] >= 10
        assert doc["sinks"]["mqtt"]["connected"] is True
        table = status_table(doc)
        assert "press01" in table and "mqtt" in table and "running" in table

        def scrape() -> str:
            with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
                return r.read().decode()

        metrics = await asyncio.to_thread(scrape)
        for name in (
            'edgefab_samples_read_total{device="press01"}',
            'edgefab_sink_queue_depth{sink="mqtt"}',
            'edgefab_sink_oldest_unacked_age_seconds{sink="mqtt"}',
            'edgefab_dropped_samples_total{sink="mqtt"}',
            'edgefab_connector_up{device="press01"} 1.0',
            "edgefab_samples_read_per_second",
        ):
            assert name in metrics, name
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 15)
    assert json.loads(json.dumps(doc))  # the document is plain JSON
