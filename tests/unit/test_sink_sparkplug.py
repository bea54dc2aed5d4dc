"""Sparkplug B edge node rules, checked by decoding with Eclipse Tahu's own generated
protobuf classes (PyPI `sparkplug-b-packets`, which ships Tahu's `sparkplug_b_pb2`),
not with edgefab's encoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sparkplub_b_packets.core import sparkplug_b_pb2 as tahu

from edge_config.schema import (
    Device,
    Gateway,
    ModbusTag,
    ModbusTcpConnection,
    OpcUaConnection,
    OpcUaTag,
    Site,
    SiteConfig,
)
from gateway.sample import Quality, Sample, SampleBlock, SampleChain
from gateway.sinks.sparkplug import SparkplugNode, declared_datatype

PRESS = "acme/dongguan/stamping/line1/press01"
CNC = "acme/dongguan/machining/line2/cnc02"
T0_MS = 1_764_157_080_123
T0_NS = T0_MS * 1_000_000


def site() -> SiteConfig:
    return SiteConfig(
        site=Site(enterprise="acme", site="dongguan"),
        gateway=Gateway(name="edge1"),
        devices=[
            Device(
                name="press01",
                area="stamping",
                line="line1",
                protocol="modbus",
                connection=ModbusTcpConnection(host="127.0.0.1"),
                tags={
                    "state": ModbusTag(address="hr40001", map={0: "stopped", 1: "running"}),
                    "parts": ModbusTag(address="hr40002", type="uint32"),
                    "temp": ModbusTag(address="hr40004", type="int16", scale=0.1, unit="degC"),
                    "offset_mm": ModbusTag(address="hr40005", type="int16"),
                    "running": ModbusTag(address="co00001", type="bool"),
                },
            ),
            Device(
                name="cnc02",
                area="machining",
                line="line2",
                protocol="opcua",
                connection=OpcUaConnection(url="opc.tcp://127.0.0.1:4840"),
                tags={"program": OpcUaTag(node="ns=2;s=Program")},
            ),
        ],
    )


def decode(raw: bytes) -> tahu.Payload:
    return tahu.Payload.FromString(raw)


def metrics_by_name(payload: tahu.Payload) -> dict[str, tahu.Payload.Metric]:
    return {m.name: m for m in payload.metrics}


def test_topics_use_the_site_as_group_the_gateway_as_edge_node_and_the_machine_as_device():
    node = SparkplugNode(site())
    assert node.topic("NBIRTH") == "spBv1.0/dongguan/NBIRTH/edge1"
    assert node.topic("DDATA", "press01") == "spBv1.0/dongguan/DDATA/edge1/press01"
    assert node.ncmd_topic == "spBv1.0/dongguan/NCMD/edge1"


def test_datatypes_follow_the_tag_configuration():
    press = site().devices[0].tags
    assert {name: declared_datatype(tag) for name, tag in press.items()} == {
        "state": tahu.String,  # enum map -> the state name
        "parts": tahu.UInt32,
        "temp": tahu.Double,  # scaled -> a real number whatever the register type
        "offset_mm": tahu.Int16,
        "running": tahu.Boolean,
    }
    assert declared_datatype(site().devices[1].tags["program"]) is None  # OPC UA: the first value tells


def test_the_will_and_the_birth_carry_the_same_bdseq_and_each_connection_advances_it():
    node = SparkplugNode(site())
    for expected_bdseq in (0, 1, 2):
        will = node.new_session()
        births = node.births(T0_MS)
        assert will.topic == "spBv1.0/dongguan/NDEATH/edge1" and will.qos == 1 and not will.retain
        ndeath, nbirth = decode(will.payload), decode(births[0].payload)
        assert metrics_by_name(ndeath)["bdSeq"].long_value == expected_bdseq
        assert metrics_by_name(ndeath)["bdSeq"].datatype == tahu.Int64
        assert metrics_by_name(nbirth)["bdSeq"].long_value == expected_bdseq
        assert nbirth.seq == 0
        rebirth = metrics_by_name(nbirth)["Node Control/Rebirth"]
        assert (rebirth.datatype, rebirth.boolean_value) == (tahu.Boolean, False)


def test_dbirth_declares_every_configured_metric_with_alias_datatype_unit_and_null_until_a_value_is_known():
    node = SparkplugNode(site())
    node.new_session()
    _nbirth, dbirth = node.births(T0_MS)  # cnc02 has no declared metric yet: no DBIRTH for it
    assert dbirth.topic == "spBv1.0/dongguan/DBIRTH/edge1/press01"
    payload = decode(dbirth.payload)
    assert payload.seq == 1
    metrics = metrics_by_name(payload)
    assert list(metrics) == ["state", "parts", "temp", "offset_mm", "running"]
    assert all(m.is_null for m in metrics.values())
    assert len({m.alias for m in metrics.values()}) == 5
    assert metrics["temp"].datatype == tahu.Double
    assert list(metrics["temp"].properties.keys) == ["engUnit"]
    assert metrics["temp"].properties.values[0].string_value == "degC"


def test_ddata_carries_aliases_and_typed_values_and_seq_counts_every_message():
    node = SparkplugNode(site())
    node.new_session()
    births = node.births(T0_MS)
    aliases = {m.name: m.alias for m in decode(births[1].payload).metrics}
    out = node.data(
        [
            Sample(f"{PRESS}/temp", 71.5, T0_NS + 5_000_000),
            Sample(f"{PRESS}/offset_mm", -3, T0_NS),
            Sample(f"{PRESS}/state", "running", T0_NS),
            Sample(f"{PRESS}/running", True, T0_NS),
            Sample(f"{PRESS}/parts", 4_000_000_000, T0_NS),
            Sample(f"{PRESS}/parts", None, T0_NS + 1, Quality.BAD, "timeout"),
        ],
        T0_MS,
    )
    assert [o.topic for o in out] == ["spBv1.0/dongguan/DDATA/edge1/press01"]
    ddata = decode(out[0].payload)
    assert ddata.seq == 2
    assert all(not m.name for m in ddata.metrics)  # aliases only after the birth
    temp, offset, state, running, parts, bad = ddata.metrics
    assert (temp.alias, temp.datatype, temp.double_value, temp.timestamp) == (
        aliases["temp"],
        tahu.Double,
        71.5,
        T0_MS + 5,
    )
    assert (offset.datatype, offset.int_value) == (tahu.Int16, 2**32 - 3)  # two's complement, as Tahu writes it
    assert (state.datatype, state.string_value) == (tahu.String, "running")
    assert (running.datatype, running.boolean_value) == (tahu.Boolean, True)
    assert (parts.datatype, parts.int_value) == (tahu.UInt32, 4_000_000_000)
    assert bad.is_null and list(bad.properties.keys) == ["Quality"] and bad.properties.values[0].int_value == 0


def test_a_tag_the_configuration_does_not_declare_gets_a_new_dbirth_before_its_first_ddata():
    node = SparkplugNode(site())
    node.new_session()
    node.births(T0_MS)
    out = node.data([Sample(f"{CNC}/program", "O1234", T0_NS), Sample(f"{PRESS}/rate_per_min", 41.0, T0_NS)], T0_MS)
    assert [o.topic.split("/", 2)[2] for o in out] == [
        "DBIRTH/edge1/cnc02",
        "DDATA/edge1/cnc02",
        "DBIRTH/edge1/press01",
        "DDATA/edge1/press01",
    ]
    cnc_birth = metrics_by_name(decode(out[0].payload))
    assert (cnc_birth["program"].datatype, cnc_birth["program"].string_value) == (tahu.String, "O1234")
    assert "rate_per_min" in metrics_by_name(decode(out[2].payload))
    assert [decode(o.payload).seq for o in out] == [2, 3, 4, 5]
    # the next batch needs no birth
    assert [o.topic.split("/")[2] for o in node.data([Sample(f"{CNC}/program", "O9", T0_NS)], T0_MS)] == ["DDATA"]


def test_seq_wraps_from_255_to_0():
    node = SparkplugNode(site())
    node.new_session()
    node.births(T0_MS)
    seqs = [decode(node.data([Sample(f"{PRESS}/parts", i, T0_NS)], T0_MS)[0].payload).seq for i in range(300)]
    assert seqs[:3] == [2, 3, 4]
    assert seqs[253:256] == [255, 0, 1]


def test_a_rebirth_request_is_recognised_by_name_or_alias_and_only_when_true():
    node = SparkplugNode(site())
    births = node.births(T0_MS)
    rebirth_alias = metrics_by_name(decode(births[0].payload))["Node Control/Rebirth"].alias

    def ncmd(name: str | None, value: bool, alias: int | None = None) -> bytes:
        payload = tahu.Payload(timestamp=T0_MS)
        metric = payload.metrics.add(datatype=tahu.Boolean, boolean_value=value)
        if name:
            metric.name = name
        if alias is not None:
            metric.alias = alias
        return payload.SerializeToString()

    assert node.is_rebirth_request(ncmd("Node Control/Rebirth", True))
    assert node.is_rebirth_request(ncmd(None, True, alias=rebirth_alias))
    assert not node.is_rebirth_request(ncmd("Node Control/Rebirth", False))
    assert not node.is_rebirth_request(ncmd("Node Control/Reboot", True))
    assert not node.is_rebirth_request(b"\xff\xfe not protobuf")


def test_a_rebirth_restarts_seq_at_zero_keeps_bdseq_and_republishes_last_values():
    node = SparkplugNode(site())
    node.new_session()
    node.births(T0_MS)
    node.data([Sample(f"{PRESS}/temp", 70.25, T0_NS)], T0_MS)
    nbirth, dbirth = node.births(T0_MS + 1000)
    assert decode(nbirth.payload).seq == 0
    assert metrics_by_name(decode(nbirth.payload))["bdSeq"].long_value == 0
    temp = metrics_by_name(decode(dbirth.payload))["temp"]
    assert (temp.is_null, temp.double_value, temp.timestamp) == (False, 70.25, T0_MS)


def test_a_graceful_death_sends_ddeath_per_born_device_then_ndeath():
    node = SparkplugNode(site())
    node.new_session()
    node.births(T0_MS)
    out = node.deaths(T0_MS)
    assert [o.topic for o in out] == ["spBv1.0/dongguan/DDEATH/edge1/press01", "spBv1.0/dongguan/NDEATH/edge1"]
    assert decode(out[0].payload).seq == 2  # NBIRTH 0, DBIRTH 1
    assert metrics_by_name(decode(out[1].payload))["bdSeq"].long_value == 0


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_any_64_bit_integer_round_trips_through_the_wire_as_tahu_reads_it(value: int):
    node = SparkplugNode(site())
    node.births(T0_MS)
    (_, ddata) = node.data([Sample(f"{CNC}/counter", value, T0_NS)], T0_MS)
    metric = decode(ddata.payload).metrics[0]
    assert metric.datatype == tahu.Int64
    signed = metric.long_value - 2**64 if metric.long_value >= 2**63 else metric.long_value
    assert signed == (value if value < 2**63 else value - 2**64)


@pytest.mark.parametrize("value", [float("nan"), 1e308, -0.0])
def test_doubles_keep_their_exact_value(value: float):
    node = SparkplugNode(site())
    node.births(T0_MS)
    out = node.data([Sample(f"{PRESS}/temp", value, T0_NS)], T0_MS)
    decoded = decode(out[-1].payload).metrics[0].double_value
    assert repr(decoded) == repr(value)


PRESS_TAGS = ["state", "parts", "temp", "offset_mm", "running", "undeclared"]
spb_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**31), 2**31), st.floats(), st.text(max_size=3))
spb_blocks = st.builds(
    lambda names, values, ts: SampleBlock(tuple(f"{PRESS}/{n}" for n in names), values[: len(names)], T0_NS + ts),
    names=st.lists(st.sampled_from(PRESS_TAGS), min_size=1, max_size=5),
    values=st.lists(spb_values, min_size=5, max_size=5),
    ts=st.integers(0, 3_000_000),
)
spb_samples = st.lists(
    st.builds(Sample, st.sampled_from([f"{PRESS}/{n}" for n in PRESS_TAGS] + [f"{CNC}/program"]), spb_values,
              st.just(T0_NS), st.sampled_from(list(Quality))),
    max_size=3,
)  # fmt: skip


@given(st.lists(st.lists(st.one_of(spb_blocks, spb_samples), max_size=4), min_size=1, max_size=3))
def test_read_blocks_give_the_same_messages_as_the_same_samples_one_by_one(batches: list) -> None:
    """The column fast path changes the CPU, never a DBIRTH, a DDATA or the last values of a rebirth."""
    by_block, one_by_one = SparkplugNode(site()), SparkplugNode(site())
    for node in (by_block, one_by_one):
        node.new_session()
        node.births(T0_MS)
    for parts in batches:
        chain = SampleChain(parts)
        assert by_block.data(chain, T0_MS) == one_by_one.data(list(chain), T0_MS)
    assert by_block.births(T0_MS + 1) == one_by_one.births(T0_MS + 1)
