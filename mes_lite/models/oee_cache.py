"""Hourly sums of the OEE time model, a cache so a year of minute-resolution data answers in well under a second.

One row per work center, UTC hour and micro-stop threshold: state time per bucket and counts,
only for planned busy time (like the raw query). Rows exist only for settled hours; any write
into a cached hour (a late replay, a reason given to an old stop, a back-dated count) deletes
the hour's rows, and the next query recomputes them from the raw tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from mes_lite.db import Base


class OeeHourCache(Base):
    __tablename__ = "oee_hour_cache"

    work_center_id: Mapped[int] = mapped_column(ForeignKey("work_centers.id", ondelete="CASCADE"), primary_key=True)
    hour_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    micro_threshold_ms: Mapped[int] = mapped_column(Integer, primary_key=True)
    production_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    micro_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    setup_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    fault_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    idle_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    planned_down_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    produced_qty: Mapped[float] = mapped_column(Float, default=0)
    reject_qty: Mapped[float] = mapped_column(Float, default=0)
    startup_reject_qty: Mapped[float] = mapped_column(Float, default=0)
    ideal_production_s: Mapped[float] = mapped_column(Float, default=0)
