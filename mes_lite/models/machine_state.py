"""Machine-state intervals: what each machine did, when, and why it stopped.

Times are UTC nanoseconds (like `Sample.ts_ns`) so window arithmetic is exact integer
arithmetic on SQLite and PostgreSQL alike. An open interval (the current state) has no end.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import true

from mes_lite.db import Base


class StateCategory(StrEnum):
    """Where an interval falls in the ISO 22400-2 time model (see docs/oee.md)."""

    PRODUCTION = "production"  # APT: the machine is making parts
    SETUP = "setup"  # AUST: changeover, adjustment
    FAULT = "fault"  # ADET (delay): malfunction, breakdown
    IDLE = "idle"  # ADOT (down): available but not executing: idle, starved, blocked, no order
    PLANNED_DOWN = "planned_down"  # PDOT: planned stop reported by the machine or given a planned reason


class MachineStateInterval(Base):
    """One state of one machine from `start_ns` to `end_ns`.

    An interval never crosses a shift, break or planned-stop edge nor a UTC hour (the ingest and the
    API split it there when it ends), so `planned_busy` says whether all of it lies in planned busy
    time per the calendar, the OEE query only has to clip at the window's two edges, and hourly
    sums are a plain GROUP BY. `episode_ns` is the duration of the whole state episode the piece
    belongs to, so a stop split at an edge is still judged a micro stop (or not) as a whole.
    """

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
    episode_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    planned_busy: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    source: Mapped[str] = mapped_column(String(16), default="ingest")
