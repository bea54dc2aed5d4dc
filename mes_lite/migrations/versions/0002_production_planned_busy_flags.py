"""planned_busy flags on machine-state intervals and production counts

Revision ID: 0002_production
Revises: 0001_production
Create Date: 2026-11-26 11:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_production"
down_revision: str | Sequence[str] | None = "0001_production"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("machine_state_intervals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_busy", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("production_counts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_busy", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("production_counts", schema=None) as batch_op:
        batch_op.drop_column("planned_busy")
    with op.batch_alter_table("machine_state_intervals", schema=None) as batch_op:
        batch_op.drop_column("planned_busy")
