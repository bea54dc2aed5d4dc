"""Create and upgrade the MES database schema with Alembic (branches `production`, `inventory`).

`migrate(url)` is what `edgefab mes init` / `edgefab mes migrate` and the tests call: it upgrades
to all heads, so every branch (production, inventory, ...) is applied in dependency order.
Run as `python -m mes_lite.schema <alembic args>` for revisions and history.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import CommandLine, Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.set_main_option("path_separator", "os")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "heads") -> None:
    """Upgrade the database at `url` to `revision` (default: every branch head)."""
    command.upgrade(alembic_config(url), revision)


def current_revisions(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    from mes_lite.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """`alembic` with this package's configuration (URL from EDGEFAB_MES_DATABASE_URL)."""
    cli = CommandLine(prog="python -m mes_lite.schema")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.print_help()
        return 2
    config = alembic_config()
    config.cmd_opts = options
    cli.run_cmd(config, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
