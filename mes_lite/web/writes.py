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

from mes_lite.inventory.ledger import commit_with_retry, retry_transient_conflicts

T = TypeVar("T")


def take_write_lock(session: Session) -> None:
    """Start the session's transaction as BEGIN IMMEDIATE on SQLite: wait for other writers now, not fail later.

    Call it before the transaction's first statement. The engine's `begin` hook (mes_lite.db) has
    already sent a plain BEGIN, which took no lock yet, so it is ended and replaced; that is also
    why `inventory.ledger.begin_write`, which checks `in_transaction`, does nothing here.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    connection.exec_driver_sql("COMMIT")
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def commit_write(session: Session, operation: Callable[[], T]) -> T:
    """End the current read, then run `operation` under the write lock and commit (retried when transient)."""
    session.commit()

    def locked() -> T:
        take_write_lock(session)
        return operation()

    return commit_with_retry(session, locked)


def read_committing(session_factory: Callable[[], Session], operation: Callable[[Session], T], attempts: int = 8) -> T:
    """Run a page's OEE read in its own session, commit what it cached, retry a clash with the ingest.

    OEE queries fill the hourly cache (`services.oee_cache`) as they read, so a board refresh
    writes; on SQLite that write fails at once when the ingest committed since the read began.
    Committing keeps the filled hours for the next refresh. A retry takes the write lock first
    (BEGIN IMMEDIATE), so it waits for the ingest's commit instead of losing the race again.
    """
    from sqlalchemy.exc import DBAPIError

    def attempt(n: int) -> T:
        with session_factory() as session:
            try:
                if n > 1:
                    take_write_lock(session)
                result = operation(session)
                session.commit()
                return result
            except DBAPIError:
                session.rollback()
                raise

    return retry_transient_conflicts(attempt, attempts, first_wait_s=0.01, max_wait_s=0.3)
