"""Modbus addresses as integrators write them, parsed into (table, zero-based offset, bit).

Accepted forms (the prefix names the table):
  hr40001 / ir30001 / di10001 / co00001   Modicon numbering, 1-based (5 or 6 digits after the prefix)
  hr:0    / ir:9    / di:0    / co:0      protocol offset, 0-based
  a `.N` suffix on a register selects bit N (0 = least significant), e.g. hr40010.3
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Table(StrEnum):
    """The four Modbus data tables."""

    COIL = "co"
    DISCRETE_INPUT = "di"
    INPUT_REGISTER = "ir"
    HOLDING_REGISTER = "hr"

    @property
    def is_bit_table(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


_MODICON_LEADING_DIGIT = {
    Table.COIL: "0",
    Table.DISCRETE_INPUT: "1",
    Table.INPUT_REGISTER: "3",
    Table.HOLDING_REGISTER: "4",
}
_FORM = re.compile(r"^(co|di|ir|hr)(:?)(\d+)(?:\.(\d{1,2}))?$")

ADDRESS_HELP = "hr40001, ir30010, di10001, co00001 (1-based Modicon), or hr:0, ir:9 (0-based); .N selects bit N"


@dataclass(frozen=True, slots=True)
class Address:
    table: Table
    offset: int
    bit: int | None = None

    def __str__(self) -> str:
        suffix = f".{self.bit}" if self.bit is not None else ""
        return f"{self.table.value}:{self.offset}{suffix}"


def parse_address(text: str) -> Address:
    """Parse one address; raise ValueError with what is allowed."""
    match = _FORM.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a Modbus address: use {ADDRESS_HELP}")
    table, colon, digits, bit = Table(match.group(1)), match.group(2), match.group(3), match.group(4)
    if colon:
        offset = int(digits)
    else:
        leading = _MODICON_LEADING_DIGIT[table]
        if len(digits) not in (5, 6) or digits[0] != leading:
            raise ValueError(
                f"{text!r}: Modicon {table.value} addresses are {leading}xxxx or {leading}xxxxx "
                f"(e.g. {table.value}{leading}0001); or write {table.value}:OFFSET for a 0-based offset"
            )
        offset = int(digits[1:]) - 1
        if offset < 0:
            raise ValueError(f"{text!r}: Modicon numbering starts at {leading}0001")
    if offset > 65535:
        raise ValueError(f"{text!r}: offset {offset} is beyond the Modbus range 0..65535")
    bit_no = int(bit) if bit is not None else None
    if bit_no is not None:
        if table.is_bit_table:
            raise ValueError(f"{text!r}: a bit suffix applies to registers (hr, ir), not to coils or inputs")
        if bit_no > 15:
            raise ValueError(f"{text!r}: bit {bit_no} is outside a 16-bit register (0..15)")
    return Address(table, offset, bit_no)
