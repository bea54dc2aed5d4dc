"""Register words <-> values: worked examples from device manuals, and round-trip properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.modbus.decode import (
    apply_scaling,
    decode_registers,
    encode_value,
    remove_scaling,
    set_bit,
)
from edge_config.schema import ByteOrder, DataType, ModbusTag

ABCD, DCBA, BADC, CDAB = ByteOrder.ABCD, ByteOrder.DCBA, ByteOrder.BADC, ByteOrder.CDAB


@pytest.mark.parametrize(
    ("byte_order", "words"),
    [(ABCD, [0x0102, 0x0304]), (DCBA, [0x0403, 0x0201]), (BADC, [0x0201, 0x0403]), (CDAB, [0x0304, 0x0102])],
)
def test_uint32_0x01020304_arrives_in_the_documented_byte_order(byte_order: ByteOrder, words: list[int]) -> None:
    assert decode_registers(words, DataType.UINT32, byte_order) == 0x01020304
    assert encode_value(0x01020304, DataType.UINT32, byte_order) == words


@pytest.mark.parametrize(
    ("byte_order", "words"),
    [
        (ABCD, [0x0102, 0x0304, 0x0506, 0x0708]),
        (DCBA, [0x0807, 0x0605, 0x0403, 0x0201]),
        (BADC, [0x0201, 0x0403, 0x0605, 0x0807]),
        (CDAB, [0x0708, 0x0506, 0x0304, 0x0102]),
    ],
)
def test_uint64_extends_the_byte_order_rule_to_eight_bytes(byte_order: ByteOrder, words: list[int]) -> None:
    assert decode_registers(words, DataType.UINT64, byte_order) == 0x0102030405060708


def test_float32_pi_in_big_endian_is_0x40490fdb() -> None:
    assert decode_registers([0x4049, 0x0FDB], DataType.FLOAT32, ABCD) == pytest.approx(math.pi, rel=1e-7)
    assert decode_registers([0x0FDB, 0x4049], DataType.FLOAT32, CDAB) == pytest.approx(math.pi, rel=1e-7)


def test_int16_is_twos_complement_and_swapped_by_little_endian_orders() -> None:
    assert decode_registers([0xFFFE], DataType.INT16, ABCD) == -2
    assert decode_registers([0xFEFF], DataType.INT16, DCBA) == -2
    assert decode_registers([0xFEFF], DataType.INT16, BADC) == -2
    assert decode_registers([0xFFFE], DataType.UINT16, CDAB) == 0xFFFE


def test_a_bit_is_taken_from_the_register_as_sent_whatever_the_byte_order() -> None:
    assert decode_registers([0b1000], DataType.BOOL, ABCD, bit=3) is True
    assert decode_registers([0b1000], DataType.UINT16, DCBA, bit=3) is True
    assert decode_registers([0b1000], DataType.BOOL, ABCD, bit=2) is False
    assert decode_registers([0x8000], DataType.BOOL, ABCD, bit=15) is True


def test_a_coil_word_of_one_decodes_as_true() -> None:
    assert decode_registers([1], DataType.BOOL, ABCD) is True
    assert decode_registers([0], DataType.BOOL, ABCD) is False


def test_a_string_runs_register_by_register_and_drops_trailing_padding() -> None:
    words = [0x4142, 0x4300, 0x0000]  # "ABC" then NULs
    assert decode_registers(words, DataType.STRING, ABCD, length=3) == "ABC"
    assert decode_registers([0x4241, 0x0043, 0], DataType.STRING, BADC, length=3) == "ABC"
    assert encode_value("ABC", DataType.STRING, ABCD, length=3) == words


def test_a_wrong_number_of_words_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="float32 needs 2 register"):
        decode_registers([1], DataType.FLOAT32, ABCD)


@pytest.mark.parametrize(
    ("value", "data_type", "message"),
    [
        (70000, DataType.UINT16, r"outside the range of uint16 \(0..65535\)"),
        (-1, DataType.UINT32, "outside the range of uint32"),
        (1.5, DataType.INT16, "not a whole number"),
        ("x", DataType.FLOAT32, "not a number"),
        (True, DataType.INT32, "is a bool"),
        (2, DataType.BOOL, "not a bool"),
        (1e39, DataType.FLOAT32, "outside the range of float32"),
    ],
)
def test_a_value_the_type_cannot_hold_is_refused_in_one_line(value: object, data_type: DataType, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_value(value, data_type, ABCD)  # type: ignore[arg-type]


def test_a_string_longer_than_its_registers_is_refused() -> None:
    with pytest.raises(ValueError, match="more than the 4 bytes of 2 registers"):
        encode_value("HELLO", DataType.STRING, ABCD, length=2)


def test_set_bit_changes_only_that_bit() -> None:
    assert set_bit(0b1010, 0, True) == 0b1011
    assert set_bit(0xFFFF, 15, False) == 0x7FFF


def _tag(**kwargs: object) -> ModbusTag:
    return ModbusTag(address="hr40001", **kwargs)  # type: ignore[arg-type]


def test_scaling_multiplies_then_adds_the_offset() -> None:
    assert apply_scaling(215, _tag(scale=0.1, offset=-2.0)) == pytest.approx(19.5)


def test_without_scaling_an_integer_stays_an_integer() -> None:
    value = apply_scaling(215, _tag())
    assert value == 215 and isinstance(value, int)


def test_an_enum_map_names_the_state_and_an_unknown_value_keeps_its_digits() -> None:
    tag = _tag(map={0: "stopped", 1: "running", 2: "fault"})
    assert apply_scaling(1, tag) == "running"
    assert apply_scaling(7, tag) == "7"
    assert remove_scaling("fault", tag) == 2
    with pytest.raises(ValueError, match="not one of"):
        remove_scaling("exploded", tag)


def test_remove_scaling_inverts_scale_and_offset_and_rounds_for_integer_types() -> None:
    tag = _tag(type="int16", scale=0.1, offset=-2.0)
    assert remove_scaling(19.5, tag) == 215
    assert remove_scaling(apply_scaling(-300, tag), tag) == -300


NUMERIC_STRATEGIES = {
    DataType.INT16: st.integers(-(2**15), 2**15 - 1),
    DataType.UINT16: st.integers(0, 2**16 - 1),
    DataType.INT32: st.integers(-(2**31), 2**31 - 1),
    DataType.UINT32: st.integers(0, 2**32 - 1),
    DataType.INT64: st.integers(-(2**63), 2**63 - 1),
    DataType.UINT64: st.integers(0, 2**64 - 1),
    DataType.FLOAT32: st.floats(width=32, allow_nan=False),
    DataType.FLOAT64: st.floats(allow_nan=False),
}


@settings(deadline=None)
@given(data=st.data(), data_type=st.sampled_from(list(NUMERIC_STRATEGIES)), byte_order=st.sampled_from(list(ByteOrder)))
def test_every_numeric_type_round_trips_in_every_byte_order(
    data: st.DataObject, data_type: DataType, byte_order: ByteOrder
) -> None:
    value = data.draw(NUMERIC_STRATEGIES[data_type])
    words = encode_value(value, data_type, byte_order)
    assert len(words) == data_type.register_count
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_registers(words, data_type, byte_order) == value


@settings(deadline=None)
@given(
    text=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
    byte_order=st.sampled_from(list(ByteOrder)),
)
def test_printable_strings_round_trip_in_every_byte_order(text: str, byte_order: ByteOrder) -> None:
    words = encode_value(text, DataType.STRING, byte_order, length=10)
    assert decode_registers(words, DataType.STRING, byte_order, length=10) == text


@settings(deadline=None)
@given(words=st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2), byte_order=st.sampled_from(list(ByteOrder)))
def test_decoding_then_encoding_gives_back_the_same_words(words: list[int], byte_order: ByteOrder) -> None:
    value = decode_registers(words, DataType.UINT32, byte_order)
    assert encode_value(value, DataType.UINT32, byte_order) == words
