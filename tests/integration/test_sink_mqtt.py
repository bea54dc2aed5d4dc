"""The MQTT sink against a real Mosquitto: exact topics and payloads, birth and will,
PUBACK-confirmed delivery, SinkUnavailable during an outage and reconnection after it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_config.schema import (
    Device,
    Gateway,
    ModbusTag,
    ModbusTcpConnection,
    Site,
    SiteConfig,
)
from edge_config.schema import (
    MqttSink as MqttSinkConfig,
)
from gateway.sample import Quality, Sample
from gateway.sinks import mqtt_connection
from gateway.sinks.base import SinkUnavailable
from gateway.sinks.mqtt import MqttSink
from tests.servers import Mosquitto

T0_NS = 1_764_157_080_123_456_789  # 2025-11-26T11:38:00.123456789Z


def demo_site(gateway: str = "edge1") -> SiteConfig:
    return SiteConfig(
        site=Site(enterprise="acme", site="dongguan"),
        gateway=Gateway(name=gateway),
        devices=[
            Device(
                name="press01",
                area="stamping",
                line="line1",
                protocol="modbus",
                connection=ModbusTcpConnection(host="127.0.0.1"),
                tags={
                    "state": ModbusTag(
                        address="hr40001", type="uint16", role="state", map={0: "stopped", 1: "running"}
                    ),
                    "parts": ModbusTag(address="hr40002", type="uint32", role="total_count"),
                    "temp": ModbusTag(address="hr40004", type="int16", scale=0.1, unit="degC"),
                    "running": ModbusTag(address="co00001", type="bool"),
                },
            ),
            Device(
                name="cnc02",
                area="machining",
                line="line2",
                protocol="modbus",
                connection=ModbusTcpConnection(host="127.0.0.1"),
                tags={"spindle_rpm": ModbusTag(address="hr40001", type="float32", unit="rpm")},
            ),
        ],
    )


class Subscriber:
    """A plain paho client recording every message it receives, for assertions."""

    def __init__(self, port: int, topics: list[str], *, client_id: str = "test-subscriber") -> None:
        self.messages: list[paho.MQTTMessage] = []
        self._changed = threading.Condition()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert subscribed.wait(5), "subscription not acknowledged"

    def _on_message(self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, count: int, topic_prefix: str = "", timeout_s: float = 10.0) -> list[paho.MQTTMessage]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = [m for m in self.messages if m.topic.startswith(topic_prefix)]
                if len(found) >= count or time.monotonic() >= deadline:
                    return found
                self._changed.wait(max(0.0, deadline - time.monotonic()))

    async def until(self, count: int, topic_prefix: str = "", timeout_s: float = 10.0) -> list[paho.MQTTMessage]:
        """`wait_for` without blocking the event loop (the sink under test runs on it)."""
        return await asyncio.to_thread(self.wait_for, count, topic_prefix, timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.port, ["acme/#"])
    yield sub
    sub.close()


def sink_config(mosquitto: Mosquitto, **overrides: object) -> MqttSinkConfig:
    return MqttSinkConfig(url=mosquitto.url, **overrides)


async def started(sink: MqttSink) -> MqttSink:
    await sink.start()
    assert await sink.wait_connected(10), sink.last_error
    return sink


def paho_threads(client_id_prefix: str = "") -> list[threading.Thread]:
    """paho's network threads; with a prefix, only those of the clients it names (the sinks' ids start
    with "edgefab-"). The sinks run paho on the event loop, so they never have one; the test
    subscribers use paho's own thread."""
    return [t for t in threading.enumerate() if t.name.startswith(f"paho-mqtt-client-{client_id_prefix}")]


def sockets_connected_to(port: int) -> int:
    """This process's open TCP sockets whose peer is `port` on loopback (from /proc: Linux)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    count += 1
    return count


async def closed_sockets_to(port: int) -> bool:
    """True once no socket of this process is connected to `port` (a closing helper may take a moment)."""
    for _ in range(100):
        if sockets_connected_to(port) == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_uns_json_publishes_one_message_per_sample_on_its_unified_namespace_topic(mosquitto, subscriber):
    sink = await started(MqttSink(sink_config(mosquitto, format="uns-json", qos=1), demo_site()))
    try:
        await sink.deliver(
            [
                Sample("acme/dongguan/stamping/line1/press01/temp", 71.5, T0_NS),
                Sample("acme/dongguan/stamping/line1/press01/state", "running", T0_NS + 1_000_000),
                Sample("acme/dongguan/stamping/line1/press01/parts", None, T0_NS, Quality.BAD, "timeout after 1.0 s"),
            ]
        )
        received = await subscriber.until(3, "acme/dongguan/stamping/")
        assert sink.counters.messages_confirmed == 3 + 1  # three samples and the "online" status
    finally:
        await sink.stop()

    assert [(m.topic, json.loads(m.payload)) for m in received] == [
        (
            "acme/dongguan/stamping/line1/press01/temp",
            {"value": 71.5, "ts": "2025-11-26T11:38:00.123Z", "ts_ns": T0_NS, "quality": "good", "unit": "degC"},
        ),
        (
            "acme/dongguan/stamping/line1/press01/state",
            {"value": "running", "ts": "2025-11-26T11:38:00.124Z", "ts_ns": T0_NS + 1_000_000, "quality": "good"},
        ),
        (
            "acme/dongguan/stamping/line1/press01/parts",
            {
                "value": None,
                "ts": "2025-11-26T11:38:00.123Z",
                "ts_ns": T0_NS,
                "quality": "bad",
                "reason": "timeout after 1.0 s",
            },
        ),
    ]
    assert all(not m.retain for m in received)


async def test_a_custom_topic_template_and_retained_last_values_reach_a_late_subscriber(mosquitto):
    config = sink_config(mosquitto, topic_template="uns/{site}/{machine}/{tag}", retain=True)
    sink = await started(MqttSink(config, demo_site()))
    try:
        await sink.deliver([Sample("acme/dongguan/stamping/line1/press01/temp", 70.0 + i, T0_NS + i) for i in range(3)])
    finally:
        await sink.stop()
    late = Subscriber(mosquitto.port, ["uns/#"], client_id="late")
    try:
        (retained,) = await late.until(1, "uns/")
    finally:
        late.close()
    assert retained.topic == "uns/dongguan/press01/temp"
    assert retained.retain
    assert json.loads(retained.payload)["value"] == 72.0


async def test_uns_batch_sends_one_message_per_machine_with_every_value_in_order(mosquitto, subscriber):
    sink = await started(MqttSink(sink_config(mosquitto, format="uns-batch"), demo_site()))
    samples = [Sample("acme/dongguan/stamping/line1/press01/temp", 20.0 + i, T0_NS + i) for i in range(500)]
    samples.insert(10, Sample("acme/dongguan/machining/line2/cnc02/spindle_rpm", 1200.0, T0_NS))
    samples.append(Sample("acme/dongguan/stamping/line1/press01/parts", None, T0_NS + 999, Quality.BAD, "exception 2"))
    try:
        await sink.deliver(samples)
        received = await subscriber.until(3, "acme/dongguan/")
        assert sink.counters.messages_confirmed == 2 + 1  # two machines and the "online" status
    finally:
        await sink.stop()

    batches = {m.topic: json.loads(m.payload) for m in received if not m.topic.endswith("/status")}
    assert set(batches) == {
        "acme/dongguan/stamping/line1/press01/_batch",
        "acme/dongguan/machining/line2/cnc02/_batch",
    }
    press = batches["acme/dongguan/stamping/line1/press01/_batch"]
    assert press["machine"] == "acme/dongguan/stamping/line1/press01"
    assert press["samples"][:2] == [
        {"tag": "temp", "value": 20.0, "ts_ns": T0_NS},
        {"tag": "temp", "value": 21.0, "ts_ns": T0_NS + 1},
    ]
    assert len(press["samples"]) == 501
    assert press["samples"][-1] == {
        "tag": "parts",
        "value": None,
        "ts_ns": T0_NS + 999,
        "quality": "bad",
        "reason": "exception 2",
    }
    assert batches["acme/dongguan/machining/line2/cnc02/_batch"]["samples"] == [
        {"tag": "spindle_rpm", "value": 1200.0, "ts_ns": T0_NS}
    ]


async def test_the_gateway_status_is_online_while_connected_and_the_will_says_offline_when_it_dies(mosquitto):
    watcher = Subscriber(mosquitto.port, ["acme/dongguan/_gateway/#"], client_id="watcher")
    status = "acme/dongguan/_gateway/edge7/status"
    sink = await started(MqttSink(sink_config(mosquitto), demo_site("edge7")))
    try:
        online = await watcher.until(1, status)
        assert [(m.payload, m.retain) for m in online] == [(b"online", False)]  # live delivery is not flagged retained
        # An abrupt end of the TCP connection (no DISCONNECT packet): the broker publishes the will.
        sink._connection._session.client.socket().shutdown(socket.SHUT_RDWR)
        after_death = await watcher.until(2, status)
        assert after_death[-1].payload == b"offline"
        # It reconnects by itself and says online again.
        assert [m.payload for m in await watcher.until(3, status)][-1] == b"online"
    finally:
        await sink.stop()
        watcher.close()
    late = Subscriber(mosquitto.port, [status], client_id="late")
    try:
        (retained,) = await late.until(1, status)
        assert (retained.payload, retained.retain) == (b"offline", True)  # a clean stop says offline too
    finally:
        late.close()


async def test_deliver_raises_sink_unavailable_while_the_broker_is_down_and_works_again_after_restart(mosquitto):
    sink = await started(MqttSink(sink_config(mosquitto, qos=1), demo_site()))
    assert not paho_threads("edgefab-"), "the sink runs paho on the event loop, without a network thread"
    first = [Sample("acme/dongguan/stamping/line1/press01/temp", 1.0, T0_NS)]
    await sink.deliver(first)

    mosquitto.kill()
    for _ in range(100):  # the event loop reads the connection's end within milliseconds
        if not sink.connected:
            break
        await asyncio.sleep(0.02)
    batch = [Sample("acme/dongguan/stamping/line1/press01/temp", float(i), T0_NS + i) for i in range(2, 50)]
    with pytest.raises(SinkUnavailable):
        await sink.deliver(batch)
    assert not sink.connected

    mosquitto.start()
    subscriber = Subscriber(mosquitto.port, ["acme/#"])
    try:
        assert await sink.wait_connected(15), sink.last_error
        await sink.deliver(batch)  # the buffer's replay of the unconfirmed batch
        received = await subscriber.until(48, "acme/dongguan/stamping/")
    finally:
        subscriber.close()
        await sink.stop()

    assert [json.loads(m.payload)["value"] for m in received] == [float(i) for i in range(2, 50)]
    assert sink.counters.disconnects >= 1 and sink.counters.connects >= 2
    assert sink.counters.samples_redelivered == 0  # refused before sending: not a duplicate for anyone
    assert await closed_sockets_to(mosquitto.port), "a connection to the broker was left open"


async def test_a_disconnect_with_messages_in_flight_is_not_a_delivery_and_the_replay_is_counted(mosquitto):
    sink = await started(MqttSink(sink_config(mosquitto, qos=1), demo_site()))
    samples = [Sample("acme/dongguan/stamping/line1/press01/temp", float(i), T0_NS + i) for i in range(3000)]
    try:
        delivery = asyncio.create_task(sink.deliver(samples))
        await asyncio.sleep(0)  # the delivery starts publishing (it yields every few hundred messages)
        mosquitto.kill()
        with pytest.raises(SinkUnavailable):
            await delivery
        assert sink.counters.messages_failed > 0
        assert sink.counters.samples_delivered == 0

        mosquitto.start()
        assert await sink.wait_connected(15), sink.last_error
        await sink.deliver(samples)  # what the buffer replays
        assert sink.counters.samples_redelivered == len(samples)
        assert sink.counters.samples_delivered == len(samples)
    finally:
        await sink.stop()


async def test_a_loss_that_a_delivery_meets_first_is_waited_out_not_reported_as_connected_or_failed(mosquitto):
    """The broker dies while the event loop is busy, so the first to meet the closed connection is a
    delivery (its publish, write or PUBACK wait), not the socket's read. The delivery fails, and
    wait_connected must then wait for the new connection, not return the old connection's stale
    readiness (True) nor a disconnect it had not yet processed (False)."""
    sink = await started(MqttSink(sink_config(mosquitto, qos=1), demo_site()))
    sample = [Sample("acme/dongguan/stamping/line1/press01/temp", 1.0, T0_NS)]
    try:
        mosquitto.kill()
        time.sleep(0.5)  # blocks the event loop: the connection is closed, the loop has not read it yet
        assert sink.connected
        with pytest.raises(SinkUnavailable):
            await sink.deliver(sample)

        mosquitto.start()
        assert await sink.wait_connected(10), sink.last_error
        assert sink.counters.disconnects == 1 and sink.counters.connects == 2
        await sink.deliver(sample)
        assert sink.counters.samples_delivered == 1
    finally:
        await sink.stop()


async def test_qos0_delivers_without_waiting_for_acknowledgements(mosquitto, subscriber):
    sink = await started(MqttSink(sink_config(mosquitto, qos=0, format="uns-json"), demo_site()))
    try:
        await sink.deliver([Sample("acme/dongguan/stamping/line1/press01/temp", 5.5, T0_NS)])
        (message,) = [m for m in await subscriber.until(1, "acme/dongguan/stamping/")]
    finally:
        await sink.stop()
    assert message.qos == 0
    assert json.loads(message.payload)["value"] == 5.5


async def test_start_does_not_block_when_no_broker_listens_and_deliver_says_why():
    from tests.servers import free_port

    sink = MqttSink(MqttSinkConfig(url=f"mqtt://127.0.0.1:{free_port()}"), demo_site())
    await asyncio.wait_for(sink.start(), 1.0)
    try:
        await asyncio.sleep(0.3)
        with pytest.raises(SinkUnavailable, match="not connected"):
            await sink.deliver([Sample("acme/dongguan/stamping/line1/press01/temp", 1.0, T0_NS)])
        assert "refused" in sink.last_error
    finally:
        await sink.stop()
    assert not paho_threads("edgefab-")


async def test_a_broker_that_stops_answering_without_closing_the_connection_is_found_by_the_keepalive(
    mosquitto, monkeypatch
):
    """A half-open connection (a cable or Wi-Fi gone, a hung broker) sends no FIN or RST: only the
    keepalive ping notices it. Here the broker is frozen (SIGSTOP) and the keepalive shortened to 1 s."""
    monkeypatch.setattr(mqtt_connection, "KEEPALIVE_S", 1)
    sink = await started(MqttSink(sink_config(mosquitto, qos=1), demo_site()))
    assert mosquitto.proc is not None
    mosquitto.proc.send_signal(signal.SIGSTOP)
    try:
        for _ in range(100):
            if not sink.connected:
                break
            await asyncio.sleep(0.1)
        assert not sink.connected, "still connected 10 s after the broker stopped answering"
        assert sink.last_error == f"connection lost: {mqtt_connection.NO_PING_ANSWER}"
        with pytest.raises(SinkUnavailable):
            await sink.deliver([Sample("acme/dongguan/stamping/line1/press01/temp", 1.0, T0_NS)])
    finally:
        mosquitto.proc.send_signal(signal.SIGCONT)
        await sink.stop()
