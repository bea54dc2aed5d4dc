"""Work orders, their status history, notes and operator scrap reports.

The status rules live in `mes_lite.services.work_orders`; the tables only record what happened.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Float, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes_lite.db import Base


class WorkOrderStatus(StrEnum):
    PLANNED = "planned"
    RELEASED = "released"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CLOSED = "closed"


class WorkOrder(Base):
    __tablename__ = "work_orders"
    __table_args__ = (CheckConstraint("planned_qty > 0", name="planned_qty_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    work_center_id: Mapped[int] = mapped_column(ForeignKey("work_centers.id"), index=True)
    planned_qty: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=WorkOrderStatus.PLANNED.value, index=True)
    planned_start_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    planned_end_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    started_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    completed_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    history: Mapped[list[WorkOrderStatusChange]] = relationship(
        back_populates="work_order", cascade="all, delete-orphan", order_by="WorkOrderStatusChange.id"
    )
    notes: Mapped[list[WorkOrderNote]] = relationship(
        back_populates="work_order", cascade="all, delete-orphan", order_by="WorkOrderNote.id"
    )


class WorkOrderStatusChange(Base):
    __tablename__ = "work_order_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at_ns: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    note: Mapped[str] = mapped_column(String(500), default="")

    work_order: Mapped[WorkOrder] = relationship(back_populates="history")


class WorkOrderNote(Base):
    __tablename__ = "work_order_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at_ns: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    text: Mapped[str] = mapped_column(Text)

    work_order: Mapped[WorkOrder] = relationship(back_populates="notes")


class ScrapReport(Base):
    """An operator's report that `quantity` parts already counted as produced are scrap, and why."""

    __tablename__ = "scrap_reports"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    scrap_reason_id: Mapped[int] = mapped_column(ForeignKey("scrap_reasons.id"))
    quantity: Mapped[float] = mapped_column(Float)
    at_ns: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    note: Mapped[str] = mapped_column(String(500), default="")
