"""`edgefab mes ...`: create and upgrade the database, add users, import master data, serve the API, ingest.

Every command takes `--database URL` (default: EDGEFAB_MES_DATABASE_URL, else sqlite:///var/edgefab/mes.db).
Handlers import their dependencies lazily so `edgefab --help` stays fast on a Pi.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    mes = sub.add_parser("mes", help="the MES: database, users, master data, API, ingest")
    mes_sub = mes.add_subparsers(dest="mes_command", metavar="MES_COMMAND")
    mes.set_defaults(func=lambda _args: (mes.print_help(), 2)[1])

    def database_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--database", metavar="URL", help="SQLAlchemy URL (default: EDGEFAB_MES_DATABASE_URL)")

    init = mes_sub.add_parser("init", help="create the database schema (idempotent)")
    database_option(init)
    init.set_defaults(func=_migrate)

    migrate = mes_sub.add_parser("migrate", help="upgrade the database schema to the newest revision")
    database_option(migrate)
    migrate.set_defaults(func=_migrate)

    user = mes_sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_command", metavar="USER_COMMAND")
    user.set_defaults(func=lambda _args: (user.print_help(), 2)[1])
    add = user_sub.add_parser("add", help="add a user (password from --password, EDGEFAB_MES_PASSWORD or a prompt)")
    database_option(add)
    add.add_argument("username")
    add.add_argument("--role", choices=["operator", "supervisor", "admin"], default="operator")
    add.add_argument("--password", help="avoid on shared machines (visible in ps); prefer the prompt")
    add.add_argument("--display-name", default="")
    add.add_argument("--token", action="store_true", help="also print a new API token for this user")
    add.set_defaults(func=_user_add)

    imp = mes_sub.add_parser("import", help="import master data from YAML or CSV (row-level errors, all or nothing)")
    database_option(imp)
    imp.add_argument("file", help="a .yaml/.yml file with sections, or a .csv whose name or --kind says what it holds")
    imp.add_argument("--kind", help="for CSV: sites, areas, lines, work_centers, products, bom_lines, routing, ...")
    imp.set_defaults(func=_import)

    serve = mes_sub.add_parser("serve", help="serve the REST API (OpenAPI at /docs)")
    database_option(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    run = mes_sub.add_parser("run", help="ingest machine states and counts from MQTT (tags with OEE roles)")
    database_option(run)
    run.add_argument("--config", help="edge YAML (default: EDGEFAB_MES_EDGE_CONFIG)")
    run.add_argument("--mqtt", metavar="URL", help="broker URL (default: the config's mqtt sink)")
    run.set_defaults(func=_run)


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from mes_lite.settings import MesSettings

    overrides = {}
    if getattr(args, "database", None):
        overrides["database_url"] = args.database
    if getattr(args, "config", None):
        overrides["edge_config"] = args.config
    if getattr(args, "mqtt", None):
        overrides["mqtt_url"] = args.mqtt
    return MesSettings(**overrides)


def _migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from mes_lite.schema import current_revisions, migrate

    settings = _settings(args)
    try:
        migrate(settings.database_url)
        revisions = ", ".join(sorted(current_revisions(settings.database_url)))
    except SQLAlchemyError as e:
        print(
            f"edgefab mes: cannot migrate {settings.database_url}: {e.__class__.__name__}: {e.orig or e}",
            file=sys.stderr,
        )
        return 1
    print(f"database {settings.database_url} is at revision {revisions}")
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from mes_lite.db import make_engine, session_factory
    from mes_lite.services import users
    from mes_lite.services.errors import ServiceError

    settings = _settings(args)
    password = args.password or os.environ.get("EDGEFAB_MES_PASSWORD")
    if not password:
        password = getpass.getpass(f"password for {args.username}: ")
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            user = users.create_user(session, args.username, password, args.role, args.display_name)
            token = users.issue_token(session, user, name="cli") if args.token else None
            session.commit()
    except ServiceError as e:
        print(f"edgefab mes user add: {e.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"user {args.username} ({args.role}) added")
    if token:
        print(f"API token (shown once): {token}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from mes_lite.db import make_engine, session_factory
    from mes_lite.services.master_data_import import ImportFailed, import_file

    settings = _settings(args)
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            summary = import_file(session, args.file, kind=args.kind)
            session.commit()
    except ImportFailed as e:
        for error in e.errors:
            print(error, file=sys.stderr)
        print(f"edgefab mes import: {len(e.errors)} error(s); nothing was imported", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    for section, count in summary.items():
        print(f"{section}: {count} row(s) created or updated")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mes_lite.api.app import create_app

    uvicorn.run(create_app(_settings(args)), host=args.host, port=args.port, log_level="info")
    return 0


def _run(args: argparse.Namespace) -> int:
    from mes_lite.ingest.runner import IngestConfigError, run_ingest

    try:
        run_ingest(_settings(args))
    except IngestConfigError as e:
        print(f"edgefab mes run: {e}", file=sys.stderr)
        return 1
    return 0
