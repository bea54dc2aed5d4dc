"""Log in (token endpoint, OAuth2 password flow so /docs can authorise), who am I, users, API tokens."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.api.auth import TOKEN_COOKIE, current_user, require_role
from mes_lite.db import get_session
from mes_lite.inventory.ledger import commit_with_retry
from mes_lite.models import User
from mes_lite.services import users

router = APIRouter(prefix="/api", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    active: bool

    model_config = {"from_attributes": True}


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=users.MIN_PASSWORD_LENGTH)
    role: Literal["operator", "supervisor", "admin"] = "operator"
    display_name: str = ""


class ApiTokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


@router.post("/auth/token", response_model=TokenOut)
def login(
    request: Request,
    response: Response,
    form: OAuth2PasswordRequestForm = Depends(),
    session: Session = Depends(get_session),
) -> TokenOut:
    """Exchange username and password for a bearer token (also set as a cookie for the web pages)."""
    user = users.authenticate(session, form.username, form.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    ttl_s = request.app.state.settings.token_ttl_s
    # retried: on SQLite the read above makes this write fail at once when the ingest committed meanwhile
    token = commit_with_retry(session, lambda: users.issue_token(session, user, name="login", ttl_s=ttl_s))
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="lax", max_age=int(ttl_s))
    return TokenOut(access_token=token)


@router.get("/auth/me", response_model=UserOut)
def me(user: User = Depends(current_user)) -> User:
    return user


@router.get("/users", response_model=list[UserOut])
def list_users(_: User = Depends(require_role("admin")), session: Session = Depends(get_session)) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(body: UserIn, _: User = Depends(require_role("admin")), session: Session = Depends(get_session)) -> User:
    user = users.create_user(session, body.username, body.password, body.role, body.display_name)
    session.commit()
    return user


@router.post("/auth/api-tokens", response_model=TokenOut, status_code=201)
def create_api_token(
    body: ApiTokenIn, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> TokenOut:
    """A long-lived token for a machine or script, acting as the calling user."""
    token = users.issue_token(session, user, name=body.name)
    session.commit()
    return TokenOut(access_token=token)
