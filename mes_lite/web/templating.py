"""The one Jinja2 environment of the web pages, with the i18n globals every template uses.

Page modules import `templates` / `render` from here, so every page gets the same layout context:
`t` (and its alias `_`) translate, `locale`, `user`, `csrf_token`, `nav_items`, `lang_links`, `tz`.
`render` also remembers an explicit `?lang=` choice in the `lang` cookie and sets the CSRF cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from mes_lite.web.i18n import (
    LANG_COOKIE,
    LOCALE_AUTONYMS,
    SUPPORTED_LOCALES,
    choose_locale,
    normalise_locale,
    translator,
)

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
CSRF_COOKIE = "edgefab_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


@dataclass(frozen=True)
class NavItem:
    """One entry of the top navigation: a catalogue key for its label, a path, an optional minimum role."""

    label_key: str
    href: str
    min_role: str | None = None


# Other page modules append their entry at import time, e.g. NAV_ITEMS.append(NavItem("nav.assessment", "/assessment")).
NAV_ITEMS: list[NavItem] = [
    NavItem("nav.board", "/board"),
    NavItem("nav.machines", "/machines"),
    NavItem("nav.operator", "/operator"),
    NavItem("nav.warehouse", "/warehouse"),
]


def request_locale(request: Request) -> str:
    """The locale of this request (cached on request.state)."""
    cached = getattr(request.state, "locale", None)
    if cached:
        return cached
    locale = choose_locale(
        request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )
    request.state.locale = locale
    return locale


def csrf_token(request: Request) -> str:
    """The double-submit CSRF token: the cookie's value, or a new one that `render` will set as the cookie."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_token", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf_token = token
    return token


def _lang_links(request: Request) -> list[dict[str, str]]:
    links = []
    for locale in SUPPORTED_LOCALES:
        params = dict(request.query_params)
        params["lang"] = locale
        links.append(
            {"locale": locale, "name": LOCALE_AUTONYMS[locale], "href": f"{request.url.path}?{urlencode(params)}"}
        )
    return links


def _layout_context(request: Request) -> dict[str, Any]:
    locale = request_locale(request)
    t = translator(locale)
    settings = getattr(request.app.state, "settings", None)
    user = getattr(request.state, "user", None)
    rank = {"operator": 0, "supervisor": 1, "admin": 2}
    user_rank = rank.get(getattr(user, "role", ""), -1)
    return {
        "t": t,
        "_": t,
        "locale": locale,
        "html_lang": "zh-Hans-CN" if locale == "zh-CN" else "en",
        "user": user,
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "csrf_header": CSRF_HEADER,
        "nav_items": [n for n in NAV_ITEMS if n.min_role is None or user_rank >= rank.get(n.min_role, 0)],
        "lang_links": _lang_links(request),
        "tz": getattr(settings, "timezone", "UTC"),
        "current_path": request.url.path,
    }


templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_layout_context])
templates.env.autoescape = True
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
templates.env.filters["ns_to_datetime"] = lambda ns: datetime.fromtimestamp(ns / 1e9, UTC)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    """A page response in the request's locale; persists `?lang=` and the CSRF token in cookies."""
    response = templates.TemplateResponse(request, name, context or {}, status_code=status_code)
    finish_response(request, response)
    return response


def render_fragment(request: Request, name: str, context: dict[str, Any]) -> str:
    """A partial template as text, with the same layout context (for SSE pushes)."""
    return templates.env.get_template(name).render(**_layout_context(request), request=request, **context)


def finish_response(request: Request, response: Response) -> None:
    """Cookies and headers every page response carries (also used for redirects and partials)."""
    locale = request_locale(request)
    response.headers["Content-Language"] = locale
    explicit = normalise_locale(request.query_params.get("lang"))
    if explicit and explicit != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, explicit, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax")
    new_token = getattr(request.state, "new_csrf_token", None)
    if new_token and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(CSRF_COOKIE, new_token, httponly=True, samesite="strict")
