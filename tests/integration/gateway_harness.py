"""Shared pieces of the gateway's integration and fault tests.

- `CountingSource`: a connector (it satisfies `connectors.base.Connector`) whose every
  emitted value is recorded, so a test can count what must arrive. Each tag's value is
  its own running count, which makes order and gaps visible at the receiver.
- `MqttRecorder`: a real paho subscriber that decodes uns-json and uns-batch messages.
- `TcpGate`: a loopback TCP relay the test opens and closes, used where the test itself
  must reconnect to a restarted broker before the gateway does (so the test's own
  subscription does not miss what the gateway replays).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from connectors.base import ConnectorHealth, Emit, LinkState
from edge_config.schema import Device, SiteConfig
from gateway.sample import Sample, now_ns


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll a cheap condition every 50 ms; fail naming `what` after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def site_config(
    tmp_path: Path,
    devices: list[str],
    *,
    tags: int = 3,
    mqtt: dict[str, Any] | None = None,
    influxdb: dict[str, Any] | None = None,
    buffer: dict[str, Any] | None = None,
    protocol: str = "modbus",
    connection: dict[str, Any] | None = None,
) -> SiteConfig:
    """A site with `devices` on line1, each with tags t0..t{tags-1} (holding registers)."""
    sinks: dict[str, Any] = {}
    if mqtt is not None:
        sinks["mqtt"] = mqtt
    if influxdb is not None:
        sinks["influxdb"] = influxdb
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "test"},
            "gateway": {"name": "gw1", "health_port": 0},
            "devices": [
                {
                    "name": name,
                    "area": "press",
                    "line": "line1",
                    "protocol": protocol,
                    "connection": connection or {"host": "127.0.0.1", "port": 1502},
                    "poll": 0.05,
                    "tags": {f"t{i}": {"address": f"hr4{i + 1:04d}"} for i in range(tags)},
                }
                for name in devices
            ],
            "sinks": sinks,
            "buffer": {"path": str(tmp_path / "buffer.db"), **(buffer or {})},
        }
    )


class CountingSource:
    """Emits every tag of `device` every `interval_s`; value n on the n-th cycle (from 1)."""

    def __init__(self, config: SiteConfig, device: Device, interval_s: float = 0.05) -> None:
        self.paths = [config.tag_path(device, name) for name in device.tags]
        self.interval_s = interval_s
        self.health = ConnectorHealth(device.name)
        self.emitted: list[Sample] = []
        self.cycles = 0
        self.running = True
        """Set False to stop producing (the connector keeps running, as if the machine were idle)."""

    async def run(self, emit: Emit) -> None:
        self.health.state = LinkState.CONNECTED
        while True:
            if self.running:
                self.cycles += 1
                ts = now_ns()
                batch = [Sample(path, self.cycles, ts) for path in self.paths]
                await emit(batch)
                self.emitted.extend(batch)
                self.health.reads_ok += 1
                self.health.samples += len(batch)
            await asyncio.sleep(self.interval_s)


class MqttRecorder:
    """Subscribes (QoS 1) to `topic` and records every sample it receives, duplicates included."""

    def __init__(self, host: str, port: int, topic: str = "#") -> None:
        self.topic = topic
        self.received: list[tuple[str, Any, int]] = []  # (tag path, value, ts_ns)
        self.raw: list[tuple[str, bytes]] = []
        self.not_good: list[tuple[str, str, str]] = []  # (tag path, quality, reason) of bad/uncertain samples
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.subscribed = threading.Event()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, clean_session=True)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_disconnect = lambda *_: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(host, port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("the recorder could not subscribe")

    def _on_connect(self, client: paho.Client, *_: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self._changed:
            self.raw.append((msg.topic, msg.payload))
            if "/_gateway/" in msg.topic:
                pass
            elif msg.topic.endswith("/_batch"):
                doc = json.loads(msg.payload)
                for s in doc["samples"]:
                    self.received.append((f"{doc['machine']}/{s['tag']}", s["value"], s["ts_ns"]))
                    if s.get("quality", "good") != "good":
                        self.not_good.append((f"{doc['machine']}/{s['tag']}", s["quality"], s.get("reason", "")))
            else:
                doc = json.loads(msg.payload)
                self.received.append((msg.topic, doc["value"], doc["ts_ns"]))
                if doc.get("quality", "good") != "good":
                    self.not_good.append((msg.topic, doc["quality"], doc.get("reason", "")))
            self._changed.notify_all()

    def wait_for_distinct(self, expected: set[tuple[str, Any, int]], timeout_s: float) -> set[tuple[str, Any, int]]:
        """Block until every expected sample arrived (or timeout); returns what is still missing."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                missing = expected - set(self.received)
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    return missing
                self._changed.wait(min(remaining, 0.5))

    def by_tag(self) -> dict[str, list[Any]]:
        with self._lock:
            result: dict[str, list[Any]] = defaultdict(list)
            for tag, value, _ in self.received:
                result[tag].append(value)
            return result

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def first_occurrences(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class TcpGate:
    """A loopback TCP relay to `target_port`, which the test opens (`open()`) and shuts (`shut()`).

    Shut: listening socket closed (connections refused) and every relayed connection cut.
    """

    def __init__(self, target_port: int) -> None:
        from tests.servers import free_port

        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def shut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
