"""What `edgefab modbus probe` prints for the words it read (no socket)."""

from __future__ import annotations

from connectors.modbus.address import parse_address
from connectors.modbus.cli import probe_report
from edge_config.schema import DataType


def test_two_registers_show_32_bit_types_in_all_four_byte_orders_side_by_side() -> None:
    lines = probe_report(parse_address("hr40001"), [0x0FDB, 0x4049], "10.0.0.5:502", 1)
    assert lines[0] == "hr:0..1 from 10.0.0.5:502 unit 1: 0x0FDB 0x4049"
    assert lines[1].split() == ["type", "ABCD", "DCBA", "BADC", "CDAB"]
    assert [line.split()[0] for line in lines[2:]] == ["int32", "uint32", "float32"]
    assert lines[4].split()[4] == "3.141593"  # pi, laid out word-swapped
    assert lines[3].split()[1] == str(0x0FDB4049)


def test_one_register_shows_16_bit_types_and_a_bit_address_shows_the_bit() -> None:
    lines = probe_report(parse_address("hr:7"), [0xFFFE], "h:502", 3)
    assert lines[2].split() == ["int16", "-2", "-257", "-257", "-2"]
    assert probe_report(parse_address("hr:7.1"), [0b10], "h:502", 3)[1] == "bit 1: 1"


def test_four_registers_show_64_bit_types_and_a_chosen_type_only_that_row() -> None:
    lines = probe_report(parse_address("ir:0"), [0, 0, 0, 1], "h:502", 1)
    assert [line.split()[0] for line in lines[2:]] == ["int64", "uint64", "float64"]
    only = probe_report(parse_address("ir:0"), [0x4142, 0x4300], "h:502", 1, DataType.STRING)
    assert only[2].split()[:2] == ["string", "'ABC'"]


def test_coils_print_their_bits() -> None:
    assert probe_report(parse_address("co:0"), [1, 0, 1], "h:502", 1) == ["co:0..2 from h:502 unit 1: 1 0 1"]
