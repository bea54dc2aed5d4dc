"""`edgefab run`: connectors -> pipeline -> durable buffer -> forwarders -> sinks, plus health.

Each device runs in its own task and reaches the buffer only through its `emit`, which
commits on the buffer's own thread: a device that stalls (a PLC that stops answering)
stalls nobody else. Each sink has its own forwarder task, so a broker outage does not
hold back InfluxDB either.

Shutdown (SIGTERM / SIGINT): stop polling, let every forwarder deliver what is
buffered for up to `flush_timeout_s`, stop the sinks (MQTT sends its "offline" status),
close the buffer (checkpointed). Whatever a sink could not confirm stays in the buffer
and is delivered after the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from connectors.backoff import Backoff
from connectors.base import Connector, Emit
from edge_config.schema import Device, Protocol, SiteConfig
from gateway.alarms.companions import companions_for, observe_all
from gateway.buffer import AsyncBuffer, Buffer, BufferFull
from gateway.forwarder import Forwarder
from gateway.health import AlarmsSnapshot, ConnectorSnapshot, GatewaySnapshot, HealthServer, SinkSnapshot
from gateway.pipeline import DevicePipeline, build_pipelines
from gateway.sample import Sample
from gateway.sinks.base import Sink

log = logging.getLogger("edgefab.gateway")

DEVICE_STOP_TIMEOUT_S = 5.0
"""How long shutdown waits for each cancelled device task before going on without it."""

CONNECTOR_CLASSES: dict[Protocol, str] = {
    Protocol.MODBUS: "connectors.modbus.client:ModbusConnector",
    Protocol.MODBUS_RTU: "connectors.modbus.client:ModbusConnector",
    Protocol.OPCUA: "connectors.opcua.client:OpcUaConnector",
}
"""protocol -> `module:Class`; each class is built as `Class(config, device)`."""

READ_RATE_WINDOW_S = 10.0


def build_connector(config: SiteConfig, device: Device) -> Connector:
    module_name, class_name = CONNECTOR_CLASSES[Protocol(device.protocol)].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, device)  # type: ignore[no-any-return]


def build_sinks(config: SiteConfig) -> list[Sink]:
    """The configured sinks; each one's name is its cursor in the buffer."""
    sinks: list[Sink] = []
    if config.sinks.mqtt is not None:
        from gateway.sinks.mqtt import MqttSink

        sinks.append(MqttSink(config.sinks.mqtt, config, name="mqtt"))
    if config.sinks.influxdb is not None:
        from gateway.sinks.influx import InfluxSink

        sinks.append(InfluxSink(config.sinks.influxdb, config, name="influxdb"))
    return sinks


@dataclass
class _DeviceRun:
    device: Device
    connector: Connector
    pipeline: DevicePipeline
    samples_read: int = 0
    samples_stored: int = 0
    paused: bool = False
    task: asyncio.Task[None] | None = None


class Gateway:
    """One running gateway. Tests may pass their own connectors (by device name) and sinks."""

    def __init__(
        self,
        config: SiteConfig,
        *,
        connectors: dict[str, Connector] | None = None,
        sinks: list[Sink] | None = None,
        health_host: str = "127.0.0.1",
        health_port: int | None = None,
        flush_timeout_s: float = 5.0,
        config_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.health_host = health_host
        self.health_port = config.gateway.health_port if health_port is None else health_port
        self.flush_timeout_s = flush_timeout_s
        pipelines = build_pipelines(config)
        connectors = (
            connectors if connectors is not None else {d.name: build_connector(config, d) for d in config.devices}
        )
        self.devices = {
            name: _DeviceRun(config.device(name), connector, pipelines[name]) for name, connector in connectors.items()
        }
        self.sinks = sinks if sinks is not None else build_sinks(config)
        path = Path(config.buffer.path)
        if not path.is_absolute() and config_dir is not None:
            path = config_dir / path
        self.buffer = AsyncBuffer(
            Buffer(
                path,
                [s.name for s in self.sinks],
                max_bytes=config.buffer.max_bytes,
                when_full=config.buffer.when_full,
                fsync=config.buffer.fsync,
            )
        )
        self.forwarders = [self._forwarder(sink) for sink in self.sinks]
        self.companions = companions_for(self)  # alarms and write-back (docs/alarms.md, docs/writeback.md)
        self.health: HealthServer | None = None
        self.status = "starting"
        self.started_at = time.monotonic()
        self._reads: deque[tuple[float, int]] = deque()
        self._stop = asyncio.Event()
        self._forwarder_tasks: list[asyncio.Task[None]] = []

    def _forwarder(self, sink: Sink) -> Forwarder:
        if self.config.sinks.mqtt is not None and sink.name == "mqtt":
            mqtt = self.config.sinks.mqtt
            if mqtt.format == "uns-json":  # a message per sample: batches no larger than a second's burst
                batch_size, messages_in = max(1, min(500, int(mqtt.max_messages_per_s))), len
            else:  # a message per machine per batch
                batch_size, messages_in = 20_000, None
            return Forwarder(
                sink,
                self.buffer,
                batch_size=batch_size,
                max_messages_per_s=mqtt.max_messages_per_s,
                messages_in=messages_in,
            )
        if self.config.sinks.influxdb is not None and sink.name == "influxdb":
            return Forwarder(sink, self.buffer, batch_size=self.config.sinks.influxdb.batch_size)
        return Forwarder(sink, self.buffer, batch_size=1000)

    # ------------------------------------------------------------------ the data path

    def _emit_for(self, run: _DeviceRun) -> Emit:
        async def emit(samples: list[Sample]) -> None:
            run.samples_read += len(samples)
            if self.companions:
                await observe_all(self.companions, samples)
            stored = run.pipeline.process(samples)
            if not stored:
                return
            while True:
                try:
                    await self.buffer.append(stored)
                    break
                except BufferFull as e:
                    if not run.paused:
                        log.warning("device %s: %s", run.device.name, e, extra={"event": "buffer_full"})
                    run.paused = True  # the connector waits here, so it does not poll
                    await self.buffer.wait_for_room(1.0)
            if run.paused:
                log.info("device %s: buffer has room again, polling resumed", run.device.name)
                run.paused = False
            run.samples_stored += len(stored)

        return emit

    async def _run_device(self, run: _DeviceRun) -> None:
        """Keep one connector running; a connector that raises is restarted after a backoff."""
        backoff = Backoff(initial_s=1.0, max_s=30.0)
        emit = self._emit_for(run)
        while True:
            try:
                await run.connector.run(emit)
                log.error("device %s: connector returned; restarting", run.device.name)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("device %s: connector failed: %s; restarting", run.device.name, e)
                run.connector.health.last_error = f"{type(e).__name__}: {e}"
            await asyncio.sleep(backoff.next_delay_s())

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, install_signal_handlers: bool = True, ready: asyncio.Event | None = None) -> None:
        """Run until `request_stop()` (or SIGTERM/SIGINT), then shut down gracefully."""
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self._start()
            if ready is not None:
                ready.set()
            await self._stop.wait()
        finally:
            await self._shutdown()
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s: shutting down", sig.name, extra={"event": "signal"})
        self._stop.set()

    async def _start(self) -> None:
        if self.health_port is not None and self.health_port >= 0:
            self.health = HealthServer(self.snapshot, self.health_host, self.health_port)
            await self.health.start()
            self.health_port = self.health.port
            log.info(
                "health on http://%s:%d/healthz and /metrics",
                self.health_host,
                self.health.port,
                extra={"event": "health_listening", "port": self.health.port},
            )
        for sink in self.sinks:
            await sink.start()
        for companion in self.companions:
            await companion.start()
        self._forwarder_tasks = [asyncio.create_task(f.run(), name=f"forward-{f.sink.name}") for f in self.forwarders]
        for name, run in self.devices.items():
            run.task = asyncio.create_task(self._run_device(run), name=f"device-{name}")
        self.status = "running"
        log.info(
            "gateway %s running: %d devices, sinks %s",
            self.config.gateway.name,
            len(self.devices),
            ", ".join(s.name for s in self.sinks) or "none",
            extra={"event": "started"},
        )

    async def _shutdown(self) -> None:
        self.status = "stopping"
        device_tasks = [r.task for r in self.devices.values() if r.task]
        for task in device_tasks:
            task.cancel()
        # A connector stuck inside a library call that swallows the cancellation must not keep the
        # buffer from being flushed and closed: give the devices a bound, then go on without them.
        _, stuck = await asyncio.wait(device_tasks, timeout=DEVICE_STOP_TIMEOUT_S) if device_tasks else ((), ())
        for task in stuck:
            log.warning(
                "%s did not stop within %.0f s; shutting down without it", task.get_name(), DEVICE_STOP_TIMEOUT_S
            )
        for forwarder in self.forwarders:
            forwarder.stop()
        if self._forwarder_tasks:
            _, pending = await asyncio.wait(self._forwarder_tasks, timeout=self.flush_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._forwarder_tasks, return_exceptions=True)
        metrics = await self.buffer.metrics()
        for companion in self.companions:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(companion.stop(), 10.0)
        for sink in self.sinks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sink.stop(), 5.0)
        await self.buffer.close()
        if self.health:
            await self.health.stop()
        left = {name: m.depth for name, m in metrics.sinks.items() if m.depth}
        log.info(
            "gateway stopped; %s",
            f"still buffered for the next start: {left}" if left else "everything delivered",
            extra={"event": "stopped", "buffered": left},
        )

    # ------------------------------------------------------------------ health

    def _read_rate(self, total: int) -> float:
        now = time.monotonic()
        self._reads.append((now, total))
        while len(self._reads) > 2 and now - self._reads[1][0] >= READ_RATE_WINDOW_S:
            self._reads.popleft()
        (t0, n0) = self._reads[0]
        if len(self._reads) < 2 or now - t0 < 1.0:  # first look: the average since start
            return total / max(now - self.started_at, 1e-3)
        return (total - n0) / (now - t0)

    async def snapshot(self) -> GatewaySnapshot:
        metrics = await self.buffer.metrics()
        connectors = []
        for name, run in self.devices.items():
            h = run.connector.health
            connectors.append(
                ConnectorSnapshot(
                    device=name,
                    protocol=str(run.device.protocol),
                    state=str(h.state),
                    last_error=h.last_error,
                    reconnects=h.reconnects,
                    reads_ok=h.reads_ok,
                    reads_failed=h.reads_failed,
                    samples_read=run.samples_read,
                    samples_stored=run.samples_stored,
                    samples_suppressed=run.pipeline.report.suppressed,
                    paused=run.paused,
                )
            )
        sinks = []
        for forwarder in self.forwarders:
            sink, stats = forwarder.sink, forwarder.stats
            m = metrics.sinks[sink.name]
            counters = getattr(sink, "counters", None)
            sinks.append(
                SinkSnapshot(
                    name=sink.name,
                    connected=bool(sink.connected),
                    state=str(stats.state),
                    depth=m.depth,
                    oldest_unacked_age_s=round(m.oldest_unacked_age_s, 3),
                    dropped=m.dropped,
                    samples_delivered=stats.samples_delivered,
                    delivery_failures=stats.delivery_failures,
                    rate_limited_s=round(stats.rate_limited_s, 3),
                    last_error=stats.last_error,
                    counters=counters.as_dict() if counters is not None and hasattr(counters, "as_dict") else {},
                )
            )
        return GatewaySnapshot(
            gateway=self.config.gateway.name,
            status=self.status,
            uptime_s=round(time.monotonic() - self.started_at, 1),
            samples_read_per_s=round(self._read_rate(sum(r.samples_read for r in self.devices.values())), 1),
            connectors=connectors,
            sinks=sinks,
            buffer_bytes=metrics.bytes,
            buffer_max_bytes=metrics.max_bytes,
            buffer_when_full=self.config.buffer.when_full,
            buffer_refused_appends=metrics.refused_appends,
            buffer_refused_samples=metrics.refused_samples,
            alarms=await self._alarms_snapshot(),
        )

    async def _alarms_snapshot(self) -> AlarmsSnapshot | None:
        if not self.companions:
            return None
        from gateway.alarms.service import AlarmService  # loaded only with an `alarms:` section (companions_for)

        for companion in self.companions:
            if isinstance(companion, AlarmService):
                return await companion.snapshot()
        return None
