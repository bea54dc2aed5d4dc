"""The MES schema: Alembic migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic import command
from fastapi.testclient import TestClient

from mes_lite.schema import alembic_config, current_revisions, migrate


def test_migrating_to_heads_leaves_nothing_for_autogenerate_to_add(mes_db_url: str) -> None:
    assert current_revisions(mes_db_url), "the database has no Alembic revision"
    command.check(alembic_config(mes_db_url))  # raises if models and migrations differ


def test_migrating_twice_changes_nothing(mes_db_url: str) -> None:
    before = current_revisions(mes_db_url)
    migrate(mes_db_url)
    assert current_revisions(mes_db_url) == before


def test_an_operator_logs_in_and_is_told_who_they_are(mes_client: TestClient) -> None:
    response = mes_client.post(
        "/api/auth/token", data={"username": "operator", "password": "correct-horse-battery"}, headers={}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    me = mes_client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "operator" and me.json()["role"] == "operator"


def test_a_wrong_password_is_refused(mes_client: TestClient) -> None:
    response = mes_client.post("/api/auth/token", data={"username": "operator", "password": "wrong-password"})
    assert response.status_code == 401


def test_an_operator_cannot_add_users(mes_client: TestClient, mes_auth_headers: dict) -> None:
    body = {"username": "eve", "password": "long-enough-pw", "role": "admin"}
    response = mes_client.post("/api/users", json=body, headers=mes_auth_headers["operator"])
    assert response.status_code == 403
    assert "admin role" in response.json()["detail"]
    assert mes_client.post("/api/users", json=body).status_code == 201


def test_a_request_without_a_token_is_refused(mes_client: TestClient) -> None:
    response = mes_client.get("/api/auth/me", headers={"Authorization": ""})
    assert response.status_code == 401
