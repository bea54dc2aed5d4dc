"""What the MES's own records say about the factory: the facts behind proposed answers.

`collect_facts` reads the database (SQLAlchemy, any dialect) and, when the MES knows the edge
configuration, the gateway's tag list; it returns plain numbers (`FactoryFacts`). Turning those into
answers is the pure job of `proposals.py`. "Automatic" means written by the MQTT ingest (source
`ingest`), i.e. collected from the machine without a person typing it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mes_lite.models import (
    IngestCursor,
    MachineStateInterval,
    ProductionCount,
    RoutingOperation,
    ScrapReport,
    WorkCenter,
    WorkOrder,
)

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
LIVE_WINDOW_S = 24 * 3600  # a machine is "networked" if it sent data in the last 24 h
PERIOD_S = 30 * 24 * 3600  # links, yield: this period vs the one before
AUTOMATIC_SOURCES = ("ingest",)
ENERGY_UNITS = {"kwh", "wh", "mwh"}


@dataclass(frozen=True)
class MachineFacts:
    path: str
    live: bool
    last_data_ns: int | None


@dataclass(frozen=True)
class YieldFacts:
    produced_qty: float
    reject_qty: float

    @property
    def good_ratio(self) -> float | None:
        return (self.produced_qty - self.reject_qty) / self.produced_qty if self.produced_qty > 0 else None


@dataclass(frozen=True)
class FactoryFacts:
    """Counts from the MES tables over fixed windows ending at `now_ns`."""

    now_ns: int
    live_window_s: float
    period_s: float
    machines: list[MachineFacts]
    automatic_counts: int  # production-count rows from the ingest in the period
    automatic_state_intervals: int  # machine-state intervals from the ingest overlapping the period
    automatic_reject_counts: int  # ingest rows with rejects (an automatic reject counter)
    scrap_reports: int  # scrap reports typed in at the operator station in the period
    stock_moves: int | None  # warehouse ledger entries in the period (None: no warehouse tables)
    work_orders: int  # work orders created or running in the period
    machines_with_ideal_cycle_time: int
    reasons_assigned: int  # stops in the period that got a downtime reason
    energy_meter_tags: int | None  # kWh tags in the edge configuration (None: no edge configuration known)
    yield_current: YieldFacts = field(default_factory=lambda: YieldFacts(0, 0))
    yield_previous: YieldFacts = field(default_factory=lambda: YieldFacts(0, 0))

    @property
    def machines_registered(self) -> int:
        return len(self.machines)

    @property
    def machines_live(self) -> int:
        return sum(1 for m in self.machines if m.live)


def _machine_paths(session: Session) -> dict[int, str]:
    machines = session.scalars(select(WorkCenter).where(WorkCenter.active.is_(True)).order_by(WorkCenter.id)).all()
    return {wc.id: wc.path for wc in machines}


def _last_data_ns(session: Session, paths: dict[int, str], now_ns: int) -> dict[int, int]:
    """Newest automatic count, state change or ingest cursor per machine (never later than now)."""
    last: dict[int, int] = {}

    def keep(wc_id: int, ts: int | None) -> None:
        if ts is not None and ts <= now_ns and ts > last.get(wc_id, -1):
            last[wc_id] = int(ts)

    counts = session.execute(
        select(ProductionCount.work_center_id, func.max(ProductionCount.ts_ns))
        .where(ProductionCount.source.in_(AUTOMATIC_SOURCES), ProductionCount.ts_ns <= now_ns)
        .group_by(ProductionCount.work_center_id)
    )
    for wc_id, ts in counts:
        keep(wc_id, ts)
    states = session.execute(
        select(MachineStateInterval.work_center_id, func.max(MachineStateInterval.start_ns))
        .where(MachineStateInterval.source.in_(AUTOMATIC_SOURCES), MachineStateInterval.start_ns <= now_ns)
        .group_by(MachineStateInterval.work_center_id)
    )
    for wc_id, ts in states:
        keep(wc_id, ts)
    by_prefix = {path + "/": wc_id for wc_id, path in paths.items()}
    for tag_path, ts in session.execute(select(IngestCursor.tag_path, IngestCursor.last_ts_ns)):
        prefix = tag_path.rsplit("/", 1)[0] + "/"
        if prefix in by_prefix:
            keep(by_prefix[prefix], ts)
    return last


def _yield(session: Session, start_ns: int, end_ns: int) -> YieldFacts:
    produced, rejects = session.execute(
        select(
            func.coalesce(func.sum(ProductionCount.produced_qty), 0),
            func.coalesce(func.sum(ProductionCount.reject_qty), 0),
        ).where(ProductionCount.ts_ns >= start_ns, ProductionCount.ts_ns < end_ns)
    ).one()
    return YieldFacts(float(produced), float(rejects))


def _stock_moves(session: Session, start_ns: int, end_ns: int) -> int | None:
    try:
        from mes_lite.inventory.models import StockMove
    except ImportError:  # pragma: no cover - the warehouse part is optional
        return None
    try:
        with session.begin_nested():
            return int(
                session.scalar(select(func.count()).where(StockMove.at_ns >= start_ns, StockMove.at_ns < end_ns)) or 0
            )
    except SQLAlchemyError:
        log.info("no warehouse tables: stock moves not counted")
        return None


def count_energy_meter_tags(edge_config_path: str | None) -> int | None:
    """kWh tags of the gateway's configuration; None when the MES is not told where it is or it does not load."""
    if not edge_config_path:
        return None
    try:
        from edge_config.loader import load_config

        config = load_config(edge_config_path)
    except Exception as exc:  # a broken edge file must not break the assessment page
        log.warning("edge configuration %s not read for energy evidence: %s", edge_config_path, exc)
        return None
    count = 0
    for device in config.devices:
        for tag in (device.tags or {}).values():
            unit = (getattr(tag, "unit", None) or "").strip().lower()
            count += unit in ENERGY_UNITS
    return count


def collect_facts(
    session: Session,
    now_ns: int,
    edge_config_path: str | None = None,
    live_window_s: float = LIVE_WINDOW_S,
    period_s: float = PERIOD_S,
) -> FactoryFacts:
    """Read the MES tables once; every window ends at `now_ns`."""
    paths = _machine_paths(session)
    live_since = now_ns - int(live_window_s * NS_PER_S)
    period_start = now_ns - int(period_s * NS_PER_S)
    previous_start = period_start - int(period_s * NS_PER_S)
    last = _last_data_ns(session, paths, now_ns)
    machines = [
        MachineFacts(path, live=last.get(wc_id, -1) >= live_since, last_data_ns=last.get(wc_id))
        for wc_id, path in paths.items()
    ]

    def count(statement) -> int:  # type: ignore[no-untyped-def]
        return int(session.scalar(statement) or 0)

    automatic_counts = count(
        select(func.count()).where(
            ProductionCount.source.in_(AUTOMATIC_SOURCES),
            ProductionCount.ts_ns >= period_start,
            ProductionCount.ts_ns <= now_ns,
        )
    )
    automatic_rejects = count(
        select(func.count()).where(
            ProductionCount.source.in_(AUTOMATIC_SOURCES),
            ProductionCount.reject_qty > 0,
            ProductionCount.ts_ns >= period_start,
            ProductionCount.ts_ns <= now_ns,
        )
    )
    overlapping = (
        MachineStateInterval.start_ns <= now_ns,
        or_(MachineStateInterval.end_ns.is_(None), MachineStateInterval.end_ns >= period_start),
    )
    automatic_intervals = count(
        select(func.count()).where(MachineStateInterval.source.in_(AUTOMATIC_SOURCES), *overlapping)
    )
    reasons_assigned = count(select(func.count()).where(MachineStateInterval.reason_id.is_not(None), *overlapping))
    scrap_reports = count(select(func.count()).where(ScrapReport.at_ns >= period_start, ScrapReport.at_ns <= now_ns))
    orders_with_counts = count(
        select(func.count(func.distinct(ProductionCount.work_order_id))).where(
            ProductionCount.work_order_id.is_not(None),
            ProductionCount.ts_ns >= period_start,
            ProductionCount.ts_ns <= now_ns,
        )
    )
    open_orders = count(select(func.count()).select_from(WorkOrder).where(WorkOrder.status.in_(("running", "paused"))))
    with_cycle = set(
        session.scalars(select(WorkCenter.id).where(WorkCenter.active.is_(True), WorkCenter.ideal_cycle_time_s > 0))
    ) | set(session.scalars(select(RoutingOperation.work_center_id).distinct()))
    return FactoryFacts(
        now_ns=now_ns,
        live_window_s=live_window_s,
        period_s=period_s,
        machines=machines,
        automatic_counts=automatic_counts,
        automatic_state_intervals=automatic_intervals,
        automatic_reject_counts=automatic_rejects,
        scrap_reports=scrap_reports,
        stock_moves=_stock_moves(session, period_start, now_ns + 1),
        work_orders=max(orders_with_counts, open_orders),
        machines_with_ideal_cycle_time=len(with_cycle & set(paths)),
        reasons_assigned=reasons_assigned,
        energy_meter_tags=count_energy_meter_tags(edge_config_path),
        yield_current=_yield(session, period_start, now_ns + 1),
        yield_previous=_yield(session, previous_start, period_start),
    )
