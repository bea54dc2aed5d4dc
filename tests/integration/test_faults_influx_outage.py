"""InfluxDB unreachable, then back: every point is there afterwards (queried and counted).

The server is VictoriaMetrics speaking the InfluxDB v2 write API, really stopped and
started again on the same port and data folder; the sink is the real `InfluxSink`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.runtime import Gateway
from tests.integration.gateway_harness import CountingSource, site_config, wait_until
from tests.servers import VictoriaMetrics

OUTAGE_CYCLES = 40


@pytest.mark.slow
async def test_an_influxdb_outage_loses_no_point(tmp_path: Path, victoria_metrics: VictoriaMetrics) -> None:
    config = site_config(
        tmp_path,
        ["press01", "press02"],
        tags=5,
        influxdb={"url": victoria_metrics.url, "bucket": "factory", "org": "-", "batch_size": 500},
    )
    sources = {d.name: CountingSource(config, d) for d in config.devices}
    gateway = Gateway(config, connectors=sources)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    forwarder = gateway.forwarders[0]
    press01 = sources["press01"]
    try:
        await wait_until(lambda: forwarder.stats.samples_delivered >= 100, 10, "live writes")
        victoria_metrics.stop()
        stopped_at = press01.cycles
        await wait_until(lambda: press01.cycles >= stopped_at + OUTAGE_CYCLES, 10, "production during the outage")
        assert (await gateway.buffer.metrics()).sinks["influxdb"].depth > 0
        victoria_metrics.start()
        await wait_until(lambda: press01.cycles >= stopped_at + OUTAGE_CYCLES + 10, 10, "production afterwards")
        for source in sources.values():
            source.running = False
        await wait_until(lambda: forwarder.stats.state == "idle" and forwarder.stats.samples_delivered > 0, 20, "drain")
        metrics = (await gateway.buffer.metrics()).sinks["influxdb"]
        assert metrics.depth == 0 and metrics.dropped == 0
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 15)

    for name, source in sources.items():
        for tag in range(5):
            expected = source.cycles
            stored = await asyncio.to_thread(
                victoria_metrics.wait_for_points, f'{{__name__="{name}_t{tag}"}}', expected, 15.0
            )
            assert stored == expected, f"{name} t{tag}: {stored} of {expected} points"
