"""Modbus register words <-> typed values, and raw values <-> engineering values.

Pure functions, no I/O: the connector, the probe command, the simulators and write-back
all use the same code, so what is written is exactly what is read back.

Byte order names the order in which the value's bytes (A = most significant) arrive on
the wire, two bytes per register:

  ABCD  big-endian, the Modbus standard          reg0 = AB, reg1 = CD
  DCBA  little-endian                            reg0 = DC, reg1 = BA
  BADC  bytes swapped inside each register       reg0 = BA, reg1 = DC
  CDAB  registers swapped, bytes big-endian      reg0 = CD, reg1 = AB

For 64-bit values the same rule extends to eight bytes (CDAB = GH EF CD AB). A 16-bit
value follows the byte part of the rule: DCBA and BADC swap its two bytes.
Strings always run register by register in ascending order; DCBA and BADC put the
first character in the low byte of each register.
A bit (`bit=N`, N = 0 the least significant) is taken from the register as sent,
before any byte order: PLC documentation numbers bits of the 16-bit word.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from edge_config.schema import ByteOrder, DataType, ModbusTag

RawValue = bool | int | float | str
EngineeringValue = bool | int | float | str

_STRUCT = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.INT64: ">q",
    DataType.UINT64: ">Q",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}
_INT_RANGE = {
    DataType.INT16: (-(1 << 15), (1 << 15) - 1),
    DataType.UINT16: (0, (1 << 16) - 1),
    DataType.INT32: (-(1 << 31), (1 << 31) - 1),
    DataType.UINT32: (0, (1 << 32) - 1),
    DataType.INT64: (-(1 << 63), (1 << 63) - 1),
    DataType.UINT64: (0, (1 << 64) - 1),
}
INTEGER_TYPES = frozenset(_INT_RANGE)
_SIXTEEN_BIT = frozenset({DataType.INT16, DataType.UINT16})
_SWAPPED = frozenset({ByteOrder.DCBA, ByteOrder.BADC})
FLOAT_TYPES = frozenset({DataType.FLOAT32, DataType.FLOAT64})


def _words_to_bytes(words: Sequence[int]) -> bytes:
    try:
        return struct.pack(f">{len(words)}H", *words)
    except struct.error:
        bad = next(w for w in words if not 0 <= w <= 0xFFFF)
        raise ValueError(f"register value {bad} is not a 16-bit word (0..65535)") from None


def _bytes_to_words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def reorder(data: bytes, byte_order: ByteOrder) -> bytes:
    """Wire bytes -> big-endian value bytes (and back: every reordering is its own inverse)."""
    if byte_order == ByteOrder.ABCD:
        return data
    if byte_order == ByteOrder.DCBA:
        return data[::-1]
    if byte_order == ByteOrder.BADC:
        return b"".join(data[i : i + 2][::-1] for i in range(0, len(data), 2))
    # CDAB: registers in reverse order, bytes inside each register kept
    return b"".join(data[i : i + 2] for i in range(len(data) - 2, -1, -2))


def _swaps_bytes_in_register(byte_order: ByteOrder) -> bool:
    return byte_order in _SWAPPED


def words_needed(data_type: DataType, length: int | None = None) -> int:
    """Registers a value of this type occupies (`length` registers for a string)."""
    if data_type == DataType.STRING:
        if not length or length < 1:
            raise ValueError("a string needs a length in registers (length: N)")
        return length
    return data_type.register_count


def decode_registers(
    words: Sequence[int],
    data_type: DataType,
    byte_order: ByteOrder,
    *,
    bit: int | None = None,
    length: int | None = None,
) -> RawValue:
    """Decode the words read for one tag into its raw value.

    Coils and discrete inputs arrive as one word 0/1 and decode as bool with type bool.
    With `bit`, the result is that bit of the first register, as bool, whatever the type.
    """
    if bit is not None:
        if not 0 <= bit <= 15:
            raise ValueError(f"bit {bit} is outside a 16-bit register (0..15)")
        if not words:
            raise ValueError("no register to take a bit from")
        return bool((words[0] >> bit) & 1)
    if data_type == DataType.BOOL:
        if not words:
            raise ValueError("no register or bit to decode as bool")
        return words[0] != 0
    if data_type in _SIXTEEN_BIT and len(words) == 1:  # the common case, without struct
        word = words[0]
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"register value {word} is not a 16-bit word (0..65535)")
        if byte_order in _SWAPPED:
            word = ((word & 0xFF) << 8) | (word >> 8)
        return word - 0x10000 if data_type == DataType.INT16 and word & 0x8000 else word
    needed = words_needed(data_type, length if length is not None else len(words))
    if len(words) != needed:
        raise ValueError(f"{data_type.value} needs {needed} register(s), got {len(words)}")
    data = _words_to_bytes(words)
    if data_type == DataType.STRING:
        if _swaps_bytes_in_register(byte_order):
            data = reorder(data, ByteOrder.BADC)
        return data.rstrip(b"\x00 ").decode("utf-8", errors="replace")
    (value,) = struct.unpack(_STRUCT[data_type], reorder(data, byte_order))
    return value


def block_struct(fields: Sequence[tuple[int, DataType, ByteOrder]], word_count: int) -> struct.Struct | None:
    """One `struct` that decodes every field of a read's answer in a single call, or None.

    `fields` are (first word, type, byte order) in the read's order. Covered: numeric types
    in ABCD (the Modbus standard, one big-endian struct code each) that do not overlap;
    the words between them are skipped. Anything else (strings, bools, bits, other byte
    orders, overlaps) returns None and is decoded value by value with `decode_registers`.
    Unpack the answer's bytes (`words_to_bytes`) with it: the same values, one C call
    instead of one Python call per tag.
    """
    codes: list[str] = []
    at = 0
    for start, data_type, byte_order in fields:
        code = _STRUCT.get(data_type)
        if code is None or byte_order != ByteOrder.ABCD or start < at:
            return None
        if start > at:
            codes.append(f"{(start - at) * 2}x")
        codes.append(code[1])
        at = start + data_type.register_count
    if at > word_count:
        return None
    if word_count > at:
        codes.append(f"{(word_count - at) * 2}x")
    return struct.Struct(">" + "".join(codes))


def words_to_bytes(words: Sequence[int]) -> bytes:
    """Register words -> the bytes they were sent as; ValueError for a word outside 0..65535."""
    return _words_to_bytes(words)


def encode_value(
    value: RawValue,
    data_type: DataType,
    byte_order: ByteOrder,
    *,
    length: int | None = None,
) -> list[int]:
    """The 16-bit words that `decode_registers` turns back into `value`.

    Raises ValueError (one line, what is allowed) for a value the type cannot hold.
    A bool encodes as one word 0/1; to change one bit of a register use `set_bit`.
    """
    if data_type == DataType.BOOL:
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise ValueError(f"{value!r} is not a bool (true/false or 0/1)")
        return [int(value)]
    if data_type == DataType.STRING:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
        size = words_needed(data_type, length) * 2
        data = value.encode("utf-8")
        if len(data) > size:
            raise ValueError(f"{value!r} is {len(data)} bytes, more than the {size} bytes of {size // 2} registers")
        data = data.ljust(size, b"\x00")
        if _swaps_bytes_in_register(byte_order):
            data = reorder(data, ByteOrder.BADC)
        return _bytes_to_words(data)
    if data_type in INTEGER_TYPES:
        number = _as_integer(value, data_type)
        low, high = _INT_RANGE[data_type]
        if not low <= number <= high:
            raise ValueError(f"{value!r} is outside the range of {data_type.value} ({low}..{high})")
        packed = struct.pack(_STRUCT[data_type], number)
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number for {data_type.value}")
        if data_type == DataType.FLOAT32 and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
            raise ValueError(f"{value!r} is outside the range of float32 (about ±3.4e38)")
        packed = struct.pack(_STRUCT[data_type], float(value))
    return _bytes_to_words(reorder(packed, byte_order))


def _as_integer(value: RawValue, data_type: DataType) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a bool, not a number for {data_type.value}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{value!r} is not a whole number for {data_type.value}")


def set_bit(word: int, bit: int, value: bool) -> int:
    """The register `word` with bit `bit` set to `value` (for writing a bit tag: read, modify, write)."""
    if not 0 <= bit <= 15:
        raise ValueError(f"bit {bit} is outside a 16-bit register (0..15)")
    return (word | (1 << bit)) if value else (word & ~(1 << bit) & 0xFFFF)


def apply_scaling(raw: RawValue, tag: ModbusTag) -> EngineeringValue:
    """Raw value -> engineering value: enum map first, else `raw * scale + offset`.

    An enum tag always yields a string (an unmapped raw value yields its digits, e.g. "7"),
    so a sink never sees one tag change type. Without scale and offset, integers stay
    integers; bools and strings pass through unchanged.
    """
    if tag.map is not None and isinstance(raw, int):
        return tag.map.get(int(raw), str(int(raw)))
    if isinstance(raw, bool | str):
        return raw
    if tag.scale == 1.0 and tag.offset == 0.0:
        return raw
    return raw * tag.scale + tag.offset


def remove_scaling(value: EngineeringValue, tag: ModbusTag) -> RawValue:
    """Engineering value -> raw value, the inverse of `apply_scaling` (used for write-back).

    Enum names map back to their integer; scaled values are rounded to the nearest
    integer when the tag's type is an integer type.
    """
    if tag.map is not None:
        if isinstance(value, str):
            for raw, name in tag.map.items():
                if name == value:
                    return raw
            raise ValueError(f"{value!r} is not one of {sorted(tag.map.values())}")
        if isinstance(value, int) and not isinstance(value, bool) and value in tag.map:
            return value
        raise ValueError(f"{value!r} is not one of {sorted(tag.map.values())}")
    if isinstance(value, bool | str):
        return value
    raw: int | float = value
    if tag.scale != 1.0 or tag.offset != 0.0:
        if tag.scale == 0:
            raise ValueError("a tag with scale 0 cannot be written")
        raw = (value - tag.offset) / tag.scale
    if tag.type in INTEGER_TYPES and isinstance(raw, float):
        return round(raw)
    return raw
