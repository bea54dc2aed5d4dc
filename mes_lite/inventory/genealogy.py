"""Lot genealogy as a pure graph walk, both ways, over any number of BOM levels.

The graph: a consumption link says "produced lot P contains consumed lot C (this much, via work order W)".
- Backward from a finished lot: the tree of lots it was made from, with the work orders, machines, shifts,
  operators and the time window of each production step.
- Forward from a material lot: every lot that contains it at any level, and the shipments that carried any of
  them -- the recall list.

The database layer loads the records (or walks the same graph with a recursive SQL query for large ledgers);
this module decides what the answer is, so both paths can be checked against each other.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class LotRecord:
    lot: str
    material: str
    work_order: str | None = None  # the order that produced it; None for purchased material


@dataclass(frozen=True)
class WorkOrderRecord:
    work_order: str
    work_center: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    shifts: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    work_center_path: str | None = None  # site/area/line/machine, how the web pages address a machine


@dataclass(frozen=True)
class ConsumptionLink:
    produced_lot: str
    consumed_lot: str
    quantity: Decimal
    work_order: str | None = None


@dataclass(frozen=True)
class ShipmentRecord:
    shipment: str
    lot: str
    quantity: Decimal
    customer: str = ""
    shipped_at: datetime | None = None


@dataclass(frozen=True)
class TraceNode:
    """A lot in a backward trace; ``quantity`` is how much of it went into the parent (None at the root)."""

    lot: str
    material: str
    depth: int
    quantity: Decimal | None = None
    work_order: WorkOrderRecord | None = None
    inputs: tuple[TraceNode, ...] = ()

    def walk(self) -> Iterable[TraceNode]:
        yield self
        for child in self.inputs:
            yield from child.walk()


@dataclass(frozen=True)
class BackwardSummary:
    material_lots: tuple[str, ...]  # every lot consumed at any level
    purchased_lots: tuple[str, ...]  # leaves: lots not produced by a work order
    work_orders: tuple[str, ...]
    work_centers: tuple[str, ...]
    shifts: tuple[str, ...]
    operators: tuple[str, ...]
    window_start: datetime | None
    window_end: datetime | None
    levels: int


@dataclass(frozen=True)
class RecallList:
    lot: str
    affected_lots: tuple[str, ...]  # lots containing ``lot`` at any level, nearest first
    depth_by_lot: Mapping[str, int] = field(default_factory=dict)
    shipments: tuple[ShipmentRecord, ...] = ()

    @property
    def customers(self) -> tuple[str, ...]:
        return tuple(sorted({s.customer for s in self.shipments if s.customer}))


class UnknownLotError(KeyError):
    def __str__(self) -> str:
        return f"unknown lot {self.args[0]}"


def trace_backward(
    lot: str,
    lots: Mapping[str, LotRecord],
    links: Iterable[ConsumptionLink],
    work_orders: Mapping[str, WorkOrderRecord],
    max_depth: int = 50,
) -> TraceNode:
    """The tree of what ``lot`` was made from. A lot that (wrongly) contains itself is cut, not looped."""
    if lot not in lots:
        raise UnknownLotError(lot)
    inputs_of: dict[str, list[ConsumptionLink]] = defaultdict(list)
    for link in links:
        inputs_of[link.produced_lot].append(link)

    def node(code: str, depth: int, quantity: Decimal | None, path: frozenset[str]) -> TraceNode:
        record = lots.get(code) or LotRecord(code, "?")
        children: list[TraceNode] = []
        if depth < max_depth:
            for link in sorted(inputs_of.get(code, ()), key=lambda x: x.consumed_lot):
                if link.consumed_lot in path:
                    continue
                children.append(node(link.consumed_lot, depth + 1, link.quantity, path | {link.consumed_lot}))
        order = work_orders.get(record.work_order) if record.work_order else None
        return TraceNode(code, record.material, depth, quantity, order, tuple(children))

    return node(lot, 0, None, frozenset({lot}))


def summarize_backward(root: TraceNode) -> BackwardSummary:
    """Flatten a backward trace into the answer a quality engineer asks for."""
    nodes = list(root.walk())
    consumed = [n for n in nodes if n is not root]
    orders = [n.work_order for n in nodes if n.work_order is not None]
    starts = [o.started for o in orders if o.started is not None]
    ends = [o.ended for o in orders if o.ended is not None]
    return BackwardSummary(
        material_lots=_unique(n.lot for n in consumed),
        purchased_lots=_unique(n.lot for n in consumed if n.work_order is None),
        work_orders=_unique(o.work_order for o in orders),
        work_centers=_unique(o.work_center for o in orders if o.work_center),
        shifts=_unique(s for o in orders for s in o.shifts),
        operators=_unique(p for o in orders for p in o.operators),
        window_start=min(starts) if starts else None,
        window_end=max(ends) if ends else None,
        levels=max(n.depth for n in nodes),
    )


def trace_forward(
    lot: str,
    links: Iterable[ConsumptionLink],
    shipments: Iterable[ShipmentRecord],
    max_depth: int = 50,
) -> RecallList:
    """Every lot that contains ``lot`` at any level (breadth first) and every shipment of it or them."""
    outputs_of: dict[str, set[str]] = defaultdict(set)
    for link in links:
        outputs_of[link.consumed_lot].add(link.produced_lot)
    depth_by_lot: dict[str, int] = {}
    queue: deque[tuple[str, int]] = deque([(lot, 0)])
    while queue:
        current, depth = queue.popleft()
        if depth >= max_depth:
            continue
        for produced in sorted(outputs_of.get(current, ())):
            if produced == lot or produced in depth_by_lot:
                continue
            depth_by_lot[produced] = depth + 1
            queue.append((produced, depth + 1))
    affected = tuple(depth_by_lot)
    recalled = {lot, *affected}
    shipped = tuple(sorted((s for s in shipments if s.lot in recalled), key=lambda s: (s.shipment, s.lot)))
    return RecallList(lot, affected, depth_by_lot, shipped)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    """Unique items in first-seen order."""
    return tuple(dict.fromkeys(items))
