"""Work-order rules: the status machine, one running order per work center, quantities, scrap, notes.

    planned -> released -> running <-> paused -> completed -> closed
                              \\-------------------^   (running or paused -> completed)

Every refused request raises before anything changes (409 for a transition the current state
forbids, 422 for a bad value), so a refused request leaves stored data intact. The API, the
ingest and the operator pages all call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_lite.inventory.auto_backflush import settle_before_close
from mes_lite.inventory.ledger import Actor
from mes_lite.models import (
    ProductionCount,
    ScrapReason,
    ScrapReport,
    User,
    WorkCenter,
    WorkOrder,
    WorkOrderNote,
    WorkOrderStatus,
    WorkOrderStatusChange,
)
from mes_lite.services.errors import Conflict, InvalidInput, NotFound
from mes_lite.services.master_data import product_by_code, work_center_by_path
from mes_lite.services.production import ProductionRecorder
from mes_lite.spans import NS_PER_S

S = WorkOrderStatus
TRANSITIONS: dict[WorkOrderStatus, dict[str, WorkOrderStatus]] = {
    S.PLANNED: {"release": S.RELEASED},
    S.RELEASED: {"start": S.RUNNING, "unrelease": S.PLANNED},
    S.RUNNING: {"pause": S.PAUSED, "complete": S.COMPLETED},
    S.PAUSED: {"resume": S.RUNNING, "complete": S.COMPLETED},
    S.COMPLETED: {"close": S.CLOSED, "reopen": S.PAUSED},
    S.CLOSED: {},
}
"""status -> {action: next status}; anything else is refused with the list of allowed actions."""

ACTIONS = sorted({action for moves in TRANSITIONS.values() for action in moves})


def now_ns() -> int:
    import time

    return time.time_ns()


def get_order(session: Session, work_order_id: int) -> WorkOrder:
    order = session.get(WorkOrder, work_order_id)
    if order is None:
        raise NotFound(f"work order {work_order_id} does not exist", "work_order_id")
    return order


def create_order(
    session: Session,
    number: str,
    product_code: str,
    work_center_path: str,
    planned_qty: float,
    user: User | None = None,
    planned_start_ns: int | None = None,
    planned_end_ns: int | None = None,
) -> WorkOrder:
    if session.scalar(select(WorkOrder.id).where(WorkOrder.number == number)):
        raise Conflict(f"work order {number!r} already exists", "number")
    if planned_qty <= 0:
        raise InvalidInput("planned_qty must be greater than 0", "planned_qty")
    if planned_start_ns and planned_end_ns and planned_end_ns <= planned_start_ns:
        raise InvalidInput("planned_end must be after planned_start", "planned_end_ns")
    product = product_by_code(session, product_code)
    work_center = work_center_by_path(session, work_center_path)
    order = WorkOrder(
        number=number,
        product_id=product.id,
        work_center_id=work_center.id,
        planned_qty=planned_qty,
        status=S.PLANNED.value,
        planned_start_ns=planned_start_ns,
        planned_end_ns=planned_end_ns,
        created_by_id=user.id if user else None,
    )
    session.add(order)
    session.flush()
    session.add(
        WorkOrderStatusChange(
            work_order_id=order.id,
            from_status=None,
            to_status=S.PLANNED.value,
            at_ns=now_ns(),
            user_id=order.created_by_id,
        )
    )
    session.flush()
    return order


def _parallel_allowed(work_center: WorkCenter, allow_parallel_orders: bool) -> bool:
    return allow_parallel_orders or work_center.allow_parallel_orders


def transition(
    session: Session,
    work_order_id: int,
    action: str,
    user: User | None = None,
    note: str = "",
    at_ns: int | None = None,
    allow_parallel_orders: bool = False,
) -> WorkOrder:
    """Apply `action` (release, start, pause, resume, complete, close, unrelease, reopen) or refuse it."""
    order = get_order(session, work_order_id)
    current = WorkOrderStatus(order.status)
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}", "action")
    allowed = TRANSITIONS[current]
    if action not in allowed:
        hint = f"allowed now: {', '.join(allowed)}" if allowed else "a closed order cannot change"
        raise Conflict(f"work order {order.number} is {current.value}: cannot {action} ({hint})")
    target = allowed[action]
    at_ns = at_ns or now_ns()
    if target == S.CLOSED:  # the last counts consume their components first, or the close is refused
        settle_before_close(session, order, Actor(user.username, user.id) if user else Actor("close"))
    if target == S.RUNNING:
        work_center = session.get(WorkCenter, order.work_center_id)
        assert work_center is not None
        if not _parallel_allowed(work_center, allow_parallel_orders):
            other = session.scalar(
                select(WorkOrder).where(
                    WorkOrder.work_center_id == order.work_center_id,
                    WorkOrder.status == S.RUNNING.value,
                    WorkOrder.id != order.id,
                )
            )
            if other is not None:
                raise Conflict(
                    f"work order {other.number} is already running on work center {work_center.code}: "
                    f"pause or complete it first"
                )
        if order.started_ns is None:
            order.started_ns = at_ns
    if target == S.COMPLETED:
        order.completed_ns = at_ns
    if action == "reopen":
        order.completed_ns = None
    session.add(
        WorkOrderStatusChange(
            work_order_id=order.id,
            from_status=current.value,
            to_status=target.value,
            at_ns=at_ns,
            user_id=user.id if user else None,
            note=note,
        )
    )
    order.status = target.value
    if action == "start":  # the machine gets the order's target quantity (docs/writeback.md)
        from mes_lite.alarms.target_push import queue_target_quantity

        queue_target_quantity(session, order, user)
    session.flush()
    return order


@dataclass(frozen=True)
class OrderQuantities:
    produced_qty: float
    reject_qty: float
    good_qty: float
    remaining_qty: float
    progress: float


def quantities(session: Session, order: WorkOrder) -> OrderQuantities:
    produced, reject = session.execute(
        select(
            func.coalesce(func.sum(ProductionCount.produced_qty), 0.0),
            func.coalesce(func.sum(ProductionCount.reject_qty), 0.0),
        ).where(ProductionCount.work_order_id == order.id)
    ).one()
    good = float(produced) - float(reject)
    return OrderQuantities(
        produced_qty=float(produced),
        reject_qty=float(reject),
        good_qty=good,
        remaining_qty=max(0.0, order.planned_qty - good),
        progress=good / order.planned_qty if order.planned_qty else 0.0,
    )


def _require_active(order: WorkOrder, what: str) -> None:
    if order.status not in (S.RUNNING.value, S.PAUSED.value, S.COMPLETED.value):
        raise Conflict(f"work order {order.number} is {order.status}: {what} needs a started order")


def report_quantity(
    session: Session,
    work_order_id: int,
    good_qty: float,
    reject_qty: float = 0.0,
    user: User | None = None,
    at_ns: int | None = None,
    recorder: ProductionRecorder | None = None,
) -> ProductionCount:
    """A partial quantity declared by hand (machines without a counter, or hand work)."""
    order = get_order(session, work_order_id)
    _require_active(order, "reporting a quantity")
    if good_qty < 0 or reject_qty < 0 or good_qty + reject_qty == 0:
        raise InvalidInput("good_qty and reject_qty must be >= 0 and not both 0", "good_qty")
    recorder = recorder or ProductionRecorder()
    count = recorder.record_count(
        session,
        order.work_center_id,
        at_ns or now_ns(),
        produced_qty=good_qty + reject_qty,
        reject_qty=reject_qty,
        source="manual",
        work_order=order,
    )
    assert count is not None
    return count


def report_scrap(
    session: Session,
    work_order_id: int,
    quantity: float,
    scrap_reason_code: str,
    user: User | None = None,
    note: str = "",
    at_ns: int | None = None,
    recorder: ProductionRecorder | None = None,
) -> ScrapReport:
    """Parts already counted as produced are scrap: good goes down, produced stays."""
    order = get_order(session, work_order_id)
    _require_active(order, "reporting scrap")
    if quantity <= 0:
        raise InvalidInput("quantity must be greater than 0", "quantity")
    reason = session.scalar(select(ScrapReason).where(ScrapReason.code == scrap_reason_code))
    if reason is None or not reason.active:
        raise InvalidInput(f"scrap reason {scrap_reason_code!r} does not exist or is inactive", "reason")
    have = quantities(session, order)
    if quantity > have.good_qty:
        raise Conflict(f"work order {order.number} has {have.good_qty:g} good parts: cannot scrap {quantity:g}")
    at_ns = at_ns or now_ns()
    report = ScrapReport(
        work_order_id=order.id,
        scrap_reason_id=reason.id,
        quantity=quantity,
        at_ns=at_ns,
        user_id=user.id if user else None,
        note=note,
    )
    session.add(report)
    recorder = recorder or ProductionRecorder()
    recorder.record_count(
        session,
        order.work_center_id,
        at_ns,
        produced_qty=0,
        reject_qty=quantity,
        source="scrap_report",
        scrap_reason_id=reason.id,
        work_order=order,
    )
    session.flush()
    return report


def add_note(session: Session, work_order_id: int, text: str, user: User | None = None) -> WorkOrderNote:
    order = get_order(session, work_order_id)
    if not text.strip():
        raise InvalidInput("a note needs text", "text")
    note = WorkOrderNote(work_order_id=order.id, at_ns=now_ns(), user_id=user.id if user else None, text=text.strip())
    session.add(note)
    session.flush()
    return note


def duration_s(order: WorkOrder) -> float | None:
    if order.started_ns is None:
        return None
    return ((order.completed_ns or now_ns()) - order.started_ns) / NS_PER_S
