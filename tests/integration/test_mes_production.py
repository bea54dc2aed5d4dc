"""Work orders, machine states, counts and OEE through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

PLANT = b"""
sites: [{enterprise: acme, code: plant, timezone: UTC}]
areas: [{site: plant, code: stamping}]
lines: [{site: plant, area: stamping, code: line1}]
work_centers:
  - {site: plant, area: stamping, line: line1, code: press01}
  - {site: plant, area: stamping, line: line1, code: press02, ideal_cycle_time_s: 2.0}
products: [{code: BRK-100}]
routing: [{product: BRK-100, work_center: plant/stamping/line1/press01, ideal_cycle_time_s: 1.0}]
shifts:
  - {site: plant, name: early, start: "06:00", end: "14:00", breaks: [{start: "10:00", end: "11:00"}]}
downtime_reasons:
  - {code: die_jam, category: breakdown}
  - {code: planned_maintenance, planned: true, category: planned}
scrap_reasons: [{code: burr}]
"""
PRESS = "plant/stamping/line1/press01"
DAY = "2026-03-02"


def setup_plant(client: TestClient) -> None:
    response = client.post("/api/master-data/import", files={"file": ("plant.yaml", PLANT, "application/yaml")})
    assert response.status_code == 200, response.text


def new_order(client: TestClient, number: str = "WO-1", qty: float = 20_000) -> dict:
    body = {"number": number, "product": "BRK-100", "work_center": PRESS, "planned_qty": qty}
    response = client.post("/api/work-orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def act(client: TestClient, order_id: int, action: str, headers: dict | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"/api/work-orders/{order_id}/transitions", json={"action": action}, headers=headers)


def state(client: TestClient, at: str, name: str, work_center: str = PRESS) -> dict:
    response = client.post("/api/state-events", json={"work_center": work_center, "state": name, "ts": f"{DAY}T{at}Z"})
    assert response.status_code == 201, response.text
    return response.json()


def count(client: TestClient, at: str, produced: float, rejects: float = 0, work_center: str = PRESS) -> dict:
    body = {"work_center": work_center, "produced_qty": produced, "reject_qty": rejects, "ts": f"{DAY}T{at}Z"}
    response = client.post("/api/counts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_work_order_walks_its_life_cycle_and_refuses_invalid_transitions_without_changing(
    mes_client: TestClient,
) -> None:
    setup_plant(mes_client)
    order = new_order(mes_client)
    assert order["status"] == "planned" and order["allowed_actions"] == ["release"]
    refused = act(mes_client, order["id"], "start")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "work order WO-1 is planned: cannot start (allowed now: release)"
    unchanged = mes_client.get(f"/api/work-orders/{order['id']}").json()
    assert unchanged["status"] == "planned" and len(unchanged["history"]) == 1
    for action, status in [("release", "released"), ("start", "running"), ("pause", "paused"), ("resume", "running")]:
        response = act(mes_client, order["id"], action)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    for action, status in [("complete", "completed"), ("close", "closed")]:
        assert act(mes_client, order["id"], action).json()["status"] == status
    closed = act(mes_client, order["id"], "reopen")
    assert closed.status_code == 409 and "a closed order cannot change" in closed.json()["detail"]
    history = mes_client.get(f"/api/work-orders/{order['id']}").json()["history"]
    assert [h["to"] for h in history] == ["planned", "released", "running", "paused", "running", "completed", "closed"]


def test_only_one_order_runs_on_a_work_center_at_a_time(mes_client: TestClient) -> None:
    setup_plant(mes_client)
    first, second = new_order(mes_client, "WO-1"), new_order(mes_client, "WO-2")
    for order in (first, second):
        act(mes_client, order["id"], "release")
    assert act(mes_client, first["id"], "start").status_code == 200
    refused = act(mes_client, second["id"], "start")
    assert refused.status_code == 409
    assert "WO-1 is already running on work center press01" in refused.json()["detail"]
    assert mes_client.get(f"/api/work-orders/{second['id']}").json()["status"] == "released"
    act(mes_client, first["id"], "pause")
    assert act(mes_client, second["id"], "start").status_code == 200


def test_an_operator_starts_orders_but_a_supervisor_releases_them(
    mes_client: TestClient, mes_auth_headers: dict
) -> None:
    setup_plant(mes_client)
    order = new_order(mes_client)
    operator = mes_auth_headers["operator"]
    assert act(mes_client, order["id"], "release", operator).status_code == 403
    assert act(mes_client, order["id"], "release", mes_auth_headers["supervisor"]).status_code == 200
    assert act(mes_client, order["id"], "start", operator).status_code == 200
    body = {"number": "WO-9", "product": "BRK-100", "work_center": PRESS, "planned_qty": 5}
    assert mes_client.post("/api/work-orders", json=body, headers=operator).status_code == 403


def test_counts_go_to_the_running_order_and_scrap_reports_lower_its_good_quantity(
    mes_client: TestClient, mes_auth_headers: dict
) -> None:
    setup_plant(mes_client)
    order = new_order(mes_client, qty=100)
    act(mes_client, order["id"], "release")
    act(mes_client, order["id"], "start")
    assert count(mes_client, "07:00:00", 40, 2)["work_order_id"] == order["id"]
    operator = mes_auth_headers["operator"]
    partial = mes_client.post(f"/api/work-orders/{order['id']}/quantities", json={"good_qty": 10}, headers=operator)
    assert partial.status_code == 201 and partial.json()["good_qty"] == 48
    scrap = {"quantity": 3, "reason": "burr", "note": "edge burr after die change"}
    response = mes_client.post(f"/api/work-orders/{order['id']}/scrap", json=scrap, headers=operator)
    assert response.status_code == 201, response.text
    assert response.json()["good_qty"] == 45 and response.json()["reject_qty"] == 5
    assert response.json()["progress"] == pytest.approx(0.45)
    too_much = mes_client.post(f"/api/work-orders/{order['id']}/scrap", json={"quantity": 500, "reason": "burr"})
    assert too_much.status_code == 409 and "has 45 good parts" in too_much.json()["detail"]
    unknown = mes_client.post(f"/api/work-orders/{order['id']}/scrap", json={"quantity": 1, "reason": "rust"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "reason"
    note = mes_client.post(f"/api/work-orders/{order['id']}/notes", json={"text": "coil 7 is thin"}, headers=operator)
    assert note.json()["notes"][0]["text"] == "coil 7 is thin"


def golden_shift(client: TestClient) -> None:
    """Shift 06:00-14:00 with a 60 min break; a 47 min fault; 19,271 parts of which 423 rejects; ideal cycle 1.0 s."""
    setup_plant(client)
    order = new_order(client)
    act(client, order["id"], "release")
    act(client, order["id"], "start")
    state(client, "06:00:00", "running")
    state(client, "08:00:00", "fault")
    state(client, "08:47:00", "running")
    state(client, "14:00:00", "idle")
    for at, produced, rejects in [("07:00:00", 5000, 100), ("09:30:00", 7000, 123), ("13:59:59", 7271, 200)]:
        count(client, at, produced, rejects)


def test_the_golden_shift_through_the_api_gives_the_published_oee(mes_client: TestClient) -> None:
    golden_shift(mes_client)
    response = mes_client.get(
        "/api/oee", params={"path": PRESS, "start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:59Z"}
    )
    assert response.status_code == 200, response.text
    total = response.json()["total"]
    assert total["times"]["planned_busy_s"] == 420 * 60
    assert total["times"]["fault_s"] == 47 * 60
    assert round(total["availability"], 4) == 0.8881
    assert round(total["effectiveness"], 4) == 0.8611
    assert round(total["quality_ratio"], 4) == 0.9780
    assert round(total["oee"], 4) == 0.7479


def test_a_line_sums_its_machines_and_a_shift_series_matches_the_window(mes_client: TestClient) -> None:
    golden_shift(mes_client)
    press2 = "plant/stamping/line1/press02"
    state(mes_client, "06:00:00", "running", press2)
    state(mes_client, "14:00:00", "idle", press2)
    count(mes_client, "12:00:00", 9000, 0, press2)  # 9,000 x 2 s = 5 h of ideal time in 7 h PBT
    line = mes_client.get(
        "/api/oee", params={"path": "plant/stamping/line1", "start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:59Z"}
    ).json()
    # times and counts summed, then A x E x Q: (APT/PBT) x (ideal time/APT) x (good/produced)
    expected = (19_271 * 1.0 + 9_000 * 2.0) / (2 * 420 * 60) * (18_848 + 9_000) / (19_271 + 9_000)
    assert line["total"]["oee"] == pytest.approx(expected)
    assert line["work_centers"][press2]["oee"] == pytest.approx(18_000 / 25_200)
    series = mes_client.get(
        "/api/oee/series",
        params={
            "path": "plant/stamping/line1",
            "bucket": "shift",
            "start": f"{DAY}T00:00:00Z",
            "end": f"{DAY}T23:59:59Z",
        },
    ).json()
    assert [s["label"] for s in series] == [f"{DAY} early"]
    assert series[0]["oee"] == pytest.approx(expected)


def test_a_planned_reason_moves_a_stop_out_of_planned_busy_time_and_the_pareto_shows_reasons(
    mes_client: TestClient, mes_auth_headers: dict
) -> None:
    golden_shift(mes_client)
    window = {"start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:59Z"}
    intervals = mes_client.get("/api/state-intervals", params={"work_center": PRESS, **window}).json()
    fault = next(i for i in intervals if i["state"] == "fault")
    pareto = mes_client.get("/api/oee/downtime-pareto", params={"path": PRESS, **window}).json()
    assert pareto[0]["reason"] == "unassigned (fault)" and pareto[0]["duration_s"] == 47 * 60
    before = mes_client.get("/api/oee", params={"path": PRESS, **window}).json()["total"]  # fills the hourly cache
    assert round(before["availability"], 4) == 0.8881
    running = next(i for i in intervals if i["state"] == "running")
    refused = mes_client.put(f"/api/state-intervals/{running['id']}/reason", json={"reason": "die_jam"})
    assert refused.status_code == 409
    operator = mes_auth_headers["operator"]
    response = mes_client.put(
        f"/api/state-intervals/{fault['id']}/reason", json={"reason": "die_jam"}, headers=operator
    )
    assert response.status_code == 200 and response.json()["reason"] == "die_jam"
    pareto = mes_client.get("/api/oee/downtime-pareto", params={"path": PRESS, **window}).json()
    assert pareto[0]["reason"] == "die_jam"
    mes_client.put(f"/api/state-intervals/{fault['id']}/reason", json={"reason": "planned_maintenance"})
    total = mes_client.get("/api/oee", params={"path": PRESS, **window}).json()["total"]
    assert total["times"]["planned_busy_s"] == (420 - 47) * 60
    assert total["availability"] == pytest.approx(1.0)
    count(mes_client, "09:00:00", 100, 0)  # a back-dated count lands in a cached hour
    total = mes_client.get("/api/oee", params={"path": PRESS, **window}).json()["total"]
    assert total["counts"]["produced_qty"] == 19_271 + 100


def test_the_andon_board_shows_state_stop_duration_reason_order_progress_and_oee_today(mes_client: TestClient) -> None:
    setup_plant(mes_client)
    order = new_order(mes_client, qty=1000)
    act(mes_client, order["id"], "release")
    act(mes_client, order["id"], "start")
    now = dt.datetime.now(dt.UTC)
    at = (now - dt.timedelta(minutes=10)).isoformat()
    mes_client.post("/api/state-events", json={"work_center": PRESS, "state": "running", "ts": at})
    stop_at = (now - dt.timedelta(minutes=3)).isoformat()
    stop = mes_client.post("/api/state-events", json={"work_center": PRESS, "state": "fault", "ts": stop_at}).json()
    mes_client.post("/api/counts", json={"work_center": PRESS, "produced_qty": 250, "ts": at})
    mes_client.put(f"/api/state-intervals/{stop['interval_id']}/reason", json={"reason": "die_jam"})
    board = mes_client.get("/api/andon", params={"path": "plant"}).json()
    tile = next(t for t in board["work_centers"] if t["path"] == PRESS)
    assert tile["state"] == "fault" and tile["reason"] == "die_jam"
    assert 170 <= tile["duration_s"] <= 200
    assert tile["order"]["number"] == "WO-1" and tile["order"]["progress"] == pytest.approx(0.25)
    assert set(tile["oee_today"]) >= {"oee", "availability", "performance", "quality"}
    other = next(t for t in board["work_centers"] if t["path"] != PRESS)
    assert other["state"] is None and other["order"] is None


def test_a_long_running_state_is_rolled_at_shift_break_and_hour_edges_without_changing_the_oee(
    mes_client: TestClient, mes_session
) -> None:
    from mes_lite.api.schemas import to_ns
    from mes_lite.models import MachineStateInterval
    from mes_lite.services.master_data import work_center_by_path
    from mes_lite.services.production import ProductionRecorder

    setup_plant(mes_client)
    state(mes_client, "05:30:00", "running")
    window = {"start": f"{DAY}T00:00:00Z", "end": f"{DAY}T12:00:00Z"}
    # no edge has been crossed yet: the open interval runs on; the query clips it at "now" (later than the window)
    wc_id = work_center_by_path(mes_session, PRESS).id
    recorder = ProductionRecorder()
    assert recorder.roll_open_interval(mes_session, wc_id, to_ns(dt.datetime(2026, 3, 2, 11, 45, tzinfo=dt.UTC)))
    mes_session.commit()
    pieces = (
        mes_session.query(MachineStateInterval)
        .filter_by(work_center_id=wc_id)
        .order_by(MachineStateInterval.start_ns)
        .all()
    )
    starts = [dt.datetime.fromtimestamp(p.start_ns / 1e9, dt.UTC).strftime("%H:%M") for p in pieces]
    assert starts == ["05:30", "06:00", "07:00", "08:00", "09:00", "10:00", "11:00"]
    assert [p.planned_busy for p in pieces] == [False, True, True, True, True, False, True]
    assert pieces[-1].end_ns is None and {p.state for p in pieces} == {"running"}
    total = mes_client.get("/api/oee", params={"path": PRESS, **window}).json()["total"]
    assert total["times"]["production_s"] == (6 - 1) * 3600  # 06:00-12:00 minus the 10:00-11:00 break
    assert total["availability"] == pytest.approx(1.0)


def test_a_planned_stop_is_planned_down_time_and_leaves_availability_alone(mes_client: TestClient) -> None:
    setup_plant(mes_client)
    stop = {
        "site": "plant",
        "work_center": PRESS,
        "start": f"{DAY}T12:00:00Z",
        "end": f"{DAY}T13:00:00Z",
        "reason": "planned_maintenance",
    }
    response = mes_client.post("/api/master-data/planned-stops", json=stop)
    assert response.status_code == 201, response.text
    bad = mes_client.post("/api/master-data/planned-stops", json={**stop, "end": f"{DAY}T11:00:00Z"})
    assert bad.status_code == 422 and bad.json()["field"] == "end"
    state(mes_client, "06:00:00", "running")
    state(mes_client, "12:00:00", "planned_stop")
    state(mes_client, "13:00:00", "running")
    state(mes_client, "14:00:00", "idle")
    window = {"start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:59Z"}
    total = mes_client.get("/api/oee", params={"path": PRESS, **window}).json()["total"]
    assert total["times"]["planned_busy_s"] == (480 - 60 - 60) * 60  # shift - break - planned stop
    assert total["times"]["production_s"] == (480 - 60 - 60) * 60
    assert total["availability"] == pytest.approx(1.0)
