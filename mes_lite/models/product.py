"""Products, their bills of material and routings (where and how fast they are made)."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes_lite.db import Base


class Product(Base):
    """Anything with a code and a unit of measure: finished goods, semi-finished parts, materials."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    unit_of_measure: Mapped[str] = mapped_column(String(16), default="pcs")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    bom_lines: Mapped[list[BomLine]] = relationship(
        back_populates="product", cascade="all, delete-orphan", foreign_keys="BomLine.product_id"
    )
    routing: Mapped[list[RoutingOperation]] = relationship(back_populates="product", cascade="all, delete-orphan")


class BomLine(Base):
    """`quantity` of `component` (in the component's unit of measure) per one unit of `product`."""

    __tablename__ = "bom_lines"
    __table_args__ = (
        UniqueConstraint("product_id", "component_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[float] = mapped_column(Float)

    product: Mapped[Product] = relationship(back_populates="bom_lines", foreign_keys=[product_id])
    component: Mapped[Product] = relationship(foreign_keys=[component_id])


class RoutingOperation(Base):
    """One step of making a product on a work center, with the ideal cycle time OEE measures against."""

    __tablename__ = "routing_operations"
    __table_args__ = (
        UniqueConstraint("product_id", "work_center_id"),
        CheckConstraint("ideal_cycle_time_s > 0", name="ideal_cycle_time_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    work_center_id: Mapped[int] = mapped_column(ForeignKey("work_centers.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=10)
    name: Mapped[str] = mapped_column(String(200), default="")
    ideal_cycle_time_s: Mapped[float] = mapped_column(Float)

    product: Mapped[Product] = relationship(back_populates="routing")
