"""The web pages over HTTP (no browser): login and roles, CSRF, language choice, local assets, SSE.

Runs on the shared MES fixtures (a fresh migrated database with users operator / supervisor /
admin, SQLite and PostgreSQL) through the app's TestClient; the SSE test uses a real uvicorn.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mes_lite.api.app import create_app
from mes_lite.db import make_engine, session_factory
from mes_lite.services.master_data_import import import_file
from mes_lite.settings import MesSettings
from mes_lite.web.templating import STATIC_DIR, TEMPLATES_DIR
from tests.integration.mes_fixtures import TEST_PASSWORD

DEMO_PLANT = Path(__file__).resolve().parents[2] / "mes_lite" / "examples" / "demo-plant.yaml"
PRESS01 = "dongguan/stamping/line1/press01"
SQLITE_ONLY = pytest.mark.parametrize("_mes_database", ["sqlite"], indirect=True)
"""For checks of the web layer itself; the writes (login, logout, operator posts) also run on PostgreSQL."""


@pytest.fixture
def web(mes_settings: MesSettings) -> TestClient:
    engine = make_engine(mes_settings.database_url)
    with session_factory(engine)() as session:
        import_file(session, str(DEMO_PLANT))
        session.commit()
    engine.dispose()
    with TestClient(create_app(mes_settings), follow_redirects=False) as client:
        yield client


def csrf_of(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def log_in(client: TestClient, username: str) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login", data={"username": username, "password": TEST_PASSWORD, "next": "/board", "csrf_token": token}
    )
    assert response.status_code == 303 and response.headers["location"] == "/board"


def test_a_page_for_operators_sends_visitors_to_the_login_and_back(web: TestClient) -> None:
    response = web.get(f"/operator/{PRESS01}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2Foperator%2F{PRESS01.replace('/', '%2F')}&reason=needed"
    log_in(web, "operator")
    assert web.get(f"/operator/{PRESS01}").status_code == 200


@SQLITE_ONLY
def test_a_login_never_redirects_off_the_site(web: TestClient) -> None:
    token = csrf_of(web)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil"):
        response = web.post(
            "/login", data={"username": "operator", "password": TEST_PASSWORD, "next": target, "csrf_token": token}
        )
        assert response.headers["location"] == "/"


@SQLITE_ONLY
def test_a_wrong_password_is_refused_in_the_page_language(web: TestClient) -> None:
    token = csrf_of(web)
    response = web.post(
        "/login?lang=en", data={"username": "operator", "password": "nope-nope-nope", "csrf_token": token}
    )
    assert response.status_code == 401 and "Wrong username or password." in response.text
    assert "edgefab_token" not in response.cookies


def test_a_post_without_the_csrf_token_or_with_another_is_refused_and_changes_nothing(web: TestClient) -> None:
    log_in(web, "operator")
    web.get(f"/operator/{PRESS01}")
    for data in ({}, {"csrf_token": "forged"}):
        response = web.post(f"/operator/{PRESS01}/reason", data={"interval_id": "1", "reason": "die_jam", **data})
        assert response.status_code == 403
    # a cross-site form cannot send the cookie's value: without the cookie the header alone is not enough either
    web.cookies.delete("edgefab_csrf")
    response = web.post("/logout", headers={"X-CSRF-Token": "anything"})
    assert response.status_code == 403


def test_logging_out_revokes_the_token_not_only_the_cookie(web: TestClient) -> None:
    log_in(web, "supervisor")
    token = web.cookies.get("edgefab_token")
    assert web.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    response = web.post("/logout", data={"csrf_token": csrf_of(web, "/")})
    assert response.status_code == 303
    assert web.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@SQLITE_ONLY
def test_the_language_comes_from_the_query_then_the_cookie_then_the_browser(web: TestClient) -> None:
    assert web.get("/board", headers={"Accept-Language": "en-US,en;q=0.9"}).headers["content-language"] == "en"
    assert web.get("/board", headers={"Accept-Language": "fr"}).headers["content-language"] == "zh-CN"
    chosen = web.get("/board?lang=en", headers={"Accept-Language": "zh-CN"})
    assert chosen.headers["content-language"] == "en" and chosen.cookies.get("lang") == "en"
    again = web.get("/board", headers={"Accept-Language": "zh-CN"})
    assert again.headers["content-language"] == "en" and "<h1>Andon board</h1>" in again.text


@SQLITE_ONLY
def test_every_asset_is_local_and_static_paths_cannot_escape(web: TestClient) -> None:
    for path in [*TEMPLATES_DIR.rglob("*.html"), *STATIC_DIR.rglob("*.css"), *STATIC_DIR.rglob("*.js")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f"{path.name} loads something remote"
        assert "@import url(http" not in text
    assert web.get("/static/css/app.css").status_code == 200
    assert (
        web.get("/static/js/board.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    )
    for escape in ("/static/../web/i18n.py", "/static/%2e%2e/i18n.py", "/static/..%2Fi18n.py"):
        assert web.get(escape).status_code == 404


@SQLITE_ONLY
def test_unknown_machines_and_pages_get_a_clear_404_page(web: TestClient) -> None:
    response = web.get("/machines/dongguan/nowhere/line9/x9?lang=en")
    assert response.status_code == 404 and "Not found: dongguan/nowhere/line9/x9" in response.text


def test_the_board_event_stream_sends_tiles_as_server_sent_events(tmp_path: Path) -> None:
    """Over a real uvicorn (TestClient would wait for the end of an endless stream); SQLite only."""
    from tests.e2e.conftest import serve
    from tests.e2e.web_seed import seed

    url = f"sqlite:///{tmp_path / 'mes.db'}"
    seed(url)
    for app in serve(MesSettings(database_url=url)):
        with httpx.stream("GET", f"{app.base_url}/board/events?lang=en", timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines: list[str] = []
            for line in response.iter_lines():
                lines.append(line)
                if line == "" and "event: tiles" in lines:
                    break
        assert lines[0] == "retry: 2000"
        data = "\n".join(x[len("data: ") :] for x in lines if x.startswith("data: "))
        assert data.count('class="tile ') == 4 and "No data from this machine yet" in data
        assert "WO-1001" in data, "the running order is on its tile"


def test_operator_posts_start_an_order_give_a_reason_and_report_scrap_on_both_databases(
    web: TestClient, mes_settings: MesSettings
) -> None:
    import time

    from sqlalchemy import select

    from mes_lite.models import MachineStateInterval, ScrapReport, WorkOrder
    from mes_lite.services import work_orders
    from mes_lite.services.production import ProductionRecorder

    engine = make_engine(mes_settings.database_url)
    now = time.time_ns()
    with session_factory(engine)() as session:
        order = work_orders.create_order(session, "WO-7", "BRK-100", PRESS01, 100)
        work_orders.transition(session, order.id, "release")
        recorder = ProductionRecorder()
        wc = order.work_center_id
        recorder.record_state(session, wc, "fault", now - 60 * 10**9)
        session.commit()
        order_id = order.id
    log_in(web, "operator")
    station = f"/operator/{PRESS01}"
    token = csrf_of(web, station)
    interval_id = re.search(r'name="interval_id" value="(\d+)"', web.get(station).text).group(1)

    started = web.post(f"{station}/orders/{order_id}/start", data={"csrf_token": token})
    assert started.status_code == 303 and started.headers["location"].endswith("done=start")
    reason = web.post(f"{station}/reason", data={"csrf_token": token, "interval_id": interval_id, "reason": "die_jam"})
    assert reason.headers["location"].endswith("done=reason")
    with session_factory(engine)() as session:
        recorder = ProductionRecorder()
        recorder.record_count(session, wc, now - 30 * 10**9, 20, 0, work_order=session.get(WorkOrder, order_id))
        session.commit()
    scrap = web.post(
        f"{station}/scrap", data={"csrf_token": token, "order_id": order_id, "quantity": "3", "reason": "burr"}
    )
    assert scrap.headers["location"].endswith("done=scrap")
    too_much = web.post(
        f"{station}/scrap", data={"csrf_token": token, "order_id": order_id, "quantity": "99", "reason": "burr"}
    )
    assert too_much.headers["location"].endswith("failed=scrap")
    released_only = web.post(f"{station}/orders/{order_id}/close", data={"csrf_token": token})
    assert released_only.headers["location"].endswith("failed=action"), "closing is not an operator action"

    with session_factory(engine)() as session:
        assert session.get(WorkOrder, order_id).status == "running"
        interval = session.get(MachineStateInterval, int(interval_id))
        assert interval.reason_id is not None and interval.reason_set_by_id is not None
        assert [r.quantity for r in session.scalars(select(ScrapReport))] == [3]
    engine.dispose()


def test_supervisors_create_release_and_close_work_orders_and_a_refusal_says_why(
    web: TestClient, mes_settings: MesSettings
) -> None:
    from mes_lite.models import WorkOrder
    from mes_lite.services import work_orders

    log_in(web, "operator")
    assert web.get("/orders").status_code == 303, "work orders are a supervisor's page"
    assert 'href="/orders"' not in web.get("/board").text, "and not in an operator's navigation"
    web.cookies.clear()
    log_in(web, "supervisor")
    page = web.get("/orders")
    assert page.status_code == 200 and 'href="/orders"' in page.text
    token = csrf_of(web, "/orders")

    created = web.post(
        "/orders",
        data={"csrf_token": token, "number": "WO-50", "product": "BRK-100", "machine": PRESS01, "planned_qty": "40"},
    )
    assert created.status_code == 303 and created.headers["location"] == "/orders?view=open&done=create&number=WO-50"
    assert "已新建工单 WO-50（计划中）。" in web.get(created.headers["location"]).text  # Chinese unless asked
    assert "Work order WO-50 created (planned)." in web.get(created.headers["location"] + "&lang=en").text
    assert "notice-ok" not in web.get("/orders?view=open&done=create&number=WO-99").text  # no such order: no message
    again = web.post(
        "/orders",
        data={"csrf_token": token, "number": "WO-50", "product": "BRK-100", "machine": PRESS01, "planned_qty": "5"},
    )
    assert again.status_code == 422 and "work order &#39;WO-50&#39; already exists" in again.text
    for quantity, why in (("", "planned quantity &#39;&#39; is not a number"), ("0", "must be greater than 0")):
        refused = web.post(
            "/orders",
            data={
                "csrf_token": token,
                "number": "WO-51",
                "product": "BRK-100",
                "machine": PRESS01,
                "planned_qty": quantity,
            },
        )
        assert refused.status_code == 422 and why in refused.text

    engine = make_engine(mes_settings.database_url)
    with session_factory(engine)() as session:
        order_id = session.query(WorkOrder).filter_by(number="WO-50").one().id
    released = web.post(f"/orders/{order_id}/release", data={"csrf_token": token, "view": "open"})
    assert released.status_code == 303
    closing_too_early = web.post(f"/orders/{order_id}/close", data={"csrf_token": token, "view": "open"})
    assert closing_too_early.status_code == 422
    assert "work order WO-50 is released: cannot close (allowed now: start, unrelease)" in closing_too_early.text

    with session_factory(engine)() as session:  # the operator runs it to completion
        for action in ("start", "complete"):
            work_orders.transition(session, order_id, action)
        session.commit()
    closed = web.post(f"/orders/{order_id}/close", data={"csrf_token": token, "view": "open"})
    assert closed.status_code == 303 and closed.headers["location"].endswith("done=close&number=WO-50")
    open_list = web.get("/orders?view=open").text
    assert 'data-order="WO-50"' not in open_list and 'data-order="WO-51"' not in open_list  # refused: not stored
    closed_list = web.get("/orders?view=closed&lang=zh-CN").text
    assert 'data-order="WO-50"' in closed_list and "已关闭" in closed_list
    with session_factory(engine)() as session:
        assert session.get(WorkOrder, order_id).status == "closed"  # type: ignore[union-attr]
    engine.dispose()
