"""The buffer's stored segment format: compact for a read cycle, and files written before still read."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.buffer import Buffer, SegmentEncoder, decode_segment, encode_segment
from gateway.sample import Quality, Sample, SampleBlock

MACHINE = "acme/dg/press/line1/press01/"


def test_a_read_cycle_whose_tag_ids_run_on_stores_the_first_id_only() -> None:
    samples = [Sample(MACHINE + f"r{i}", i * 10, 5) for i in range(3)]
    ids = {s.tag: 7 + i for i, s in enumerate(samples)}
    payload = encode_segment(samples, ids)
    assert json.loads(payload) == {"j": 7, "v": [0, 10, 20], "t": 5, "q": 0}
    assert decode_segment(payload, {i: t for t, i in ids.items()}) == samples


def test_ids_with_a_gap_or_out_of_order_are_stored_one_by_one() -> None:
    samples = [Sample(MACHINE + "a", 1, 5), Sample(MACHINE + "b", 2, 5)]
    assert json.loads(encode_segment(samples, {MACHINE + "a": 3, MACHINE + "b": 5}))["i"] == [3, 5]
    assert json.loads(encode_segment(samples, {MACHINE + "a": 4, MACHINE + "b": 3}))["i"] == [4, 3]
    # the exact bytes on disk: compact JSON, keys in this order (files written before read back the same)
    assert encode_segment(samples, {MACHINE + "a": 3, MACHINE + "b": 5}) == b'{"i":[3,5],"v":[1,2],"t":5,"q":0}'
    assert encode_segment(samples, {MACHINE + "a": 3, MACHINE + "b": 4}) == b'{"j":3,"v":[1,2],"t":5,"q":0}'


def test_a_segment_written_in_the_list_form_still_decodes() -> None:
    """Buffers written before the compact form existed replay unchanged after an upgrade."""
    payload = b'{"i":[2,1],"v":[1.5,null],"t":[10,11],"q":[0,2],"r":["","timeout"]}'
    assert decode_segment(payload, {1: MACHINE + "a", 2: MACHINE + "b"}) == [
        Sample(MACHINE + "b", 1.5, 10),
        Sample(MACHINE + "a", None, 11, Quality.BAD, "timeout"),
    ]


def test_the_buffer_numbers_new_tags_in_read_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    buffer = Buffer(tmp_path / "b.db", ["mqtt"])
    cycle = [Sample(MACHINE + f"r{i:03d}", i, 5) for i in range(50)]
    buffer.append(cycle)
    buffer.append(cycle)
    (payload,) = {row[0] for row in buffer._db.execute("SELECT payload FROM segment")}
    assert "j" in json.loads(payload)
    batch = buffer.read_after("mqtt", 1000)
    assert batch is not None and batch.samples == cycle + cycle
    buffer.close()


values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64), st.floats(), st.text(max_size=5))


@settings(max_examples=200)
@given(
    rows=st.lists(st.tuples(values, st.sampled_from(list(Quality)), st.text(max_size=3)), min_size=1, max_size=20),
    first_id=st.integers(1, 10**6),
    shuffle=st.booleans(),
)
def test_encoding_round_trips_whatever_the_id_order(
    rows: list[tuple[object, Quality, str]], first_id: int, shuffle: bool
) -> None:
    samples = [Sample(MACHINE + f"t{i}", v, 100 + i % 2, q, r) for i, (v, q, r) in enumerate(rows)]  # type: ignore[arg-type]
    ids = {s.tag: first_id + (len(samples) - i if shuffle else i) for i, s in enumerate(samples)}
    decoded = decode_segment(encode_segment(samples, ids), {i: t for t, i in ids.items()})
    for a, b in zip(decoded, samples, strict=True):
        assert (a.tag, a.ts_ns, a.quality, a.reason) == (b.tag, b.ts_ns, b.quality, b.reason)
        assert type(a.value) is type(b.value)
        assert a.value == b.value or (isinstance(b.value, float) and math.isnan(b.value))


@settings(max_examples=200)
@given(
    block_values=st.lists(st.one_of(st.integers(-(2**63), 2**64), st.floats()), min_size=1, max_size=30),
    first_id=st.integers(1, 10**6),
    shuffle=st.booleans(),
    ts_ns=st.integers(0, 2**63),
)
def test_the_buffer_s_encoder_writes_a_read_byte_for_byte_as_encode_segment(
    block_values: list[object], first_id: int, shuffle: bool, ts_ns: int
) -> None:
    paths = tuple(MACHINE + f"t{i}" for i in range(len(block_values)))
    ids = {p: first_id + (len(paths) - i if shuffle else i) for i, p in enumerate(paths)}
    encoder = SegmentEncoder(ids)
    block = SampleBlock(paths, block_values, ts_ns)
    for _ in range(2):  # the second time from the cached id text
        assert encoder.encode(block) == encode_segment(block, ids)
    later = SampleBlock(paths, block_values[::-1], ts_ns + 1)  # the next cycle of the same read
    assert encoder.encode(later) == encode_segment(later, ids)


def test_the_encoder_refuses_a_tag_without_an_id_until_it_has_one_and_takes_other_forms_as_they_are() -> None:
    ids = {MACHINE + "a": 1}
    encoder = SegmentEncoder(ids)
    block = SampleBlock((MACHINE + "a", MACHINE + "b"), [1, 2], 5)
    with pytest.raises(KeyError):
        encoder.encode(block)
    ids[MACHINE + "b"] = 2  # what the buffer does on first sight, then encodes again
    assert json.loads(encoder.encode(block)) == {"j": 1, "v": [1, 2], "t": 5, "q": 0}
    samples = [Sample(MACHINE + "a", 1, 5), Sample(MACHINE + "b", None, 6, Quality.BAD, "timeout")]
    assert encoder.encode(samples) == encode_segment(samples, ids)
