"""Sales orders and shipments: pick (FEFO/FIFO per material) into a dispatch location, pack, ship.

Picking moves the stock to the dispatch location at once (TRANSFER moves), so two shipments can never pick
the same units; shipping posts SHIPMENT moves out of the dispatch location. What could not be picked stays
open on the sales order as a back-order, and the next shipment picks it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_lite.inventory import stock
from mes_lite.inventory.ledger import Actor, begin_write, post_move, to_base_quantity
from mes_lite.inventory.master_data import location_by_code, product_by_code
from mes_lite.inventory.models import (
    Location,
    Lot,
    Material,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
)
from mes_lite.inventory.operations import lot_stock
from mes_lite.inventory.picking import OrderLine, PickStrategy, plan_shipment
from mes_lite.services.errors import Conflict, InvalidInput, NotFound


def create_sales_order(
    session: Session, *, number: str, customer: str, ship_to: str, lines: list[tuple[str, Decimal, str | None]]
) -> SalesOrder:
    """A sales order of (material code, quantity, unit) lines, stored in base units."""
    if session.scalar(select(SalesOrder.id).where(SalesOrder.number == number)) is not None:
        raise Conflict(f"sales order {number!r} already exists", field="number")
    if not lines:
        raise InvalidInput("a sales order needs at least one line", field="lines")
    order = SalesOrder(number=number, customer=customer, ship_to=ship_to, created_at_ns=time.time_ns())
    for index, (material, quantity, unit) in enumerate(lines, start=1):
        product = product_by_code(session, material)
        base = to_base_quantity(session, product.id, quantity, unit)
        if base <= 0:
            raise InvalidInput(f"line {index}: quantity must be positive", field=f"lines[{index - 1}].quantity")
        order.lines.append(SalesOrderLine(line_no=index, product_id=product.id, quantity=base))
    session.add(order)
    session.flush()
    return order


def sales_order_by_number(session: Session, number: str) -> SalesOrder:
    order = session.scalar(select(SalesOrder).where(SalesOrder.number == number))
    if order is None:
        raise NotFound(f"sales order {number!r} does not exist", field="sales_order")
    return order


def shipment_by_number(session: Session, number: str) -> Shipment:
    shipment = session.scalar(select(Shipment).where(Shipment.number == number))
    if shipment is None:
        raise NotFound(f"shipment {number!r} does not exist", field="shipment")
    return shipment


def committed_per_line(session: Session, order: SalesOrder) -> dict[int, Decimal]:
    """Quantity per sales-order line already picked into a shipment (picked, packed or shipped)."""
    rows = session.execute(
        select(ShipmentLine.sales_order_line_id, func.sum(ShipmentLine.quantity))
        .where(ShipmentLine.sales_order_line_id.in_([line.id for line in order.lines]))
        .group_by(ShipmentLine.sales_order_line_id)
    ).all()
    return {line_id: Decimal(total) for line_id, total in rows}


@dataclass(frozen=True)
class BackOrder:
    line_no: int
    material: str
    open_quantity: Decimal


def back_orders(session: Session, order: SalesOrder) -> list[BackOrder]:
    committed = committed_per_line(session, order)
    return [
        BackOrder(line.line_no, line.product.code, line.quantity - committed.get(line.id, Decimal(0)))
        for line in order.lines
        if line.quantity - committed.get(line.id, Decimal(0)) > 0
    ]


def pick(
    session: Session,
    *,
    sales_order: str,
    dispatch_location: str,
    actor: Actor,
    number: str | None = None,
    requested: dict[int, Decimal] | None = None,
    today: dt.date | None = None,
) -> Shipment:
    """Create a shipment for the open lines (or the ``requested`` quantity per line number), picking lots
    FEFO/FIFO per material and moving them to ``dispatch_location``. Refused when nothing can be picked."""
    begin_write(session)
    order = sales_order_by_number(session, sales_order)
    dispatch = location_by_code(session, dispatch_location)
    if not dispatch.dispatch:
        raise InvalidInput(f"location {dispatch_location!r} is not a dispatch location", field="dispatch_location")
    committed = committed_per_line(session, order)
    lines = [
        OrderLine(str(line.line_no), line.product.code, Decimal(line.quantity), committed.get(line.id, Decimal(0)))
        for line in order.lines
    ]
    by_no = {str(line.line_no): line for line in order.lines}
    if requested:
        unknown = sorted(set(map(str, requested)) - set(by_no))
        if unknown:
            raise InvalidInput(f"sales order {sales_order} has no line {unknown[0]}", field="lines")
    products = {line.product.code: line.product for line in order.lines}
    stock_by_material = {code: lot_stock(session, product.id) for code, product in products.items()}
    strategies = {}
    for code, product in products.items():
        material = session.get(Material, product.id)
        strategies[code] = PickStrategy(material.pick_strategy if material else "fifo")
    try:
        plans = plan_shipment(
            lines,
            stock_by_material,
            strategies,
            today or dt.date.today(),
            requested={str(k): v for k, v in requested.items()} if requested else None,
        )
    except ValueError as e:
        raise InvalidInput(str(e), field="lines") from e
    if not any(p.plan.picks for p in plans):
        raise Conflict(f"nothing of sales order {sales_order} can be picked: no usable stock")
    shipment = Shipment(
        number=number or f"SH-{order.number}-{len(_shipments_of(session, order)) + 1}",
        sales_order_id=order.id,
        dispatch_location_id=dispatch.id,
        status=ShipmentStatus.PICKED.value,
        created_at_ns=time.time_ns(),
        created_by=actor.name,
    )
    if session.scalar(select(Shipment.id).where(Shipment.number == shipment.number)) is not None:
        raise Conflict(f"shipment {shipment.number!r} already exists", field="number")
    session.add(shipment)
    session.flush()
    for line_plan in plans:
        order_line = by_no[line_plan.line_id]
        for p in line_plan.plan.picks:
            lot = session.scalar(select(Lot).where(Lot.code == p.lot))
            source = session.scalar(select(Location).where(Location.code == p.location))
            assert lot is not None and source is not None
            post_move(
                session,
                kind=stock.MoveKind.TRANSFER,
                product_id=order_line.product_id,
                lot_id=lot.id,
                quantity=p.quantity,
                actor=actor,
                reason=f"pick for shipment {shipment.number}",
                from_location_id=source.id,
                to_location_id=dispatch.id,
                shipment_id=shipment.id,
            )
            shipment.lines.append(
                ShipmentLine(
                    sales_order_line_id=order_line.id, lot_id=lot.id, picked_from_id=source.id, quantity=p.quantity
                )
            )
    session.flush()
    return shipment


def _shipments_of(session: Session, order: SalesOrder) -> list[Shipment]:
    return list(session.scalars(select(Shipment).where(Shipment.sales_order_id == order.id)))


def pack(session: Session, shipment_number: str, *, packages: int, carrier: str = "", tracking: str = "") -> Shipment:
    shipment = shipment_by_number(session, shipment_number)
    if shipment.status == ShipmentStatus.SHIPPED.value:
        raise Conflict(f"shipment {shipment_number} has already left; it cannot be packed again")
    if packages < 1:
        raise InvalidInput("a packed shipment has at least one package", field="packages")
    shipment.packages, shipment.carrier, shipment.tracking = packages, carrier, tracking
    shipment.status = ShipmentStatus.PACKED.value
    session.flush()
    return shipment


def ship(session: Session, shipment_number: str, *, actor: Actor) -> Shipment:
    """Post the SHIPMENT moves out of the dispatch location and update the sales order's status."""
    begin_write(session)
    shipment = shipment_by_number(session, shipment_number)
    if shipment.status == ShipmentStatus.SHIPPED.value:
        raise Conflict(f"shipment {shipment_number} is already shipped")
    if shipment.status != ShipmentStatus.PACKED.value:
        raise Conflict(f"shipment {shipment_number} is {shipment.status}; pack it before shipping")
    for line in shipment.lines:
        post_move(
            session,
            kind=stock.MoveKind.SHIPMENT,
            product_id=line.order_line.product_id,
            lot_id=line.lot_id,
            quantity=Decimal(line.quantity),
            actor=actor,
            reason=f"shipment {shipment.number} to {shipment.sales_order.customer}",
            from_location_id=shipment.dispatch_location_id,
            shipment_id=shipment.id,
        )
    shipment.status = ShipmentStatus.SHIPPED.value
    shipment.shipped_at_ns = time.time_ns()
    order = shipment.sales_order
    shipped: dict[int, Decimal] = {}
    for other in _shipments_of(session, order):
        if other.status == ShipmentStatus.SHIPPED.value:
            for line in other.lines:
                shipped[line.sales_order_line_id] = shipped.get(line.sales_order_line_id, Decimal(0)) + line.quantity
    complete = all(shipped.get(line.id, Decimal(0)) >= line.quantity for line in order.lines)
    order.status = (SalesOrderStatus.SHIPPED if complete else SalesOrderStatus.PARTIALLY_SHIPPED).value
    session.flush()
    return shipment


@dataclass(frozen=True)
class DeliveryNoteLine:
    line_no: int
    material: str
    description: str
    lot: str
    expiry_date: dt.date | None
    quantity: Decimal
    unit: str


@dataclass(frozen=True)
class DeliveryNote:
    shipment: str
    sales_order: str
    customer: str
    ship_to: str
    status: str
    packages: int
    carrier: str
    tracking: str
    date: dt.date
    lines: tuple[DeliveryNoteLine, ...]
    back_orders: tuple[BackOrder, ...]


def delivery_note(session: Session, shipment_number: str) -> DeliveryNote:
    """What the printed packing list shows: lots per line and what is still owed."""
    shipment = shipment_by_number(session, shipment_number)
    order = shipment.sales_order
    stamp = shipment.shipped_at_ns or shipment.created_at_ns
    lines = tuple(
        DeliveryNoteLine(
            line.order_line.line_no,
            line.order_line.product.code,
            line.order_line.product.name,
            line.lot.code,
            line.lot.expiry_date,
            Decimal(line.quantity),
            line.order_line.product.unit_of_measure,
        )
        for line in sorted(shipment.lines, key=lambda x: (x.order_line.line_no, x.lot.code))
    )
    return DeliveryNote(
        shipment=shipment.number,
        sales_order=order.number,
        customer=order.customer,
        ship_to=order.ship_to,
        status=shipment.status,
        packages=shipment.packages,
        carrier=shipment.carrier,
        tracking=shipment.tracking,
        date=dt.datetime.fromtimestamp(stamp / 1e9, dt.UTC).date(),
        lines=lines,
        back_orders=tuple(back_orders(session, order)),
    )


DELIVERY_NOTE_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Delivery note / packing list",
        "shipment": "Shipment",
        "sales_order": "Sales order",
        "date": "Date",
        "status": "Status",
        "customer": "Customer",
        "ship_to": "Ship to",
        "transport": "Transport",
        "packages": "Packages",
        "carrier": "Carrier",
        "tracking": "Tracking",
        "line": "Line",
        "material": "Material",
        "description": "Description",
        "lot": "Lot",
        "expiry": "Expiry",
        "quantity": "Quantity",
        "unit": "Unit",
        "shipped_lots": "Shipped lots",
        "back_ordered": "Back-ordered (to follow)",
        "open_quantity": "Open quantity",
        "packed_by": "Packed by",
        "received_by": "Received by (name, date, signature)",
        "print": "Print",
        "status_picked": "picked",
        "status_packed": "packed",
        "status_shipped": "shipped",
    },
    "zh-CN": {
        "title": "送货单 / 装箱单",
        "shipment": "发货单号",
        "sales_order": "销售订单",
        "date": "日期",
        "status": "状态",
        "customer": "客户",
        "ship_to": "收货地址",
        "transport": "运输",
        "packages": "件数",
        "carrier": "承运商",
        "tracking": "运单号",
        "line": "行号",
        "material": "物料",
        "description": "描述",
        "lot": "批次",
        "expiry": "有效期至",
        "quantity": "数量",
        "unit": "单位",
        "shipped_lots": "发货批次",
        "back_ordered": "欠交（后续发货）",
        "open_quantity": "未交数量",
        "packed_by": "装箱人",
        "received_by": "收货人（姓名、日期、签字）",
        "print": "打印",
        "status_picked": "已拣货",
        "status_packed": "已装箱",
        "status_shipped": "已发货",
    },
}
"""The printed note is a document the customer keeps: one language per note, chosen by the caller."""


def note_language(requested: str | None, accept_language: str | None) -> str:
    """``requested`` if known, else the first Accept-Language that is Chinese or English, else English."""
    if requested in DELIVERY_NOTE_LABELS:
        return requested
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def render_delivery_note(note: DeliveryNote, language: str = "en") -> str:
    """The printable HTML (template `mes_lite/templates/delivery_note.html`, with a print stylesheet)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("mes_lite", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["qty"] = lambda q: format(Decimal(q).normalize(), "f")
    labels = DELIVERY_NOTE_LABELS.get(language, DELIVERY_NOTE_LABELS["en"])
    return env.get_template("delivery_note.html").render(note=note, t=labels, lang=language)
