"""Production counts: parts made (and rejected) at a moment on a work center, for a work order.

Each row carries the ideal cycle time that applied when the parts were made, so the ideal
production time of any window is SUM(produced_qty * ideal_cycle_time_s) whatever the product mix.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import true

from mes_lite.db import Base


class ProductionCount(Base):
    __tablename__ = "production_counts"
    __table_args__ = (Index("ix_production_counts_wc_ts", "work_center_id", "ts_ns"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    work_center_id: Mapped[int] = mapped_column(ForeignKey("work_centers.id", ondelete="CASCADE"))
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), default=None, index=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    produced_qty: Mapped[float] = mapped_column(Float, default=0)
    reject_qty: Mapped[float] = mapped_column(Float, default=0)
    ideal_cycle_time_s: Mapped[float | None] = mapped_column(Float, default=None)
    scrap_reason_id: Mapped[int | None] = mapped_column(ForeignKey("scrap_reasons.id"), default=None)
    planned_busy: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=true()
    )  # made inside planned busy time
    source: Mapped[str] = mapped_column(String(16), default="ingest")
    source_key: Mapped[str | None] = mapped_column(String(300), unique=True, default=None)
