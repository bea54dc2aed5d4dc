"""hourly OEE cache; state episode duration

Revision ID: 0003_production
Revises: 0002_production
Create Date: 2026-11-26 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_production"
down_revision: str | Sequence[str] | None = "0002_production"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oee_hour_cache",
        sa.Column("work_center_id", sa.Integer(), nullable=False),
        sa.Column("hour_ns", sa.BigInteger(), nullable=False),
        sa.Column("micro_threshold_ms", sa.Integer(), nullable=False),
        sa.Column("production_ns", sa.BigInteger(), nullable=False),
        sa.Column("micro_ns", sa.BigInteger(), nullable=False),
        sa.Column("setup_ns", sa.BigInteger(), nullable=False),
        sa.Column("fault_ns", sa.BigInteger(), nullable=False),
        sa.Column("idle_ns", sa.BigInteger(), nullable=False),
        sa.Column("planned_down_ns", sa.BigInteger(), nullable=False),
        sa.Column("produced_qty", sa.Float(), nullable=False),
        sa.Column("reject_qty", sa.Float(), nullable=False),
        sa.Column("startup_reject_qty", sa.Float(), nullable=False),
        sa.Column("ideal_production_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_center_id"],
            ["work_centers.id"],
            name=op.f("fk_oee_hour_cache_work_center_id_work_centers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("work_center_id", "hour_ns", "micro_threshold_ms", name=op.f("pk_oee_hour_cache")),
    )
    with op.batch_alter_table("machine_state_intervals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("episode_ns", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("machine_state_intervals", schema=None) as batch_op:
        batch_op.drop_column("episode_ns")
    op.drop_table("oee_hour_cache")
