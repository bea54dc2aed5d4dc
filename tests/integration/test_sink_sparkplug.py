"""Sparkplug B over a real Mosquitto, every payload decoded with Eclipse Tahu's generated
classes (PyPI `sparkplug-b-packets`), independent of edgefab's encoder."""

from __future__ import annotations

import socket

from sparkplub_b_packets.core import sparkplug_b_pb2 as tahu

from edge_config.schema import MqttSink as MqttSinkConfig
from gateway.sample import Sample
from gateway.sinks.mqtt import MqttSink
from tests.integration.test_sink_mqtt import T0_NS, Subscriber, demo_site, started

PRESS = "acme/dongguan/stamping/line1/press01"
NODE = "spBv1.0/dongguan/{}/edge1"


def decoded(messages) -> list[tuple[str, tahu.Payload]]:
    return [(m.topic, tahu.Payload.FromString(m.payload)) for m in messages]


def bdseq(payload: tahu.Payload) -> int:
    return next(m.long_value for m in payload.metrics if m.name == "bdSeq")


async def test_a_session_births_publishes_ddata_dies_by_will_and_is_reborn_with_the_next_bdseq(mosquitto):
    host = Subscriber(mosquitto.port, ["spBv1.0/#"], client_id="scada-host")
    sink = await started(MqttSink(MqttSinkConfig(url=mosquitto.url, format="sparkplug-b"), demo_site()))
    try:
        births = decoded(await host.until(3))
        assert [topic for topic, _ in births] == [
            NODE.format("NBIRTH"),
            NODE.format("DBIRTH") + "/press01",
            NODE.format("DBIRTH") + "/cnc02",
        ]
        assert [p.seq for _, p in births] == [0, 1, 2]
        assert bdseq(births[0][1]) == 0
        press_aliases = {m.name: (m.alias, m.datatype) for m in births[1][1].metrics}
        assert press_aliases["temp"][1] == tahu.Double and press_aliases["parts"][1] == tahu.UInt32

        await sink.deliver(
            [
                Sample(f"{PRESS}/temp", 71.5, T0_NS),
                Sample(f"{PRESS}/parts", 1234, T0_NS),
                Sample(f"{PRESS}/temp", 72.0, T0_NS + 10**6),
            ]
        )
        ((topic, ddata),) = decoded((await host.until(4))[3:])
        assert topic == NODE.format("DDATA") + "/press01"
        assert ddata.seq == 3
        assert [(m.alias, m.datatype) for m in ddata.metrics] == [
            press_aliases["temp"],
            press_aliases["parts"],
            press_aliases["temp"],
        ]
        assert [m.double_value for m in ddata.metrics if m.datatype == tahu.Double] == [71.5, 72.0]
        assert [m.int_value for m in ddata.metrics if m.datatype == tahu.UInt32] == [1234]

        # The TCP connection ends without a DISCONNECT: the broker publishes NDEATH (the will).
        sink._connection._session.client.socket().shutdown(socket.SHUT_RDWR)
        after = decoded((await host.until(8))[4:])
        assert after[0][0] == NODE.format("NDEATH")
        assert bdseq(after[0][1]) == 0  # the will of the first session
        assert after[1][0] == NODE.format("NBIRTH")
        assert (bdseq(after[1][1]), after[1][1].seq) == (1, 0)
        # the DBIRTH after reconnecting carries the last known values
        reborn_press = {m.name: m for m in after[2][1].metrics}
        assert reborn_press["temp"].double_value == 72.0 and not reborn_press["temp"].is_null
    finally:
        await sink.stop()
        host.close()


async def test_an_ncmd_rebirth_republishes_nbirth_and_every_dbirth_with_seq_restarting_at_zero(mosquitto):
    host = Subscriber(mosquitto.port, ["spBv1.0/#"], client_id="scada-host")
    sink = await started(MqttSink(MqttSinkConfig(url=mosquitto.url, format="sparkplug-b"), demo_site()))
    try:
        await host.until(3)
        await sink.deliver([Sample(f"{PRESS}/parts", 7, T0_NS)])
        await host.until(4)

        command = tahu.Payload(timestamp=T0_NS // 10**6)
        command.metrics.add(name="Node Control/Rebirth", datatype=tahu.Boolean, boolean_value=True)
        host.client.publish(NODE.format("NCMD"), command.SerializeToString(), qos=1).wait_for_publish(5)

        rebirth = decoded((await host.until(8, "spBv1.0/dongguan/"))[4:])
        # our own NCMD is echoed to the host's subscription too; keep what the edge node sent
        rebirth = [(t, p) for t, p in rebirth if "/NCMD/" not in t]
        assert [t for t, _ in rebirth[:3]] == [
            NODE.format("NBIRTH"),
            NODE.format("DBIRTH") + "/press01",
            NODE.format("DBIRTH") + "/cnc02",
        ]
        assert [p.seq for _, p in rebirth[:3]] == [0, 1, 2]
        assert bdseq(rebirth[0][1]) == 0  # same session, same bdSeq
        assert {m.name: m.int_value for m in rebirth[1][1].metrics}["parts"] == 7

        await sink.deliver([Sample(f"{PRESS}/parts", 8, T0_NS + 1)])
        last = decoded((await host.until(9, "spBv1.0/dongguan/"))[-1:])
        assert last[0][0] == NODE.format("DDATA") + "/press01" and last[0][1].seq == 3
    finally:
        await sink.stop()
        host.close()


async def test_a_clean_stop_sends_ddeath_for_each_device_and_ndeath(mosquitto):
    host = Subscriber(mosquitto.port, ["spBv1.0/#"], client_id="scada-host")
    sink = await started(MqttSink(MqttSinkConfig(url=mosquitto.url, format="sparkplug-b"), demo_site()))
    try:
        await host.until(3)
    finally:
        await sink.stop()
    goodbye = decoded((await host.until(6))[3:])
    host.close()
    assert [t for t, _ in goodbye] == [
        NODE.format("DDEATH") + "/press01",
        NODE.format("DDEATH") + "/cnc02",
        NODE.format("NDEATH"),
    ]
    assert [p.seq for _, p in goodbye[:2]] == [3, 4]
    assert bdseq(goodbye[2][1]) == 0
