"""Shared MES fixtures: the same tests run on SQLite and on PostgreSQL.

`mes_db_url` is parametrised over both databases: a fresh database per test, already migrated
to every Alembic head (production, inventory, ...) and holding three users `operator`,
`supervisor`, `admin` (password TEST_PASSWORD). To stay fast, each test session migrates one
template per database once and every test gets a copy (a file copy for SQLite, `CREATE DATABASE
... TEMPLATE` for PostgreSQL). `mes_client` is a TestClient of `create_app` on that database,
authenticated as admin; `mes_auth_headers[role]` gives bearer headers per role; `mes_session`
is a SQLAlchemy session on the same database.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from mes_lite.api.app import create_app
from mes_lite.db import make_engine, session_factory
from mes_lite.schema import migrate
from mes_lite.services import users
from mes_lite.settings import MesSettings
from tests import servers

MES_ROLES = ("operator", "supervisor", "admin")
TEST_PASSWORD = "correct-horse-battery"


def _seed(url: str) -> dict[str, dict[str, str]]:
    migrate(url)
    engine = make_engine(url)
    headers: dict[str, dict[str, str]] = {}
    try:
        with session_factory(engine)() as session:
            for role in MES_ROLES:
                user = users.create_user(session, role, TEST_PASSWORD, role)
                headers[role] = {"Authorization": f"Bearer {users.issue_token(session, user, name='test')}"}
            session.commit()
    finally:
        engine.dispose()
    return headers


class MesTemplates:
    """One migrated, seeded database per kind for the whole test session, created on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stack = ExitStack()
        self.sqlite: tuple[Path, dict] | None = None
        self.postgres: tuple[str, dict] | None = None
        self.stack.callback(self.drop_copies)
        self.copies: list[str] = []

    def sqlite_copy(self, target: Path) -> tuple[str, dict]:
        if self.sqlite is None:
            path = self.directory / "template.db"
            self.sqlite = (path, _seed(f"sqlite:///{path}"))
        with sqlite3.connect(self.sqlite[0]) as source, sqlite3.connect(target) as copy:
            source.backup(copy)  # consistent even if the template's WAL was not checkpointed
        return f"sqlite:///{target}", self.sqlite[1]

    def postgres_copy(self) -> tuple[str, dict, str]:
        if self.postgres is None:
            url = self.stack.enter_context(servers.postgres_database())
            self.postgres = (url, _seed(url))
        template_url, headers = self.postgres
        template = template_url.rsplit("/", 1)[1]
        name = f"edgefab_test_{uuid.uuid4().hex[:12]}"
        import psycopg

        with psycopg.connect(servers.PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return template_url.rsplit("/", 1)[0] + "/" + name, headers, name

    def drop_copies(self) -> None:
        """Drop every copy at the end of the session (dropping each after its test costs a second)."""
        import psycopg

        with psycopg.connect(servers.PG_ADMIN_URL, autocommit=True) as admin:
            for name in self.copies:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mes_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MesTemplates]:
    templates = MesTemplates(tmp_path_factory.mktemp("mes-templates"))
    with templates.stack:
        yield templates


@pytest.fixture(params=["sqlite", "postgresql"])
def _mes_database(
    request: pytest.FixtureRequest, tmp_path: Path, mes_templates: MesTemplates
) -> Iterator[tuple[str, dict]]:
    if request.param == "sqlite":
        yield mes_templates.sqlite_copy(tmp_path / "mes.db")
        return
    url, headers, name = mes_templates.postgres_copy()
    mes_templates.copies.append(name)
    yield url, headers


@pytest.fixture
def mes_db_url(_mes_database: tuple[str, dict]) -> str:
    """A fresh, migrated MES database with three users: a SQLite file, then a PostgreSQL database."""
    return _mes_database[0]


@pytest.fixture
def mes_auth_headers(_mes_database: tuple[str, dict]) -> dict[str, dict[str, str]]:
    """Bearer headers per role for the users `operator`, `supervisor`, `admin`."""
    return _mes_database[1]


@pytest.fixture
def mes_settings(mes_db_url: str) -> MesSettings:
    return MesSettings(database_url=mes_db_url, micro_stop_threshold_s=120.0)


@pytest.fixture
def mes_session(mes_db_url: str) -> Iterator[Session]:
    engine = make_engine(mes_db_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def mes_client(mes_settings: MesSettings, mes_auth_headers: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    """The MES API on the parametrised database, authenticated as admin by default."""
    with TestClient(create_app(mes_settings), headers=mes_auth_headers["admin"]) as client:
        yield client
