"""Lot genealogy from the database: a recursive SQL query fetches only the links reachable from the lot,
then the pure walk in `mes_lite.inventory.genealogy` builds the answer.

Backward adds, per work order: the machine (work center), the production window (first and last
production count, else the order's start and completion), the shifts that window overlaps and the
operators who changed the order's status or reported scrap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select, union
from sqlalchemy.orm import Session, aliased

from mes_lite.inventory.genealogy import (
    ConsumptionLink,
    LotRecord,
    RecallList,
    ShipmentRecord,
    TraceNode,
    WorkOrderRecord,
    trace_backward,
    trace_forward,
)
from mes_lite.inventory.master_data import lot_by_code
from mes_lite.inventory.models import Lot, LotConsumption, SalesOrder, Shipment, ShipmentLine
from mes_lite.models import Line, Product, ProductionCount, Shift, User, WorkCenter, WorkOrder
from mes_lite.models.plant import Area, Site
from mes_lite.models.work_order import ScrapReport, WorkOrderStatusChange

MAX_LEVELS = 20
MACHINE_DASHBOARD_URL = "/machines/{path}?from_ns={start_ns}&to_ns={end_ns}"
"""Where the web pages show a machine's states and tag data for a window (the Grafana dashboards take the same)."""


def reachable_links(session: Session, lot_id: int, *, backward: bool) -> list[tuple[int, int, int, Decimal]]:
    """(produced, consumed, work order, quantity) of every edge reachable from ``lot_id`` in one direction."""
    start = LotConsumption.produced_lot_id if backward else LotConsumption.consumed_lot_id
    nxt = LotConsumption.consumed_lot_id if backward else LotConsumption.produced_lot_id
    frontier = (
        select(nxt.label("lot_id"), literal(1).label("depth")).where(start == lot_id).cte("frontier", recursive=True)
    )
    step = aliased(LotConsumption)
    step_start = step.produced_lot_id if backward else step.consumed_lot_id
    step_next = step.consumed_lot_id if backward else step.produced_lot_id
    frontier = frontier.union(
        select(step_next, frontier.c.depth + 1)
        .join(frontier, step_start == frontier.c.lot_id)
        .where(frontier.c.depth < MAX_LEVELS)
    )
    sources = union(select(literal(lot_id).label("lot_id")), select(frontier.c.lot_id)).subquery()
    rows = session.execute(
        select(
            LotConsumption.produced_lot_id,
            LotConsumption.consumed_lot_id,
            LotConsumption.work_order_id,
            LotConsumption.quantity,
        ).where(start.in_(select(sources.c.lot_id)), LotConsumption.quantity > 0)
    ).all()
    return [(p, c, w, Decimal(q)) for p, c, w, q in rows]


def backward(session: Session, lot_code: str) -> TraceNode:
    """What finished (or intermediate) lot ``lot_code`` was made from, level by level."""
    root = lot_by_code(session, lot_code)
    edges = reachable_links(session, root.id, backward=True)
    lot_ids = {root.id} | {p for p, *_ in edges} | {c for _, c, *_ in edges}
    lots = _lots(session, lot_ids)
    order_ids = {lot.work_order_id for lot in lots.values() if lot.work_order_id} | {w for *_, w, _ in edges}
    orders = work_order_records(session, order_ids)
    links = [ConsumptionLink(lots[p].code, lots[c].code, q, _number(orders, w)) for p, c, w, q in edges]
    records = {
        lot.code: LotRecord(lot.code, lot.material, _number(orders, lot.work_order_id) if lot.work_order_id else None)
        for lot in lots.values()
    }
    return trace_backward(root.code, records, links, {o.work_order: o for o in orders.values()})


def forward(session: Session, lot_code: str) -> RecallList:
    """Every lot that contains ``lot_code`` at any level and every shipment that carried one: the recall list."""
    root = lot_by_code(session, lot_code)
    edges = reachable_links(session, root.id, backward=False)
    lot_ids = {root.id} | {p for p, *_ in edges} | {c for _, c, *_ in edges}
    lots = _lots(session, lot_ids)
    links = [ConsumptionLink(lots[p].code, lots[c].code, q) for p, c, _, q in edges]
    rows = session.execute(
        select(Shipment.number, Lot.code, ShipmentLine.quantity, SalesOrder.customer, Shipment.shipped_at_ns)
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .join(SalesOrder, SalesOrder.id == Shipment.sales_order_id)
        .join(Lot, Lot.id == ShipmentLine.lot_id)
        .where(ShipmentLine.lot_id.in_(lot_ids))
    ).all()
    shipments = [
        ShipmentRecord(number, code, Decimal(qty), customer, _ns_to_dt(shipped) if shipped else None)
        for number, code, qty, customer, shipped in rows
    ]
    return trace_forward(root.code, links, shipments)


@dataclass(frozen=True)
class _LotRow:
    id: int
    code: str
    material: str
    work_order_id: int | None


def _lots(session: Session, ids: set[int]) -> dict[int, _LotRow]:
    """Lot code, material code and producing order of each lot, in one query."""
    rows = session.execute(
        select(Lot.id, Lot.code, Product.code, Lot.work_order_id)
        .join(Product, Product.id == Lot.product_id)
        .where(Lot.id.in_(ids))
    )
    return {row[0]: _LotRow(*row) for row in rows}


def _number(orders: dict[int, WorkOrderRecord], work_order_id: int | None) -> str | None:
    record = orders.get(work_order_id) if work_order_id is not None else None
    return record.work_order if record else None


def _ns_to_dt(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def work_order_records(session: Session, order_ids: set[int]) -> dict[int, WorkOrderRecord]:
    """Machine, production window, shifts and operators of each work order."""
    if not order_ids:
        return {}
    windows = {
        wo: (lo, hi)
        for wo, lo, hi in session.execute(
            select(ProductionCount.work_order_id, func.min(ProductionCount.ts_ns), func.max(ProductionCount.ts_ns))
            .where(ProductionCount.work_order_id.in_(order_ids))
            .group_by(ProductionCount.work_order_id)
        )
    }
    operators: dict[int, set[str]] = {}
    for table in (WorkOrderStatusChange, ScrapReport):
        for wo, name in session.execute(
            select(table.work_order_id, User.username)
            .join(User, User.id == table.user_id)
            .where(table.work_order_id.in_(order_ids))
        ):
            operators.setdefault(wo, set()).add(name)
    records: dict[int, WorkOrderRecord] = {}
    site_shifts: dict[int, list[Shift]] = {}
    for order, work_center, line, area, site in session.execute(
        select(WorkOrder, WorkCenter, Line, Area, Site)
        .join(WorkCenter, WorkCenter.id == WorkOrder.work_center_id)
        .join(Line, Line.id == WorkCenter.line_id)
        .join(Area, Area.id == Line.area_id)
        .join(Site, Site.id == Area.site_id)
        .where(WorkOrder.id.in_(order_ids))
    ):
        start_ns, end_ns = windows.get(order.id, (order.started_ns, order.completed_ns))
        start_ns = start_ns or order.started_ns
        end_ns = end_ns or order.completed_ns or start_ns
        if site.id not in site_shifts:
            site_shifts[site.id] = list(
                session.scalars(select(Shift).where(Shift.site_id == site.id, Shift.active).order_by(Shift.start_time))
            )
        shifts = _shifts_overlapping(site_shifts[site.id], site, start_ns, end_ns) if start_ns and end_ns else ()
        records[order.id] = WorkOrderRecord(
            order.number,
            work_center.code,
            _ns_to_dt(start_ns) if start_ns else None,
            _ns_to_dt(end_ns) if end_ns else None,
            shifts,
            tuple(sorted(operators.get(order.id, ()))),
            f"{site.code}/{area.code}/{line.code}/{work_center.code}",
        )
    return records


def _shifts_overlapping(shifts: list[Shift], site: Site, start_ns: int, end_ns: int) -> tuple[str, ...]:
    """Names of the site's shifts whose wall-clock intervals overlap [start, end] (at most 62 days scanned)."""
    zone = ZoneInfo(site.timezone or "UTC")
    start, end = _ns_to_dt(start_ns).astimezone(zone), _ns_to_dt(end_ns).astimezone(zone)
    found: list[str] = []
    day = start.date() - dt.timedelta(days=1)
    last = min(end.date(), day + dt.timedelta(days=62))
    while day <= last:
        for shift in shifts:
            if str(day.isoweekday()) not in shift.weekdays:
                continue
            begin = dt.datetime.combine(day, shift.start_time, zone)
            finish = dt.datetime.combine(day, shift.end_time, zone)
            if finish <= begin:
                finish += dt.timedelta(days=1)
            if begin <= end and finish >= start and shift.name not in found:
                found.append(shift.name)
        day += dt.timedelta(days=1)
    return tuple(found)


def dashboard_url(record: WorkOrderRecord) -> str | None:
    """Link to the machine's page for the production window of a work order."""
    if not (record.work_center_path and record.started and record.ended):
        return None
    return MACHINE_DASHBOARD_URL.format(
        path=record.work_center_path,
        start_ns=int(record.started.timestamp() * 1e9),
        end_ns=int(record.ended.timestamp() * 1e9),
    )
