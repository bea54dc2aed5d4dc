"""Warehouse pages `/warehouse/...`: stock by location and lot, receive, issue, transfer, ship with a
packing list, and lot trace (backward tree and forward recall list).

Every move goes through `mes_lite.inventory` (the same functions as the API), inside
`commit_write` so it queues behind the ingest on SQLite. A refused move re-renders its form with
the values kept and a translated message naming the field the service blamed; stored data is
unchanged, because the service raises before it writes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.db import get_session
from mes_lite.inventory import operations, planning, shipping, trace
from mes_lite.inventory.genealogy import UnknownLotError, summarize_backward
from mes_lite.inventory.ledger import Actor
from mes_lite.inventory.models import Location, SalesOrder, SalesOrderStatus, Shipment
from mes_lite.inventory.stock import StockError
from mes_lite.models import Product, User, WorkOrder, WorkOrderStatus
from mes_lite.services.errors import Conflict, NotFound, ServiceError
from mes_lite.web.i18n import translator
from mes_lite.web.session import require_page_role, verify_csrf
from mes_lite.web.templating import finish_response, render, request_locale
from mes_lite.web.writes import commit_write

router = APIRouter(include_in_schema=False)
warehouse_user = require_page_role("operator")

SECTIONS = ("stock", "receive", "issue", "transfer", "ship", "trace")
MOVE_ERRORS = (ServiceError, StockError, UnknownLotError, ValueError)


def _actor(user: User) -> Actor:
    return Actor(user.username, user.id)


def error_message(request: Request, error: Exception) -> str:
    """A refused move in the page's language: what kind of refusal, and which field if the service said."""
    t = translator(request_locale(request))
    if isinstance(error, NotFound | UnknownLotError):
        kind = "not_found"
    elif isinstance(error, Conflict):
        kind = "conflict"
    else:
        kind = "invalid"
    field = getattr(error, "field", None)
    field_key = f"warehouse.field.{(field or '').split('[')[0].split('.')[0]}"
    if field and t.has(field_key):
        return t(f"warehouse.error.{kind}_field", field=t(field_key))
    return t(f"warehouse.error.{kind}")


def _choices(session: Session) -> dict[str, Any]:
    locations = session.scalars(select(Location).where(Location.active.is_(True)).order_by(Location.code)).all()
    orders = session.scalars(
        select(WorkOrder)
        .where(
            WorkOrder.status.in_(
                (WorkOrderStatus.RELEASED.value, WorkOrderStatus.RUNNING.value, WorkOrderStatus.PAUSED.value)
            )
        )
        .order_by(WorkOrder.number)
    ).all()
    return {
        "materials": [(p.code, p.unit_of_measure) for p in session.scalars(select(Product).order_by(Product.code))],
        "locations": [(loc.code, loc.kind) for loc in locations],
        "dispatch_locations": [loc.code for loc in locations if loc.dispatch],
        "work_orders": [o.number for o in orders],
    }


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        return None
    return value if value.is_finite() else None


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _done(request: Request, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    finish_response(request, response)
    return response


# -- stock -----------------------------------------------------------------------------------------------


@router.get("/warehouse")
def stock_page(
    request: Request,
    material: str = "",
    location: str = "",
    lot: str = "",
    done: str = "",
    _user: User = Depends(warehouse_user),
    session: Session = Depends(get_session),
) -> Response:
    error = ""
    try:
        rows = operations.on_hand(session, material=material or None, location=location or None, lot=lot or None)
    except MOVE_ERRORS as e:
        rows, error = [], error_message(request, e)
    by_location: dict[str, list[operations.OnHandRow]] = {}
    for row in sorted(rows, key=lambda r: (r.location, r.material, r.lot)):
        by_location.setdefault(row.location, []).append(row)
    context = {
        "section": "stock",
        "sections": SECTIONS,
        "by_location": by_location,
        "filters": {"material": material, "location": location, "lot": lot},
        "low_stock": planning.low_stock(session),
        "error": error,
        "done": done,
        **_choices(session),
    }
    return render(request, "warehouse/stock.html", context)


# -- receive, issue, transfer: one form each ---------------------------------------------------------------

FORMS = {
    "receive": ("material", "quantity", "location", "lot", "expiry_date", "reason"),
    "issue": ("work_order", "material", "quantity", "location", "lot", "reason"),
    "transfer": ("material", "lot", "quantity", "from_location", "to_location", "reason"),
}


def _form_page(
    request: Request, session: Session, kind: str, values: dict[str, str], error: str = "", status: int = 200
) -> Response:
    context = {"section": kind, "sections": SECTIONS, "values": values, "error": error, **_choices(session)}
    return render(request, f"warehouse/{kind}.html", context, status_code=status)


# -- shipping ------------------------------------------------------------------------------------------------


@router.get("/warehouse/ship")
def ship_page(
    request: Request, done: str = "", _user: User = Depends(warehouse_user), session: Session = Depends(get_session)
) -> Response:
    orders = session.scalars(
        select(SalesOrder)
        .where(SalesOrder.status.in_((SalesOrderStatus.OPEN.value, SalesOrderStatus.PARTIALLY_SHIPPED.value)))
        .order_by(SalesOrder.number)
    ).all()
    shipments = session.scalars(select(Shipment).order_by(Shipment.id.desc()).limit(30)).all()
    context = {
        "section": "ship",
        "sections": SECTIONS,
        "orders": [(o, shipping.back_orders(session, o)) for o in orders],
        "shipments": shipments,
        "done": done,
        "error": request.query_params.get("error", ""),
        **_choices(session),
    }
    return render(request, "warehouse/ship.html", context)


@router.post("/warehouse/ship/{order_number}/pick", dependencies=[Depends(verify_csrf)])
async def pick(
    request: Request, order_number: str, user: User = Depends(warehouse_user), session: Session = Depends(get_session)
) -> Response:
    form = await request.form()
    dispatch = str(form.get("dispatch_location", ""))
    try:
        shipment = commit_write(
            session,
            lambda: shipping.pick(session, sales_order=order_number, dispatch_location=dispatch, actor=_actor(user)),
        )
    except MOVE_ERRORS as e:
        session.rollback()
        t = translator(request_locale(request))
        orders = session.scalars(select(SalesOrder).order_by(SalesOrder.number)).all()
        context = {
            "section": "ship",
            "sections": SECTIONS,
            "orders": [
                (o, shipping.back_orders(session, o)) for o in orders if o.status != SalesOrderStatus.SHIPPED.value
            ],
            "shipments": session.scalars(select(Shipment).order_by(Shipment.id.desc()).limit(30)).all(),
            "done": "",
            "error": f"{t('warehouse.ship.pick_failed')} {error_message(request, e)}",
            **_choices(session),
        }
        return render(request, "warehouse/ship.html", context, status_code=422)
    return _done(request, f"/warehouse/shipments/{shipment.number}?done=pick")


@router.get("/warehouse/shipments/{number}")
def shipment_page(
    request: Request,
    number: str,
    done: str = "",
    error: str = "",
    _user: User = Depends(warehouse_user),
    session: Session = Depends(get_session),
) -> Response:
    try:
        note = shipping.delivery_note(session, number)
    except MOVE_ERRORS:
        t = translator(request_locale(request))
        return render(request, "error.html", {"message": t("error.not_found", what=number)}, status_code=404)
    context = {"section": "ship", "sections": SECTIONS, "note": note, "done": done, "error": error}
    return render(request, "warehouse/shipment.html", context)


@router.post("/warehouse/shipments/{number}/{action}", dependencies=[Depends(verify_csrf)])
async def shipment_action(
    request: Request,
    number: str,
    action: str,
    user: User = Depends(warehouse_user),
    session: Session = Depends(get_session),
) -> Response:
    form = await request.form()
    try:
        if action == "pack":
            packages = int(str(form.get("packages", "0")) or 0)
            commit_write(
                session,
                lambda: shipping.pack(
                    session,
                    number,
                    packages=packages,
                    carrier=str(form.get("carrier", "")).strip(),
                    tracking=str(form.get("tracking", "")).strip(),
                ),
            )
        elif action == "ship":
            commit_write(session, lambda: shipping.ship(session, number, actor=_actor(user)))
        else:
            return _done(request, f"/warehouse/shipments/{number}")
    except MOVE_ERRORS:
        session.rollback()
        return _done(request, f"/warehouse/shipments/{number}?error={action}")
    return _done(request, f"/warehouse/shipments/{number}?done={action}")


@router.get("/warehouse/shipments/{number}/packing-list")
def packing_list(
    request: Request, number: str, _user: User = Depends(warehouse_user), session: Session = Depends(get_session)
) -> Response:
    """The printable packing list / delivery note: the warehouse's own template, in the page's language."""
    try:
        note = shipping.delivery_note(session, number)
    except MOVE_ERRORS:
        t = translator(request_locale(request))
        return render(request, "error.html", {"message": t("error.not_found", what=number)}, status_code=404)
    response = HTMLResponse(shipping.render_delivery_note(note, request_locale(request)))
    finish_response(request, response)
    return response


# -- trace ---------------------------------------------------------------------------------------------------


@router.get("/warehouse/trace")
def trace_page(
    request: Request, lot: str = "", _user: User = Depends(warehouse_user), session: Session = Depends(get_session)
) -> Response:
    context: dict[str, Any] = {"section": "trace", "sections": SECTIONS, "lot": lot.strip(), "error": ""}
    if context["lot"]:
        try:
            root = trace.backward(session, context["lot"])
            context["tree"] = root
            context["summary"] = summarize_backward(root)
            context["recall"] = trace.forward(session, context["lot"])
            context["dashboard_url"] = trace.dashboard_url
        except MOVE_ERRORS as e:
            context["error"] = error_message(request, e)
    return render(request, "warehouse/trace.html", context)


# -- registered last: `/warehouse/{kind}` must not shadow /warehouse/ship and /warehouse/trace --------------


@router.get("/warehouse/{kind}")
def move_form(
    request: Request, kind: str, _user: User = Depends(warehouse_user), session: Session = Depends(get_session)
) -> Response:
    if kind not in FORMS:
        t = translator(request_locale(request))
        return render(request, "error.html", {"message": t("error.not_found", what=kind)}, status_code=404)
    return _form_page(request, session, kind, dict(request.query_params))


@router.post("/warehouse/{kind}", dependencies=[Depends(verify_csrf)])
async def move_submit(
    request: Request, kind: str, user: User = Depends(warehouse_user), session: Session = Depends(get_session)
) -> Response:
    if kind not in FORMS:
        return _done(request, "/warehouse")
    form = await request.form()
    values = {name: str(form.get(name, "")).strip() for name in FORMS[kind]}
    quantity = _decimal(values["quantity"])
    t = translator(request_locale(request))
    if quantity is None or quantity <= 0:
        return _form_page(request, session, kind, values, t("warehouse.error.quantity"), status=422)
    actor = _actor(user)

    def post() -> str:
        if kind == "receive":
            operations.receive(
                session,
                material=values["material"],
                quantity=quantity,
                location=values["location"],
                lot=values["lot"] or None,
                expiry_date=_date(values["expiry_date"]),
                reason=values["reason"],
                actor=actor,
            )
            return values["lot"]
        if kind == "issue":
            operations.issue_to_work_order(
                session,
                work_order=values["work_order"],
                material=values["material"],
                quantity=quantity,
                location=values["location"],
                lot=values["lot"] or None,
                reason=values["reason"],
                actor=actor,
            )
            return values["lot"]
        operations.transfer(
            session,
            material=values["material"],
            lot=values["lot"],
            quantity=quantity,
            from_location=values["from_location"],
            to_location=values["to_location"],
            reason=values["reason"],
            actor=actor,
        )
        return values["lot"]

    try:
        commit_write(session, post)
    except MOVE_ERRORS as e:
        session.rollback()
        return _form_page(request, session, kind, values, error_message(request, e), status=422)
    return _done(request, f"/warehouse?done={kind}&material={values['material']}")
