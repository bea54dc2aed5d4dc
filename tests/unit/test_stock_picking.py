"""Picking lots FEFO or FIFO, partial picks and back-orders (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes_lite.inventory.picking import (
    LotStock,
    OrderLine,
    PickStrategy,
    back_orders,
    plan_pick,
    plan_shipment,
)

TODAY = date(2026, 11, 26)
STOCK = [
    LotStock("L-old-late", "A1", D(10), production_date=date(2026, 1, 1), expiry_date=date(2027, 6, 1)),
    LotStock("L-new-soon", "A2", D(10), production_date=date(2026, 10, 1), expiry_date=date(2026, 12, 1)),
    LotStock("L-expired", "A3", D(99), production_date=date(2025, 1, 1), expiry_date=date(2026, 11, 25)),
    LotStock("L-no-expiry", "A4", D(10), production_date=date(2026, 5, 1)),
]


def test_fefo_takes_the_lot_that_expires_first_and_never_an_expired_one() -> None:
    plan = plan_pick(STOCK, D(15), PickStrategy.FEFO, TODAY)
    assert [(p.lot, p.quantity) for p in plan.picks] == [("L-new-soon", D(10)), ("L-old-late", D(5))]
    assert plan.back_ordered == 0


def test_fifo_takes_the_oldest_production_first() -> None:
    plan = plan_pick(STOCK, D(15), PickStrategy.FIFO, TODAY)
    assert [(p.lot, p.quantity) for p in plan.picks] == [("L-old-late", D(10)), ("L-no-expiry", D(5))]


def test_a_short_pick_takes_everything_usable_and_back_orders_the_rest() -> None:
    plan = plan_pick(STOCK, D(50), PickStrategy.FEFO, TODAY)
    assert plan.picked == D(30)
    assert plan.back_ordered == D(20)
    assert "L-expired" not in {p.lot for p in plan.picks}


def test_lines_of_the_same_material_share_stock_in_line_order() -> None:
    lines = [OrderLine("1", "bolt", D(12)), OrderLine("2", "bolt", D(12), shipped=D(2))]
    plans = plan_shipment(lines, {"bolt": STOCK}, {"bolt": PickStrategy.FEFO}, TODAY)
    assert [p.plan.picked for p in plans] == [D(12), D(10)]
    assert [p.plan.back_ordered for p in plans] == [D(0), D(0)]
    picked_per_lot: dict[str, D] = {}
    for line_plan in plans:
        for pick in line_plan.plan.picks:
            picked_per_lot[pick.lot] = picked_per_lot.get(pick.lot, D(0)) + pick.quantity
    assert picked_per_lot == {"L-new-soon": D(10), "L-old-late": D(10), "L-no-expiry": D(2)}


def test_a_requested_partial_shipment_may_not_exceed_the_open_quantity() -> None:
    lines = [OrderLine("1", "bolt", D(12), shipped=D(10))]
    with pytest.raises(ValueError, match="requested 5 but 2 is open"):
        plan_shipment(lines, {"bolt": STOCK}, {}, TODAY, requested={"1": D(5)})


def test_back_orders_are_the_open_quantities() -> None:
    lines = [OrderLine("1", "a", D(10), D(10)), OrderLine("2", "b", D(5), D(2))]
    assert back_orders(lines) == {"2": D(3)}


lots = st.lists(
    st.builds(
        LotStock,
        lot=st.text("abcdef", min_size=1, max_size=3),
        location=st.sampled_from(["A", "B"]),
        quantity=st.integers(0, 50).map(D),
        production_date=st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
        expiry_date=st.none() | st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    ),
    max_size=8,
    unique_by=lambda s: (s.lot, s.location),
)


@settings(max_examples=60, deadline=None)
@given(lots, st.integers(0, 200).map(D), st.sampled_from(list(PickStrategy)))
def test_a_pick_plan_never_takes_more_than_a_lot_holds_and_picked_plus_back_ordered_is_the_request(
    stock: list[LotStock], quantity: D, strategy: PickStrategy
) -> None:
    plan = plan_pick(stock, quantity, strategy, TODAY)
    assert plan.picked + plan.back_ordered == quantity
    holdings = {(s.lot, s.location): s for s in stock}
    for pick in plan.picks:
        held = holdings[(pick.lot, pick.location)]
        assert 0 < pick.quantity <= held.quantity
        assert held.expiry_date is None or held.expiry_date >= TODAY
    usable = sum((s.quantity for s in stock if s.expiry_date is None or s.expiry_date >= TODAY), D(0))
    assert plan.back_ordered == max(quantity - usable, D(0))
