"""The ISA-95 equipment hierarchy: Site -> Area -> Line -> WorkCenter (a machine).

Codes are the names used in the Unified Namespace (`enterprise/site/area/line/machine`), so the
ingest finds a machine's work center from an MQTT topic without a separate mapping table.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes_lite.db import Base


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)

    areas: Mapped[list[Area]] = relationship(back_populates="site", cascade="all, delete-orphan")


class Area(Base):
    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")

    site: Mapped[Site] = relationship(back_populates="areas")
    lines: Mapped[list[Line]] = relationship(back_populates="area", cascade="all, delete-orphan")


class Line(Base):
    __tablename__ = "lines"
    __table_args__ = (UniqueConstraint("area_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")

    area: Mapped[Area] = relationship(back_populates="lines")
    work_centers: Mapped[list[WorkCenter]] = relationship(back_populates="line", cascade="all, delete-orphan")


class WorkCenter(Base):
    """One machine. `ideal_cycle_time_s` is the fallback when no routing operation names one."""

    __tablename__ = "work_centers"
    __table_args__ = (UniqueConstraint("line_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    ideal_cycle_time_s: Mapped[float | None] = mapped_column(Float, default=None)
    allow_parallel_orders: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    line: Mapped[Line] = relationship(back_populates="work_centers")

    @property
    def path(self) -> str:
        """`enterprise/site/area/line/machine`, the UNS prefix of this machine's tags."""
        area = self.line.area
        return "/".join((area.site.enterprise, area.site.code, area.code, self.line.code, self.code))
