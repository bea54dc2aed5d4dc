"""Logistics API: sales orders, shipments (pick FEFO/FIFO, pack, ship, partial shipments and back-orders)
and the printable delivery note."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user, require_role
from mes_lite.api.routes.inventory import actor_of
from mes_lite.db import get_session
from mes_lite.inventory import shipping
from mes_lite.inventory.ledger import commit_with_retry
from mes_lite.inventory.models import SalesOrder
from mes_lite.models import User

router = APIRouter(prefix="/api/shipping", tags=["shipping"])
operator = require_role("operator")
supervisor = require_role("supervisor")


class SalesOrderLineIn(BaseModel):
    material: str
    quantity: Decimal = Field(gt=0)
    unit: str | None = None


class SalesOrderIn(BaseModel):
    number: str = Field(min_length=1, max_length=64)
    customer: str = Field(min_length=1)
    ship_to: str = ""
    lines: list[SalesOrderLineIn] = Field(min_length=1)


class SalesOrderLineOut(BaseModel):
    line_no: int
    material: str
    quantity: float
    committed: float
    open_quantity: float


class SalesOrderOut(BaseModel):
    number: str
    customer: str
    ship_to: str
    status: str
    lines: list[SalesOrderLineOut]
    shipments: list[str]


def _order_out(session: Session, number: str) -> SalesOrderOut:
    order = shipping.sales_order_by_number(session, number)
    committed = shipping.committed_per_line(session, order)
    return SalesOrderOut(
        number=order.number,
        customer=order.customer,
        ship_to=order.ship_to,
        status=order.status,
        lines=[
            SalesOrderLineOut(
                line_no=line.line_no,
                material=line.product.code,
                quantity=float(line.quantity),
                committed=float(committed.get(line.id, 0)),
                open_quantity=float(line.quantity - committed.get(line.id, Decimal(0))),
            )
            for line in order.lines
        ],
        shipments=[s.number for s in shipping._shipments_of(session, order)],
    )


@router.post("/sales-orders", response_model=SalesOrderOut, status_code=201)
def post_sales_order(
    body: SalesOrderIn, session: Session = Depends(get_session), _: User = Depends(supervisor)
) -> SalesOrderOut:
    commit_with_retry(
        session,
        lambda: shipping.create_sales_order(
            session,
            number=body.number,
            customer=body.customer,
            ship_to=body.ship_to,
            lines=[(x.material, x.quantity, x.unit) for x in body.lines],
        ),
    )
    return _order_out(session, body.number)


@router.get("/sales-orders", response_model=list[SalesOrderOut])
def get_sales_orders(
    status: str | None = Query(default=None, description="open, partially_shipped or shipped"),
    session: Session = Depends(get_session),
    _: User = Depends(current_user),
) -> list[SalesOrderOut]:
    query = select(SalesOrder.number).order_by(SalesOrder.id.desc()).limit(500)
    if status:
        query = query.where(SalesOrder.status == status)
    return [_order_out(session, number) for number in session.scalars(query)]


@router.get("/sales-orders/{number}", response_model=SalesOrderOut)
def get_sales_order(
    number: str, session: Session = Depends(get_session), _: User = Depends(current_user)
) -> SalesOrderOut:
    return _order_out(session, number)


class PickIn(BaseModel):
    dispatch_location: str
    number: str | None = None
    lines: dict[int, Decimal] | None = Field(
        default=None, description="line number -> quantity, for a deliberate partial shipment"
    )


class ShipmentLineOut(BaseModel):
    line_no: int
    material: str
    lot: str
    picked_from: str
    quantity: float


class ShipmentOut(BaseModel):
    number: str
    sales_order: str
    status: str
    packages: int
    carrier: str
    tracking: str
    lines: list[ShipmentLineOut]
    back_orders: dict[int, float]


def _shipment_out(session: Session, number: str) -> ShipmentOut:
    shipment = shipping.shipment_by_number(session, number)
    return ShipmentOut(
        number=shipment.number,
        sales_order=shipment.sales_order.number,
        status=shipment.status,
        packages=shipment.packages,
        carrier=shipment.carrier,
        tracking=shipment.tracking,
        lines=[
            ShipmentLineOut(
                line_no=line.order_line.line_no,
                material=line.order_line.product.code,
                lot=line.lot.code,
                picked_from=line.picked_from.code,
                quantity=float(line.quantity),
            )
            for line in shipment.lines
        ],
        back_orders={b.line_no: float(b.open_quantity) for b in shipping.back_orders(session, shipment.sales_order)},
    )


@router.post("/sales-orders/{number}/shipments", response_model=ShipmentOut, status_code=201)
def post_pick(
    number: str, body: PickIn, session: Session = Depends(get_session), user: User = Depends(operator)
) -> ShipmentOut:
    shipment = commit_with_retry(
        session,
        lambda: shipping.pick(
            session,
            sales_order=number,
            dispatch_location=body.dispatch_location,
            number=body.number,
            requested=body.lines,
            actor=actor_of(user),
        ),
    )
    return _shipment_out(session, shipment.number)


class PackIn(BaseModel):
    packages: int = Field(ge=1)
    carrier: str = ""
    tracking: str = ""


@router.post("/shipments/{number}/pack", response_model=ShipmentOut)
def post_pack(
    number: str, body: PackIn, session: Session = Depends(get_session), _: User = Depends(operator)
) -> ShipmentOut:
    commit_with_retry(
        session,
        lambda: shipping.pack(session, number, packages=body.packages, carrier=body.carrier, tracking=body.tracking),
    )
    return _shipment_out(session, number)


@router.post("/shipments/{number}/ship", response_model=ShipmentOut)
def post_ship(number: str, session: Session = Depends(get_session), user: User = Depends(operator)) -> ShipmentOut:
    commit_with_retry(session, lambda: shipping.ship(session, number, actor=actor_of(user)))
    return _shipment_out(session, number)


@router.get("/shipments/{number}", response_model=ShipmentOut)
def get_shipment(number: str, session: Session = Depends(get_session), _: User = Depends(current_user)) -> ShipmentOut:
    return _shipment_out(session, number)


@router.get("/shipments/{number}/delivery-note", response_class=HTMLResponse)
def get_delivery_note(
    number: str,
    request: Request,
    lang: Literal["en", "zh-CN"] | None = Query(default=None, description="default: from Accept-Language"),
    session: Session = Depends(get_session),
    _: User = Depends(current_user),
) -> HTMLResponse:
    """Printable packing list / delivery note (HTML with a print stylesheet), in English or Chinese."""
    language = shipping.note_language(lang, request.headers.get("accept-language"))
    return HTMLResponse(shipping.render_delivery_note(shipping.delivery_note(session, number), language))
