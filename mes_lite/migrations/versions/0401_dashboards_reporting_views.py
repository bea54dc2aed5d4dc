"""reporting views and the OEE function for Grafana (PostgreSQL only)

Revision ID: 0401_dashboards
Revises:
Create Date: 2026-11-26 12:30:00

The SQL lives in `mes_lite.reporting_views` (CREATE OR REPLACE); a later change to it gets a new
revision on this branch that runs `CREATE_SQL` again. SQLite gets nothing: Grafana reads PostgreSQL.
"""

from collections.abc import Sequence

from alembic import op

from mes_lite import reporting_views

revision: str = "0401_dashboards"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("dashboards",)
depends_on: str | Sequence[str] | None = ("0003_production", "0102_inventory")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(reporting_views.CREATE_SQL)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(reporting_views.drop_sql())
