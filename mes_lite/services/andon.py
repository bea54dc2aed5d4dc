"""What the andon board shows per work center: state now, how long, why, the running order, OEE today.

One call for the whole board (`board(session, path)`) so a TV refreshing every few seconds costs
a handful of queries, not one per tile.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_lite.models import DowntimeReason, MachineStateInterval, Product, ProductionCount, WorkOrder, WorkOrderStatus
from mes_lite.oee import OeeResult, compute, sum_inputs
from mes_lite.services.calendar_query import load_site_calendar
from mes_lite.services.oee_query import inputs_per_work_center, resolve_scope, work_center_paths
from mes_lite.spans import NS_PER_S, Span


@dataclass(frozen=True)
class RunningOrder:
    id: int
    number: str
    product: str
    planned_qty: float
    good_qty: float
    reject_qty: float
    progress: float


@dataclass(frozen=True)
class Tile:
    work_center_id: int
    path: str
    state: str | None
    category: str | None
    since_ns: int | None
    duration_s: float | None
    interval_id: int | None
    reason: str | None
    order: RunningOrder | None
    oee_today: OeeResult


@dataclass(frozen=True)
class Board:
    scope: str
    generated_ns: int
    day_start_ns: int
    tiles: list[Tile]
    total_today: OeeResult


def _state_since(session: Session, interval: MachineStateInterval) -> int:
    """Start of the current state, across the pieces it was split into at shift edges."""
    previous_end = session.scalar(
        select(func.max(MachineStateInterval.end_ns)).where(
            MachineStateInterval.work_center_id == interval.work_center_id,
            MachineStateInterval.end_ns <= interval.start_ns,
            MachineStateInterval.state != interval.state,
        )
    )
    if previous_end is None:
        first = session.scalar(
            select(func.min(MachineStateInterval.start_ns)).where(
                MachineStateInterval.work_center_id == interval.work_center_id
            )
        )
        return first if first is not None else interval.start_ns
    return previous_end


def board(session: Session, path: str, micro_stop_threshold_s: float, default_tz: str = "UTC") -> Board:
    now_ns = time.time_ns()
    scope = resolve_scope(session, path)
    tz = ZoneInfo(load_site_calendar(session, next(iter(scope.site_ids.values())), default_tz).timezone)
    local_now = dt.datetime.fromtimestamp(now_ns / NS_PER_S, tz)
    day_start = dt.datetime.combine(local_now.date(), dt.time(0), tz)
    day_start_ns = int(day_start.timestamp()) * NS_PER_S
    today = Span(day_start_ns, now_ns + 1)
    per_wc = inputs_per_work_center(session, scope, today, micro_stop_threshold_s, default_tz, now_ns)
    paths = work_center_paths(session, scope.work_center_ids)
    open_intervals = {
        i.work_center_id: i
        for i in session.scalars(
            select(MachineStateInterval).where(
                MachineStateInterval.work_center_id.in_(scope.work_center_ids), MachineStateInterval.end_ns.is_(None)
            )
        )
    }
    reasons = dict(session.execute(select(DowntimeReason.id, DowntimeReason.code)).all())
    running = {
        o.work_center_id: o
        for o in session.scalars(
            select(WorkOrder)
            .where(
                WorkOrder.work_center_id.in_(scope.work_center_ids), WorkOrder.status == WorkOrderStatus.RUNNING.value
            )
            .order_by(WorkOrder.started_ns)
        )
    }
    order_ids = [o.id for o in running.values()]
    totals = {
        row[0]: (float(row[1] or 0), float(row[2] or 0))
        for row in session.execute(
            select(
                ProductionCount.work_order_id,
                func.sum(ProductionCount.produced_qty),
                func.sum(ProductionCount.reject_qty),
            )
            .where(ProductionCount.work_order_id.in_(order_ids))
            .group_by(ProductionCount.work_order_id)
        )
    }
    product_ids = {o.product_id for o in running.values()}
    products = dict(session.execute(select(Product.id, Product.code).where(Product.id.in_(product_ids))).all())
    tiles = []
    for wc_id in scope.work_center_ids:
        interval = open_intervals.get(wc_id)
        since = _state_since(session, interval) if interval else None
        order = running.get(wc_id)
        running_order = None
        if order is not None:
            produced, rejects = totals.get(order.id, (0.0, 0.0))
            good = produced - rejects
            progress = good / order.planned_qty if order.planned_qty else 0.0
            running_order = RunningOrder(
                order.id, order.number, products.get(order.product_id, ""), order.planned_qty, good, rejects, progress
            )
        tiles.append(
            Tile(
                work_center_id=wc_id,
                path=paths[wc_id],
                state=interval.state if interval else None,
                category=interval.category if interval else None,
                since_ns=since,
                duration_s=(now_ns - since) / NS_PER_S if since is not None else None,
                interval_id=interval.id if interval else None,
                reason=reasons.get(interval.reason_id) if interval and interval.reason_id else None,
                order=running_order,
                oee_today=compute(per_wc[wc_id]),
            )
        )
    return Board(path, now_ns, day_start_ns, tiles, compute(sum_inputs(per_wc.values())))
