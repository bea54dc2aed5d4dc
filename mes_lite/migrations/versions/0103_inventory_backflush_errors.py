"""inventory: why a work order's automatic backflush last failed (on its backflush mark)

Revision ID: 0103_inventory
Revises: 0102_inventory
Create Date: 2026-11-26 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0103_inventory"
down_revision: str | Sequence[str] | None = "0102_inventory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backflush_marks") as batch:
        batch.add_column(sa.Column("last_error", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("last_error_at_ns", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("backflush_marks") as batch:
        batch.drop_column("last_error_at_ns")
        batch.drop_column("last_error")
