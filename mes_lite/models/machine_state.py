"""Machine-state intervals: what each machine did, when, and why it stopped.

Times are UTC nanoseconds (like `Sample.ts_ns`) so window arithmetic is exact integer
arithmetic on SQLite and PostgreSQL alike. An open interval (the current state) has no end.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mes_lite.db import Base


class StateCategory(StrEnum):
    """Where an interval falls in the ISO 22400-2 time model."""

    PRODUCTION = "production"  # APT: the machine is making parts
    SETUP = "setup"  # AUST: changeover, adjustment
    DELAY = "delay"  # ADET: idle, starved, blocked: ready but not producing
    DOWN = "down"  # ADOT: fault, breakdown, unplanned stop
    PLANNED_DOWN = "planned_down"  # PDOT: planned stop reported by the machine or a planned reason
    UNKNOWN = "unknown"  # no data (gateway or broker down): counted against availability


class MachineStateInterval(Base):
    __tablename__ = "machine_state_intervals"
    __table_args__ = (
        UniqueConstraint("work_center_id", "start_ns"),
        Index("ix_machine_state_intervals_wc_end", "work_center_id", "end_ns"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_center_id: Mapped[int] = mapped_column(ForeignKey("work_centers.id", ondelete="CASCADE"))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    state: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("downtime_reasons.id"), default=None)
    reason_set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    reason_set_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), default=None)
    source: Mapped[str] = mapped_column(String(16), default="ingest")
