"""Browser-test fixtures: the MES app on uvicorn (a thread, a free loopback port, a fresh SQLite DB)
and Debian's Chromium driven by Playwright. One browser and one app server per test module.

Screenshots go to `test-artifacts/` at the repository root (gitignored), kept for CI as artifacts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from mes_lite.api.app import create_app
from mes_lite.settings import MesSettings
from tests import servers
from tests.e2e.web_seed import PASSWORD, seed

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1920, "height": 1080}


@dataclass
class WebApp:
    base_url: str
    settings: MesSettings
    server: uvicorn.Server
    tokens: dict[str, str]

    def api_token(self, username: str) -> dict[str, str]:
        """Bearer headers of a seeded user (tokens issued by the seed, not by logging in)."""
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def serve(settings: MesSettings, tokens: dict[str, str] | None = None) -> Iterator[WebApp]:
    port = servers.free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield WebApp(f"http://127.0.0.1:{port}", settings, server, tokens or {})
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def web_seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[MesSettings, dict[str, str]]:
    path = tmp_path_factory.mktemp("web") / "mes.db"
    url = f"sqlite:///{path}"
    tokens = seed(url)
    return MesSettings(database_url=url, timezone="Asia/Shanghai", reorder_window_s=0.3), tokens


@pytest.fixture(scope="module")
def web_settings(web_seeded: tuple[MesSettings, dict[str, str]]) -> MesSettings:
    return web_seeded[0]


@pytest.fixture(scope="module")
def web_app(web_seeded: tuple[MesSettings, dict[str, str]]) -> Iterator[WebApp]:
    yield from serve(*web_seeded)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = servers.chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page_factory(browser):  # type: ignore[no-untyped-def]
    """New pages in fresh contexts (own cookies), 1920x1080, with a locale; closed after the test."""
    contexts = []

    def new_page(locale: str = "zh-CN", viewport: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
        context = browser.new_context(locale=locale, viewport=viewport or VIEWPORT)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def login(page, base_url: str, username: str, next_path: str = "/") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base_url}/login?next={next_path}")
    page.locator("#login-username").fill(username)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_url(f"{base_url}{next_path}*")
