"""The buffer's stored segment format: compact for a read cycle, and files written before still read."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.buffer import Buffer, decode_segment, encode_segment
from gateway.sample import Quality, Sample

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
