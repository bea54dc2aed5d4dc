"""Work orders for supervisors `/orders`: the list by status, a new order, release / unrelease /
close / reopen (the operator station runs start, pause, resume and complete).

The actions call `services.work_orders` (the same rules as the API) inside `commit_write`. A
refused action or form comes back with the service's sentence, which names what to fix (for a
close: the component short at the line, `docs/warehouse.md`); stored data is unchanged, because
the service raises before it writes.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import URL

from mes_lite.db import get_session
from mes_lite.models import Product, User, WorkCenter, WorkOrder, WorkOrderStatus
from mes_lite.services import work_orders as wo
from mes_lite.services.errors import InvalidInput, ServiceError
from mes_lite.web.board import active_machines
from mes_lite.web.session import require_page_role, verify_csrf
from mes_lite.web.templating import NAV_ITEMS, NavItem, render
from mes_lite.web.writes import commit_write

router = APIRouter(include_in_schema=False)
supervisor_user = require_page_role("supervisor")
if not any(item.href == "/orders" for item in NAV_ITEMS):
    NAV_ITEMS.append(NavItem("nav.orders", "/orders", min_role="supervisor"))

SUPERVISOR_ACTIONS = ("release", "unrelease", "close", "reopen")
SHOWN = 500
"""Orders per view, newest first (closed ones accumulate for years)."""
VIEWS = {
    "open": [s.value for s in WorkOrderStatus if s is not WorkOrderStatus.CLOSED],
    "closed": [WorkOrderStatus.CLOSED.value],
}


def _rows(session: Session, statuses: list[str]) -> list[dict[str, object]]:
    orders = session.scalars(
        select(WorkOrder).where(WorkOrder.status.in_(statuses)).order_by(WorkOrder.id.desc()).limit(SHOWN)
    ).all()
    rows = []
    for order in orders:
        product = session.get(Product, order.product_id)
        machine = session.get(WorkCenter, order.work_center_id)
        allowed = wo.TRANSITIONS[WorkOrderStatus(order.status)]
        rows.append(
            {
                "order": order,
                "product": product.code if product else "",
                "machine": machine.code if machine else "",
                "good_qty": wo.quantities(session, order).good_qty,
                "actions": [a for a in SUPERVISOR_ACTIONS if a in allowed],
            }
        )
    return rows


def _page(
    request: Request, session: Session, view: str, *, done: str = "", number: str = "", refused: str = ""
) -> Response:
    """The list; a refused form or action is shown here at once (422), not carried in a redirect's URL."""
    view = view if view in VIEWS else "open"
    if done and not session.scalar(select(WorkOrder.id).where(WorkOrder.number == number)):
        done = ""  # the message names an order that exists, whatever a link says
    context = {
        "view": view,
        "views": list(VIEWS),
        "rows": _rows(session, VIEWS[view]),
        "products": session.scalars(select(Product.code).order_by(Product.code)).all(),
        "machines": active_machines(session),
        "done": done if done in (*SUPERVISOR_ACTIONS, "create") else "",
        "number": number,
        "refused": refused,
    }
    return render(request, "orders/list.html", context, status_code=422 if refused else 200)


def _done(view: str, action: str, number: str) -> RedirectResponse:
    url = URL("/orders").include_query_params(view=view, done=action, number=number)
    return RedirectResponse(str(url), status_code=303)


@router.get("/orders")
def orders_page(
    request: Request,
    view: str = "open",
    done: str = "",
    number: str = "",
    _: User = Depends(supervisor_user),
    session: Session = Depends(get_session),
) -> Response:
    return _page(request, session, view, done=done, number=number)


@router.post("/orders", dependencies=[Depends(verify_csrf)])
def create(
    request: Request,
    number: str = Form(""),
    product: str = Form(""),
    machine: str = Form(""),
    planned_qty: str = Form(""),
    user: User = Depends(supervisor_user),
    session: Session = Depends(get_session),
) -> Response:
    number = number.strip()
    try:
        if not number:
            raise InvalidInput("the work order needs a number", "number")
        quantity = _quantity(planned_qty)
        commit_write(session, lambda: wo.create_order(session, number, product, machine, quantity, user))
    except ServiceError as e:
        session.rollback()
        return _page(request, session, "open", refused=e.message)
    return _done("open", "create", number)


def _quantity(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"planned quantity {text!r} is not a number", "planned_qty") from None


@router.post("/orders/{order_id}/{action}", dependencies=[Depends(verify_csrf)])
def order_action(
    request: Request,
    order_id: int,
    action: str,
    view: str = Form("open"),
    user: User = Depends(supervisor_user),
    session: Session = Depends(get_session),
) -> Response:
    settings = request.app.state.settings
    try:
        if action not in SUPERVISOR_ACTIONS:
            raise InvalidInput(f"{action!r} is not an action of this page", "action")
        order = commit_write(
            session,
            lambda: wo.transition(
                session, order_id, action, user, allow_parallel_orders=settings.allow_parallel_orders
            ),
        )
    except ServiceError as e:
        session.rollback()
        return _page(request, session, view, refused=e.message)
    return _done(view, action, order.number)
