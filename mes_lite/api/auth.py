"""Who is calling: bearer tokens (API tokens or login tokens) and role checks as FastAPI dependencies.

Roles are ordered operator < supervisor < admin; `require_role("supervisor")` admits supervisors
and admins. The same token may come as a cookie (`edgefab_token`) so server-rendered pages work.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from mes_lite.db import get_session
from mes_lite.models import User, UserRole
from mes_lite.services.users import user_for_token

TOKEN_COOKIE = "edgefab_token"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def current_user(
    request: Request, bearer: str | None = Depends(oauth2_scheme), session: Session = Depends(get_session)
) -> User:
    token = bearer or request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not authenticated: send 'Authorization: Bearer <token>' (POST /api/auth/token to log in)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = user_for_token(session, token)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "token unknown, revoked or expired", headers={"WWW-Authenticate": "Bearer"}
        )
    return user


def require_role(role: str | UserRole) -> Callable[..., User]:
    """A dependency that admits users with `role` or a higher one, and refuses others with 403."""
    needed = UserRole(role)

    def dependency(user: User = Depends(current_user)) -> User:
        if UserRole(user.role).rank < needed.rank:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs the {needed.value} role; user {user.username!r} is {user.role}"
            )
        return user

    dependency.__name__ = f"require_{needed.value}"
    return dependency
