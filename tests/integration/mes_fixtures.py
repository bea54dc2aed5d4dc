"""Shared MES fixtures: the same tests run on SQLite and on PostgreSQL.

`mes_db_url` is parametrised over both databases and already migrated to every Alembic head
(production, inventory, ...). `mes_client` is a TestClient of `create_app` on that database,
authenticated as an admin; `mes_auth_headers[role]` gives headers for an operator, a supervisor
and an admin. `mes_session` is a SQLAlchemy session on the same database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from mes_lite.api.app import create_app
from mes_lite.db import make_engine, session_factory
from mes_lite.schema import migrate
from mes_lite.services import users
from mes_lite.settings import MesSettings

MES_ROLES = ("operator", "supervisor", "admin")
TEST_PASSWORD = "correct-horse-battery"


@pytest.fixture(params=["sqlite", "postgresql"])
def mes_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated MES database: a SQLite file, then a PostgreSQL database."""
    sqlite = request.param == "sqlite"
    url = f"sqlite:///{tmp_path / 'mes.db'}" if sqlite else request.getfixturevalue("postgres_url")
    migrate(url)
    yield url


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
def mes_auth_headers(mes_db_url: str) -> dict[str, dict[str, str]]:
    """Bearer headers per role: users `operator`, `supervisor`, `admin` exist with TEST_PASSWORD."""
    engine = make_engine(mes_db_url)
    headers: dict[str, dict[str, str]] = {}
    with session_factory(engine)() as session:
        for role in MES_ROLES:
            user = users.create_user(session, role, TEST_PASSWORD, role)
            headers[role] = {"Authorization": f"Bearer {users.issue_token(session, user, name='test')}"}
        session.commit()
    engine.dispose()
    return headers


@pytest.fixture
def mes_client(mes_settings: MesSettings, mes_auth_headers: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    """The MES API on the parametrised database, authenticated as admin by default."""
    with TestClient(create_app(mes_settings), headers=mes_auth_headers["admin"]) as client:
        yield client
