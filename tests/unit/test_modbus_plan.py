"""Request planning without a socket: worked register maps and properties of every plan."""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.modbus.address import Table
from connectors.modbus.plan import PlanError, ReadRequest, minimum_reads, plan_device, plan_reads
from edge_config.schema import ByteOrder, DataType, Device, ModbusTag


def tag(address: str, type: str = "uint16", **kwargs: object) -> ModbusTag:
    return ModbusTag(address=address, type=type, **kwargs)  # type: ignore[arg-type]


@functools.cache
def cached_tag(address: str, type: str = "uint16", poll: float | None = None) -> ModbusTag:
    """Tags are immutable; building thousands of pydantic models would dominate the property tests."""
    return tag(address, type, poll=poll)


def spans(reads: list[ReadRequest]) -> list[tuple[str, int, int]]:
    return [(r.table.value, r.offset, r.count) for r in reads]


def test_adjacent_registers_of_mixed_types_are_one_read() -> None:
    reads = plan_reads(
        {
            "state": tag("hr40001"),
            "parts": tag("hr40002", "uint32"),
            "temp": tag("hr40004", "float32"),
            "energy": tag("hr40006", "float64"),
        }
    )
    assert spans(reads) == [("hr", 0, 9)]
    assert [(s.name, s.index, s.count) for s in reads[0].slots] == [
        ("state", 0, 1),
        ("parts", 1, 2),
        ("temp", 3, 2),
        ("energy", 5, 4),
    ]
    assert reads[0].label == "hr:0..8"


def test_a_gap_splits_reads_unless_max_gap_allows_spanning_it() -> None:
    tags = {"a": tag("hr:0"), "b": tag("hr:5"), "c": tag("hr:20")}
    assert spans(plan_reads(tags)) == [("hr", 0, 1), ("hr", 5, 1), ("hr", 20, 1)]
    assert spans(plan_reads(tags, max_gap=4)) == [("hr", 0, 6), ("hr", 20, 1)]
    assert spans(plan_reads(tags, max_gap=14)) == [("hr", 0, 21)]


def test_tables_and_poll_intervals_never_share_a_read() -> None:
    reads = plan_reads(
        {
            "run": tag("co00001", "bool"),
            "door": tag("di10001", "bool"),
            "temp": tag("ir30001"),
            "speed": tag("hr40001"),
            "slow": tag("hr40002", poll=10),
        },
        poll_interval_s=1.0,
    )
    assert [(r.table, r.offset, r.poll_interval_s) for r in reads] == [
        (Table.COIL, 0, 1.0),
        (Table.DISCRETE_INPUT, 0, 1.0),
        (Table.INPUT_REGISTER, 0, 1.0),
        (Table.HOLDING_REGISTER, 0, 1.0),
        (Table.HOLDING_REGISTER, 1, 10.0),
    ]


def test_250_contiguous_registers_need_two_reads_at_the_protocol_limit() -> None:
    reads = plan_reads({f"r{i}": tag(f"hr:{i}") for i in range(250)})
    assert spans(reads) == [("hr", 0, 125), ("hr", 125, 125)]


def test_a_device_maximum_below_125_is_respected() -> None:
    reads = plan_reads({f"r{i}": tag(f"hr:{i}") for i in range(100)}, max_registers=32)
    assert spans(reads) == [("hr", 0, 32), ("hr", 32, 32), ("hr", 64, 32), ("hr", 96, 4)]


def test_a_32_bit_value_is_never_cut_across_two_reads() -> None:
    reads = plan_reads({f"v{i}": tag(f"hr:{2 * i}", "uint32") for i in range(63)})
    assert spans(reads) == [("hr", 0, 124), ("hr", 124, 2)]


def test_coils_are_planned_in_bits_up_to_2000() -> None:
    reads = plan_reads({f"c{i}": tag(f"co:{i}", "bool") for i in range(2100)})
    assert spans(reads) == [("co", 0, 2000), ("co", 2000, 100)]


def test_bits_of_one_register_share_the_register_and_the_read() -> None:
    reads = plan_reads({"alarm": tag("hr40010.0", "bool"), "door": tag("hr40010.3", "bool"), "n": tag("hr40011")})
    assert spans(reads) == [("hr", 9, 2)]
    assert [(s.name, s.index, s.bit) for s in reads[0].slots] == [("alarm", 0, 0), ("door", 0, 3), ("n", 1, None)]


def test_overlapping_tags_are_each_served_once_from_the_same_words() -> None:
    reads = plan_reads({"whole": tag("hr:0", "uint32"), "low": tag("hr:1")})
    assert spans(reads) == [("hr", 0, 2)]
    assert sorted(reads[0].tag_names) == ["low", "whole"]


def test_a_string_tag_occupies_its_length() -> None:
    reads = plan_reads({"recipe": tag("hr:10", "string", length=8), "after": tag("hr:18")})
    assert spans(reads) == [("hr", 10, 9)]


def test_a_tag_larger_than_the_device_limit_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="'recipe' needs 40 registers, more than the 32"):
        plan_reads({"recipe": tag("hr:0", "string", length=40)}, max_registers=32)


def test_a_tag_past_the_end_of_the_table_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="runs past the end"):
        plan_reads({"x": tag("hr:65535", "uint32")})


def test_the_tag_byte_order_overrides_the_device_byte_order() -> None:
    reads = plan_reads({"a": tag("hr:0", "uint32"), "b": tag("hr:2", "uint32", byte_order="CDAB")}, byte_order="DCBA")  # type: ignore[arg-type]
    assert [s.byte_order for s in reads[0].slots] == [ByteOrder.DCBA, ByteOrder.CDAB]


def test_plan_device_uses_the_device_unit_limits_and_poll() -> None:
    device = Device(
        name="press01",
        area="stamping",
        line="line1",
        protocol="modbus",
        connection={"host": "127.0.0.1", "unit": 7},
        poll="250ms",
        max_gap=3,
        max_registers=10,
        tags={f"r{i}": {"address": f"hr:{i * 2}"} for i in range(10)},
    )
    reads = plan_device(device)
    assert {r.unit for r in reads} == {7}
    assert {r.poll_interval_s for r in reads} == {0.25}
    assert spans(reads) == [("hr", 0, 9), ("hr", 10, 9)]


# --- properties -------------------------------------------------------------------------

TYPES = [DataType.UINT16, DataType.INT32, DataType.FLOAT32, DataType.FLOAT64, DataType.BOOL]


@st.composite
def register_maps(draw: st.DrawFn, contiguous: bool = False) -> dict[str, ModbusTag]:
    """Non-overlapping tags in one or two tables, with random gaps (none if contiguous)."""
    tags: dict[str, ModbusTag] = {}
    for table in draw(st.sets(st.sampled_from(["hr", "ir", "co"]), min_size=1, max_size=2)):
        offset = draw(st.integers(0, 1000))
        for i in range(draw(st.integers(1, 60))):
            data_type = DataType.BOOL if table == "co" else draw(st.sampled_from(TYPES))
            poll = draw(st.sampled_from([None, None, 5.0]))
            tags[f"{table}{i}"] = cached_tag(f"{table}:{offset}", data_type.value, poll)
            offset += tags[f"{table}{i}"].register_count + (0 if contiguous else draw(st.integers(0, 12)))
    return tags


def _dp_minimum(tags: dict[str, ModbusTag], limit_for: dict[str, int], max_gap: int) -> int:
    """Fewest reads by exhaustive dynamic programming over cuts of each sorted group."""
    groups: dict[tuple[float | None, str], list[tuple[int, int]]] = {}
    for t in tags.values():
        a = t.parsed_address
        groups.setdefault((t.poll, a.table.value), []).append((a.offset, a.offset + t.register_count))
    total = 0
    for (_, table), items in groups.items():
        items.sort()
        limit = limit_for[table]
        best = [0] + [10**9] * len(items)
        for j in range(1, len(items) + 1):
            for i in range(j - 1, -1, -1):
                run = items[i:j]
                gaps_ok = all(b[0] - a[1] <= max_gap for a, b in itertools.pairwise(run))
                if run[-1][1] - run[0][0] > limit or not gaps_ok:
                    break
                best[j] = min(best[j], best[i] + 1)
        total += best[-1]
    return total


@settings(max_examples=60, deadline=None)
@given(
    tags=register_maps(), max_gap=st.integers(0, 20), max_registers=st.integers(4, 125), max_bits=st.integers(1, 2000)
)
def test_every_tag_is_served_exactly_once_and_no_read_exceeds_its_limit(
    tags: dict[str, ModbusTag], max_gap: int, max_registers: int, max_bits: int
) -> None:
    reads = plan_reads(tags, max_gap=max_gap, max_registers=max_registers, max_bits=max_bits)
    served = [name for r in reads for name in r.tag_names]
    assert sorted(served) == sorted(tags)
    for read in reads:
        assert read.count <= (max_bits if read.table.is_bit_table else max_registers)
        assert read.offset >= 0 and read.end <= 65536
        for slot in read.slots:
            tag_ = tags[slot.name]
            assert tag_.parsed_address.table == read.table
            assert read.offset + slot.index == tag_.parsed_address.offset
            assert slot.index + slot.count <= read.count
            assert (tag_.poll or 1.0) == read.poll_interval_s


@settings(max_examples=60, deadline=None)
@given(tags=register_maps(), max_gap=st.integers(0, 20), max_registers=st.integers(4, 125))
def test_the_plan_uses_as_few_reads_as_an_exhaustive_search(
    tags: dict[str, ModbusTag], max_gap: int, max_registers: int
) -> None:
    reads = plan_reads(tags, max_gap=max_gap, max_registers=max_registers)
    limits = {"hr": max_registers, "ir": max_registers, "co": 2000}
    assert len(reads) == _dp_minimum(tags, limits, max_gap)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.dictionaries(st.sampled_from(["hr", "ir", "co"]), st.integers(1, 700), min_size=1),
    start=st.integers(0, 60000),
)
def test_a_contiguous_map_of_single_registers_costs_the_lower_bound(sizes: dict[str, int], start: int) -> None:
    tags = {
        f"{table}{i}": cached_tag(f"{table}:{start + i}", "bool" if table == "co" else "uint16")
        for table, size in sizes.items()
        for i in range(min(size, 65536 - start))
    }
    expected = sum(
        minimum_reads([1] * min(size, 65536 - start), 2000 if table == "co" else 125) for table, size in sizes.items()
    )
    assert len(plan_reads(tags, max_gap=0)) == expected


@settings(max_examples=40, deadline=None)
@given(tags=register_maps(), small_gap=st.integers(0, 10), extra=st.integers(1, 10))
def test_allowing_a_larger_gap_never_adds_reads(tags: dict[str, ModbusTag], small_gap: int, extra: int) -> None:
    assert len(plan_reads(tags, max_gap=small_gap + extra)) <= len(plan_reads(tags, max_gap=small_gap))
