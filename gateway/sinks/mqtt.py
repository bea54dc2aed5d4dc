"""The MQTT sink: Unified Namespace JSON (per tag or batched per machine) or Sparkplug B.

`deliver` returns once the broker acknowledged every message (PUBACK, at QoS 1); at QoS
0 it returns once paho handed the messages to the socket, which is all QoS 0 promises.
A lost connection or a missing PUBACK raises `SinkUnavailable`: the buffer keeps the
batch and replays it, so a consumer may see a value twice (at-least-once, counted as
`samples_redelivered`), never zero times.

Gateway status (UNS formats): `{enterprise}/{site}/_gateway/{gateway}/status` is
"online" (retained, QoS 1) after each connect and "offline" as the will, set before
connecting, and on a clean stop. Sparkplug B uses its own NBIRTH/NDEATH instead.
"""

from __future__ import annotations

import asyncio
import logging
import time

from edge_config.schema import MqttSink as MqttSinkConfig
from edge_config.schema import SiteConfig
from gateway.sample import Sample
from gateway.sinks.base import SinkCounters, SinkUnavailable
from gateway.sinks.mqtt_connection import Message, MqttConnection, default_client_id
from gateway.sinks.sparkplug import SparkplugNode
from gateway.sinks.uns import BatchEncoder, TopicMapper, sample_payload, units_by_tag_path

log = logging.getLogger(__name__)

ONLINE, OFFLINE = b"online", b"offline"


def status_topic(site: SiteConfig) -> str:
    return f"{site.site.enterprise}/{site.site.site}/_gateway/{site.gateway.name}/status"


class RedeliveryTracker:
    """Counts samples sent again after a delivery that was not confirmed.

    Remembers the (tag, ts_ns) keys of the last failed batch only: the buffer replays
    from its cursor, so what comes back first is that batch.
    """

    def __init__(self) -> None:
        self._unconfirmed: set[tuple[str, int]] = set()

    def failed(self, samples: list[Sample]) -> None:
        self._unconfirmed.update((s.tag, s.ts_ns) for s in samples)

    def count_resent(self, samples: list[Sample]) -> int:
        if not self._unconfirmed:
            return 0
        keys = {(s.tag, s.ts_ns) for s in samples}
        resent = keys & self._unconfirmed
        self._unconfirmed -= resent
        return len(resent)

    def confirmed(self) -> None:
        self._unconfirmed.clear()


class MqttSink:
    """Delivers samples to an MQTT broker in the configured format."""

    def __init__(self, config: MqttSinkConfig, site: SiteConfig, *, name: str = "mqtt") -> None:
        self.name = name
        self.config = config
        self.site = site
        self.format = config.format
        self.counters = SinkCounters()
        self.topics = TopicMapper(config.topic_template)
        self.status_topic = status_topic(site)
        self._units = units_by_tag_path(site)
        self._batches = BatchEncoder()
        self._sparkplug = SparkplugNode(site, qos=config.qos) if self.format == "sparkplug-b" else None
        self._lock = asyncio.Lock()
        self._redelivery = RedeliveryTracker()
        self._rebirth_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[bool]] = set()
        self._connection = MqttConnection(
            config,
            client_id=config.client_id or default_client_id(site.gateway.name, name),
            counters=self.counters,
            will=self._will,
            on_connected=self._birth,
            on_message=self._on_command if self._sparkplug else None,
            subscriptions=(self._sparkplug.ncmd_topic,) if self._sparkplug else (),
        )

    # ------------------------------------------------------------------ Sink contract

    @property
    def connected(self) -> bool:
        return self._connection.connected

    @property
    def last_error(self) -> str:
        return self._connection.last_error

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._connection.start()

    async def wait_connected(self, timeout_s: float = 10.0) -> bool:
        """For tests and the CLI's start-up message; delivery never needs it."""
        return await self._connection.wait_connected(timeout_s)

    async def stop(self) -> None:
        async with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if self._sparkplug:
                goodbye = [_message(o) for o in self._sparkplug.deaths(now_ms)]
            else:
                goodbye = [Message(self.status_topic, OFFLINE, 1, True)]
            await self._connection.stop(goodbye)

    async def deliver(self, samples: list[Sample]) -> None:
        if not samples:
            return
        async with self._lock:
            if not self._connection.connected:
                raise SinkUnavailable(
                    f"mqtt {self.name}: not connected ({self._connection.last_error or 'connecting'})"
                )
            if self._rebirth_requested:
                await self._rebirth()
            messages = self.messages_for(samples)
            self.counters.samples_redelivered += self._redelivery.count_resent(samples)
            try:
                await self._connection.publish_confirmed(messages)
            except SinkUnavailable:
                self._redelivery.failed(samples)
                raise
            self._redelivery.confirmed()
            self.counters.samples_delivered += len(samples)

    # ------------------------------------------------------------------ formats

    def messages_for(self, samples: list[Sample]) -> list[Message]:
        """The MQTT messages that carry `samples` in this sink's format, in order."""
        qos = self.config.qos
        if self.format == "uns-json":
            units, topic = self._units, self.topics.tag_topic
            retain = self.config.retain
            return [Message(topic(s.tag), sample_payload(s, units.get(s.tag)), qos, retain) for s in samples]
        if self.format == "uns-batch":
            return [
                Message(self.topics.batch_topic(machine), payload, qos, False)
                for machine, payload in self._batches.encode(samples).items()
            ]
        assert self._sparkplug is not None
        return [_message(o) for o in self._sparkplug.data(samples, time.time_ns() // 1_000_000)]

    # ------------------------------------------------------------------ birth, will, commands

    def _will(self) -> Message:
        if self._sparkplug:
            return _message(self._sparkplug.new_session())
        return Message(self.status_topic, OFFLINE, 1, True)

    async def _birth(self, connection: MqttConnection) -> None:
        async with self._lock:
            if self._sparkplug:
                self._rebirth_requested = False
                births = self._sparkplug.births(time.time_ns() // 1_000_000)
                await connection.publish_confirmed([_message(o) for o in births])
            else:
                await connection.publish_confirmed([Message(self.status_topic, ONLINE, 1, True)])

    def _on_command(self, topic: str, payload: bytes) -> None:
        """An NCMD, inside paho's read: a rebirth request is served before the next delivery."""
        if self._sparkplug and self._sparkplug.is_rebirth_request(payload):
            log.info("mqtt %s: Sparkplug rebirth requested on %s", self.name, topic)
            self._rebirth_requested = True
            if self._loop is not None:
                self._loop.call_soon(self._schedule_rebirth)

    def _schedule_rebirth(self) -> None:
        task = asyncio.create_task(self.rebirth_if_requested(), name=f"{self.name}-rebirth")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _rebirth(self) -> None:
        assert self._sparkplug is not None
        self._rebirth_requested = False
        births = self._sparkplug.births(time.time_ns() // 1_000_000)
        await self._connection.publish_confirmed([_message(o) for o in births])

    async def rebirth_if_requested(self) -> bool:
        """Serve a pending rebirth now (the forwarder may be idle); True if one was published."""
        async with self._lock:
            if not self._rebirth_requested or not self._connection.connected:
                return False
            try:
                await self._rebirth()
            except SinkUnavailable:
                self._rebirth_requested = True  # the next connection's births cover it anyway
                return False
            return True


def _message(outgoing: object) -> Message:
    return Message(outgoing.topic, outgoing.payload, outgoing.qos, outgoing.retain)  # type: ignore[attr-defined]
