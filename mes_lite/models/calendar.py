"""The shift calendar: when production is planned, and the planned interruptions inside it.

Shift and break times are wall-clock times in the site's time zone; a shift whose end is not
after its start runs over midnight. Planned stops are absolute intervals (UTC ns).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes_lite.db import Base

ALL_WEEKDAYS = "1234567"
"""ISO weekdays (Monday = 1) on which a shift starts."""


class Shift(Base):
    __tablename__ = "shifts"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    start_time: Mapped[dt.time] = mapped_column(Time)
    end_time: Mapped[dt.time] = mapped_column(Time)
    weekdays: Mapped[str] = mapped_column(String(7), default=ALL_WEEKDAYS)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    breaks: Mapped[list[Break]] = relationship(back_populates="shift", cascade="all, delete-orphan")


class Break(Base):
    __tablename__ = "breaks"

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="break")
    start_time: Mapped[dt.time] = mapped_column(Time)
    end_time: Mapped[dt.time] = mapped_column(Time)

    shift: Mapped[Shift] = relationship(back_populates="breaks")


class PlannedStop(Base):
    """Planned maintenance, trials, cleaning: planned down time for one work center (or all of a site)."""

    __tablename__ = "planned_stops"
    __table_args__ = (CheckConstraint("end_ns > start_ns", name="positive_duration"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    work_center_id: Mapped[int | None] = mapped_column(ForeignKey("work_centers.id", ondelete="CASCADE"), index=True)
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("downtime_reasons.id"), default=None)
    note: Mapped[str] = mapped_column(String(500), default="")


class Holiday(Base):
    """A day on which no shift of the site runs."""

    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(200), default="")
