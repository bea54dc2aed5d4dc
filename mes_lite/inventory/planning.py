"""Planning aids: low-stock alerts from reorder points and stock valuation at standard cost."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_lite.inventory.models import Location, Material, ReorderPoint, StockBalance
from mes_lite.inventory.operations import location_subtree
from mes_lite.models import Product


@dataclass(frozen=True)
class LowStockAlert:
    material: str
    location: str | None  # None: all locations together
    on_hand: Decimal
    min_quantity: Decimal
    reorder_quantity: Decimal
    unit: str


def low_stock(session: Session) -> list[LowStockAlert]:
    """Every reorder point whose on-hand (in its location subtree, or everywhere) is at or below its minimum."""
    alerts = []
    for point, product in session.execute(
        select(ReorderPoint, Product).join(Product, Product.id == ReorderPoint.product_id).order_by(Product.code)
    ):
        query = select(func.coalesce(func.sum(StockBalance.quantity), 0)).where(StockBalance.product_id == product.id)
        location_code = None
        if point.location_id is not None:
            query = query.where(StockBalance.location_id.in_(location_subtree(session, point.location_id)))
            location_code = session.scalar(select(Location.code).where(Location.id == point.location_id))
        on_hand = Decimal(session.scalar(query) or 0)
        if on_hand <= point.min_quantity:
            alerts.append(
                LowStockAlert(
                    product.code,
                    location_code,
                    on_hand,
                    Decimal(point.min_quantity),
                    Decimal(point.reorder_quantity),
                    product.unit_of_measure,
                )
            )
    return alerts


@dataclass(frozen=True)
class ValuationRow:
    material: str
    quantity: Decimal
    unit: str
    standard_cost: Decimal
    value: Decimal


def valuation(session: Session) -> tuple[list[ValuationRow], Decimal]:
    """On-hand per material times its standard cost (per base unit), and the total."""
    rows = []
    for code, unit, quantity, cost in session.execute(
        select(
            Product.code,
            Product.unit_of_measure,
            func.sum(StockBalance.quantity),
            func.coalesce(Material.standard_cost, 0),
        )
        .join(Product, Product.id == StockBalance.product_id)
        .outerjoin(Material, Material.product_id == Product.id)
        .group_by(Product.code, Product.unit_of_measure, Material.standard_cost)
        .order_by(Product.code)
    ):
        quantity, cost = Decimal(quantity or 0), Decimal(cost or 0)
        if quantity != 0:
            rows.append(ValuationRow(code, quantity, unit, cost, (quantity * cost).quantize(Decimal("0.01"))))
    return rows, sum((r.value for r in rows), Decimal(0))
