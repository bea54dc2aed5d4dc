"""The pure stock ledger: worked examples of every move kind, refusals, unit conversion and backflush."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mes_lite.inventory.stock import (
    BalanceKey,
    BomComponent,
    InvalidMoveError,
    Ledger,
    MaterialPolicy,
    Move,
    MoveKind,
    NegativeStockError,
    UnitConversionError,
    backflush_quantities,
    convert,
    on_hand,
    to_base_unit,
)

STEEL = MaterialPolicy("steel", "kg", unit_factors={"t": D(1000), "g": D("0.001")})
BOLT = MaterialPolicy("bolt", "pcs", backflush=True, unit_factors={"box": D(50)})
GLUE = MaterialPolicy("glue", "l", allow_negative=True, backflush=True)
BRACKET = MaterialPolicy("bracket", "pcs")
POLICIES = {p.code: p for p in (STEEL, BOLT, GLUE, BRACKET)}


def receipt(material: str, lot: str, qty: str, to: str = "WH/A/01", **kw: object) -> Move:
    return Move(MoveKind.RECEIPT, material, lot, D(qty), to_location=to, who="anna", reason="delivery", **kw)


def test_a_receipt_then_an_issue_leaves_the_difference_on_hand() -> None:
    ledger = Ledger(POLICIES)
    ledger.post(receipt("steel", "S1", "120.5", purchase_order="PO-1"))
    ledger.post(Move(MoveKind.ISSUE, "steel", "S1", D("20.5"), from_location="WH/A/01", work_order="WO-7", who="bo"))
    assert ledger.on_hand("steel") == D(100)
    assert ledger.on_hand("steel", location="WH/A/01", lot="S1") == D(100)


def test_a_transfer_moves_stock_between_locations_without_changing_the_total() -> None:
    ledger = Ledger(POLICIES)
    ledger.post(receipt("bolt", "B1", "500"))
    ledger.post(Move(MoveKind.TRANSFER, "bolt", "B1", D(200), from_location="WH/A/01", to_location="LINE1", who="x"))
    assert ledger.on_hand("bolt") == D(500)
    assert ledger.balances == {BalanceKey("bolt", "WH/A/01", "B1"): D(300), BalanceKey("bolt", "LINE1", "B1"): D(200)}


def test_an_issue_beyond_on_hand_is_refused_and_changes_nothing() -> None:
    ledger = Ledger(POLICIES)
    ledger.post(receipt("steel", "S1", "10"))
    with pytest.raises(
        NegativeStockError, match=r"not enough steel lot S1 at WH/A/01: on hand 10 kg, issue needs 10.5"
    ):
        ledger.post(Move(MoveKind.ISSUE, "steel", "S1", D("10.5"), from_location="WH/A/01", work_order="WO-1"))
    assert len(ledger.moves) == 1
    assert ledger.on_hand("steel") == D(10)


def test_a_material_that_allows_negative_stock_may_go_below_zero() -> None:
    ledger = Ledger(POLICIES)
    ledger.post(Move(MoveKind.BACKFLUSH, "glue", "G0", D(3), from_location="LINE1", work_order="WO-1"))
    assert ledger.on_hand("glue") == D(-3)


def test_a_cycle_count_adjustment_needs_a_reason_and_one_side() -> None:
    ledger = Ledger(POLICIES)
    ledger.post(receipt("bolt", "B1", "100"))
    with pytest.raises(InvalidMoveError, match="adjustment needs a reason"):
        ledger.post(Move(MoveKind.ADJUSTMENT, "bolt", "B1", D(2), from_location="WH/A/01"))
    with pytest.raises(InvalidMoveError, match="exactly one location"):
        ledger.post(
            Move(MoveKind.ADJUSTMENT, "bolt", "B1", D(2), from_location="WH/A/01", to_location="X", reason="count")
        )
    ledger.post(Move(MoveKind.ADJUSTMENT, "bolt", "B1", D(2), from_location="WH/A/01", reason="cycle count 2026-11"))
    assert ledger.on_hand("bolt") == D(98)


def test_a_reversal_swaps_the_sides_and_restores_the_balance() -> None:
    ledger = Ledger(POLICIES)
    ledger.post(receipt("bolt", "B1", "100"))
    move = ledger.post(Move(MoveKind.TRANSFER, "bolt", "B1", D(40), from_location="WH/A/01", to_location="LINE1"))
    reversal = ledger.reverse(move.move_id or 0, who="chen", reason="wrong bin")
    assert (reversal.from_location, reversal.to_location, reversal.reverses) == ("LINE1", "WH/A/01", move.move_id)
    assert ledger.balances == {BalanceKey("bolt", "WH/A/01", "B1"): D(100)}
    assert len(ledger.moves) == 3  # nothing edited, nothing deleted


def test_a_move_cannot_be_reversed_twice_nor_can_a_reversal_be_reversed() -> None:
    ledger = Ledger(POLICIES)
    first = ledger.post(receipt("bolt", "B1", "10"))
    reversal = ledger.reverse(first.move_id or 0, who="x", reason="typo")
    with pytest.raises(InvalidMoveError, match="already reversed"):
        ledger.reverse(first.move_id or 0, who="x", reason="again")
    with pytest.raises(InvalidMoveError, match="itself a reversal"):
        ledger.reverse(reversal.move_id or 0, who="x", reason="undo undo")


def test_reversing_a_receipt_whose_stock_was_already_issued_is_refused() -> None:
    ledger = Ledger(POLICIES)
    first = ledger.post(receipt("bracket", "K1", "5"))
    ledger.post(Move(MoveKind.ISSUE, "bracket", "K1", D(4), from_location="WH/A/01", work_order="WO-2"))
    with pytest.raises(NegativeStockError):
        ledger.reverse(first.move_id or 0, who="x", reason="supplier took it back")


@pytest.mark.parametrize(
    ("move", "message"),
    [
        (Move(MoveKind.RECEIPT, "bolt", "B1", D(0), to_location="A"), "quantity must be positive"),
        (Move(MoveKind.RECEIPT, "bolt", "B1", D(1), from_location="A"), "receipt needs exactly to_location"),
        (Move(MoveKind.ISSUE, "bolt", "B1", D(1), from_location="A"), "issue needs a work order"),
        (Move(MoveKind.TRANSFER, "bolt", "B1", D(1), from_location="A", to_location="A"), "two different locations"),
        (Move(MoveKind.SHIPMENT, "bolt", "B1", D(1), from_location="A"), "shipment move needs a shipment"),
        (Move(MoveKind.RECEIPT, "bolt", "", D(1), to_location="A"), "needs a lot"),
    ],
)
def test_malformed_moves_are_refused_with_a_one_line_reason(move: Move, message: str) -> None:
    ledger = Ledger(POLICIES)
    with pytest.raises(InvalidMoveError, match=message):
        ledger.post(move)
    assert ledger.moves == []


def test_on_hand_of_a_move_list_is_the_signed_sum_and_drops_zero_balances() -> None:
    moves = [
        receipt("bolt", "B1", "10"),
        Move(MoveKind.SHIPMENT, "bolt", "B1", D(10), from_location="WH/A/01", shipment="SH-1"),
        receipt("bolt", "B2", "3", to="WH/B/02"),
    ]
    assert on_hand(moves) == {BalanceKey("bolt", "WH/B/02", "B2"): D(3)}


def test_units_convert_explicitly_through_the_base_unit() -> None:
    assert to_base_unit(D("1.2"), "t", STEEL) == D(1200)
    assert convert(D(500), "g", "kg", STEEL) == D("0.5")
    assert convert(D(2500), "kg", "t", STEEL) == D("2.5")
    assert to_base_unit(D(3), "box", BOLT) == D(150)


def test_converting_without_a_defined_factor_is_an_error_never_a_guess() -> None:
    with pytest.raises(
        UnitConversionError, match=r"material steel: no conversion from pcs to kg is defined \(known units: g, kg, t\)"
    ):
        to_base_unit(D(1), "pcs", STEEL)


def test_backflush_consumes_only_backflushed_components_in_base_units() -> None:
    bom = [
        BomComponent("bolt", D(4), "pcs"),
        BomComponent("glue", D("0.02"), "l"),
        BomComponent("steel", D("1.5"), "kg"),  # issued by hand: not backflushed
        BomComponent("bolt", D("0.1"), "box"),  # a second line of the same material adds up
    ]
    assert backflush_quantities(bom, D(100), POLICIES) == {"bolt": D(400) + D(500), "glue": D("2.00")}


def test_backflush_of_a_component_with_an_unknown_unit_is_an_error() -> None:
    with pytest.raises(UnitConversionError):
        backflush_quantities([BomComponent("bolt", D(1), "kg")], D(10), POLICIES)


def test_a_shipped_move_is_not_reversed_returns_are_new_receipts() -> None:
    ledger = Ledger(POLICIES)
    ledger.post(receipt("bolt", "B1", "10"))
    shipped = ledger.post(Move(MoveKind.SHIPMENT, "bolt", "B1", D(4), from_location="WH/A/01", shipment="SH-1"))
    with pytest.raises(InvalidMoveError, match="belongs to shipment SH-1"):
        ledger.reverse(shipped.move_id or 0, who="x", reason="customer sent it back")
