"""The web pages in a real browser on a database with a day of history: languages, machine page,
operator station, warehouse, accessibility. One app server and one browser for the module."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from mes_lite.settings import MesSettings
from mes_lite.web.i18n import catalogue
from tests.e2e.conftest import WebApp, login, screenshot, serve
from tests.e2e.web_seed import PRESS01, seed, seed_history, seed_warehouse

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")

VISIBLE_TEXT_JS = """() => {
  const pageLang = document.documentElement.lang;
  const parts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!el || el.closest('script,style,[translate=no]') || el.closest('[lang]:not(html)')) continue;  // names, data
    if (el.getClientRects().length === 0) continue;
    parts.push(node.textContent);
  }
  for (const el of document.querySelectorAll('[aria-label],[title],[placeholder],[alt]')) {
    if (el.closest('[lang]:not(html),[translate=no]')) continue;
    for (const a of ['aria-label', 'title', 'placeholder', 'alt']) if (el.getAttribute(a)) parts.push(el.getAttribute(a));
  }
  parts.push(document.title);
  return parts.join('\\n');
}"""

UNLABELLED_CONTROLS_JS = """() => Array.from(document.querySelectorAll('input,select,textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML)"""


@pytest.fixture(scope="module")
def pages_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web-pages') / 'mes.db'}"
    tokens = seed(url)
    seed_history(url, time.time_ns(), hours=14)
    seed_warehouse(url)
    yield from serve(MesSettings(database_url=url, timezone="Asia/Shanghai"), tokens)


def english_ui_words() -> set[str]:
    """Words of the English catalogue that would betray an untranslated string on a Chinese page."""
    words = set()
    for message in catalogue("en").values():
        words |= {w.lower() for w in re.findall(r"[A-Za-z]{3,}", re.sub(r"\{\w+\}", "", message))}
    return words - {"oee", "edgefab", "mes", "edgefab_mes_mqtt_url", "edgefab_mes_edge_config"}


def assert_one_language(text: str, locale: str) -> None:
    keys = [key for key in catalogue("en") if key in text]
    assert keys == [], f"catalogue keys shown instead of text: {keys}"
    if locale == "en":
        assert CJK.findall(text) == [], "Chinese text on the English page"
    else:
        leaked = sorted({w for w in re.findall(r"[A-Za-z][A-Za-z0-9_-]*", text) if w.lower() in english_ui_words()})
        assert leaked == [], f"English UI words on the Chinese page: {leaked}"


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_board_renders_in_one_language_without_untranslated_strings(
    pages_app: WebApp, page_factory, locale: str
) -> None:  # type: ignore[no-untyped-def]
    page = page_factory(locale)  # the browser's Accept-Language chooses the language
    page.goto(f"{pages_app.base_url}/board")
    assert page.locator("html").get_attribute("lang") == ("zh-Hans-CN" if locale == "zh-CN" else "en")
    assert page.locator("li.tile").count() == 4
    assert_one_language(page.evaluate(VISIBLE_TEXT_JS), locale)
    fault = page.locator(f'li.tile[data-work-center="{PRESS01}"] [data-role=state-label]')
    assert fault.inner_text().strip().endswith("故障" if locale == "zh-CN" else "Fault")
    screenshot(page, f"board-{locale}")


def test_the_language_switch_changes_every_text_and_is_remembered(pages_app: WebApp, page_factory) -> None:  # type: ignore[no-untyped-def]
    page = page_factory("zh-CN")
    page.goto(f"{pages_app.base_url}/board")
    assert page.locator("h1").inner_text() == "安灯看板"
    page.get_by_role("link", name="English").click()
    page.wait_for_url("**lang=en")
    assert page.locator("h1").inner_text() == "Andon board"
    page.goto(f"{pages_app.base_url}/machines")  # no parameter: the cookie keeps English
    assert page.locator("h1").inner_text() == "Machines"
    assert_one_language(page.evaluate(VISIBLE_TEXT_JS), "en")


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_machine_page_draws_timeline_trends_and_pareto(pages_app: WebApp, page_factory, locale: str) -> None:  # type: ignore[no-untyped-def]
    page = page_factory(locale)
    page.goto(f"{pages_app.base_url}/machines/{PRESS01}")
    assert page.locator("svg.gantt rect[class^=g-]").count() > 10, "the previous shift's states are drawn"
    assert page.locator("svg.pareto rect").count() >= 3
    assert page.locator("svg.trend rect").count() >= 12
    assert_one_language(page.evaluate(VISIBLE_TEXT_JS), locale)
    reason = "卡模" if locale == "zh-CN" else "Die jam"
    assert page.locator("svg.pareto text", has_text=reason).count() == 1
    screenshot(page, f"machine-{locale}")


def test_the_operator_runs_orders_and_reports_scrap_and_refusals_change_nothing(
    pages_app: WebApp, page_factory
) -> None:  # type: ignore[no-untyped-def]
    page = page_factory("en", viewport={"width": 1280, "height": 800})
    login(page, pages_app.base_url, "operator", "/operator")
    page.get_by_role("link", name=re.compile("press01")).click()
    wo1, wo2 = page.locator("article[data-order=WO-1001]"), page.locator("article[data-order=WO-1002]")
    before = httpx.get(
        f"{pages_app.base_url}/api/work-orders", headers=pages_app.api_token("supervisor"), params={"number": "WO-1001"}
    )
    assert before.status_code == 200

    wo1.get_by_label("Scrap quantity").fill("5")
    wo1.get_by_label("Scrap reason").select_option("burr")
    wo1.get_by_role("button", name="Report scrap").click()
    page.get_by_text("Scrap reported.").wait_for()

    wo2.get_by_role("button", name="▶ Start").click()
    assert page.get_by_role("alert").inner_text().startswith("The order could not be started")
    assert wo2.locator("[data-role=order-status]").inner_text() == "Released", "a refused start changes nothing"

    wo1.get_by_role("button", name="‖ Pause").click()
    assert wo1.locator("[data-role=order-status]").inner_text() == "Paused"
    wo2.get_by_role("button", name="▶ Start").click()
    assert wo2.locator("[data-role=order-status]").inner_text() == "Running"
    wo2.get_by_role("button", name="✓ Complete").click()
    page.get_by_text("Work order completed.").wait_for()
    assert wo2.count() == 0
    wo1.get_by_role("button", name="▶ Resume").click()
    assert wo1.locator("[data-role=order-status]").inner_text() == "Running"
    screenshot(page, "operator-en-orders")

    orders = httpx.get(f"{pages_app.base_url}/api/work-orders", headers=pages_app.api_token("supervisor")).json()
    by_number = {o["number"]: o for o in (orders["items"] if isinstance(orders, dict) else orders)}
    assert by_number["WO-1002"]["status"] == "completed"
    assert by_number["WO-1001"]["status"] == "running"


def test_a_supervisor_page_is_refused_to_nobody_and_login_returns_to_it(pages_app: WebApp, page_factory) -> None:  # type: ignore[no-untyped-def]
    page = page_factory("zh-CN")
    page.goto(f"{pages_app.base_url}/operator")
    assert "/login" in page.url
    assert page.get_by_role("status").inner_text() == "请先登录。"
    page.locator("#login-username").fill("operator")
    page.locator("#login-password").fill("wrong password")
    page.locator("form.stack button[type=submit]").click()
    assert page.get_by_role("alert").inner_text() == "用户名或密码错误。"


def test_warehouse_receive_ship_with_packing_list_and_trace_both_ways(pages_app: WebApp, page_factory) -> None:  # type: ignore[no-untyped-def]
    page = page_factory("zh-CN")
    login(page, pages_app.base_url, "operator", "/warehouse/receive")
    page.get_by_label("物料").select_option("STEEL-2MM")
    page.get_by_label("数量").fill("250")
    page.get_by_label("库位").select_option("WH1-RM-01")
    page.get_by_label("批次").fill("STEEL-L3")
    page.get_by_role("button", name="收货").click()
    page.get_by_text("已收货入库。").wait_for()
    row = page.locator("table[data-location=WH1-RM-01] tr", has_text="STEEL-L3")
    assert "250.00" in row.inner_text()

    page.goto(f"{pages_app.base_url}/warehouse/receive")
    page.get_by_label("数量").fill("0")  # the browser allows 0 (min=0); the server refuses it
    page.get_by_role("button", name="收货").click()
    assert page.get_by_role("alert").inner_text() == "数量必须是大于 0 的数字。"

    page.goto(f"{pages_app.base_url}/warehouse/ship")
    order = page.locator("article[data-sales-order=SO-2001]")
    order.get_by_role("button", name="拣货发运").click()
    page.get_by_text("已拣货").first.wait_for()
    page.get_by_role("button", name="装箱").click()
    page.get_by_role("button", name="立即发货").click()
    assert page.locator("[data-role=shipment-status]").inner_text() == "已发货"
    page.get_by_role("link", name="装箱单（打印）").click()
    page.wait_for_url("**/packing-list")
    assert "BRK-FG-001" in page.content()
    screenshot(page, "packing-list-zh-CN")

    page.goto(f"{pages_app.base_url}/warehouse/trace?lot=BRK-FG-001")
    assert page.locator("[data-role=backward] [data-lot=STEEL-L1]").count() == 1
    page.goto(f"{pages_app.base_url}/warehouse/trace?lot=STEEL-L1")
    forward = page.locator("[data-role=forward]")
    assert "BRK-FG-001" in forward.inner_text()
    assert page.locator("table", has_text="Shenzhen Brackets Ltd").count() == 1, "the recall list names the customer"
    assert_one_language(page.evaluate(VISIBLE_TEXT_JS), "zh-CN")
    screenshot(page, "trace-zh-CN")


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_a_supervisor_creates_and_releases_a_work_order_in_either_language(
    pages_app: WebApp, page_factory, locale: str
) -> None:  # type: ignore[no-untyped-def]
    zh = locale == "zh-CN"
    page = page_factory(locale)
    login(page, pages_app.base_url, "supervisor", "/orders")
    number = f"WO-E2E-{locale}"
    page.locator("#number").fill(number)
    page.locator("#product").select_option(index=0)
    page.locator("#machine").select_option(PRESS01)
    page.locator("#planned_qty").fill("25")
    page.get_by_role("button", name="新建" if zh else "Create", exact=True).click()
    page.locator(".notice-ok").wait_for()
    row = page.locator(f'tr[data-order="{number}"]')
    assert row.locator("[data-role=order-status]").inner_text() == ("已计划" if zh else "Planned")
    row.get_by_role("button", name="下达" if zh else "Release").click()
    page.locator(".notice-ok").wait_for()
    assert row.locator("[data-role=order-status]").inner_text() == ("已下达" if zh else "Released")
    assert_one_language(page.evaluate(VISIBLE_TEXT_JS), locale)
    screenshot(page, f"orders-{locale}")


def test_every_control_is_labelled_and_focus_follows_the_reading_order(pages_app: WebApp, page_factory) -> None:  # type: ignore[no-untyped-def]
    page = page_factory("en")
    page.goto(f"{pages_app.base_url}/login")
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
    order = [page.evaluate("document.activeElement.id")]  # the form has the focus at once
    for _ in range(2):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert order == ["login-username", "login-password", "Log in"]

    login(page, pages_app.base_url, "supervisor", "/board")
    for path in [
        "/board",
        f"/operator/{PRESS01}",
        "/warehouse",
        "/warehouse/receive",
        "/warehouse/ship",
        "/machines/" + PRESS01,
        "/orders",
    ]:
        page.goto(f"{pages_app.base_url}{path}")
        assert page.evaluate(UNLABELLED_CONTROLS_JS) == [], path
        assert page.locator("[tabindex]:not([tabindex='0']):not([tabindex='-1'])").count() == 0, "no positive tabindex"
        focused = []
        for _ in range(6):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.textContent.trim()"))
        assert focused == [
            "Skip to main content",
            "edgefab",
            "Andon board",
            "Machines",
            "Operator station",
            "Warehouse",
        ], path
        if path == "/board":
            labels = page.locator("li.tile [data-role=state-label]").all_inner_texts()
            assert len(labels) == 4 and all(label.strip() for label in labels), "each tile names its state in text"
