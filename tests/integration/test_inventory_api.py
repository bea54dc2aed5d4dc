"""Warehouse API on SQLite and PostgreSQL: the ledger rules, master data, planning aids and CSV exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mes_lite.db import make_engine, session_factory
from mes_lite.inventory import auto_backflush
from mes_lite.inventory.ledger import reconcile_balances
from mes_lite.models import Area, BomLine, Line, Product, ProductionCount, Site, WorkCenter, WorkOrder


def plant(session: Session, machines: tuple[str, ...] = ("press01",)) -> list[int]:
    """Site dg, area stamping, line line1 with these machines (work centers); their ids."""
    site = Site(enterprise="acme", code="dg")
    session.add(site)
    session.flush()
    area = Area(site_id=site.id, code="stamping")
    session.add(area)
    session.flush()
    line = Line(area_id=area.id, code="line1")
    session.add(line)
    session.flush()
    work_centers = [WorkCenter(line_id=line.id, code=code) for code in machines]
    session.add_all(work_centers)
    session.commit()
    return [wc.id for wc in work_centers]


def setup_warehouse(client: TestClient, session: Session) -> None:
    plant(session)
    for body in (
        {"code": "steel", "unit": "kg", "conversions": {"t": 1000}, "standard_cost": "2.5"},
        {"code": "bolt", "unit": "pcs", "backflush": True, "pick_strategy": "fefo", "standard_cost": "0.04"},
        {"code": "frame", "unit": "pcs", "standard_cost": "12"},
    ):
        assert client.put("/api/inventory/materials", json=body).status_code == 200
    for body in (
        {"code": "WH1", "kind": "warehouse"},
        {"code": "WH1/A", "kind": "zone", "parent": "WH1"},
        {"code": "WH1/A/01", "kind": "bin", "parent": "WH1/A"},
        {"code": "WH1/A/02", "kind": "bin", "parent": "WH1/A"},
        {"code": "WH1/LINE", "kind": "zone", "parent": "WH1"},
        {"code": "WH1/LINE/P1", "kind": "bin", "parent": "WH1/LINE", "work_center": "press01"},
        {"code": "WH1/DOCK", "kind": "zone", "parent": "WH1", "dispatch": True},
    ):
        response = client.post("/api/inventory/locations", json=body)
        assert response.status_code == 201, response.text
    frame, bolt, steel = (session.query(Product).filter_by(code=c).one() for c in ("frame", "bolt", "steel"))
    session.add_all(
        [
            BomLine(product_id=frame.id, component_id=bolt.id, quantity=4),
            BomLine(product_id=frame.id, component_id=steel.id, quantity=1.5),
        ]
    )
    wc = session.query(WorkCenter).filter_by(code="press01").one()
    session.add(WorkOrder(number="WO-1", product_id=frame.id, work_center_id=wc.id, planned_qty=100))
    session.commit()


def receipt(client: TestClient, **body: object) -> list[dict]:
    response = client.post("/api/inventory/receipts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def on_hand(client: TestClient, **params: str) -> float:
    return sum(r["quantity"] for r in client.get("/api/inventory/on-hand", params=params).json())


def test_receipt_issue_refused_overdraw_and_refused_unit_keep_on_hand_equal_to_the_ledger(
    mes_client: TestClient, mes_session: Session
) -> None:
    setup_warehouse(mes_client, mes_session)
    moves = receipt(mes_client, material="steel", quantity="1.2", unit="t", location="WH1/A/01", lot="COIL-1")
    assert moves[0]["quantity"] == 1200 and moves[0]["actor"] == "admin" and moves[0]["reason"] == "free receipt"
    issue = {"work_order": "WO-1", "material": "steel", "quantity": 150, "location": "WH1/A/01"}
    assert mes_client.post("/api/inventory/issues", json=issue).status_code == 201
    refused = mes_client.post("/api/inventory/issues", json={**issue, "quantity": 2000})
    assert refused.status_code == 409
    assert refused.json()["detail"] == "not enough steel at WH1/A/01: 1050 kg usable, issue needs 2000"
    assert on_hand(mes_client, material="steel") == 1050
    lot = mes_client.get("/api/inventory/lots/COIL-1").json()
    assert (lot["material"], lot["on_hand"], lot["work_order"]) == ("steel", 1050.0, None)
    assert [m["code"] for m in mes_client.get("/api/inventory/materials").json()] == ["bolt", "frame", "steel"]
    # a unit without a conversion factor is refused, not guessed
    response = mes_client.post(
        "/api/inventory/receipts", json={"material": "steel", "quantity": 3, "unit": "pcs", "location": "WH1/A/01"}
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "material steel: no conversion from pcs to kg is defined (known units: kg, t)",
        "field": "unit",
    }
    assert on_hand(mes_client, material="steel") == 1050  # nothing received
    assert reconcile_balances(mes_session) == []


def test_a_correction_is_a_reversal_and_the_ledger_refuses_updates_and_deletes(
    mes_client: TestClient, mes_session: Session, mes_auth_headers: dict
) -> None:
    setup_warehouse(mes_client, mes_session)
    move_id = receipt(mes_client, material="bolt", quantity=500, location="WH1/A/01", lot="B-1")[0]["id"]
    as_operator = mes_client.post(
        f"/api/inventory/moves/{move_id}/reversal", json={"reason": "typo"}, headers=mes_auth_headers["operator"]
    )
    assert as_operator.status_code == 403
    reversal = mes_client.post(f"/api/inventory/moves/{move_id}/reversal", json={"reason": "wrong delivery"})
    assert reversal.status_code == 201, reversal.text
    assert reversal.json()[0]["reverses"] == move_id and reversal.json()[0]["from_location"] == "WH1/A/01"
    again = mes_client.post(f"/api/inventory/moves/{move_id}/reversal", json={"reason": "again"})
    assert again.status_code == 409 and "already reversed" in again.json()["detail"]
    assert on_hand(mes_client, material="bolt") == 0
    for statement in ("UPDATE stock_moves SET quantity = 1", "DELETE FROM stock_moves"):
        with pytest.raises(DBAPIError, match="append-only"):
            mes_session.execute(text(statement))
        mes_session.rollback()
    assert len(mes_client.get("/api/inventory/moves", params={"material": "bolt"}).json()) == 2


def test_backflush_and_finished_goods_link_the_lots_for_traceability(
    mes_client: TestClient, mes_session: Session
) -> None:
    setup_warehouse(mes_client, mes_session)
    receipt(mes_client, material="bolt", quantity=300, location="WH1/LINE/P1", lot="B-OLD", expiry_date="2027-01-01")
    receipt(mes_client, material="bolt", quantity=300, location="WH1/LINE/P1", lot="B-SOON", expiry_date="2026-12-31")
    receipt(mes_client, material="steel", quantity=500, location="WH1/A/01", lot="COIL-1")
    mes_client.post(
        "/api/inventory/issues",
        json={"work_order": "WO-1", "material": "steel", "quantity": 150, "location": "WH1/A/01", "lot": "COIL-1"},
    )
    # the machine counted 100 parts (97 good + 3 rejects) on WO-1: backflush them from the counts
    order = mes_session.query(WorkOrder).filter_by(number="WO-1").one()
    for ts_ns, produced in ((1, 60.0), (2, 40.0)):
        mes_session.add(
            ProductionCount(
                work_center_id=order.work_center_id,
                work_order_id=order.id,
                ts_ns=ts_ns,
                produced_qty=produced,
                reject_qty=3.0 if ts_ns == 2 else 0.0,
                source="test",
            )
        )
    mes_session.commit()
    flushed = mes_client.post("/api/inventory/work-orders/WO-1/backflush-counts", json={})
    assert flushed.status_code == 200, flushed.text
    # 400 bolts FEFO from the line-side bin: the lot expiring first is emptied first; steel is issued by hand
    assert [(m["lot"], m["quantity"], m["kind"]) for m in flushed.json()] == [
        ("B-SOON", 300, "backflush"),
        ("B-OLD", 100, "backflush"),
    ]
    assert mes_client.post("/api/inventory/work-orders/WO-1/backflush-counts", json={}).json() == []  # counted once
    by_hand = mes_client.post("/api/inventory/backflushes", json={"work_order": "WO-1", "produced_quantity": 5})
    assert [(m["lot"], m["quantity"]) for m in by_hand.json()] == [("B-OLD", 20)]
    fg = mes_client.post(
        "/api/inventory/finished-goods",
        json={"work_order": "WO-1", "quantity": 100, "location": "WH1/A/02", "lot": "FRM-1"},
    )
    assert fg.status_code == 201, fg.text
    back = mes_client.get("/api/trace/lots/FRM-1/backward").json()
    assert set(back["summary"]["material_lots"]) == {"COIL-1", "B-SOON", "B-OLD"}
    assert back["summary"]["work_centers"] == ["press01"]
    forward = mes_client.get("/api/trace/lots/B-OLD/forward").json()
    assert forward["affected_lots"] == [{"lot": "FRM-1", "depth": 1}]


def test_cycle_count_posts_the_difference_with_its_reason(
    mes_client: TestClient, mes_session: Session, mes_auth_headers: dict
) -> None:
    setup_warehouse(mes_client, mes_session)
    receipt(mes_client, material="bolt", quantity=100, location="WH1/A/01", lot="B-1")
    body = {"material": "bolt", "lot": "B-1", "location": "WH1/A/01", "counted": 97, "reason": "cycle count week 48"}
    assert mes_client.post("/api/inventory/counts", json=body, headers=mes_auth_headers["operator"]).status_code == 403
    moves = mes_client.post("/api/inventory/counts", json=body).json()
    assert [(m["kind"], m["quantity"], m["from_location"], m["reason"]) for m in moves] == [
        ("adjustment", 3, "WH1/A/01", "cycle count week 48")
    ]
    assert mes_client.post("/api/inventory/counts", json=body).json() == []  # already right: nothing posted
    assert on_hand(mes_client, location="WH1") == 97


def test_master_data_is_for_supervisors_and_purchase_order_receipts_count_against_their_line(
    mes_client: TestClient, mes_session: Session, mes_auth_headers: dict
) -> None:
    setup_warehouse(mes_client, mes_session)
    response = mes_client.put(
        "/api/inventory/materials", json={"code": "x", "unit": "pcs"}, headers=mes_auth_headers["operator"]
    )
    assert response.status_code == 403
    bad_tree = mes_client.post("/api/inventory/locations", json={"code": "B9", "kind": "bin", "parent": "WH1"})
    assert bad_tree.status_code == 422
    assert bad_tree.json()["detail"] == "a bin belongs in a zone, but 'WH1' is a warehouse"
    po = mes_client.post(
        "/api/inventory/purchase-orders",
        json={"number": "PO-7", "supplier": "Baosteel", "lines": [{"material": "steel", "quantity": 2, "unit": "t"}]},
    )
    assert po.status_code == 201, po.text
    line_id = po.json()["lines"][0]["id"]
    receipt(mes_client, material="steel", quantity=800, location="WH1/A/01", purchase_order_line=line_id)
    wrong = mes_client.post(
        "/api/inventory/receipts",
        json={"material": "bolt", "quantity": 1, "location": "WH1/A/01", "purchase_order_line": line_id},
    )
    assert wrong.status_code == 422
    assert mes_client.get("/api/inventory/purchase-orders/PO-7").json()["lines"][0] == {
        "id": line_id,
        "material": "steel",
        "quantity": 2000.0,
        "received": 800.0,
    }


def test_low_stock_alerts_and_valuation_at_standard_cost(
    mes_client: TestClient, mes_session: Session, mes_auth_headers: dict
) -> None:
    setup_warehouse(mes_client, mes_session)
    receipt(mes_client, material="bolt", quantity=250, location="WH1/A/01", lot="B-1")
    receipt(mes_client, material="steel", quantity=100, location="WH1/A/02", lot="C-1")
    assert (
        mes_client.put(
            "/api/inventory/reorder-points", json={"material": "bolt", "min_quantity": 300, "reorder_quantity": 1000}
        ).status_code
        == 204
    )
    assert (
        mes_client.put(
            "/api/inventory/reorder-points", json={"material": "steel", "location": "WH1/A", "min_quantity": 50}
        ).status_code
        == 204
    )
    alerts = mes_client.get("/api/inventory/alerts/low-stock", headers=mes_auth_headers["operator"]).json()
    assert alerts == [
        {
            "material": "bolt",
            "location": None,
            "on_hand": 250.0,
            "min_quantity": 300.0,
            "reorder_quantity": 1000.0,
            "unit": "pcs",
        }
    ]
    valuation = mes_client.get("/api/inventory/valuation").json()
    assert [(r["material"], r["value"]) for r in valuation["rows"]] == [("bolt", "10.00"), ("steel", "250.00")]
    assert Decimal(valuation["total"]) == Decimal("260.00")


def test_csv_import_reports_every_bad_row_and_stores_nothing_then_round_trips(
    mes_client: TestClient, mes_session: Session
) -> None:
    setup_warehouse(mes_client, mes_session)
    bad = (
        "material,location,lot,quantity,unit,expiry_date\n"
        "bolt,WH1/A/01,B-7,120,,2027-03-01\n"
        "bolt,WH1/A/99,B-8,5,,\n"
        "steel,WH1/A/01,C-3,many,,\n"
        "steel,WH1/A/01,C-4,2,box,\n"
        ",WH1/A/01,C-5,1,,\n"
    )
    report = mes_client.post("/api/inventory/csv/stock", content=bad, headers={"Content-Type": "text/csv"}).json()
    assert report["stored"] is False and report["rows"] == 5
    assert [e["text"] for e in report["errors"]] == [
        "row 2: location: location 'WH1/A/99' does not exist",
        "row 3: quantity: 'many' is not a number",
        "row 4: unit: material steel: no conversion from box to kg is defined (known units: kg, t)",
        "row 5: material: is required",
    ]
    assert on_hand(mes_client) == 0
    good = "material,location,lot,quantity,unit,expiry_date\nbolt,WH1/A/01,B-7,120,,2027-03-01\nsteel,WH1/A/02,C-3,0.5,t,\n"
    report = mes_client.post("/api/inventory/csv/stock", content=good, headers={"Content-Type": "text/csv"}).json()
    assert report == {"kind": "stock", "rows": 2, "applied": 2, "stored": True, "errors": []}
    exported = mes_client.get("/api/inventory/csv/stock").text.splitlines()
    assert exported == [
        "material,location,lot,quantity,unit,expiry_date",
        "bolt,WH1/A/01,B-7,120,pcs,2027-03-01",
        "steel,WH1/A/02,C-3,500,kg,",
    ]
    materials = mes_client.get("/api/inventory/csv/materials").text
    assert "steel,steel,kg,false,false,fifo,2.5," in materials


def test_the_automatic_backflush_consumes_what_counts_add_once_and_says_why_when_it_cannot(
    mes_client: TestClient, mes_session: Session, mes_db_url: str
) -> None:
    """The round the MES ingest runs every minute (mes_lite/inventory/auto_backflush.py), called here directly."""
    setup_warehouse(mes_client, mes_session)  # a frame takes 4 bolts (backflushed) and 1.5 kg steel (issued by hand)
    receipt(mes_client, material="bolt", quantity=100, location="WH1/LINE/P1", lot="B-1")
    order = mes_session.query(WorkOrder).filter_by(number="WO-1").one()

    def count(ts_ns: int, produced: float) -> None:
        mes_session.add(
            ProductionCount(
                work_center_id=order.work_center_id, work_order_id=order.id, ts_ns=ts_ns, produced_qty=produced,
                source="test",
            )
        )  # fmt: skip
        mes_session.commit()

    engine = make_engine(mes_db_url)
    sessions = session_factory(engine)
    try:
        count(1, 20.0)
        first = auto_backflush.run_round(sessions)
        assert (first.moves, first.failed) == ({"WO-1": 1}, {})
        assert on_hand(mes_client, material="bolt") == 20  # 80 bolts for 20 frames
        assert auto_backflush.run_round(sessions).moves == {}  # no new count: nothing consumed twice

        count(2, 10.0)  # 10 more frames need 40 bolts; 20 are there and bolts may not go negative
        refused = auto_backflush.run_round(sessions)
        assert refused.moves == {} and "bolt" in refused.failed["WO-1"]
        assert on_hand(mes_client, material="bolt") == 20  # nothing half-consumed
        (problem,) = mes_client.get("/api/inventory/backflush-status", params={"problems_only": True}).json()
        assert (problem["work_order"], problem["pending"], problem["last_error"]) == (
            "WO-1", 10, refused.failed["WO-1"]
        )  # fmt: skip
        assert problem["last_error_at_ns"] > 0

        receipt(mes_client, material="bolt", quantity=100, location="WH1/LINE/P1", lot="B-2")  # the stock arrives
        assert auto_backflush.run_round(sessions).moves == {"WO-1": 2}  # the next round settles it: B-1, then B-2
        assert on_hand(mes_client, material="bolt") == 80
    finally:
        engine.dispose()
    (status,) = mes_client.get("/api/inventory/backflush-status").json()
    assert status == {
        "work_order": "WO-1", "counted": 30, "backflushed": 30, "pending": 0, "last_error": "", "last_error_at_ns": 0,
    }  # fmt: skip
    assert mes_client.get("/api/inventory/backflush-status", params={"problems_only": True}).json() == []


def test_closing_an_order_backflushes_its_last_counts_or_is_refused_with_the_reason(
    mes_client: TestClient, mes_session: Session
) -> None:
    """The rounds run once a minute; the counts of the last minute must not escape because the order closed."""
    setup_warehouse(mes_client, mes_session)
    receipt(mes_client, material="bolt", quantity=20, location="WH1/LINE/P1", lot="B-1")
    order = mes_session.query(WorkOrder).filter_by(number="WO-1").one()
    order.status = "completed"
    mes_session.add(
        ProductionCount(
            work_center_id=order.work_center_id, work_order_id=order.id, ts_ns=1, produced_qty=10.0, source="test"
        )
    )
    mes_session.commit()

    refused = mes_client.post(f"/api/work-orders/{order.id}/transitions", json={"action": "close"})
    assert refused.status_code == 409
    assert "10 counted units are not backflushed yet" in refused.json()["detail"]
    assert "not enough bolt" in refused.json()["detail"]
    mes_session.expire_all()
    assert mes_session.get(WorkOrder, order.id).status == "completed"  # type: ignore[union-attr]
    assert on_hand(mes_client, material="bolt") == 20

    receipt(mes_client, material="bolt", quantity=20, location="WH1/LINE/P1", lot="B-2")
    closed = mes_client.post(f"/api/work-orders/{order.id}/transitions", json={"action": "close"})
    assert closed.status_code == 200, closed.text
    assert on_hand(mes_client, material="bolt") == 0  # 40 bolts for the 10 frames, in the close's transaction
    moves = mes_client.get("/api/inventory/moves", params={"material": "bolt"}).json()
    assert sorted(m["quantity"] for m in moves if m["kind"] == "backflush") == [20, 20]
