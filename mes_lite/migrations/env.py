"""Alembic environment: the schema is `Base.metadata` (every MES model), the URL comes from the caller.

`mes_lite.schema.migrate(url)` passes the URL in the Alembic config; run by hand, `alembic` falls back
to the EDGEFAB_MES_DATABASE_URL setting. SQLite gets batch mode so ALTER TABLE works there too.
"""

from __future__ import annotations

from alembic import context

import mes_lite.models  # noqa: F401  (registers every table on Base.metadata)
from mes_lite.db import Base, make_engine
from mes_lite.settings import MesSettings

config = context.config
url = config.get_main_option("sqlalchemy.url") or MesSettings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
