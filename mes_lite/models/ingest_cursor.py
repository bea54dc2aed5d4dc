"""Where the ingest stands per tag, persisted so a restart or a broker replay counts nothing twice."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from mes_lite.db import Base


class IngestCursor(Base):
    __tablename__ = "ingest_cursors"

    tag_path: Mapped[str] = mapped_column(String(300), primary_key=True)
    last_ts_ns: Mapped[int] = mapped_column(BigInteger)
    last_counter: Mapped[float | None] = mapped_column(Float, default=None)
