"""A connector that ignores its cancellation cannot keep the gateway from stopping and flushing.

On Python 3.11 `asyncio.wait_for` can lose a cancellation that arrives as its inner call
completes; a connector inside such a call keeps running. The gateway then stops without it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from edge_config.schema import Device, SiteConfig
from gateway import runtime
from gateway.runtime import Gateway
from tests.integration.gateway_harness import CountingSource, MqttRecorder, site_config, wait_until
from tests.servers import Mosquitto


class CancellationSwallowingSource(CountingSource):
    """Emits like CountingSource, but keeps running when cancelled, as a lost cancellation would."""

    def __init__(self, config: SiteConfig, device: Device) -> None:
        super().__init__(config, device)
        self.cancellations_ignored = 0
        self.release = asyncio.Event()

    async def run(self, emit) -> None:  # type: ignore[no-untyped-def]
        task = super().run(emit)
        try:
            await task
        except asyncio.CancelledError:
            self.cancellations_ignored += 1
            await self.release.wait()  # stays stuck until the test lets it go


async def test_the_gateway_stops_and_flushes_although_a_connector_ignores_its_cancellation(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch
) -> None:
    monkeypatch.setattr(runtime, "DEVICE_STOP_TIMEOUT_S", 0.5)
    config = site_config(tmp_path, ["press01"], tags=2, mqtt={"url": mosquitto.url, "format": "uns-batch"})
    source = CancellationSwallowingSource(config, config.devices[0])
    recorder = MqttRecorder("127.0.0.1", mosquitto.port, "acme/#")
    gateway = Gateway(config, connectors={"press01": source})
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    try:
        await wait_until(lambda: source.cycles >= 5, 10, "five cycles")
        started = time.monotonic()
        gateway.request_stop()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - started < 5, "the stop waited only the device bound, then flushed"
        assert source.cancellations_ignored == 1
        expected = {(s.tag, s.value, s.ts_ns) for s in source.emitted}
        missing = await asyncio.to_thread(recorder.wait_for_distinct, expected, 10.0)
        assert not missing, "what the stuck device emitted before the stop was still delivered"
    finally:
        source.release.set()
        recorder.close()
