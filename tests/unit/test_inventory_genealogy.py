"""Lot genealogy: backward and forward traces over a three-level BOM (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from mes_lite.inventory.genealogy import (
    ConsumptionLink,
    LotRecord,
    ShipmentRecord,
    UnknownLotError,
    WorkOrderRecord,
    summarize_backward,
    trace_backward,
    trace_forward,
)


def t(hour: int) -> datetime:
    return datetime(2026, 11, 26, hour, tzinfo=UTC)


# steel coil -> stamped bracket (press01) -> welded frame (weld02) -> painted frame (paint03)
LOTS = {
    "COIL-1": LotRecord("COIL-1", "steel"),
    "COIL-2": LotRecord("COIL-2", "steel"),
    "SCREW-1": LotRecord("SCREW-1", "screw"),
    "PAINT-1": LotRecord("PAINT-1", "paint"),
    "BRK-1": LotRecord("BRK-1", "bracket", "WO-1"),
    "BRK-2": LotRecord("BRK-2", "bracket", "WO-2"),
    "FRM-1": LotRecord("FRM-1", "frame", "WO-3"),
    "PFR-1": LotRecord("PFR-1", "painted_frame", "WO-4"),
    "PFR-2": LotRecord("PFR-2", "painted_frame", "WO-5"),
}
ORDERS = {
    "WO-1": WorkOrderRecord("WO-1", "press01", t(6), t(8), ("early",), ("li",)),
    "WO-2": WorkOrderRecord("WO-2", "press01", t(8), t(10), ("early",), ("li", "wang")),
    "WO-3": WorkOrderRecord("WO-3", "weld02", t(10), t(15), ("early", "late"), ("zhao",)),
    "WO-4": WorkOrderRecord("WO-4", "paint03", t(15), t(17), ("late",), ("sun",)),
    "WO-5": WorkOrderRecord("WO-5", "paint03", t(17), t(18), ("late",), ("sun",)),
}
LINKS = [
    ConsumptionLink("BRK-1", "COIL-1", D(50), "WO-1"),
    ConsumptionLink("BRK-2", "COIL-1", D(20), "WO-2"),
    ConsumptionLink("BRK-2", "COIL-2", D(30), "WO-2"),
    ConsumptionLink("FRM-1", "BRK-1", D(100), "WO-3"),
    ConsumptionLink("FRM-1", "BRK-2", D(100), "WO-3"),
    ConsumptionLink("FRM-1", "SCREW-1", D(400), "WO-3"),
    ConsumptionLink("PFR-1", "FRM-1", D(40), "WO-4"),
    ConsumptionLink("PFR-1", "PAINT-1", D(2), "WO-4"),
    ConsumptionLink("PFR-2", "FRM-1", D(10), "WO-5"),
]
SHIPMENTS = [
    ShipmentRecord("SH-1", "PFR-1", D(40), "Acme", t(20)),
    ShipmentRecord("SH-2", "PFR-2", D(5), "Bolt Co", t(21)),
    ShipmentRecord("SH-3", "BRK-9", D(5), "Other", t(21)),
]


def test_backward_trace_of_a_painted_frame_reaches_the_steel_coils_three_levels_down() -> None:
    summary = summarize_backward(trace_backward("PFR-1", LOTS, LINKS, ORDERS))
    assert set(summary.material_lots) == {"FRM-1", "PAINT-1", "BRK-1", "BRK-2", "SCREW-1", "COIL-1", "COIL-2"}
    assert set(summary.purchased_lots) == {"PAINT-1", "SCREW-1", "COIL-1", "COIL-2"}
    assert set(summary.work_orders) == {"WO-1", "WO-2", "WO-3", "WO-4"}
    assert set(summary.work_centers) == {"press01", "weld02", "paint03"}
    assert set(summary.shifts) == {"early", "late"}
    assert set(summary.operators) == {"li", "wang", "zhao", "sun"}
    assert (summary.window_start, summary.window_end) == (t(6), t(17))
    assert summary.levels == 3


def test_backward_trace_records_how_much_of_each_input_went_into_its_parent() -> None:
    root = trace_backward("FRM-1", LOTS, LINKS, ORDERS)
    assert root.work_order is not None and root.work_order.work_center == "weld02"
    assert [(n.lot, n.quantity) for n in root.inputs] == [("BRK-1", D(100)), ("BRK-2", D(100)), ("SCREW-1", D(400))]
    brk2 = root.inputs[1]
    assert [(n.lot, n.quantity, n.depth) for n in brk2.inputs] == [("COIL-1", D(20), 2), ("COIL-2", D(30), 2)]


def test_forward_trace_of_a_coil_is_the_recall_list_with_every_shipment_and_customer() -> None:
    recall = trace_forward("COIL-2", LINKS, SHIPMENTS)
    assert recall.affected_lots == ("BRK-2", "FRM-1", "PFR-1", "PFR-2")
    assert recall.depth_by_lot == {"BRK-2": 1, "FRM-1": 2, "PFR-1": 3, "PFR-2": 3}
    assert [s.shipment for s in recall.shipments] == ["SH-1", "SH-2"]
    assert recall.customers == ("Acme", "Bolt Co")


def test_a_lot_that_was_never_consumed_recalls_only_its_own_shipments() -> None:
    recall = trace_forward("BRK-9", LINKS, SHIPMENTS)
    assert recall.affected_lots == ()
    assert [s.shipment for s in recall.shipments] == ["SH-3"]


def test_a_cycle_in_bad_data_is_cut_instead_of_looping_forever() -> None:
    links = [*LINKS, ConsumptionLink("COIL-1", "PFR-1", D(1))]
    root = trace_backward("PFR-1", LOTS, links, ORDERS)
    assert sum(1 for n in root.walk() if n.lot == "PFR-1") == 1
    recall = trace_forward("COIL-1", links, SHIPMENTS)
    assert "COIL-1" not in recall.affected_lots


def test_tracing_an_unknown_lot_says_so() -> None:
    with pytest.raises(UnknownLotError, match="unknown lot NOPE"):
        trace_backward("NOPE", LOTS, LINKS, ORDERS)
