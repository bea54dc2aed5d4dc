"""Which lots to pick, as pure functions: FEFO or FIFO per material, partial picks and back-orders.

FEFO (first expired, first out) suits perishable material; FIFO (first in, first out: oldest production or
receipt date first) suits the rest. Expired lots are never picked. When stock is short, the plan picks what
there is and reports the rest as back-ordered, so a shipment can leave partially.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class PickStrategy(StrEnum):
    FEFO = "fefo"
    FIFO = "fifo"


@dataclass(frozen=True)
class LotStock:
    """Pickable stock of one lot at one location."""

    lot: str
    location: str
    quantity: Decimal
    production_date: date | None = None
    expiry_date: date | None = None


@dataclass(frozen=True)
class Pick:
    lot: str
    location: str
    quantity: Decimal


@dataclass(frozen=True)
class PickPlan:
    picks: tuple[Pick, ...]
    back_ordered: Decimal

    @property
    def picked(self) -> Decimal:
        return sum((p.quantity for p in self.picks), Decimal(0))


def pick_order(stock: Iterable[LotStock], strategy: PickStrategy, today: date) -> list[LotStock]:
    """Pickable stock in the order it should be taken; expired and empty lots are dropped."""
    usable = [s for s in stock if s.quantity > 0 and (s.expiry_date is None or s.expiry_date >= today)]
    if strategy == PickStrategy.FEFO:
        # lots without an expiry date go last; ties broken by age, then lot code, then location for stability
        return sorted(
            usable,
            key=lambda s: (
                s.expiry_date is None,
                s.expiry_date or date.max,
                s.production_date or date.max,
                s.lot,
                s.location,
            ),
        )
    return sorted(usable, key=lambda s: (s.production_date is None, s.production_date or date.max, s.lot, s.location))


def plan_pick(stock: Iterable[LotStock], quantity: Decimal, strategy: PickStrategy, today: date) -> PickPlan:
    """Pick ``quantity`` lot by lot in strategy order; what is missing becomes a back-order."""
    if quantity < 0:
        raise ValueError(f"pick quantity must not be negative, got {quantity}")
    remaining = quantity
    picks: list[Pick] = []
    for s in pick_order(stock, strategy, today):
        if remaining <= 0:
            break
        take = min(remaining, s.quantity)
        picks.append(Pick(s.lot, s.location, take))
        remaining -= take
    return PickPlan(tuple(picks), remaining)


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    material: str
    ordered: Decimal
    shipped: Decimal = Decimal(0)

    @property
    def open_quantity(self) -> Decimal:
        return max(self.ordered - self.shipped, Decimal(0))


@dataclass(frozen=True)
class LinePlan:
    line_id: str
    material: str
    plan: PickPlan


def plan_shipment(
    lines: Sequence[OrderLine],
    stock_by_material: Mapping[str, Sequence[LotStock]],
    strategy_by_material: Mapping[str, PickStrategy],
    today: date,
    requested: Mapping[str, Decimal] | None = None,
) -> list[LinePlan]:
    """Plan picks for every open order line; lines of one material share its stock in line order.

    ``requested`` limits a line to less than its open quantity (a deliberate partial shipment); it may not
    exceed the open quantity. Lines without an open quantity are skipped.
    """
    available: dict[tuple[str, str, str], LotStock] = {}
    for material, lots in stock_by_material.items():
        for s in lots:
            available[(material, s.lot, s.location)] = s
    plans: list[LinePlan] = []
    for line in lines:
        wanted = line.open_quantity
        if requested is not None and line.line_id in requested:
            asked = requested[line.line_id]
            if asked < 0 or asked > wanted:
                raise ValueError(f"line {line.line_id}: requested {asked} but {wanted} is open")
            wanted = asked
        if wanted == 0:
            continue
        own = [s for (m, _, _), s in available.items() if m == line.material]
        plan = plan_pick(own, wanted, strategy_by_material.get(line.material, PickStrategy.FIFO), today)
        for pick in plan.picks:
            key = (line.material, pick.lot, pick.location)
            left = available[key]
            available[key] = LotStock(
                left.lot, left.location, left.quantity - pick.quantity, left.production_date, left.expiry_date
            )
        plans.append(LinePlan(line.line_id, line.material, plan))
    return plans


def back_orders(lines: Iterable[OrderLine]) -> dict[str, Decimal]:
    """Open quantity per line that still has one: what the customer is still owed."""
    return {line.line_id: line.open_quantity for line in lines if line.open_quantity > 0}
