"""Who is looking at a page: the login cookie, role checks that redirect to the login page, CSRF checks.

Pages use the same token as the API (cookie `edgefab_token`, set at login). Form posts carry a
double-submit CSRF token: the value of the `edgefab_csrf` cookie (SameSite=Strict, httponly) in a
hidden field or the `X-CSRF-Token` header; a cross-site page can neither read nor send it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from mes_lite.api.auth import TOKEN_COOKIE
from mes_lite.db import get_session
from mes_lite.models import User, UserRole
from mes_lite.services.users import user_for_token
from mes_lite.web.templating import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER


def page_user(request: Request, session: Session = Depends(get_session)) -> User | None:
    """The logged-in user or None; also put on request.state so the layout can show it."""
    token = request.cookies.get(TOKEN_COOKIE)
    user = user_for_token(session, token) if token else None
    request.state.user = user
    return user


def _to_login(request: Request, reason: str) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(
        status.HTTP_303_SEE_OTHER,
        "log in first",
        headers={"Location": f"/login?next={quote(target, safe='')}&reason={reason}"},
    )


def require_page_role(role: str | UserRole) -> Callable[..., User]:
    """A page dependency: a user with `role` or higher, else a redirect to the login page saying why."""
    needed = UserRole(role)

    def dependency(request: Request, user: User | None = Depends(page_user)) -> User:
        if user is None:
            raise _to_login(request, "needed")
        if UserRole(user.role).rank < needed.rank:
            raise _to_login(request, f"role-{needed.value}")
        return user

    dependency.__name__ = f"page_requires_{needed.value}"
    return dependency


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing request whose CSRF token does not match the cookie (403)."""
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong: reload the page and try again")


def safe_next(target: str | None) -> str:
    """Only local paths are followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
