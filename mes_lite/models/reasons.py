"""Why a machine stopped and why a part was scrapped.

Downtime reasons form a tree (category -> reason). A reason is planned or unplanned: giving an
unplanned stop a planned reason (e.g. "planned maintenance") moves it out of planned busy time.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes_lite.db import Base


class DowntimeCategory(StrEnum):
    """The loss a downtime reason belongs to (six big losses, availability side)."""

    BREAKDOWN = "breakdown"
    SETUP = "setup"
    MATERIAL = "material"
    OPERATOR = "operator"
    QUALITY = "quality"
    MINOR_STOP = "minor_stop"
    PLANNED = "planned"
    OTHER = "other"


class ScrapCategory(StrEnum):
    STARTUP = "startup"
    PRODUCTION = "production"


class DowntimeReason(Base):
    __tablename__ = "downtime_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("downtime_reasons.id"), default=None, index=True)
    planned: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str] = mapped_column(String(32), default=DowntimeCategory.OTHER.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[DowntimeReason | None] = relationship(remote_side=[id])


class ScrapReason(Base):
    __tablename__ = "scrap_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(32), default=ScrapCategory.PRODUCTION.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
