"""The self-assessment in a real browser: answer, save, resume, finish; the report in zh-CN and en, printable.

The MES holds a simulated factory's last hours (press01 and cnc01 from the simulators, written
through the production services), so the questionnaire opens with edgefab's proposals and evidence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from mes_lite.db import make_engine, session_factory
from mes_lite.services.production import ProductionRecorder
from mes_lite.settings import MesSettings
from tests.e2e.conftest import WebApp, login, screenshot
from tests.integration.assessment_factory import CNC01, NS, PRESS01, simulate, write_run

NEXT_LEVEL_ANSWERS = {
    "items": {
        "network": "full_shop",
        "equipment_digital_rate": 70,
        "equipment_networked_rate": 50,
        "data_collection_links": ["planning", "production_control", "quality", "equipment", "warehouse", "energy"],
        "information_systems": "several",
        "network_security": "defined",
        "data_security": "defined",
        "awareness": "defined",
        "rules": "started",
        "talent": "started",
        "funding": 10,
        "energy_per_revenue_change": "same",
        "monthly_yield_change": "better",
        "revenue_per_employee_change": "same",
        "cost_per_revenue_change": "same",
    },
    "scenarios": {
        "equipment": 3,
        "production_control": 3,
        "quality": 2,
        "warehouse": 2,
        "planning": 2,
        "purchasing": 1,
        "finance": 2,
        "office": 1,
    },
}


@pytest.fixture(scope="module")
def factory_history(web_settings: MesSettings) -> Iterator[None]:
    """press01 and cnc01 ran for the last half hour (simulated), written the way the ingest writes."""
    engine = make_engine(web_settings.database_url)
    try:
        with session_factory(engine)() as session:
            recorder = ProductionRecorder()
            origin = time.time_ns() - 3600 * NS
            write_run(session, recorder, PRESS01, simulate("press01", "stamping_press", 5, 1800), origin)
            write_run(session, recorder, CNC01, simulate("cnc01", "cnc", 6, 1800), origin)
            session.commit()
    finally:
        engine.dispose()
    yield


def _finish_by_api(web_app: WebApp, answers: dict, title: str) -> int:
    headers = web_app.api_token("supervisor")
    with httpx.Client(base_url=web_app.base_url, headers=headers, timeout=10) as client:
        assessment = client.post("/api/assessments", json={"title": title}).raise_for_status().json()
        client.put(f"/api/assessments/{assessment['id']}/answers", json=answers).raise_for_status()
        client.post(f"/api/assessments/{assessment['id']}/finish").raise_for_status()
        return int(assessment["id"])


def test_a_supervisor_answers_saves_resumes_and_finishes_then_reads_the_report_in_both_languages(
    web_app: WebApp, factory_history: None, page_factory
) -> None:  # type: ignore[no-untyped-def]
    page = page_factory("zh-CN")
    login(page, web_app.base_url, "supervisor", "/assessment")
    page.locator("#assessment-title").fill("2026年第三季度")
    page.locator("#assessment-start").click()
    page.wait_for_url("**/assessment/*/edit")
    edit_url = page.url

    # edgefab's proposal for the networked rate, with its evidence: 2 of the 4 demo machines sent data
    networked = page.locator("#item-equipment_networked_rate")
    assert networked.locator("input[type=number]").input_value() == "50.0"
    assert "4 台" in networked.locator(".evidence").inner_text()
    assert page.locator("#scenario-select-equipment").input_value() == "3"  # real-time states + OEE
    screenshot(page, "assessment-questionnaire-zh")

    # override a proposal, answer a few questions, save, and come back later
    networked.locator("input[type=number]").fill("40")
    page.locator("#item-network input[value=full_shop]").check()
    page.locator("#scenario-select-quality").select_option("2")
    page.locator("#assessment-save").click()
    page.wait_for_url("**/edit?saved=1")
    page.goto(edit_url)
    assert networked.locator("input[type=number]").input_value() == "40.0"
    assert "proposal-overridden" in (networked.locator(".proposal").get_attribute("class") or "")
    assert page.locator("#item-network input[value=full_shop]").is_checked()

    # a wrong answer is refused in the page's language and nothing is lost
    networked.locator("input[type=number]").evaluate("e => { e.removeAttribute('max'); e.value = '130'; }")
    page.locator("#assessment-save").click()
    assert "生产设备联网率" in page.locator("#assessment-error").inner_text()
    page.goto(edit_url)
    assert networked.locator("input[type=number]").input_value() == "40.0"

    page.locator("#assessment-finish").click()
    page.wait_for_url(re.compile(r".*/assessment/\d+$"))
    first_report = page.url
    assert "assessment." not in page.locator("main").inner_text()

    # a later assessment, finished through the API, shows progress against the first
    second = _finish_by_api(web_app, NEXT_LEVEL_ANSWERS, "2026年第四季度")
    page.goto(f"{web_app.base_url}/assessment/{second}")
    level = page.locator("#assessment-level").inner_text()
    assert level == "二级"
    main_text = page.locator("main").inner_text()
    assert "assessment." not in main_text  # every computed catalogue key exists
    assert page.locator("#assessment-dimensions tbody tr").count() == 3
    assert page.locator("#assessment-scenarios tbody tr").count() == 16
    roadmap = page.locator("#assessment-roadmap li")
    assert roadmap.count() >= 5
    assert "三级所需" in roadmap.first.inner_text()  # the first steps close the gap to the next level
    assert "edgefab" in page.locator("#assessment-roadmap").inner_text()
    assert "上次评估" in page.locator("#assessment-progress").inner_text()
    screenshot(page, "assessment-report-zh")
    page.set_viewport_size({"width": 1280, "height": 4000})
    screenshot(page, "assessment-report-zh-long")

    # English
    page.goto(f"{web_app.base_url}/assessment/{second}?lang=en")
    assert page.locator("#assessment-level").inner_text() == "Level 2"
    english = page.locator("main").inner_text()
    assert "assessment." not in english
    assert "Progress since the last assessment" in english and "needed for Level 3" in english
    # no Chinese on the English report, except the user's own title and the official document number
    english_ui = english.replace("2026年第四季度", "").replace("工信厅企业〔2024〕56号", "")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in english_ui), "no Chinese on the English report"
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "assessment-report-en")

    # printable: no navigation and no buttons on paper
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator("#assessment-print").is_visible()
    assert page.locator("#assessment-roadmap").is_visible()
    page.emulate_media(media="screen")

    # the first report is still there, frozen
    page.goto(first_report)
    assert page.locator("#assessment-level").is_visible()


def test_an_operator_reads_reports_but_cannot_answer(web_app: WebApp, factory_history: None, page_factory) -> None:  # type: ignore[no-untyped-def]
    assessment_id = _finish_by_api(web_app, NEXT_LEVEL_ANSWERS, "operator view")
    page = page_factory("en")
    login(page, web_app.base_url, "operator", f"/assessment/{assessment_id}")
    assert page.locator("#assessment-level").inner_text() == "Level 2"
    page.goto(f"{web_app.base_url}/assessment")
    assert page.locator("#assessment-list").is_visible()
    assert page.locator("#assessment-start").count() == 0  # no "start" for an operator
    assert page.locator("#assessment-list a[href$='/edit']").count() == 0  # and no "continue"
    page.goto(f"{web_app.base_url}/assessment/{assessment_id}/edit")
    assert "/login" in page.url and "role-supervisor" in page.url
