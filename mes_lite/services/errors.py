"""Errors the MES services raise; the API maps each to one HTTP status with the message as detail.

A service raises before it changes anything (or the caller's transaction is rolled back), so a
refused request leaves stored data intact.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the rules refuse; `message` is one plain sentence for the user."""

    http_status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    http_status = 404


class Conflict(ServiceError):
    """The request is well formed but the current state forbids it (e.g. an invalid transition)."""

    http_status = 409


class InvalidInput(ServiceError):
    """A value is wrong for a reason the schema cannot see (unknown code, bad reference)."""

    http_status = 422


class PermissionDenied(ServiceError):
    http_status = 403
