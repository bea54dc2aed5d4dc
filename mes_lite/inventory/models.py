"""Warehouse tables: materials' stock settings, locations, lots, the append-only ledger and its cached
balances, purchase and sales orders, shipments, genealogy links and reorder points.

A product of the production model *is* the material; `Material` only adds what the warehouse needs
(negative stock allowed?, backflushed?, FEFO or FIFO, standard cost, unit conversions). Times are UTC
nanoseconds (`*_ns`) like the rest of the MES. Quantities are exact decimals in the material's base unit.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes_lite.db import Base

if TYPE_CHECKING:  # imported by mes_lite.models, so no runtime import back into it
    from mes_lite.models.product import Product

QTY = Numeric(18, 6, asdecimal=True)
MONEY = Numeric(18, 4, asdecimal=True)
MOVE_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"
    ZONE = "zone"
    BIN = "bin"


PARENT_KIND = {
    LocationKind.WAREHOUSE: None,
    LocationKind.ZONE: LocationKind.WAREHOUSE,
    LocationKind.BIN: LocationKind.ZONE,
}


class Material(Base):
    """Stock settings of a product; its base unit is the product's `unit_of_measure`."""

    __tablename__ = "materials"
    __table_args__ = (
        CheckConstraint("pick_strategy IN ('fefo', 'fifo')", name="pick_strategy_known"),
        CheckConstraint("standard_cost >= 0", name="standard_cost_not_negative"),
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    backflush: Mapped[bool] = mapped_column(Boolean, default=False)
    pick_strategy: Mapped[str] = mapped_column(String(8), default="fifo")
    standard_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    shelf_life_days: Mapped[int | None] = mapped_column(Integer, default=None)

    product: Mapped[Product] = relationship()
    conversions: Mapped[list[UnitConversion]] = relationship(cascade="all, delete-orphan")


class UnitConversion(Base):
    """One `unit` of a material holds `factor` base units (box -> 50 pcs). No row, no conversion."""

    __tablename__ = "unit_conversions"
    __table_args__ = (UniqueConstraint("product_id", "unit"), CheckConstraint("factor > 0", name="factor_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("materials.product_id", ondelete="CASCADE"), index=True)
    unit: Mapped[str] = mapped_column(String(16))
    factor: Mapped[Decimal] = mapped_column(QTY)


class Location(Base):
    """Warehouse -> zone -> bin. `code` is the full path (WH1/A/01) so it reads well in lists and CSV."""

    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), default=None, index=True)
    dispatch: Mapped[bool] = mapped_column(Boolean, default=False)  # picked goods wait here until shipped
    work_center_id: Mapped[int | None] = mapped_column(ForeignKey("work_centers.id"), default=None)  # line side
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Location | None] = relationship(remote_side=[id])


class Lot(Base):
    """A quantity of one material with one history. Finished lots name the work order that made them."""

    __tablename__ = "lots"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    production_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    expiry_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), default=None, index=True)
    supplier_lot: Mapped[str] = mapped_column(String(64), default="")
    created_at_ns: Mapped[int] = mapped_column(BigInteger)

    product: Mapped[Product] = relationship()


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    supplier: Mapped[str] = mapped_column(String(200), default="")
    created_at_ns: Mapped[int] = mapped_column(BigInteger)

    lines: Mapped[list[PurchaseOrderLine]] = relationship(cascade="all, delete-orphan", order_by="PurchaseOrderLine.id")


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[Decimal] = mapped_column(QTY)  # base unit

    product: Mapped[Product] = relationship()


class SalesOrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"


class SalesOrder(Base):
    __tablename__ = "sales_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    customer: Mapped[str] = mapped_column(String(200))
    ship_to: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(24), default=SalesOrderStatus.OPEN.value)
    created_at_ns: Mapped[int] = mapped_column(BigInteger)

    lines: Mapped[list[SalesOrderLine]] = relationship(cascade="all, delete-orphan", order_by="SalesOrderLine.line_no")


class SalesOrderLine(Base):
    __tablename__ = "sales_order_lines"
    __table_args__ = (
        UniqueConstraint("sales_order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sales_order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[Decimal] = mapped_column(QTY)  # base unit

    product: Mapped[Product] = relationship()


class ShipmentStatus(StrEnum):
    PICKED = "picked"  # stock moved to the dispatch location
    PACKED = "packed"
    SHIPPED = "shipped"  # shipment moves posted: stock left the plant


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    sales_order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id"), index=True)
    dispatch_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(16), default=ShipmentStatus.PICKED.value)
    packages: Mapped[int] = mapped_column(Integer, default=0)
    carrier: Mapped[str] = mapped_column(String(100), default="")
    tracking: Mapped[str] = mapped_column(String(100), default="")
    created_at_ns: Mapped[int] = mapped_column(BigInteger)
    shipped_at_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_by: Mapped[str] = mapped_column(String(64))

    sales_order: Mapped[SalesOrder] = relationship()
    lines: Mapped[list[ShipmentLine]] = relationship(cascade="all, delete-orphan", order_by="ShipmentLine.id")


class ShipmentLine(Base):
    """One picked lot for one sales-order line."""

    __tablename__ = "shipment_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    sales_order_line_id: Mapped[int] = mapped_column(ForeignKey("sales_order_lines.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    picked_from_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[Decimal] = mapped_column(QTY)

    lot: Mapped[Lot] = relationship()
    order_line: Mapped[SalesOrderLine] = relationship()
    picked_from: Mapped[Location] = relationship()


class StockMove(Base):
    """One ledger entry. Never updated or deleted (triggers refuse it); a correction is a reversal.

    `reverses_id` is unique, so a move can be reversed once at most, even under concurrency.
    """

    __tablename__ = "stock_moves"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("from_location_id IS NOT NULL OR to_location_id IS NOT NULL", name="has_a_location"),
        CheckConstraint("length(reason) > 0", name="has_a_reason"),
        Index("ix_stock_moves_product_lot", "product_id", "lot_id"),
    )

    id: Mapped[int] = mapped_column(MOVE_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    from_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), default=None)
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), default=None)
    quantity: Mapped[Decimal] = mapped_column(QTY)
    at_ns: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))  # who: username, or the service (e.g. "ingest")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    reason: Mapped[str] = mapped_column(String(500))  # why
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("stock_moves.id"), default=None, unique=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), default=None, index=True)
    purchase_order_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_order_lines.id"), default=None, index=True
    )
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"), default=None, index=True)


class StockBalance(Base):
    """Cached on-hand per material, location and lot: the row that concurrent moves lock.

    Written only in the same transaction as the move it reflects; `reconcile_balances` checks it equals the ledger.
    """

    __tablename__ = "stock_balances"
    __table_args__ = (
        UniqueConstraint("product_id", "location_id", "lot_id"),
        Index("ix_stock_balances_product", "product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))


class LotConsumption(Base):
    """Genealogy edge: `produced_lot` (made by `work_order`) contains `consumed_lot`.

    `quantity` is how much of the consumed lot the work order used in total (net of reversals); every lot the
    order produced gets the same edges, since a small factory does not record which part went into which box.
    """

    __tablename__ = "lot_consumptions"
    __table_args__ = (
        UniqueConstraint("produced_lot_id", "consumed_lot_id", "work_order_id"),
        Index("ix_lot_consumptions_consumed", "consumed_lot_id", "produced_lot_id"),
    )

    id: Mapped[int] = mapped_column(MOVE_ID, primary_key=True, autoincrement=True)
    produced_lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    consumed_lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))


class ReorderPoint(Base):
    """Alert when on-hand (in one location, or everywhere if none) falls to `min_quantity` or below."""

    __tablename__ = "reorder_points"
    __table_args__ = (
        UniqueConstraint("product_id", "location_id"),
        CheckConstraint("min_quantity >= 0", name="min_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), default=None)
    min_quantity: Mapped[Decimal] = mapped_column(QTY)
    reorder_quantity: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))


class BackflushMark(Base):
    """How many parent units of a work order's production counts have been backflushed already, so counts
    arriving later are backflushed once (the row is locked while a backflush runs)."""

    __tablename__ = "backflush_marks"

    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), primary_key=True)
    backflushed_qty: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))
    updated_at_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Why the last automatic backflush of this order failed ("" once one succeeds): mes_lite/inventory/auto_backflush.py."""
    last_error_at_ns: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Since when `last_error` stands (0 without one)."""


APPEND_ONLY_SQL = {
    "sqlite": [
        "CREATE TRIGGER stock_moves_no_update BEFORE UPDATE ON stock_moves "
        "BEGIN SELECT RAISE(ABORT, 'stock moves are append-only: post a reversal instead'); END",
        "CREATE TRIGGER stock_moves_no_delete BEFORE DELETE ON stock_moves "
        "BEGIN SELECT RAISE(ABORT, 'stock moves are append-only: post a reversal instead'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION stock_moves_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'stock moves are append-only: post a reversal instead'; END $$",
        "CREATE TRIGGER stock_moves_no_update_delete BEFORE UPDATE OR DELETE ON stock_moves "
        "FOR EACH ROW EXECUTE FUNCTION stock_moves_append_only()",
    ],
}
"""Database-side guarantee that the ledger is append-only; run by the migration and by `create_all`."""

for _dialect, _statements in APPEND_ONLY_SQL.items():
    for _statement in _statements:
        event.listen(StockMove.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
