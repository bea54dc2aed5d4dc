"""`/healthz` and Prometheus `/metrics` for the running gateway, and the `edgefab status` table.

The runtime takes one snapshot of its state per request (`GatewaySnapshot`); the JSON
document, the Prometheus exposition and the status table are pure functions of it.
The HTTP server is a few lines of asyncio: two GET endpoints need no web framework on a Pi.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONNECTOR_STATES = ("connecting", "connected", "disconnected")


@dataclass
class ConnectorSnapshot:
    device: str
    protocol: str
    state: str
    last_error: str = ""
    reconnects: int = 0
    reads_ok: int = 0
    reads_failed: int = 0
    samples_read: int = 0
    samples_stored: int = 0
    samples_suppressed: int = 0
    paused: bool = False
    """Not polling because the buffer is full under `stop_reading`."""


@dataclass
class SinkSnapshot:
    name: str
    connected: bool
    state: str
    depth: int
    oldest_unacked_age_s: float
    dropped: int
    samples_delivered: int
    delivery_failures: int
    rate_limited_s: float
    last_error: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    """The sink's own SinkCounters (messages sent / confirmed, redelivered samples, ...)."""


@dataclass
class ChannelSnapshot:
    """One notification channel's outbox (docs/alarms.md)."""

    sent: int
    refused: int
    """Rejected by the service for good (a bad webhook key, say): not retried, counted."""
    delivery_failures: int
    """Attempts that failed and are retried (the service unreachable, rate-limited, ...)."""
    queued: int
    """Notifications stored and not yet confirmed by the service."""
    dropped: int


@dataclass
class AlarmsSnapshot:
    """The alarm service of a gateway with an `alarms:` section."""

    alarms: int
    by_state: dict[str, int]
    """Alarms in each ISA-18.2 state, every state listed (zeros included)."""
    shelved: int
    transitions: dict[str, int]
    """Events since the gateway started, by transition (raised, cleared, acknowledged, ...)."""
    events_unpublished: int
    """Alarm events stored and not yet confirmed by the MQTT broker."""
    notifications: dict[str, ChannelSnapshot] = field(default_factory=dict)


@dataclass
class GatewaySnapshot:
    gateway: str
    status: str  # starting / running / stopping
    uptime_s: float
    samples_read_per_s: float
    connectors: list[ConnectorSnapshot]
    sinks: list[SinkSnapshot]
    buffer_bytes: int
    buffer_max_bytes: int
    buffer_when_full: str
    buffer_refused_appends: int
    buffer_refused_samples: int
    alarms: AlarmsSnapshot | None = None

    def document(self) -> dict[str, Any]:
        """The /healthz JSON document."""
        doc = asdict(self)
        doc["connectors"] = {c["device"]: c for c in doc["connectors"]}
        doc["sinks"] = {s["name"]: s for s in doc["sinks"]}
        return doc


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: GatewaySnapshot) -> None:
        self.s = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.s
        gauge = GaugeMetricFamily("edgefab_up", "1 while the gateway is running", labels=["gateway"])
        gauge.add_metric([s.gateway], 1.0 if s.status == "running" else 0.0)
        yield gauge
        gauge = GaugeMetricFamily("edgefab_samples_read_per_second", "samples read from devices, last 10 s")
        gauge.add_metric([], s.samples_read_per_s)
        yield gauge

        per_device = [
            ("samples_read", "samples read from the device", lambda c: c.samples_read),
            ("samples_stored", "samples committed to the buffer after the pipeline", lambda c: c.samples_stored),
            ("samples_suppressed", "samples left out by report-by-exception", lambda c: c.samples_suppressed),
            ("connector_reconnects", "reconnects of the device link", lambda c: c.reconnects),
            ("connector_reads_failed", "failed reads", lambda c: c.reads_failed),
        ]
        for name, doc, value in per_device:
            counter = CounterMetricFamily(f"edgefab_{name}", doc, labels=["device"])
            for c in s.connectors:
                counter.add_metric([c.device], value(c))
            yield counter
        state = GaugeMetricFamily(
            "edgefab_connector_state", "1 for the link's current state", labels=["device", "state"]
        )
        up = GaugeMetricFamily("edgefab_connector_up", "1 when the device link is connected", labels=["device"])
        paused = GaugeMetricFamily(
            "edgefab_connector_paused", "1 when polling is paused (buffer full)", labels=["device"]
        )
        for c in s.connectors:
            for name in CONNECTOR_STATES:
                state.add_metric([c.device, name], 1.0 if c.state == name else 0.0)
            up.add_metric([c.device], 1.0 if c.state == "connected" else 0.0)
            paused.add_metric([c.device], 1.0 if c.paused else 0.0)
        yield from (state, up, paused)

        per_sink_gauges = [
            ("sink_queue_depth", "samples buffered, not yet confirmed by the sink", lambda k: k.depth),
            (
                "sink_oldest_unacked_age_seconds",
                "age of the oldest unconfirmed sample",
                lambda k: k.oldest_unacked_age_s,
            ),
            ("sink_connected", "1 when the sink's destination is connected", lambda k: 1.0 if k.connected else 0.0),
        ]
        for name, doc, value in per_sink_gauges:
            gauge = GaugeMetricFamily(f"edgefab_{name}", doc, labels=["sink"])
            for k in s.sinks:
                gauge.add_metric([k.name], value(k))
            yield gauge
        per_sink_counters = [
            ("dropped_samples", "samples dropped from the buffer before this sink delivered them", lambda k: k.dropped),
            ("sink_delivered_samples", "samples the sink's destination confirmed", lambda k: k.samples_delivered),
            ("sink_delivery_failures", "deliveries the destination did not confirm", lambda k: k.delivery_failures),
            ("sink_rate_limited_seconds", "time replay waited for the rate limit", lambda k: k.rate_limited_s),
        ]
        for name, doc, value in per_sink_counters:
            counter = CounterMetricFamily(f"edgefab_{name}", doc, labels=["sink"])
            for k in s.sinks:
                counter.add_metric([k.name], value(k))
            yield counter
        counter_names = sorted({name for k in s.sinks for name in k.counters})
        for name in counter_names:
            counter = CounterMetricFamily(f"edgefab_sink_{name}", f"sink counter {name}", labels=["sink"])
            for k in s.sinks:
                if name in k.counters:
                    counter.add_metric([k.name], k.counters[name])
            yield counter

        for name, doc, v in [
            ("buffer_bytes", "bytes stored in the durable buffer", s.buffer_bytes),
            ("buffer_max_bytes", "the buffer's bound", s.buffer_max_bytes),
        ]:
            gauge = GaugeMetricFamily(f"edgefab_{name}", doc)
            gauge.add_metric([], v)
            yield gauge
        counter = CounterMetricFamily(
            "edgefab_buffer_refused_samples", "samples refused by a full buffer (stop_reading)"
        )
        counter.add_metric([], s.buffer_refused_samples)
        yield counter
        if s.alarms is not None:
            yield from _alarm_metrics(s.alarms)


def _alarm_metrics(a: AlarmsSnapshot) -> Iterator[Metric]:
    gauge = GaugeMetricFamily("edgefab_alarms", "alarms in each ISA-18.2 state", labels=["state"])
    for state, count in a.by_state.items():
        gauge.add_metric([state], count)
    yield gauge
    gauge = GaugeMetricFamily("edgefab_alarms_shelved", "alarms shelved by an operator")
    gauge.add_metric([], a.shelved)
    yield gauge
    counter = CounterMetricFamily("edgefab_alarm_events", "alarm events since start", labels=["transition"])
    for transition, count in sorted(a.transitions.items()):
        counter.add_metric([transition], count)
    yield counter
    gauge = GaugeMetricFamily("edgefab_alarm_events_unpublished", "alarm events not yet confirmed by the broker")
    gauge.add_metric([], a.events_unpublished)
    yield gauge
    per_channel: list[tuple[str, str, Callable[[ChannelSnapshot], int], type[Metric]]] = [
        ("notifications_sent", "notifications the service confirmed", lambda c: c.sent, CounterMetricFamily),
        ("notifications_refused", "notifications the service refused for good", lambda c: c.refused,
         CounterMetricFamily),
        ("notification_delivery_failures", "attempts that failed and are retried", lambda c: c.delivery_failures,
         CounterMetricFamily),
        ("notifications_dropped", "notifications dropped from a full outbox", lambda c: c.dropped,
         CounterMetricFamily),
        ("notifications_queued", "notifications stored, not yet confirmed", lambda c: c.queued, GaugeMetricFamily),
    ]  # fmt: skip
    for name, doc, value, family in per_channel:
        metric = family(f"edgefab_{name}", doc, labels=["channel"])
        for channel, c in sorted(a.notifications.items()):
            metric.add_metric([channel], value(c))  # type: ignore[attr-defined]
        yield metric


def metrics_text(snapshot: GatewaySnapshot) -> bytes:
    """The Prometheus text exposition of one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)


class HealthServer:
    """GET /healthz (JSON, 200 while running, 503 otherwise) and GET /metrics."""

    def __init__(self, snapshot: Callable[[], Awaitable[GatewaySnapshot]], host: str, port: int) -> None:
        self.snapshot, self.host, self.port = snapshot, host, port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, target = request.split(b" ", 2)[:2]
            path = target.decode(errors="replace").split("?", 1)[0]
            if method != b"GET":
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/healthz":
                snap = await self.snapshot()
                status = "200 OK" if snap.status == "running" else "503 Service Unavailable"
                ctype, body = "application/json", json.dumps(snap.document(), indent=1).encode()
            elif path == "/metrics":
                status, ctype = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
                body = metrics_text(await self.snapshot())
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /healthz or /metrics\n"
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ValueError, ConnectionError):
            pass
        except Exception:
            log.exception("health endpoint failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# ---------------------------------------------------------------- edgefab status


def fetch_health(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The /healthz document (a 503 still carries it)."""
    import urllib.error

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=timeout_s) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        return json.loads(e.read())  # type: ignore[no-any-return]


def status_table(doc: dict[str, Any]) -> str:
    """A short plain-text view of /healthz for `edgefab status`."""
    lines = [
        f"gateway {doc['gateway']}: {doc['status']}, up {doc['uptime_s']:.0f} s, "
        f"{doc['samples_read_per_s']:.0f} samples/s read, buffer {_size(doc['buffer_bytes'])} of "
        f"{_size(doc['buffer_max_bytes'])} ({doc['buffer_when_full']})",
        "",
        f"{'DEVICE':<20} {'PROTOCOL':<10} {'STATE':<13} {'READ':>10} {'RECONN':>6}  LAST ERROR",
    ]
    for c in doc["connectors"].values():
        state = c["state"] + (" (paused)" if c["paused"] else "")
        lines.append(
            f"{c['device']:<20} {c['protocol']:<10} {state:<13} {c['samples_read']:>10} {c['reconnects']:>6}  "
            f"{c['last_error'][:60]}"
        )
    lines += ["", f"{'SINK':<20} {'STATE':<13} {'QUEUE':>9} {'OLDEST':>8} {'DELIVERED':>10} {'DROPPED':>8}  LAST ERROR"]
    for k in doc["sinks"].values():
        state = ("connected " if k["connected"] else "offline ") + ("" if k["state"] == "idle" else k["state"])
        lines.append(
            f"{k['name']:<20} {state.strip():<13} {k['depth']:>9} {k['oldest_unacked_age_s']:>7.1f}s "
            f"{k['samples_delivered']:>10} {k['dropped']:>8}  {k['last_error'][:60]}"
        )
    alarms = doc.get("alarms")
    if alarms:
        states = alarms["by_state"]
        lines += [
            "",
            f"alarms: {alarms['alarms']}, active {states['active_unacked'] + states['active_acked']} "
            f"({states['active_unacked']} unacknowledged), shelved {alarms['shelved']}, "
            f"events not yet published {alarms['events_unpublished']}",
        ]
        for name, c in alarms["notifications"].items():
            lines.append(
                f"  notify {name}: {c['sent']} sent, {c['queued']} queued, {c['refused']} refused, "
                f"{c['delivery_failures']} failed attempts"
            )
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
