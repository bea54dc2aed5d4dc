"""Backflush from production counts without anyone asking: the MES ingest runs a round every minute.

A round backflushes, per work order, what its production counts added since the last
backflush (`operations.backflush_from_counts`: idempotent, each counted unit consumes its
components once), for every order whose product has a component marked `backflush`. Orders
whose product has none are left alone, so a factory that does not keep stock yet sees nothing.

Each order is its own transaction. One that cannot be backflushed (its work center has no
line-side location, not enough stock of a material that may not go negative) is rolled back,
and the reason is kept on its backflush mark (`last_error`, shown by `GET
/api/inventory/backflush-status`) and logged when it changes. The next round tries again, so
receiving the stock or naming the location settles it, and no count is lost or counted twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from mes_lite.inventory import operations, stock
from mes_lite.inventory.ledger import Actor
from mes_lite.inventory.models import BackflushMark, Material
from mes_lite.models import BomLine, ProductionCount, WorkOrder, WorkOrderStatus
from mes_lite.services.errors import Conflict, ServiceError

log = logging.getLogger(__name__)

INTERVAL_S = 60.0
"""How often the ingest runs a round (counts arrive every few seconds; stock need not follow faster)."""

ACTOR = Actor("auto-backflush")


@dataclass
class BackflushRound:
    moves: dict[str, int] = field(default_factory=dict)
    """Work order -> stock moves posted by this round."""
    failed: dict[str, str] = field(default_factory=dict)
    """Work order -> why it could not be backflushed (kept on its mark until one succeeds)."""


@dataclass(frozen=True)
class OrderBackflush:
    work_order: str
    counted: Decimal
    """Parent units counted on the order (good + reject)."""
    backflushed: Decimal
    last_error: str
    last_error_at_ns: int

    @property
    def pending(self) -> Decimal:
        return max(self.counted - self.backflushed, Decimal(0))


def backflush_status(
    session: Session, problems_only: bool = False, work_order: str | None = None
) -> list[OrderBackflush]:
    """Every open (not closed) work order with counts whose product has a backflushed component, by number.

    Closed orders are left out: summing the counts of every order ever made each minute would grow
    with the years, and a closed order takes no more material (`backflush_from_counts` refuses it).
    """
    counted = (
        select(func.coalesce(func.sum(ProductionCount.produced_qty), 0))
        .where(ProductionCount.work_order_id == WorkOrder.id)
        .scalar_subquery()
    )
    has_backflushed_component = exists(
        select(BomLine.id)
        .join(Material, Material.product_id == BomLine.component_id)
        .where(BomLine.product_id == WorkOrder.product_id, Material.backflush.is_(True))
    )
    query = (
        select(
            WorkOrder.number,
            counted,
            BackflushMark.backflushed_qty,
            BackflushMark.last_error,
            BackflushMark.last_error_at_ns,
        )
        .outerjoin(BackflushMark, BackflushMark.work_order_id == WorkOrder.id)
        .where(WorkOrder.status != WorkOrderStatus.CLOSED.value, has_backflushed_component, counted > 0)
        .order_by(WorkOrder.number)
    )
    if problems_only:
        query = query.where(BackflushMark.last_error != "")
    if work_order is not None:
        query = query.where(WorkOrder.number == work_order)
    return [
        OrderBackflush(number, stock.as_quantity(total or 0), Decimal(done or 0), error or "", at_ns or 0)
        for number, total, done, error, at_ns in session.execute(query)
    ]


def run_round(sessions: Callable[[], Session], now_ns: Callable[[], int] = time.time_ns) -> BackflushRound:
    """Backflush every order with counts not yet backflushed; never raises for one order's problem."""
    result = BackflushRound()
    with sessions() as session:
        orders = [order for order in backflush_status(session) if order.pending > 0]
    for order in orders:
        outcome = _backflush_order(sessions, order.work_order)
        if isinstance(outcome, int):
            result.moves[order.work_order] = outcome
            continue
        result.failed[order.work_order] = outcome
        if outcome != order.last_error:  # kept and logged once, not every minute
            _keep_error(sessions, order.work_order, outcome, now_ns())
            log.warning(
                "automatic backflush of work order %s failed (retried every minute): %s", order.work_order, outcome
            )
    return result


def _backflush_order(sessions: Callable[[], Session], number: str) -> int | str:
    """The stock moves posted for one order, or why none could be (its transaction rolled back)."""
    with sessions() as session:
        try:
            moves = operations.backflush_from_counts(session, work_order=number, actor=ACTOR)
        except ServiceError as e:
            session.rollback()
            return e.message
        session.commit()
        return len(moves)


def settle_before_close(session: Session, order: WorkOrder, actor: Actor) -> None:
    """Backflush an order's last counts as part of closing it, in the caller's transaction.

    The rounds run once a minute, and a closed order takes no more material: without this, the
    counts of the last minute before a close would never consume their components. When they
    cannot be backflushed, the close is refused with the reason (a `Conflict`), and nothing changes.
    """
    pending = sum((o.pending for o in backflush_status(session, work_order=order.number)), Decimal(0))
    if pending <= 0:
        return
    try:
        operations.backflush_from_counts(session, work_order=order.number, actor=actor)
    except ServiceError as e:
        units = f"{pending.normalize():f}"
        raise Conflict(
            f"work order {order.number} cannot be closed: {units} counted units are not backflushed yet ({e.message})"
        ) from e


def _keep_error(sessions: Callable[[], Session], number: str, error: str, at_ns: int) -> None:
    with sessions() as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == number))
        if order is None:
            return
        mark = session.get(BackflushMark, order.id)
        if mark is None:
            mark = BackflushMark(work_order_id=order.id, backflushed_qty=Decimal(0), updated_at_ns=0)
            session.add(mark)
        mark.last_error, mark.last_error_at_ns = error, at_ns
        session.commit()
