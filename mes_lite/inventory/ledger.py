"""Posting stock moves to the database through the pure rules of `mes_lite.inventory.stock`.

One function, `post_move`, writes the ledger. It locks the cached balance rows the move touches
(`SELECT ... FOR UPDATE` on PostgreSQL; SQLite has one writer at a time and the first statement of the
transaction is a write, so the lock is taken at once), asks the pure core whether the move is allowed,
then appends the move and updates the balances in the same transaction. Two concurrent issues of the last
unit therefore serialise on the balance row and the second one sees zero and is refused.

The caller owns the transaction: services flush, the API route commits (or rolls back on error).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mes_lite.inventory import stock
from mes_lite.inventory.models import Lot, LotConsumption, Material, StockBalance, StockMove
from mes_lite.models import Product
from mes_lite.services.errors import Conflict, InvalidInput, NotFound

CONSUMING_KINDS = frozenset({stock.MoveKind.ISSUE.value, stock.MoveKind.BACKFLUSH.value})


@dataclass(frozen=True)
class Actor:
    """Who posts a move: a user (name and id) or a service such as the ingest (name only)."""

    name: str
    user_id: int | None = None


def begin_write(session: Session) -> None:
    """On SQLite, take the write lock before the first read of a stock operation (BEGIN IMMEDIATE).

    pysqlite opens a transaction only at the first write, so reads before it run on a snapshot that a concurrent
    writer can make stale; SQLite then fails the later write at once ("database is locked") instead of waiting.
    Taking the lock first makes concurrent operations queue on the busy timeout instead. PostgreSQL needs
    nothing here: the balance rows are locked with SELECT ... FOR UPDATE.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


T = TypeVar("T")
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock (PostgreSQL)


def is_transient_conflict(error: DBAPIError) -> bool:
    """A clash with a concurrent transaction that a retry resolves (SQLite busy, PostgreSQL deadlock)."""
    return "database is locked" in str(error.orig) or getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


def retry_transient_conflicts(
    attempt: Callable[[int], T], attempts: int = 8, first_wait_s: float = 0.005, max_wait_s: float = 0.25
) -> T:
    """Call ``attempt(n)`` for n = 1, 2, ... until it returns; a transient clash (`is_transient_conflict`)
    is retried after an exponential, jittered wait, anything else and the last failure are raised.
    ``attempt`` rolls back what it did before it raises."""
    for n in range(1, attempts + 1):
        try:
            return attempt(n)
        except DBAPIError as e:
            if n == attempts or not is_transient_conflict(e):
                raise
        time.sleep(min(first_wait_s * 2**n, max_wait_s) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def commit_with_retry(session: Session, operation: Callable[[], T], attempts: int = 8) -> T:
    """Run ``operation`` and commit; on a transient clash roll back and run it again (bounded, with jitter).

    PostgreSQL rarely needs this (balance rows are locked FOR UPDATE, so contenders wait instead of failing);
    SQLite does: a transaction that read before it wrote fails at once when another writer went first.
    The operation re-reads everything, so a retried issue of the last unit sees zero and is refused.
    """

    def attempt(_: int) -> T:
        try:
            result = operation()
            session.commit()
            return result
        except DBAPIError:
            session.rollback()
            raise

    return retry_transient_conflicts(attempt, attempts)


def material_policy(session: Session, product_id: int) -> stock.MaterialPolicy:
    """The pure core's view of a product; a product without warehouse settings forbids negative stock."""
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist")
    material = session.get(Material, product_id)
    if material is None:
        return stock.MaterialPolicy(product.code, product.unit_of_measure)
    return stock.MaterialPolicy(
        product.code,
        product.unit_of_measure,
        allow_negative=material.allow_negative,
        backflush=material.backflush,
        unit_factors={c.unit: c.factor for c in material.conversions},
    )


def to_base_quantity(session: Session, product_id: int, quantity: Decimal, unit: str | None) -> Decimal:
    """``quantity`` of ``unit`` (default: the base unit) in base units; an undefined conversion is refused."""
    policy = material_policy(session, product_id)
    try:
        return stock.to_base_unit(stock.as_quantity(quantity), unit or policy.base_unit, policy)
    except stock.StockError as e:
        raise InvalidInput(str(e), field="unit") from e


def post_move(
    session: Session,
    *,
    kind: stock.MoveKind,
    product_id: int,
    lot_id: int,
    quantity: Decimal,
    actor: Actor,
    reason: str,
    from_location_id: int | None = None,
    to_location_id: int | None = None,
    work_order_id: int | None = None,
    purchase_order_line_id: int | None = None,
    shipment_id: int | None = None,
    reverses_id: int | None = None,
    at_ns: int | None = None,
) -> StockMove:
    """Validate, lock, check stock and append one move. Raises Conflict/InvalidInput, changing nothing."""
    begin_write(session)
    lot = session.get(Lot, lot_id)
    if lot is None or lot.product_id != product_id:
        raise InvalidInput(f"lot {lot_id} is not a lot of product {product_id}", field="lot")
    policy = material_policy(session, product_id)
    pure = stock.Move(
        kind=kind,
        material=policy.code,
        lot=str(lot_id),
        quantity=stock.as_quantity(quantity),
        from_location=None if from_location_id is None else str(from_location_id),
        to_location=None if to_location_id is None else str(to_location_id),
        reason=reason,
        who=actor.name,
        reverses=reverses_id,
        work_order=None if work_order_id is None else str(work_order_id),
        shipment=None if shipment_id is None else str(shipment_id),
    )
    try:
        stock.validate(pure)
    except stock.StockError as e:
        raise InvalidInput(str(e)) from e
    locked = _lock_balances(session, product_id, lot_id, [loc for loc in (from_location_id, to_location_id) if loc])
    current = {stock.BalanceKey(policy.code, str(loc), str(lot_id)): row.quantity for loc, row in locked.items()}
    try:
        after = stock.balances_after(current, pure, policy)
    except stock.NegativeStockError as e:
        raise Conflict(_with_codes(session, str(e), lot, locked)) from e
    move = StockMove(
        kind=kind.value,
        product_id=product_id,
        lot_id=lot_id,
        from_location_id=from_location_id,
        to_location_id=to_location_id,
        quantity=pure.quantity,
        at_ns=at_ns if at_ns is not None else time.time_ns(),
        actor=actor.name,
        user_id=actor.user_id,
        reason=reason,
        reverses_id=reverses_id,
        work_order_id=work_order_id,
        purchase_order_line_id=purchase_order_line_id,
        shipment_id=shipment_id,
    )
    session.add(move)
    for key, quantity_after in after.items():
        locked[int(key.location)].quantity = quantity_after
    session.flush()
    _update_genealogy(session, move)
    return move


def reverse_move(session: Session, move_id: int, *, actor: Actor, reason: str) -> StockMove:
    """Post the reversal of ``move_id`` (sides swapped). A move is reversed once; a reversal is not reversed."""
    begin_write(session)
    original = session.get(StockMove, move_id)
    if original is None:
        raise NotFound(f"stock move {move_id} does not exist")
    if original.kind == stock.MoveKind.REVERSAL.value:
        raise Conflict(f"move {move_id} is itself a reversal; post a new move instead")
    if original.shipment_id is not None:
        raise Conflict(
            f"move {move_id} belongs to a shipment; goods that come back are booked as a new receipt, "
            "so the shipment and its delivery note stay true"
        )
    already = session.scalar(select(StockMove.id).where(StockMove.reverses_id == move_id))
    if already is not None:
        raise Conflict(f"move {move_id} is already reversed by move {already}")
    if not reason.strip():
        raise InvalidInput("a reversal needs a reason", field="reason")
    return post_move(
        session,
        kind=stock.MoveKind.REVERSAL,
        product_id=original.product_id,
        lot_id=original.lot_id,
        quantity=original.quantity,
        actor=actor,
        reason=reason,
        from_location_id=original.to_location_id,
        to_location_id=original.from_location_id,
        work_order_id=original.work_order_id,
        purchase_order_line_id=original.purchase_order_line_id,
        shipment_id=original.shipment_id,
        reverses_id=move_id,
    )


def _lock_balances(session: Session, product_id: int, lot_id: int, location_ids: list[int]) -> dict[int, StockBalance]:
    """Ensure a balance row exists for each location and lock them all, in id order to avoid deadlocks."""
    if not location_ids:
        return {}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    rows = [
        {"product_id": product_id, "location_id": loc, "lot_id": lot_id, "quantity": Decimal(0)} for loc in location_ids
    ]
    session.execute(
        insert(StockBalance).values(rows).on_conflict_do_nothing(index_elements=["product_id", "location_id", "lot_id"])
    )
    locked = session.scalars(
        select(StockBalance)
        .where(
            StockBalance.product_id == product_id,
            StockBalance.lot_id == lot_id,
            StockBalance.location_id.in_(location_ids),
        )
        .order_by(StockBalance.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {row.location_id: row for row in locked}


def _with_codes(session: Session, message: str, lot: Lot, locked: dict[int, StockBalance]) -> str:
    """The pure core speaks ids; the user reads codes."""
    from mes_lite.inventory.models import Location

    message = message.replace(f"lot {lot.id} ", f"lot {lot.code} ")
    for location_id in locked:
        location = session.get(Location, location_id)
        if location is not None:
            message = message.replace(f" at {location_id}:", f" at {location.code}:")
    return message


def _upsert_link(
    session: Session, produced_lot_id: int, consumed_lot_id: int, work_order_id: int, delta: Decimal
) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(LotConsumption).values(
        produced_lot_id=produced_lot_id, consumed_lot_id=consumed_lot_id, work_order_id=work_order_id, quantity=delta
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["produced_lot_id", "consumed_lot_id", "work_order_id"],
            set_={"quantity": LotConsumption.quantity + statement.excluded.quantity},
        )
    )


def consumed_by_work_order(session: Session, work_order_id: int) -> dict[int, Decimal]:
    """Net quantity per consumed lot of a work order: issues and backflushes minus their reversals."""
    reversal = StockMove.kind == stock.MoveKind.REVERSAL.value
    signed = case((reversal, -StockMove.quantity), else_=StockMove.quantity)
    original = select(StockMove.id).where(StockMove.kind.in_(CONSUMING_KINDS)).scalar_subquery()
    rows = session.execute(
        select(StockMove.lot_id, func.sum(signed))
        .where(
            StockMove.work_order_id == work_order_id,
            StockMove.kind.in_(CONSUMING_KINDS) | (reversal & StockMove.reverses_id.in_(original)),
        )
        .group_by(StockMove.lot_id)
    ).all()
    return {lot_id: Decimal(total) for lot_id, total in rows if total and Decimal(total) > 0}


def _update_genealogy(session: Session, move: StockMove) -> None:
    """Keep the lot_consumptions edges in step with consumption and finished-goods receipts of a work order."""
    if move.work_order_id is None:
        return
    kind = move.kind
    if kind == stock.MoveKind.REVERSAL.value:
        original = session.get(StockMove, move.reverses_id)
        if original is None or original.kind not in CONSUMING_KINDS:
            return
        kind, delta = original.kind, -move.quantity
    else:
        delta = move.quantity
    if kind in CONSUMING_KINDS:
        produced = session.scalars(select(Lot.id).where(Lot.work_order_id == move.work_order_id)).all()
        for produced_lot_id in produced:
            _upsert_link(session, produced_lot_id, move.lot_id, move.work_order_id, delta)
    elif kind == stock.MoveKind.FG_RECEIPT.value:
        exists = session.scalar(select(LotConsumption.id).where(LotConsumption.produced_lot_id == move.lot_id).limit(1))
        if exists is None:
            for consumed_lot_id, quantity in consumed_by_work_order(session, move.work_order_id).items():
                _upsert_link(session, move.lot_id, consumed_lot_id, move.work_order_id, quantity)


def on_hand_from_ledger(session: Session, product_id: int) -> Decimal:
    """On-hand of one material over all lots and locations, summed from the ledger itself (no cache).

    One pass over the material's moves: what came in (to a location) minus what went out (from one).
    """
    incoming = case((StockMove.to_location_id.is_not(None), StockMove.quantity), else_=0)
    outgoing = case((StockMove.from_location_id.is_not(None), StockMove.quantity), else_=0)
    total = session.scalar(
        select(func.coalesce(func.sum(incoming - outgoing), 0)).where(StockMove.product_id == product_id)
    )
    return Decimal(total or 0)


@dataclass(frozen=True)
class BalanceMismatch:
    product_id: int
    location_id: int
    lot_id: int
    cached: Decimal
    ledger: Decimal


def reconcile_balances(session: Session) -> list[BalanceMismatch]:
    """Every cached balance that differs from the ledger's sum (an empty list means the cache is right)."""
    ledger: dict[tuple[int, int, int], Decimal] = {}
    for column, sign in ((StockMove.to_location_id, 1), (StockMove.from_location_id, -1)):
        rows = session.execute(
            select(StockMove.product_id, column, StockMove.lot_id, func.sum(StockMove.quantity))
            .where(column.is_not(None))
            .group_by(StockMove.product_id, column, StockMove.lot_id)
        ).all()
        for product_id, location_id, lot_id, total in rows:
            key = (product_id, location_id, lot_id)
            ledger[key] = ledger.get(key, Decimal(0)) + sign * Decimal(total)
    cached = {
        (b.product_id, b.location_id, b.lot_id): Decimal(b.quantity) for b in session.scalars(select(StockBalance))
    }
    mismatches = []
    for key in sorted(set(ledger) | set(cached)):
        a, b = cached.get(key, Decimal(0)), ledger.get(key, Decimal(0))
        if a != b:
            mismatches.append(BalanceMismatch(*key, cached=a, ledger=b))
    return mismatches
