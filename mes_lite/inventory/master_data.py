"""Warehouse master data: material settings, unit conversions, the location tree, lots, purchase orders,
reorder points. Lookups by code raise NotFound with the code the user typed."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.inventory.models import (
    PARENT_KIND,
    Location,
    LocationKind,
    Lot,
    Material,
    PurchaseOrder,
    PurchaseOrderLine,
    ReorderPoint,
    UnitConversion,
)
from mes_lite.inventory.picking import PickStrategy
from mes_lite.models import Product, WorkCenter, WorkOrder
from mes_lite.services.errors import Conflict, InvalidInput, NotFound


def product_by_code(session: Session, code: str) -> Product:
    product = session.scalar(select(Product).where(Product.code == code))
    if product is None:
        raise NotFound(f"material {code!r} does not exist", field="material")
    return product


def location_by_code(session: Session, code: str) -> Location:
    location = session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise NotFound(f"location {code!r} does not exist", field="location")
    return location


def lot_by_code(session: Session, code: str) -> Lot:
    lot = session.scalar(select(Lot).where(Lot.code == code))
    if lot is None:
        raise NotFound(f"lot {code!r} does not exist", field="lot")
    return lot


def work_order_by_number(session: Session, number: str) -> WorkOrder:
    order = session.scalar(select(WorkOrder).where(WorkOrder.number == number))
    if order is None:
        raise NotFound(f"work order {number!r} does not exist", field="work_order")
    return order


def material_settings(session: Session, product: Product) -> Material:
    """The product's warehouse settings, created with defaults (FIFO, no negative stock) on first use."""
    material = session.get(Material, product.id)
    if material is None:
        material = Material(
            product_id=product.id, allow_negative=False, backflush=False, pick_strategy="fifo", standard_cost=Decimal(0)
        )
        session.add(material)
        session.flush()
    return material


def upsert_material(
    session: Session,
    *,
    code: str,
    name: str | None = None,
    unit: str | None = None,
    allow_negative: bool | None = None,
    backflush: bool | None = None,
    pick_strategy: str | None = None,
    standard_cost: Decimal | None = None,
    shelf_life_days: int | None = None,
    conversions: dict[str, Decimal] | None = None,
) -> Material:
    """Create or update a material (a product plus its stock settings). A base unit with stock cannot change."""
    product = session.scalar(select(Product).where(Product.code == code))
    if product is None:
        product = Product(code=code, name=name or code, unit_of_measure=unit or "pcs", active=True)
        session.add(product)
        session.flush()
    else:
        if name is not None:
            product.name = name
        if unit is not None and unit != product.unit_of_measure:
            from mes_lite.inventory.models import StockMove

            if session.scalar(select(StockMove.id).where(StockMove.product_id == product.id).limit(1)) is not None:
                raise Conflict(
                    f"material {code}: base unit {product.unit_of_measure} cannot change to {unit} once stock was moved",
                    field="unit",
                )
            product.unit_of_measure = unit
    material = material_settings(session, product)
    if allow_negative is not None:
        material.allow_negative = allow_negative
    if backflush is not None:
        material.backflush = backflush
    if pick_strategy is not None:
        if pick_strategy not in {s.value for s in PickStrategy}:
            raise InvalidInput(f"pick strategy {pick_strategy!r} is not one of fefo, fifo", field="pick_strategy")
        material.pick_strategy = pick_strategy
    if standard_cost is not None:
        if standard_cost < 0:
            raise InvalidInput(f"standard cost must not be negative, got {standard_cost}", field="standard_cost")
        material.standard_cost = standard_cost
    if shelf_life_days is not None:
        material.shelf_life_days = shelf_life_days
    for unit_name, factor in (conversions or {}).items():
        if factor <= 0:
            raise InvalidInput(f"conversion factor for {unit_name} must be positive, got {factor}", field="conversions")
        if unit_name == product.unit_of_measure:
            raise InvalidInput(f"{unit_name} is the base unit; it needs no conversion", field="conversions")
        existing = next((c for c in material.conversions if c.unit == unit_name), None)
        if existing is None:
            material.conversions.append(UnitConversion(unit=unit_name, factor=factor))
        else:
            existing.factor = factor
    session.flush()
    return material


def create_location(
    session: Session,
    *,
    code: str,
    kind: str,
    parent_code: str | None = None,
    name: str = "",
    dispatch: bool = False,
    work_center_code: str | None = None,
) -> Location:
    """Add a warehouse, a zone in a warehouse or a bin in a zone."""
    try:
        location_kind = LocationKind(kind)
    except ValueError as e:
        raise InvalidInput(f"location kind {kind!r} is not one of warehouse, zone, bin", field="kind") from e
    if session.scalar(select(Location.id).where(Location.code == code)) is not None:
        raise Conflict(f"location {code!r} already exists", field="code")
    parent = None
    wanted_parent = PARENT_KIND[location_kind]
    if wanted_parent is None:
        if parent_code:
            raise InvalidInput("a warehouse has no parent location", field="parent")
    else:
        if not parent_code:
            raise InvalidInput(f"a {location_kind} needs a parent {wanted_parent}", field="parent")
        parent = location_by_code(session, parent_code)
        if parent.kind != wanted_parent:
            raise InvalidInput(
                f"a {location_kind} belongs in a {wanted_parent}, but {parent_code!r} is a {parent.kind}",
                field="parent",
            )
    work_center_id = None
    if work_center_code:
        work_center = session.scalar(select(WorkCenter).where(WorkCenter.code == work_center_code))
        if work_center is None:
            raise NotFound(f"work center {work_center_code!r} does not exist", field="work_center")
        work_center_id = work_center.id
    location = Location(
        code=code,
        name=name,
        kind=location_kind.value,
        parent_id=parent.id if parent else None,
        dispatch=dispatch,
        work_center_id=work_center_id,
        active=True,
    )
    session.add(location)
    session.flush()
    return location


def get_or_create_lot(
    session: Session,
    *,
    product: Product,
    code: str | None,
    production_date: dt.date | None = None,
    expiry_date: dt.date | None = None,
    work_order_id: int | None = None,
    supplier_lot: str = "",
    prefix: str = "LOT",
) -> Lot:
    """An existing lot of this material, or a new one (code generated when none is given)."""
    if code:
        lot = session.scalar(select(Lot).where(Lot.code == code))
        if lot is not None:
            if lot.product_id != product.id:
                raise Conflict(f"lot {code!r} belongs to another material", field="lot")
            return lot
    if expiry_date is None and production_date is not None:
        material = session.get(Material, product.id)
        if material is not None and material.shelf_life_days:
            expiry_date = production_date + dt.timedelta(days=material.shelf_life_days)
    now_ns = time.time_ns()
    lot = Lot(
        code=code or f"{prefix}-{product.code}-{now_ns // 1000}",
        product_id=product.id,
        production_date=production_date,
        expiry_date=expiry_date,
        work_order_id=work_order_id,
        supplier_lot=supplier_lot,
        created_at_ns=now_ns,
    )
    session.add(lot)
    session.flush()
    return lot


def create_purchase_order(
    session: Session, *, number: str, supplier: str, lines: list[tuple[str, Decimal, str | None]]
) -> PurchaseOrder:
    """A simple purchase order: (material code, quantity, unit) lines; quantities are stored in base units."""
    from mes_lite.inventory.ledger import to_base_quantity

    if session.scalar(select(PurchaseOrder.id).where(PurchaseOrder.number == number)) is not None:
        raise Conflict(f"purchase order {number!r} already exists", field="number")
    order = PurchaseOrder(number=number, supplier=supplier, created_at_ns=time.time_ns())
    for index, (material_code, quantity, unit) in enumerate(lines):
        product = product_by_code(session, material_code)
        base = to_base_quantity(session, product.id, quantity, unit)
        if base <= 0:
            raise InvalidInput(f"lines[{index}]: quantity must be positive", field=f"lines[{index}].quantity")
        order.lines.append(PurchaseOrderLine(product_id=product.id, quantity=base))
    session.add(order)
    session.flush()
    return order


def set_reorder_point(
    session: Session, *, material_code: str, location_code: str | None, min_quantity: Decimal, reorder_quantity: Decimal
) -> ReorderPoint:
    product = product_by_code(session, material_code)
    location_id = location_by_code(session, location_code).id if location_code else None
    if min_quantity < 0 or reorder_quantity < 0:
        raise InvalidInput("reorder quantities must not be negative", field="min_quantity")
    point = session.scalar(
        select(ReorderPoint).where(ReorderPoint.product_id == product.id, ReorderPoint.location_id.is_(location_id))
        if location_id is None
        else select(ReorderPoint).where(ReorderPoint.product_id == product.id, ReorderPoint.location_id == location_id)
    )
    if point is None:
        point = ReorderPoint(product_id=product.id, location_id=location_id)
        session.add(point)
    point.min_quantity = min_quantity
    point.reorder_quantity = reorder_quantity
    session.flush()
    return point
