"""Two concurrent issues of the last unit cannot both succeed: parallel HTTP requests against a real uvicorn
server on the parametrised database (PostgreSQL is the case that matters; SQLite must hold too)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session

from mes_lite.api.app import create_app
from mes_lite.inventory.ledger import reconcile_balances
from mes_lite.models import Product, WorkCenter, WorkOrder
from mes_lite.settings import MesSettings
from tests.integration.test_inventory_api import plant
from tests.servers import free_port

ROUNDS = 3
CONTENDERS = 4


@pytest.fixture
def server_url(mes_settings: MesSettings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(mes_settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_only_one_of_several_parallel_issues_of_the_last_unit_succeeds(
    server_url: str, mes_session: Session, mes_auth_headers: dict[str, dict[str, str]]
) -> None:
    plant(mes_session)
    headers = mes_auth_headers["admin"]
    with httpx.Client(base_url=server_url, headers=headers, timeout=30) as client:
        assert client.put("/api/inventory/materials", json={"code": "valve", "unit": "pcs"}).status_code == 200
        for body in (
            {"code": "W", "kind": "warehouse"},
            {"code": "W/Z", "kind": "zone", "parent": "W"},
            {"code": "W/Z/1", "kind": "bin", "parent": "W/Z"},
        ):
            assert client.post("/api/inventory/locations", json=body).status_code == 201
    valve = mes_session.query(Product).filter_by(code="valve").one()
    wc = mes_session.query(WorkCenter).filter_by(code="press01").one()
    mes_session.add(WorkOrder(number="WO-9", product_id=valve.id, work_center_id=wc.id, planned_qty=10))
    mes_session.commit()

    def issue(with_lot: bool, barrier: threading.Barrier) -> int:
        body = {"work_order": "WO-9", "material": "valve", "quantity": 1, "location": "W/Z/1"}
        if with_lot:
            body["lot"] = "V-1"
        with httpx.Client(base_url=server_url, headers=headers, timeout=30) as client:
            barrier.wait(timeout=10)
            return client.post("/api/inventory/issues", json=body).status_code

    with (
        httpx.Client(base_url=server_url, headers=headers, timeout=30) as client,
        ThreadPoolExecutor(CONTENDERS) as pool,
    ):
        for round_no in range(ROUNDS):
            received = client.post(
                "/api/inventory/receipts", json={"material": "valve", "quantity": 1, "location": "W/Z/1", "lot": "V-1"}
            )
            assert received.status_code == 201, received.text
            barrier = threading.Barrier(CONTENDERS)
            # half name the lot (direct lock), half let the server pick it (pick, then lock and re-check)
            statuses = list(pool.map(lambda i, b=barrier: issue(i % 2 == 0, b), range(CONTENDERS)))
            assert sorted(statuses) == [201] + [409] * (CONTENDERS - 1), f"round {round_no}: {statuses}"
            on_hand = client.get("/api/inventory/on-hand", params={"material": "valve"}).json()
            assert on_hand == [], f"round {round_no}: stock left or negative: {on_hand}"
        moves = client.get("/api/inventory/moves", params={"material": "valve"}).json()
    assert sorted(m["kind"] for m in moves) == ["issue"] * ROUNDS + ["receipt"] * ROUNDS
    mes_session.expire_all()
    assert reconcile_balances(mes_session) == []
