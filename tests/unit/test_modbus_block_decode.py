"""Decoding a whole read's answer with one `struct` call gives exactly what per-tag decoding gives."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.modbus.client import ModbusConnector
from connectors.modbus.decode import block_struct, decode_registers, words_to_bytes
from edge_config.schema import ByteOrder, DataType, SiteConfig
from gateway.sample import Quality

ABCD = ByteOrder.ABCD
NUMERIC = [t for t in DataType if t not in (DataType.BOOL, DataType.STRING)]


def test_a_contiguous_run_of_uint16_and_int16_decodes_in_one_call() -> None:
    layout = block_struct([(0, DataType.UINT16, ABCD), (1, DataType.INT16, ABCD), (2, DataType.UINT16, ABCD)], 3)
    assert layout is not None
    assert layout.unpack(words_to_bytes([65535, 65535, 7])) == (65535, -1, 7)


def test_registers_between_tags_are_skipped() -> None:
    layout = block_struct([(0, DataType.UINT16, ABCD), (3, DataType.UINT32, ABCD)], 6)
    assert layout is not None
    assert layout.unpack(words_to_bytes([1, 99, 99, 0x0001, 0x0002, 99])) == (1, 0x00010002)


def test_other_byte_orders_strings_bools_and_overlaps_fall_back_to_per_tag_decoding() -> None:
    assert block_struct([(0, DataType.UINT16, ByteOrder.DCBA)], 1) is None
    assert block_struct([(0, DataType.FLOAT32, ByteOrder.CDAB)], 2) is None
    assert block_struct([(0, DataType.STRING, ABCD)], 4) is None
    assert block_struct([(0, DataType.BOOL, ABCD)], 1) is None
    assert block_struct([(0, DataType.UINT32, ABCD), (1, DataType.UINT16, ABCD)], 2) is None
    assert block_struct([(0, DataType.UINT32, ABCD)], 1) is None  # the answer is too short for the tag


def test_a_short_answer_does_not_unpack() -> None:
    """The connector then decodes per tag, which names the tags the answer lacks."""
    layout = block_struct([(0, DataType.UINT16, ABCD), (1, DataType.UINT16, ABCD)], 2)
    assert layout is not None
    with pytest.raises(struct.error):
        layout.unpack(words_to_bytes([1]))


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[tuple[int, DataType, ByteOrder]], int]:
    """Non-overlapping numeric ABCD tags with random gaps, and the read's word count."""
    fields: list[tuple[int, DataType, ByteOrder]] = []
    at = 0
    for _ in range(draw(st.integers(1, 12))):
        at += draw(st.integers(0, 3))
        data_type = draw(st.sampled_from(NUMERIC))
        fields.append((at, data_type, ABCD))
        at += data_type.register_count
    return fields, at + draw(st.integers(0, 3))


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@settings(max_examples=300)
@given(layout=layouts(), data=st.data())
def test_block_decoding_equals_per_tag_decoding(
    layout: tuple[list[tuple[int, DataType, ByteOrder]], int], data: st.DataObject
) -> None:
    fields, word_count = layout
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=word_count, max_size=word_count))
    block = block_struct(fields, word_count)
    assert block is not None
    per_tag = [decode_registers(words[s : s + t.register_count], t, o) for s, t, o in fields]
    by_block = block.unpack(words_to_bytes(words))
    assert len(by_block) == len(per_tag)
    assert all(_same(a, b) for a, b in zip(by_block, per_tag, strict=True))


def _connector(tags: dict[str, dict[str, object]]) -> ModbusConnector:
    config = SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "dg"},
            "devices": [
                {
                    "name": "press01",
                    "area": "press",
                    "line": "line1",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1"},
                    "tags": tags,
                }
            ],
        }
    )
    return ModbusConnector(config, config.devices[0])


MIXED_TAGS: dict[str, dict[str, object]] = {
    "state": {"address": "hr40001", "type": "uint16", "map": {0: "stopped", 1: "running"}},
    "temp": {"address": "hr40002", "type": "int16", "scale": 0.1, "offset": -5},
    "flow": {"address": "hr40003", "type": "float32"},
    "parts": {"address": "hr40005", "type": "uint32"},
    "raw": {"address": "hr40007", "type": "uint16"},
}


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.integers(0, 0xFFFF), min_size=7, max_size=7))
def test_the_connector_emits_the_same_samples_from_a_block_as_tag_by_tag(words: list[int]) -> None:
    connector = _connector(MIXED_TAGS)
    (read,) = connector.reads
    assert connector._block_decoder(read) is not None  # this map takes the block path
    by_block = connector._decode(read, words, 123)
    connector._blocks[id(read)] = None  # force the per-tag path
    per_tag = connector._decode(read, words, 123)
    assert [(s.tag, s.ts_ns, s.quality, s.reason) for s in by_block] == [
        (s.tag, s.ts_ns, s.quality, s.reason) for s in per_tag
    ]
    assert all(_same(a.value, b.value) for a, b in zip(by_block, per_tag, strict=True))


def test_a_nan_float_in_a_block_is_bad_with_the_reason_and_its_neighbours_stay_good() -> None:
    connector = _connector(MIXED_TAGS)
    (read,) = connector.reads
    words = [1, 300, 0x7FC0, 0x0000, 0, 5, 9]  # flow = NaN
    samples = {s.tag.rsplit("/", 1)[1]: s for s in connector._decode(read, words, 7)}
    assert samples["flow"].quality is Quality.BAD and samples["flow"].reason == "device sent nan (not a finite number)"
    assert samples["state"].value == "running"
    assert samples["temp"].value == 300 * 0.1 - 5
    assert samples["parts"].value == 5 and samples["raw"].value == 9


def test_an_answer_with_a_word_missing_marks_the_affected_tags_bad_as_before() -> None:
    connector = _connector(MIXED_TAGS)
    (read,) = connector.reads
    samples = connector._decode(read, [1, 2, 3, 4, 5, 6], 7)
    assert samples[-1].quality is Quality.BAD and "cannot decode" in samples[-1].reason
    assert samples[0].quality is Quality.GOOD
