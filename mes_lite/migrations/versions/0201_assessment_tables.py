"""assessment tables

Revision ID: 0201_assessment
Revises:
Create Date: 2026-11-26 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0201_assessment"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("assessment",)
depends_on: str | Sequence[str] | None = "0002_production"


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("index_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("proposals", sa.JSON(), nullable=False),
        sa.Column("evidence_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("completed_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_assessments_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessments_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_assessments_completed_at_ns"), ["completed_at_ns"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessments_completed_at_ns"))
        batch_op.drop_index(batch_op.f("ix_assessments_status"))
    op.drop_table("assessments")
