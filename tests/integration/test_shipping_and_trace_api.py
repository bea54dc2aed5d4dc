"""Sales order -> partial shipment with a back-order -> delivery note, then a three-level trace backward
from the shipped lot and forward from a steel coil to the customer (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import time

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from mes_lite.inventory.ledger import reconcile_balances
from mes_lite.models import BomLine, Product, ProductionCount, Shift, User, WorkCenter, WorkOrder, WorkOrderStatusChange
from tests.integration.test_inventory_api import plant, receipt


def make_chain(client: TestClient, session: Session) -> None:
    """steel coil -> bracket (WO-B) -> frame (WO-F) -> painted frame (WO-P), all on press01."""
    plant(session)
    for code, unit in (("steel", "kg"), ("bracket", "pcs"), ("frame", "pcs"), ("pframe", "pcs"), ("paint", "l")):
        assert (
            client.put(
                "/api/inventory/materials", json={"code": code, "unit": unit, "pick_strategy": "fefo"}
            ).status_code
            == 200
        )
    for body in (
        {"code": "WH", "kind": "warehouse"},
        {"code": "WH/S", "kind": "zone", "parent": "WH"},
        {"code": "WH/S/1", "kind": "bin", "parent": "WH/S"},
        {"code": "WH/S/2", "kind": "bin", "parent": "WH/S"},
        {"code": "WH/DOCK", "kind": "zone", "parent": "WH", "dispatch": True},
    ):
        assert client.post("/api/inventory/locations", json=body).status_code == 201
    wc = session.query(WorkCenter).filter_by(code="press01").one()
    products = {p.code: p for p in session.query(Product)}
    site_id = wc.line.area.site_id
    session.add(
        Shift(
            site_id=site_id,
            name="early",
            start_time=__import__("datetime").time(0, 0),
            end_time=__import__("datetime").time(23, 59),
        )
    )
    operator = session.query(User).filter_by(username="operator").one()
    now = time.time_ns()
    for number, product, component in (
        ("WO-B", "bracket", "steel"),
        ("WO-F", "frame", "bracket"),
        ("WO-P", "pframe", "frame"),
    ):
        session.add(BomLine(product_id=products[product].id, component_id=products[component].id, quantity=1))
        order = WorkOrder(
            number=number, product_id=products[product].id, work_center_id=wc.id, planned_qty=100, started_ns=now
        )
        session.add(order)
        session.flush()
        session.add(
            WorkOrderStatusChange(
                work_order_id=order.id, from_status="released", to_status="running", at_ns=now, user_id=operator.id
            )
        )
        session.add(
            ProductionCount(work_center_id=wc.id, work_order_id=order.id, ts_ns=now, produced_qty=1, source="test")
        )
    session.commit()
    receipt(client, material="steel", quantity=100, location="WH/S/1", lot="COIL-A")
    receipt(client, material="paint", quantity=10, location="WH/S/1", lot="PAINT-1")
    steps = (
        ("WO-B", "steel", "COIL-A", "BRK-1"),
        ("WO-F", "bracket", "BRK-1", "FRM-1"),
        ("WO-P", "frame", "FRM-1", "PFR-1"),
    )
    for number, material, lot, produced in steps:
        issued = client.post(
            "/api/inventory/issues",
            json={"work_order": number, "material": material, "quantity": 20, "location": "WH/S/1", "lot": lot},
        )
        assert issued.status_code == 201, issued.text
        made = client.post(
            "/api/inventory/finished-goods",
            json={"work_order": number, "quantity": 20, "location": "WH/S/1", "lot": produced},
        )
        assert made.status_code == 201, made.text
    client.post(
        "/api/inventory/issues",
        json={"work_order": "WO-P", "material": "paint", "quantity": 1, "location": "WH/S/1", "lot": "PAINT-1"},
    )
    # a second, later-expiring lot of painted frames so FEFO has a choice
    client.post(
        "/api/inventory/finished-goods",
        json={"work_order": "WO-P", "quantity": 5, "location": "WH/S/2", "lot": "PFR-2", "expiry_date": "2099-01-01"},
    )


def test_partial_shipment_back_order_delivery_note_and_recall(
    mes_client: TestClient, mes_session: Session, mes_auth_headers: dict
) -> None:
    make_chain(mes_client, mes_session)
    order = mes_client.post(
        "/api/shipping/sales-orders",
        json={
            "number": "SO-1",
            "customer": "Acme GmbH",
            "ship_to": "Hamburg",
            "lines": [{"material": "pframe", "quantity": 30}],
        },
    )
    assert order.status_code == 201, order.text
    operator = mes_auth_headers["operator"]

    picked = mes_client.post(
        "/api/shipping/sales-orders/SO-1/shipments",
        json={"dispatch_location": "WH/DOCK", "number": "SH-1"},
        headers=operator,
    )
    assert picked.status_code == 201, picked.text
    shipment = picked.json()
    # only 25 on hand: 20 of PFR-1 (no expiry) and 5 of PFR-2 -- FEFO takes the expiring lot first -- 5 back-ordered
    assert [(x["lot"], x["quantity"]) for x in shipment["lines"]] == [("PFR-2", 5), ("PFR-1", 20)]
    assert shipment["back_orders"] == {"1": 5.0}
    not_packed = mes_client.post("/api/shipping/shipments/SH-1/ship", headers=operator)
    assert not_packed.status_code == 409 and "pack it before shipping" in not_packed.json()["detail"]
    assert (
        mes_client.post(
            "/api/shipping/shipments/SH-1/pack", json={"packages": 2, "carrier": "SF Express"}, headers=operator
        ).status_code
        == 200
    )
    shipped = mes_client.post("/api/shipping/shipments/SH-1/ship", headers=operator)
    assert shipped.json()["status"] == "shipped"
    so = mes_client.get("/api/shipping/sales-orders/SO-1").json()
    assert so["status"] == "partially_shipped" and so["lines"][0]["open_quantity"] == 5
    listed = mes_client.get("/api/shipping/sales-orders", params={"status": "partially_shipped"}).json()
    assert [(o["number"], o["shipments"]) for o in listed] == [("SO-1", ["SH-1"])]
    nothing = mes_client.post("/api/shipping/sales-orders/SO-1/shipments", json={"dispatch_location": "WH/DOCK"})
    assert nothing.status_code == 409 and "no usable stock" in nothing.json()["detail"]

    note = mes_client.get("/api/shipping/shipments/SH-1/delivery-note")
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/html")
    html = note.text
    assert "@media print" in html and "Acme GmbH" in html and "SF Express" in html
    assert re.findall(
        r'<tr class="shipped-line">\s*<td>1</td><td>pframe</td><td>pframe</td><td>(PFR-\d)</td>', html
    ) == ["PFR-1", "PFR-2"]
    assert '<tr class="backorder-line"><td>1</td><td>pframe</td><td class="num">5</td></tr>' in html
    chinese = mes_client.get(
        "/api/shipping/shipments/SH-1/delivery-note", headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    ).text
    assert (
        '<html lang="zh-CN">' in chinese
        and "送货单" in chinese
        and "已发货" in chinese
        and "Delivery note" not in chinese
    )
    english = mes_client.get(
        "/api/shipping/shipments/SH-1/delivery-note", params={"lang": "en"}, headers={"Accept-Language": "zh-CN"}
    ).text
    assert "Delivery note" in english and "送货单" not in english

    back = mes_client.get("/api/trace/lots/PFR-1/backward").json()
    assert back["summary"]["material_lots"] == ["FRM-1", "BRK-1", "COIL-A", "PAINT-1"]  # depth first
    assert back["summary"]["levels"] == 3 and back["summary"]["work_orders"] == ["WO-P", "WO-F", "WO-B"]
    assert back["summary"]["operators"] == ["operator"] and back["summary"]["shifts"] == ["early"]
    assert back["tree"]["work_order"]["dashboard_url"].startswith("/machines/dg/stamping/line1/press01?from_ns=")

    recall = mes_client.get("/api/trace/lots/COIL-A/forward").json()
    assert recall["affected_lots"] == [
        {"lot": "BRK-1", "depth": 1},
        {"lot": "FRM-1", "depth": 2},
        {"lot": "PFR-1", "depth": 3},
        {"lot": "PFR-2", "depth": 3},
    ]
    assert {(s["shipment"], s["lot"]) for s in recall["shipments"]} == {("SH-1", "PFR-1"), ("SH-1", "PFR-2")}
    assert recall["customers"] == ["Acme GmbH"]
    assert mes_client.get("/api/trace/lots/NOPE/backward").status_code == 404
    shipped_move = mes_client.get("/api/inventory/moves", params={"lot": "PFR-2"}).json()[0]
    assert shipped_move["kind"] == "shipment"
    refused = mes_client.post(
        f"/api/inventory/moves/{shipped_move['id']}/reversal", json={"reason": "customer returned it"}
    )
    assert refused.status_code == 409 and "new receipt" in refused.json()["detail"]
    assert reconcile_balances(mes_session) == []
