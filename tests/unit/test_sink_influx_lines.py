"""Samples to InfluxDB line protocol: the documented mapping, worked examples."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_config.schema import Device, Gateway, ModbusTag, ModbusTcpConnection, Site, SiteConfig
from gateway.sample import Quality, Sample, SampleBlock, SampleChain
from gateway.sinks.influx_lines import FieldKind, LineEncoder, field_kinds

PRESS = "acme/dongguan/stamping/line1/press01"
SERIES = "press01,area=stamping,enterprise=acme,line=line1,machine=press01,site=dongguan"


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
                    "temp": ModbusTag(address="hr40004", type="int16", scale=0.1),
                    "flow": ModbusTag(address="hr40005", type="float32"),
                    "door": ModbusTag(address="hr40006.3"),
                    "running": ModbusTag(address="co00001", type="bool"),
                    "recipe": ModbusTag(address="hr40010", type="string", length=4),
                },
            )
        ],
    )


def test_field_types_are_fixed_by_the_tag_configuration():
    assert field_kinds(site()) == {
        f"{PRESS}/state": FieldKind.STRING,
        f"{PRESS}/parts": FieldKind.INTEGER,
        f"{PRESS}/temp": FieldKind.FLOAT,  # scaled
        f"{PRESS}/flow": FieldKind.FLOAT,
        f"{PRESS}/door": FieldKind.BOOLEAN,  # a bit of a register
        f"{PRESS}/running": FieldKind.BOOLEAN,
        f"{PRESS}/recipe": FieldKind.STRING,
    }


def test_samples_of_one_machine_at_one_time_share_a_line_with_typed_fields():
    encoder = LineEncoder(field_kinds(site()))
    lines, skipped = encoder.lines(
        [
            Sample(f"{PRESS}/parts", 1234, 1_000),
            Sample(f"{PRESS}/temp", 71, 1_000),  # an int value of a float tag stays a float
            Sample(f"{PRESS}/running", True, 1_000),
            Sample(f"{PRESS}/state", "running", 1_000),
            Sample(f"{PRESS}/parts", 1235, 2_000),
        ]
    )
    assert lines == [
        f'{SERIES} parts=1234i,temp=71.0,running=true,state="running" 1000',
        f"{SERIES} parts=1235i 2000",
    ]
    assert skipped == 0


def test_a_quality_other_than_good_is_a_tag_and_a_missing_value_writes_nothing():
    lines, skipped = LineEncoder().lines(
        [
            Sample(f"{PRESS}/temp", 70.5, 5, Quality.UNCERTAIN, "drift"),
            Sample(f"{PRESS}/temp", None, 6, Quality.BAD, "timeout"),
            Sample(f"{PRESS}/temp", float("nan"), 7),
        ]
    )
    assert lines == [
        "press01,area=stamping,enterprise=acme,line=line1,machine=press01,quality=uncertain,site=dongguan temp=70.5 5"
    ]  # tag keys sorted, as InfluxDB keeps them
    assert skipped == 2


def test_tags_the_configuration_does_not_know_follow_their_python_type():
    lines, _ = LineEncoder().lines(
        [Sample(f"{PRESS}/rate", 3, 1), Sample(f"{PRESS}/ok", False, 1), Sample(f"{PRESS}/note", 'say "hi"\\', 1)]
    )
    assert lines == [f'{SERIES} rate=3.0,ok=false,note="say \\"hi\\"\\\\" 1']


def test_names_with_spaces_commas_and_equals_signs_are_escaped():
    lines, _ = LineEncoder().lines([Sample("acme/dongguan/stamping/line1/press 01/a,b=c", 1.0, 1)])
    assert lines == [
        "press\\ 01,area=stamping,enterprise=acme,line=line1,machine=press\\ 01,site=dongguan a\\,b\\=c=1.0 1"
    ]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_is_written_so_that_it_reads_back_exactly(value: float):
    (line,), _ = LineEncoder().lines([Sample(f"{PRESS}/x", value, 1)])
    text = line.split(" ")[1].removeprefix("x=")
    assert float(text) == value


TAG_NAMES = ["state", "parts", "temp", "flow", "door", "running", "recipe", "unconfigured"]
line_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=4))
blocks = st.builds(
    lambda machine, names, values, ts: SampleBlock(
        tuple(f"acme/dongguan/stamping/line1/{machine}/{n}" for n in names), values[: len(names)], ts
    ),
    machine=st.sampled_from(["press01", "press 2"]),
    names=st.lists(st.sampled_from(TAG_NAMES), min_size=1, max_size=5),
    values=st.lists(line_values, min_size=5, max_size=5),
    ts=st.integers(0, 3),
)
number_blocks = st.builds(  # the C-level paths: all-integer and all-float tags with plain numbers
    lambda names, ints, ts: SampleBlock(tuple(f"{PRESS}/{n}" for n in names), ints[: len(names)], ts),
    names=st.lists(st.sampled_from(["parts", "temp", "flow"]), min_size=1, max_size=3, unique=True),
    ints=st.lists(
        st.one_of(st.integers(0, 10**6), st.floats(allow_nan=False, allow_infinity=False)), min_size=3, max_size=3
    ),
    ts=st.integers(0, 3),
)
single_samples = st.lists(
    st.builds(Sample, st.sampled_from([f"{PRESS}/{n}" for n in TAG_NAMES]), line_values, st.integers(0, 3),
              st.sampled_from(list(Quality))),
    max_size=4,
)  # fmt: skip


@given(st.lists(st.one_of(blocks, number_blocks, single_samples), max_size=5))
def test_read_blocks_write_exactly_the_lines_of_the_same_samples_one_by_one(parts: list) -> None:
    """The column fast path changes the CPU, never a line, a field type or the skipped count."""
    chain = SampleChain(parts)
    encoder = LineEncoder(field_kinds(site()))
    assert encoder.lines(chain) == LineEncoder(field_kinds(site())).lines(list(chain))
    assert encoder.lines(chain) == LineEncoder(field_kinds(site())).lines(list(chain)), "again, from cached layouts"
