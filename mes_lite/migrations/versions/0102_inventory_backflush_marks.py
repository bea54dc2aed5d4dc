"""inventory: backflush marks (production counts already backflushed per work order)

Revision ID: 0102_inventory
Revises: 0101_inventory
Create Date: 2026-11-26 12:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0102_inventory"
down_revision: str | Sequence[str] | None = "0101_inventory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backflush_marks",
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("backflushed_qty", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_order_id"], ["work_orders.id"], name=op.f("fk_backflush_marks_work_order_id_work_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("work_order_id", name=op.f("pk_backflush_marks")),
    )


def downgrade() -> None:
    op.drop_table("backflush_marks")
