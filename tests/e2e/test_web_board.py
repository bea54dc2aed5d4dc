"""The andon board in a real browser, fed by the real data path (simulated PLCs, gateway, Mosquitto, ingest)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from mes_lite.settings import MesSettings
from tests.e2e.conftest import WebApp, login, screenshot
from tests.e2e.live_factory import LiveFactory, live_factory
from tests.e2e.web_seed import PRESS01

TILE = f'li.tile[data-work-center="{PRESS01}"]'


@pytest.fixture(scope="module")
def factory(web_settings: MesSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFactory]:
    with live_factory(web_settings, tmp_path_factory.mktemp("factory")) as running:
        yield running


def test_the_board_shows_a_state_change_of_the_simulated_factory_within_seconds(
    web_app: WebApp, factory: LiveFactory, page_factory
) -> None:  # type: ignore[no-untyped-def]
    page = page_factory("en")
    response = page.goto(f"{web_app.base_url}/board")
    assert response is not None and response.status == 200, response and response.text()[:500]
    page.evaluate("window.__loaded_once = true")
    tile = page.locator(TILE)
    tile.wait_for()
    page.wait_for_function(f"document.querySelector('{TILE}').dataset.state !== ''", timeout=15_000)

    forced_at = time.monotonic()
    factory.force_state("press01", "fault", wall_duration_s=120)
    page.wait_for_function(f"document.querySelector('{TILE}').dataset.state === 'fault'", timeout=10_000)
    seen_after_s = time.monotonic() - forced_at

    assert page.evaluate("window.__loaded_once") is True, "the board must update without reloading"
    assert seen_after_s < 8
    label = tile.locator("[data-role=state-label]")
    assert label.inner_text().strip().endswith("Fault"), "the state is written, not only coloured"
    assert "state-fault" in (tile.get_attribute("class") or "")
    assert tile.locator("[data-role=reason]").inner_text() == "No reason given"
    assert re.fullmatch(r"\d+:\d\d", tile.locator(".stop-clock").inner_text())
    screenshot(page, "board-en-fault")


def test_an_operator_gives_the_stop_a_reason_in_two_taps_and_board_and_api_show_it(
    web_app: WebApp, factory: LiveFactory, page_factory
) -> None:  # type: ignore[no-untyped-def]
    factory.force_state("press01", "running", wall_duration_s=60)
    tablet = page_factory("zh-CN", viewport={"width": 1280, "height": 800})
    login(tablet, web_app.base_url, "operator", f"/operator/{PRESS01}")
    label = tablet.locator("[data-role=state-label]")
    tablet.wait_for_function("document.querySelector('[data-role=state-label]').textContent.includes('运行')")

    factory.force_state("press01", "fault", wall_duration_s=120)  # the tablet notices by itself (SSE, reload)
    tablet.get_by_role("heading", name="设备为什么停机？").wait_for(timeout=10_000)
    assert label.inner_text().strip().endswith("故障")
    board = page_factory("zh-CN")
    board.goto(f"{web_app.base_url}/board")
    board.wait_for_function(f"document.querySelector('{TILE}').dataset.state === 'fault'", timeout=10_000)

    tablet.get_by_role("radio", name="卡模").check()  # tap 1: the reason
    tablet.get_by_role("button", name="确认原因").click()  # tap 2: confirm
    tablet.locator(".notice-ok").wait_for()
    screenshot(tablet, "operator-zh-CN-reason-given")

    board.wait_for_function(
        f"document.querySelector('{TILE} [data-role=reason]').textContent.trim() === '卡模'", timeout=10_000
    )
    response = httpx.get(
        f"{web_app.base_url}/api/andon", params={"path": PRESS01}, headers=web_app.api_token("supervisor")
    )
    (tile,) = response.json()["work_centers"]
    assert tile["state"] == "fault" and tile["reason"] == "die_jam"
    screenshot(board, "board-zh-CN-reason")


def test_the_machine_page_shows_live_tag_values_from_the_gateway(
    web_app: WebApp, factory: LiveFactory, page_factory
) -> None:  # type: ignore[no-untyped-def]
    web_app.settings.mqtt_url = factory.mqtt_url  # the MES service's EDGEFAB_MES_MQTT_URL
    page = page_factory("en")
    page.goto(f"{web_app.base_url}/machines/{PRESS01}")
    oil = page.locator("#machine-live tr[data-tag=oil_temp] td.value")
    oil.wait_for(timeout=15_000)  # pushed over SSE as the gateway publishes
    assert re.fullmatch(r"-?[\d,]+\.\d\d", oil.inner_text().strip())
    assert page.locator("#machine-live tr[data-tag=oil_temp] td").nth(1).inner_text() == "degC"
    screenshot(page, "machine-en-live")
