"""Warehouse operations by code, as the API, the CLI and the ingest call them: receive, issue, backflush,
finished-goods receipt, transfer, cycle count, reverse, and on-hand queries. Each one posts moves through
`mes_lite.inventory.ledger.post_move` and flushes; the caller commits."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes_lite.inventory import stock
from mes_lite.inventory.ledger import Actor, begin_write, material_policy, post_move, to_base_quantity
from mes_lite.inventory.master_data import (
    get_or_create_lot,
    location_by_code,
    lot_by_code,
    material_settings,
    product_by_code,
    work_order_by_number,
)
from mes_lite.inventory.models import BackflushMark, Location, Lot, PurchaseOrderLine, StockBalance, StockMove
from mes_lite.inventory.picking import LotStock, PickStrategy, plan_pick
from mes_lite.models import BomLine, Product, ProductionCount, WorkOrder, WorkOrderStatus
from mes_lite.services.errors import Conflict, InvalidInput

MoveKind = stock.MoveKind


def receive(
    session: Session,
    *,
    material: str,
    quantity: Decimal,
    location: str,
    actor: Actor,
    unit: str | None = None,
    lot: str | None = None,
    production_date: dt.date | None = None,
    expiry_date: dt.date | None = None,
    supplier_lot: str = "",
    purchase_order_line_id: int | None = None,
    reason: str = "",
) -> StockMove:
    """Goods in from a supplier, free or against a purchase-order line of the same material."""
    begin_write(session)
    product = product_by_code(session, material)
    base = to_base_quantity(session, product.id, quantity, unit)
    why = reason
    if purchase_order_line_id is not None:
        line = session.get(PurchaseOrderLine, purchase_order_line_id)
        if line is None:
            raise InvalidInput(
                f"purchase order line {purchase_order_line_id} does not exist", field="purchase_order_line"
            )
        if line.product_id != product.id:
            raise InvalidInput(
                f"purchase order line {purchase_order_line_id} is for another material", field="purchase_order_line"
            )
        why = why or f"receipt against purchase order line {purchase_order_line_id}"
    target = location_by_code(session, location)
    the_lot = get_or_create_lot(
        session,
        product=product,
        code=lot,
        production_date=production_date,
        expiry_date=expiry_date,
        supplier_lot=supplier_lot,
        prefix="R",
    )
    return post_move(
        session,
        kind=MoveKind.RECEIPT,
        product_id=product.id,
        lot_id=the_lot.id,
        quantity=base,
        actor=actor,
        reason=why or "free receipt",
        to_location_id=target.id,
        purchase_order_line_id=purchase_order_line_id,
    )


def received_quantity(session: Session, purchase_order_line_id: int) -> Decimal:
    """Received on a purchase-order line, net of reversed receipts."""
    moves = session.scalars(select(StockMove).where(StockMove.purchase_order_line_id == purchase_order_line_id)).all()
    return sum(
        (m.quantity if m.kind == MoveKind.RECEIPT.value else -m.quantity for m in moves),
        Decimal(0),
    )


def _open_work_order(session: Session, number: str) -> WorkOrder:
    order = work_order_by_number(session, number)
    if order.status == WorkOrderStatus.CLOSED.value:
        raise Conflict(f"work order {number} is closed; no more material can be booked to it", field="work_order")
    return order


def lot_stock(session: Session, product_id: int, location_ids: list[int] | None = None) -> list[LotStock]:
    """Positive balances of a material (optionally in some locations) as the picking core sees them."""
    query = (
        select(StockBalance, Lot, Location)
        .join(Lot, Lot.id == StockBalance.lot_id)
        .join(Location, Location.id == StockBalance.location_id)
        .where(StockBalance.product_id == product_id, StockBalance.quantity > 0, ~Location.dispatch)
    )
    if location_ids is not None:
        query = query.where(StockBalance.location_id.in_(location_ids))
    return [
        LotStock(lot.code, location.code, Decimal(balance.quantity), lot.production_date, lot.expiry_date)
        for balance, lot, location in session.execute(query)
    ]


def _consume(
    session: Session,
    *,
    kind: stock.MoveKind,
    product: Product,
    quantity: Decimal,
    order: WorkOrder,
    location: Location,
    lot: str | None,
    actor: Actor,
    reason: str,
    today: dt.date,
) -> list[StockMove]:
    """Issue or backflush: from the named lot, or from lots picked FEFO/FIFO in that location."""
    if lot is not None:
        the_lot = lot_by_code(session, lot)
        picks = [(the_lot.id, quantity)]
    else:
        material = material_settings(session, product)
        plan = plan_pick(
            lot_stock(session, product.id, [location.id]), quantity, PickStrategy(material.pick_strategy), today
        )
        lots = {code: session.scalar(select(Lot.id).where(Lot.code == code)) for code in {p.lot for p in plan.picks}}
        picks = [(lots[p.lot], p.quantity) for p in plan.picks]
        if plan.back_ordered > 0:
            if not material.allow_negative:
                policy = material_policy(session, product.id)
                raise Conflict(
                    f"not enough {product.code} at {location.code}: {stock.format_quantity(plan.picked)} {policy.base_unit} "
                    f"usable, {kind} needs {stock.format_quantity(quantity)}"
                )
            # negative stock allowed: the shortfall goes on the newest lot seen, or a placeholder lot
            shortfall_lot = (
                picks[-1][0] if picks else get_or_create_lot(session, product=product, code=None, prefix="NEG").id
            )
            picks.append((shortfall_lot, plan.back_ordered))
    return [
        post_move(
            session,
            kind=kind,
            product_id=product.id,
            lot_id=lot_id,
            quantity=qty,
            actor=actor,
            reason=reason,
            from_location_id=location.id,
            work_order_id=order.id,
        )
        for lot_id, qty in picks
    ]


def issue_to_work_order(
    session: Session,
    *,
    work_order: str,
    material: str,
    quantity: Decimal,
    location: str,
    actor: Actor,
    unit: str | None = None,
    lot: str | None = None,
    reason: str = "",
    today: dt.date | None = None,
) -> list[StockMove]:
    """Material to a work order; without a lot, lots are picked FEFO/FIFO (one move per lot)."""
    begin_write(session)
    order = _open_work_order(session, work_order)
    product = product_by_code(session, material)
    base = to_base_quantity(session, product.id, quantity, unit)
    return _consume(
        session,
        kind=MoveKind.ISSUE,
        product=product,
        quantity=base,
        order=order,
        location=location_by_code(session, location),
        lot=lot,
        actor=actor,
        reason=reason or f"issue to work order {work_order}",
        today=today or dt.date.today(),
    )


def backflush(
    session: Session,
    *,
    work_order: str,
    produced_quantity: Decimal,
    actor: Actor,
    location: str | None = None,
    today: dt.date | None = None,
) -> list[StockMove]:
    """Consume the backflushed BOM components of ``produced_quantity`` parent units (good + scrap).

    Components come from ``location``, by default the line-side location of the order's work center.
    """
    begin_write(session)
    order = _open_work_order(session, work_order)
    if location is not None:
        source = location_by_code(session, location)
    else:
        source = session.scalar(select(Location).where(Location.work_center_id == order.work_center_id))
        if source is None:
            raise InvalidInput(
                f"work order {work_order}: its work center has no line-side location; name one", field="location"
            )
    bom = session.scalars(select(BomLine).where(BomLine.product_id == order.product_id)).all()
    policies: dict[str, stock.MaterialPolicy] = {}
    products: dict[str, Product] = {}
    components = []
    for line in bom:
        component = session.get(Product, line.component_id)
        assert component is not None
        policies[component.code] = material_policy(session, component.id)
        products[component.code] = component
        components.append(
            stock.BomComponent(component.code, stock.as_quantity(line.quantity), component.unit_of_measure)
        )
    try:
        needs = stock.backflush_quantities(components, stock.as_quantity(produced_quantity), policies)
    except stock.StockError as e:
        raise InvalidInput(str(e), field="produced_quantity") from e
    moves: list[StockMove] = []
    for code, quantity in sorted(needs.items()):
        moves += _consume(
            session,
            kind=MoveKind.BACKFLUSH,
            product=products[code],
            quantity=quantity,
            order=order,
            location=source,
            lot=None,
            actor=actor,
            reason=f"backflush of {produced_quantity} produced on work order {work_order}",
            today=today or dt.date.today(),
        )
    return moves


def backflush_from_counts(
    session: Session, *, work_order: str, actor: Actor, location: str | None = None, today: dt.date | None = None
) -> list[StockMove]:
    """Backflush what the work order's production counts (good + reject) added since the last backflush.

    Idempotent: the counted total already backflushed is kept in a locked `backflush_marks` row, so calling
    this after every count post (or on a timer) consumes each produced unit's components exactly once.
    """
    begin_write(session)
    order = _open_work_order(session, work_order)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(BackflushMark)
        .values(work_order_id=order.id, backflushed_qty=Decimal(0), updated_at_ns=0)
        .on_conflict_do_nothing(index_elements=["work_order_id"])
    )
    mark = session.scalars(
        select(BackflushMark)
        .where(BackflushMark.work_order_id == order.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    counted = session.scalar(
        select(func.coalesce(func.sum(ProductionCount.produced_qty), 0)).where(
            ProductionCount.work_order_id == order.id
        )
    )
    total = stock.as_quantity(counted or 0)
    delta = total - Decimal(mark.backflushed_qty)
    if delta <= 0:
        return []
    moves = backflush(
        session, work_order=work_order, produced_quantity=delta, actor=actor, location=location, today=today
    )
    mark.backflushed_qty = total
    mark.updated_at_ns = time.time_ns()
    mark.last_error, mark.last_error_at_ns = "", 0
    session.flush()
    return moves


def receive_finished_goods(
    session: Session,
    *,
    work_order: str,
    quantity: Decimal,
    location: str,
    actor: Actor,
    lot: str | None = None,
    production_date: dt.date | None = None,
    expiry_date: dt.date | None = None,
    reason: str = "",
) -> StockMove:
    """Finished goods of a work order into stock, as a lot that remembers the order (genealogy)."""
    begin_write(session)
    order = _open_work_order(session, work_order)
    product = session.get(Product, order.product_id)
    assert product is not None
    the_lot = get_or_create_lot(
        session,
        product=product,
        code=lot,
        production_date=production_date or dt.date.today(),
        expiry_date=expiry_date,
        work_order_id=order.id,
        prefix=f"FG-{order.number}",
    )
    if the_lot.work_order_id not in (None, order.id):
        raise Conflict(f"lot {the_lot.code} was produced by another work order", field="lot")
    return post_move(
        session,
        kind=MoveKind.FG_RECEIPT,
        product_id=product.id,
        lot_id=the_lot.id,
        quantity=stock.as_quantity(quantity),
        actor=actor,
        reason=reason or f"finished goods of work order {work_order}",
        to_location_id=location_by_code(session, location).id,
        work_order_id=order.id,
    )


def transfer(
    session: Session,
    *,
    material: str,
    lot: str,
    quantity: Decimal,
    from_location: str,
    to_location: str,
    actor: Actor,
    unit: str | None = None,
    reason: str = "",
) -> StockMove:
    begin_write(session)
    product = product_by_code(session, material)
    the_lot = lot_by_code(session, lot)
    source, target = location_by_code(session, from_location), location_by_code(session, to_location)
    return post_move(
        session,
        kind=MoveKind.TRANSFER,
        product_id=product.id,
        lot_id=the_lot.id,
        quantity=to_base_quantity(session, product.id, quantity, unit),
        actor=actor,
        reason=reason or f"transfer {from_location} -> {to_location}",
        from_location_id=source.id,
        to_location_id=target.id,
    )


def count(
    session: Session,
    *,
    material: str,
    lot: str,
    location: str,
    counted: Decimal,
    actor: Actor,
    reason: str,
    unit: str | None = None,
    expiry_date: dt.date | None = None,
) -> StockMove | None:
    """Cycle count: post the adjustment that makes on-hand equal ``counted`` (None when it already does)."""
    begin_write(session)
    if not reason.strip():
        raise InvalidInput("a cycle-count adjustment needs a reason", field="reason")
    product = product_by_code(session, material)
    the_lot = get_or_create_lot(session, product=product, code=lot, expiry_date=expiry_date)
    place = location_by_code(session, location)
    target = to_base_quantity(session, product.id, counted, unit)
    if target < 0:
        raise InvalidInput(f"a counted quantity cannot be negative, got {counted}", field="counted")
    # lock first so the difference is computed against the balance no one else is changing
    balance = session.scalar(
        select(StockBalance)
        .where(
            StockBalance.product_id == product.id,
            StockBalance.lot_id == the_lot.id,
            StockBalance.location_id == place.id,
        )
        .with_for_update()
    )
    current = Decimal(balance.quantity) if balance is not None else Decimal(0)
    difference = target - current
    if difference == 0:
        return None
    sides = {"to_location_id": place.id} if difference > 0 else {"from_location_id": place.id}
    return post_move(
        session,
        kind=MoveKind.ADJUSTMENT,
        product_id=product.id,
        lot_id=the_lot.id,
        quantity=abs(difference),
        actor=actor,
        reason=reason,
        **sides,
    )


@dataclass(frozen=True)
class OnHandRow:
    material: str
    location: str
    lot: str
    quantity: Decimal
    unit: str
    expiry_date: dt.date | None


def on_hand(
    session: Session, *, material: str | None = None, location: str | None = None, lot: str | None = None
) -> list[OnHandRow]:
    """Non-zero balances, filtered by codes; ``location`` includes the zones and bins below it."""
    query = (
        select(Product.code, Location.code, Lot.code, StockBalance.quantity, Product.unit_of_measure, Lot.expiry_date)
        .join(Product, Product.id == StockBalance.product_id)
        .join(Location, Location.id == StockBalance.location_id)
        .join(Lot, Lot.id == StockBalance.lot_id)
        .where(StockBalance.quantity != 0)
        .order_by(Product.code, Location.code, Lot.code)
    )
    if material:
        query = query.where(Product.id == product_by_code(session, material).id)
    if location:
        query = query.where(Location.id.in_(location_subtree(session, location_by_code(session, location).id)))
    if lot:
        query = query.where(Lot.id == lot_by_code(session, lot).id)
    return [OnHandRow(m, loc, lo, Decimal(q), u, e) for m, loc, lo, q, u, e in session.execute(query)]


def location_subtree(session: Session, root_id: int) -> list[int]:
    """The id of a location and of every zone and bin below it."""
    ids, frontier = [root_id], [root_id]
    while frontier:
        frontier = list(session.scalars(select(Location.id).where(Location.parent_id.in_(frontier))))
        ids += frontier
    return ids


def total_on_hand(session: Session, product_id: int) -> Decimal:
    """On-hand of one material over all lots and locations, from the cached balances."""
    total = session.scalar(
        select(func.coalesce(func.sum(StockBalance.quantity), 0)).where(StockBalance.product_id == product_id)
    )
    return Decimal(total or 0)
