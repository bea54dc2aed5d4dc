"""Assessments kept over time: each holds its answers and the evidence edgefab proposed when it was started.

A draft can be edited and resumed; a finished assessment is frozen (score and level cached) so the
next one can show progress against it. Answers and proposals are JSON: their shape belongs to the
index file named by `index_id`, not to the database schema.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mes_lite.db import Base


class AssessmentStatus(StrEnum):
    DRAFT = "draft"
    FINAL = "final"


class Assessment(Base):
    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    index_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=AssessmentStatus.DRAFT.value, index=True)
    answers: Mapped[dict] = mapped_column(JSON, default=dict)  # {"items": {...}, "scenarios": {...}}
    proposals: Mapped[list] = mapped_column(JSON, default=list)  # Proposal.to_json() at creation / refresh
    evidence_at_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at_ns: Mapped[int] = mapped_column(BigInteger)
    updated_at_ns: Mapped[int] = mapped_column(BigInteger)
    completed_at_ns: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    level: Mapped[int | None] = mapped_column(Integer, default=None)
