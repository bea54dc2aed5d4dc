"""Writes from page handlers that stay correct next to the ingest, which writes all the time.

On SQLite a transaction that read before it writes fails at once ("database is locked") when
another writer committed in between. Page handlers have always read first (the login cookie), so
each write ends that read transaction, takes the write lock first (BEGIN IMMEDIATE) and retries
a transient clash: the same remedy the stock ledger uses (`mes_lite.inventory.ledger`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from mes_lite.inventory.ledger import begin_write, commit_with_retry

T = TypeVar("T")


def commit_write(session: Session, operation: Callable[[], T]) -> T:
    """End the current read, then run `operation` under the write lock and commit (retried when transient)."""
    session.commit()

    def locked() -> T:
        begin_write(session)
        return operation()

    return commit_with_retry(session, locked)
