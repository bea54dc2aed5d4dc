"""Users, password hashes and API tokens.

Passwords are hashed with the standard library's scrypt (no extra dependency on a Pi); tokens
are random and stored only as SHA-256, so the database never holds a usable credential.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.models import ApiToken, User, UserRole
from mes_lite.services.errors import Conflict, InvalidInput

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p), dklen=len(digest_hex) // 2
    )
    return hmac.compare_digest(digest.hex(), digest_hex)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, password: str, role: str, display_name: str = "") -> User:
    try:
        role = UserRole(role).value
    except ValueError:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(r.value for r in UserRole)}", "role") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters", "password")
    if session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"user {username!r} already exists", "username")
    user = User(username=username, password_hash=hash_password(password), role=role, display_name=display_name)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(password, user.password_hash):
        return None
    return user


def issue_token(session: Session, user: User, name: str = "", ttl_s: float | None = None) -> str:
    """A new bearer token for `user`; the clear text is returned once and never stored."""
    token = secrets.token_urlsafe(32)
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_s) if ttl_s else None
    session.add(ApiToken(user_id=user.id, name=name, token_sha256=token_sha256(token), expires_at=expires_at))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    api_token = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_sha256(token)))
    if api_token is None or api_token.revoked:
        return None
    if api_token.expires_at is not None:
        expires_at = api_token.expires_at
        if expires_at.tzinfo is None:  # SQLite returns naive UTC
            expires_at = expires_at.replace(tzinfo=dt.UTC)
        if expires_at < dt.datetime.now(dt.UTC):
            return None
    user = api_token.user
    return user if user.active else None
