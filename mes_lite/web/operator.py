"""The operator station `/operator` (a tablet by the machine): choose a machine, run its work order,
give the current stop a reason in two taps, report scrap.

Every action calls the same services as the API (`services.work_orders`, `services.production`)
with the same role rules: operators start, pause, resume and complete; release and close stay
with supervisors. Each post answers with a redirect back to the station (post/redirect/get) and a
`done=` or `failed=` code that the page shows as a translated message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.db import get_session
from mes_lite.models import (
    DowntimeReason,
    MachineStateInterval,
    Product,
    ScrapReason,
    User,
    WorkOrder,
    WorkOrderStatus,
)
from mes_lite.services import work_orders as wo
from mes_lite.services.errors import ServiceError
from mes_lite.services.master_data import work_center_by_path
from mes_lite.services.production import STOP_CATEGORIES, assign_reason, category_of
from mes_lite.spans import NS_PER_S
from mes_lite.web import alarms_view
from mes_lite.web.board import active_machines
from mes_lite.web.plant_labels import STATE_ICONS, reason_label, state_key, state_label
from mes_lite.web.session import require_page_role, verify_csrf
from mes_lite.web.sse import event_stream
from mes_lite.web.templating import finish_response, render, request_locale
from mes_lite.web.writes import commit_write

router = APIRouter(include_in_schema=False)
STATION_POLL_S = 1.0
operator_user = require_page_role("operator")

OPERATOR_ACTIONS = ("start", "pause", "resume", "complete")
"""What the station offers; release/close/reopen need a supervisor and live in the API."""
VISIBLE_STATUSES = (WorkOrderStatus.RELEASED.value, WorkOrderStatus.RUNNING.value, WorkOrderStatus.PAUSED.value)


@dataclass(frozen=True)
class OrderView:
    order: WorkOrder
    product: str
    good_qty: float
    reject_qty: float
    progress: float
    actions: list[str]


def _orders(session: Session, work_center_id: int) -> list[OrderView]:
    orders = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.work_center_id == work_center_id, WorkOrder.status.in_(VISIBLE_STATUSES))
        .order_by(WorkOrder.status.desc(), WorkOrder.planned_start_ns, WorkOrder.id)
    ).all()
    views = []
    for order in orders:
        q = wo.quantities(session, order)
        product = session.get(Product, order.product_id)
        allowed = wo.TRANSITIONS[WorkOrderStatus(order.status)]
        views.append(
            OrderView(
                order,
                product.code if product else "",
                q.good_qty,
                q.reject_qty,
                q.progress,
                [a for a in OPERATOR_ACTIONS if a in allowed],
            )
        )
    running_first = {"running": 0, "paused": 1, "released": 2}
    return sorted(views, key=lambda v: running_first.get(v.order.status, 3))


def _back(request: Request, path: str, **params: str) -> Response:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = RedirectResponse(f"/operator/{path}?{query}" if query else f"/operator/{path}", status_code=303)
    finish_response(request, response)
    return response


@router.get("/operator")
def choose_work_center(
    request: Request, _user: User = Depends(operator_user), session: Session = Depends(get_session)
) -> Response:
    machines = active_machines(session)
    return render(request, "operator/choose.html", {"machines": machines})


def station_signature(session: Session, path: str) -> str:
    """What the station shows that others can change: the current state interval and its reason, the orders' statuses."""
    work_center = work_center_by_path(session, path)
    interval = session.scalar(
        select(MachineStateInterval).where(
            MachineStateInterval.work_center_id == work_center.id, MachineStateInterval.end_ns.is_(None)
        )
    )
    orders = session.execute(
        select(WorkOrder.id, WorkOrder.status)
        .where(WorkOrder.work_center_id == work_center.id, WorkOrder.status.in_(VISIBLE_STATUSES))
        .order_by(WorkOrder.id)
    ).all()
    state = (interval.state, interval.reason_id) if interval else None
    return repr(
        (
            state,
            [tuple(o) for o in orders],
            sorted(a.key for a in alarms_view.active_alarms_by_work_center(session).get(work_center.id, [])),
        )
    )


@router.get("/operator/{path:path}/events")
async def station_events(request: Request, path: str, _user: User = Depends(operator_user)) -> StreamingResponse:
    """`event: changed` when the machine's state, its reason, its orders or its alarms changed: the tablet reloads."""

    def signature() -> str:
        with request.app.state.session_factory() as session:
            return station_signature(session, path)

    async def changes() -> AsyncIterator[tuple[str, str]]:
        first = await asyncio.to_thread(signature)
        while True:
            await asyncio.sleep(STATION_POLL_S)
            now = await asyncio.to_thread(signature)
            yield ("changed", "") if now != first else ("", "")
            first = now

    return event_stream(request, changes())


@router.get("/operator/{path:path}")
def station(
    request: Request,
    path: str,
    done: str = "",
    failed: str = "",
    _user: User = Depends(operator_user),
    session: Session = Depends(get_session),
) -> Response:
    from mes_lite.web.i18n import translator

    t = translator(request_locale(request))
    try:
        work_center = work_center_by_path(session, path)
    except ServiceError:
        return render(request, "error.html", {"message": t("error.not_found", what=path)}, status_code=404)
    interval = session.scalar(
        select(MachineStateInterval).where(
            MachineStateInterval.work_center_id == work_center.id, MachineStateInterval.end_ns.is_(None)
        )
    )
    is_stop = interval is not None and category_of(interval.state).value in STOP_CATEGORIES
    downtime = session.scalars(
        select(DowntimeReason)
        .where(DowntimeReason.active.is_(True))
        .order_by(DowntimeReason.planned, DowntimeReason.id)
    ).all()
    scrap = session.scalars(select(ScrapReason).where(ScrapReason.active.is_(True)).order_by(ScrapReason.id)).all()
    current_reason = session.get(DowntimeReason, interval.reason_id) if interval and interval.reason_id else None
    key = state_key(interval.state if interval else None)
    context = {
        "path": path,
        "code": work_center.code,
        "interval": interval,
        "is_stop": is_stop,
        "state_key": key,
        "state_icon": STATE_ICONS[key],
        "state_label": state_label(t, interval.state if interval else None),
        "since_s": (time.time_ns() - interval.start_ns) / NS_PER_S if interval else None,
        "current_reason": reason_label(t, current_reason.code, current_reason.name) if current_reason else "",
        "current_reason_code": current_reason.code if current_reason else "",
        "downtime_reasons": [(r.code, reason_label(t, r.code, r.name), r.planned) for r in downtime],
        "scrap_reasons": [(r.code, reason_label(t, r.code, r.name, kind="scrap_reason")) for r in scrap],
        "orders": _orders(session, work_center.id),
        "alarms": alarms_view.active_alarms_by_work_center(session).get(work_center.id, []),
        "done": done,
        "failed": failed,
    }
    return render(request, "operator/station.html", context)


@router.post("/operator/{path:path}/reason", dependencies=[Depends(verify_csrf)])
def give_reason(
    request: Request,
    path: str,
    interval_id: int = Form(...),
    reason: str = Form(""),
    user: User = Depends(operator_user),
    session: Session = Depends(get_session),
) -> Response:
    if not reason:
        return _back(request, path, failed="reason_missing")
    try:
        commit_write(session, lambda: assign_reason(session, interval_id, reason, user))
    except ServiceError:
        session.rollback()
        return _back(request, path, failed="reason")
    return _back(request, path, done="reason")


@router.post("/operator/{path:path}/orders/{order_id}/{action}", dependencies=[Depends(verify_csrf)])
def order_action(
    request: Request,
    path: str,
    order_id: int,
    action: str,
    user: User = Depends(operator_user),
    session: Session = Depends(get_session),
) -> Response:
    if action not in OPERATOR_ACTIONS:
        return _back(request, path, failed="action")
    settings = request.app.state.settings
    try:
        commit_write(
            session,
            lambda: wo.transition(
                session, order_id, action, user, allow_parallel_orders=settings.allow_parallel_orders
            ),
        )
    except ServiceError:
        session.rollback()
        return _back(request, path, failed=action)
    return _back(request, path, done=action)


@router.post("/operator/{path:path}/scrap", dependencies=[Depends(verify_csrf)])
def scrap(
    request: Request,
    path: str,
    order_id: int = Form(...),
    quantity: float = Form(...),
    reason: str = Form(""),
    user: User = Depends(operator_user),
    session: Session = Depends(get_session),
) -> Response:
    try:
        commit_write(session, lambda: wo.report_scrap(session, order_id, quantity, reason, user))
    except ServiceError:
        session.rollback()
        return _back(request, path, failed="scrap")
    return _back(request, path, done="scrap")


@router.post("/operator/{path:path}/alarms/ack", dependencies=[Depends(verify_csrf)])
def acknowledge_alarm(
    request: Request,
    path: str,
    key: str = Form(...),
    user: User = Depends(operator_user),
    session: Session = Depends(get_session),
) -> Response:
    """Ask the gateway to acknowledge an alarm of this machine (it owns the alarm state; the MES relays)."""
    try:
        work_center = work_center_by_path(session, path)
        mine = {a.key for a in alarms_view.active_alarms_by_work_center(session).get(work_center.id, [])}
        if key not in mine:
            return _back(request, path, failed="ack")
        commit_write(session, lambda: alarms_view.request_acknowledgement(session, key, user.username))
    except (ServiceError, LookupError, ValueError):
        session.rollback()
        return _back(request, path, failed="ack")
    return _back(request, path, done="ack")
