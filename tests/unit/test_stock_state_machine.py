"""Property: under any sequence of receipts, issues, transfers, shipments and reversals, on-hand equals the sum
of the ledger and never goes negative for a material that forbids it; refused moves change nothing."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mes_lite.inventory.stock import (
    Ledger,
    MaterialPolicy,
    Move,
    MoveKind,
    NegativeStockError,
    StockError,
    on_hand,
)

POLICIES = {
    "bolt": MaterialPolicy("bolt", "pcs"),
    "steel": MaterialPolicy("steel", "kg"),
    "glue": MaterialPolicy("glue", "l", allow_negative=True),
}
materials = st.sampled_from(sorted(POLICIES))
locations = st.sampled_from(["WH/A", "WH/B", "LINE1"])
lots = st.sampled_from(["L1", "L2"])
quantities = st.integers(1, 40).map(D) | st.sampled_from([D("0.5"), D("2.25")])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(POLICIES)

    def _post(self, move: Move) -> None:
        before_moves, before_balances = len(self.ledger.moves), dict(self.ledger.balances)
        try:
            self.ledger.post(move)
        except NegativeStockError:
            assert not POLICIES[move.material].allow_negative
            assert len(self.ledger.moves) == before_moves
            assert self.ledger.balances == before_balances

    @rule(material=materials, lot=lots, to=locations, qty=quantities)
    def receive(self, material: str, lot: str, to: str, qty: D) -> None:
        self._post(Move(MoveKind.RECEIPT, material, lot, qty, to_location=to, who="t", reason="delivery"))

    @rule(material=materials, lot=lots, source=locations, qty=quantities)
    def issue(self, material: str, lot: str, source: str, qty: D) -> None:
        self._post(Move(MoveKind.ISSUE, material, lot, qty, from_location=source, work_order="WO-1", who="t"))

    @rule(material=materials, lot=lots, source=locations, destination=locations, qty=quantities)
    def transfer(self, material: str, lot: str, source: str, destination: str, qty: D) -> None:
        if source != destination:
            self._post(
                Move(MoveKind.TRANSFER, material, lot, qty, from_location=source, to_location=destination, who="t")
            )

    @rule(material=materials, lot=lots, source=locations, qty=quantities)
    def ship(self, material: str, lot: str, source: str, qty: D) -> None:
        self._post(Move(MoveKind.SHIPMENT, material, lot, qty, from_location=source, shipment="SH-1", who="t"))

    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        if not self.ledger.moves:
            return
        move_id = data.draw(st.integers(1, len(self.ledger.moves)))
        before = len(self.ledger.moves)
        try:
            self.ledger.reverse(move_id, who="t", reason="correction")
        except StockError:
            assert len(self.ledger.moves) == before

    @invariant()
    def on_hand_equals_the_sum_of_the_ledger(self) -> None:
        assert on_hand(self.ledger.moves) == self.ledger.balances

    @invariant()
    def never_negative_where_forbidden(self) -> None:
        for key, qty in self.ledger.balances.items():
            if not POLICIES[key.material].allow_negative:
                assert qty >= 0, key

    @invariant()
    def every_move_records_who_and_when(self) -> None:
        assert all(m.who and m.at is not None and m.move_id for m in self.ledger.moves)


LedgerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_the_ledger_stays_consistent_under_random_moves = LedgerMachine.TestCase
