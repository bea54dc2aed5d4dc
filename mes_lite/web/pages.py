"""Pages every area shares: home, log in, log out, and the static assets (served locally, never a CDN)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from mes_lite.api.auth import TOKEN_COOKIE
from mes_lite.db import get_session
from mes_lite.services import users
from mes_lite.services.users import token_sha256
from mes_lite.web.session import page_user, safe_next, verify_csrf
from mes_lite.web.templating import NAV_ITEMS, STATIC_DIR, finish_response, render
from mes_lite.web.writes import commit_write

router = APIRouter(include_in_schema=False)
_static = StaticFiles(directory=str(STATIC_DIR))
STATIC_MAX_AGE_S = 3600


@router.get("/static/{path:path}")
async def static_asset(path: str, request: Request) -> Response:
    """Files under mes_lite/web/static (path traversal refused by StaticFiles)."""
    try:
        response = await _static.get_response(path, request.scope)
    except StarletteHTTPException as exc:
        return Response(status_code=exc.status_code)
    response.headers.setdefault("Cache-Control", f"public, max-age={STATIC_MAX_AGE_S}")
    return response


@router.get("/")
def home(request: Request, _user: object = Depends(page_user)) -> Response:
    return render(request, "home.html", {"pages": NAV_ITEMS})


@router.get("/login")
def login_page(request: Request, next: str = "/", reason: str = "", _user: object = Depends(page_user)) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "reason": reason, "failed": False})


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    session: Session = Depends(get_session),
) -> Response:
    user = users.authenticate(session, username.strip(), password)
    if user is None:
        context = {"next": safe_next(next), "reason": "", "failed": True, "username": username}
        return render(request, "login.html", context, status_code=401)
    ttl_s = request.app.state.settings.token_ttl_s
    token = commit_write(session, lambda: users.issue_token(session, user, name="web login", ttl_s=ttl_s))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="lax", max_age=int(ttl_s))
    finish_response(request, response)
    return response


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request, session: Session = Depends(get_session)) -> Response:
    """Revoke the login token (not just forget the cookie), then back to the home page."""
    from sqlalchemy import select

    from mes_lite.models import ApiToken

    token = request.cookies.get(TOKEN_COOKIE)
    if token:

        def revoke() -> None:
            api_token = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_sha256(token)))
            if api_token is not None:
                api_token.revoked = True

        commit_write(session, revoke)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response
