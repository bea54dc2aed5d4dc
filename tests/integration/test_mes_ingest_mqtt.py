"""The ingest against a real Mosquitto: uns-json messages (encoded by the gateway's own UNS code)
become intervals and counts; duplicates, reordering, a rollover, a reset and a restart with a
backlog count nothing twice; OEE from the API equals the OEE of the published script.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session

from edge_config.loader import load_config
from gateway.sample import Quality, Sample
from gateway.sinks.uns import sample_payload
from mes_lite.api.app import create_app
from mes_lite.ingest.runner import Ingestor
from mes_lite.inventory import auto_backflush
from mes_lite.models import BomLine, Product, WorkCenter, WorkOrder
from mes_lite.oee import compute
from mes_lite.settings import MesSettings
from mes_lite.shift_calendar import expand_calendar
from mes_lite.spans import NS_PER_S, Span
from mes_lite.time_accounting import CountRecord, StateRecord, window_inputs

EDGE_CONFIG = """
site: {{enterprise: acme, site: dongguan}}
devices:
  - name: press01
    area: stamping
    line: line1
    protocol: modbus
    connection: {{host: 127.0.0.1, port: 5020, unit: 1}}
    tags:
      state: {{address: hr40001, role: state, map: {{0: idle, 1: running, 5: fault}}}}
      total_count: {{address: hr40004, type: uint32, role: total_count}}
      reject_count: {{address: hr40006, type: uint32, role: reject_count}}
      ideal_cycle_time: {{address: hr40010, type: float32, role: ideal_cycle_time}}
      temperature: {{address: ir30001, type: float32}}
sinks:
  mqtt: {{url: "{url}", qos: 1}}
"""
MACHINE = "acme/dongguan/stamping/line1/press01"
T0 = int(dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC).timestamp()) * NS_PER_S
MIN = 60 * NS_PER_S


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-plc-gateway")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, tag: str, value: object, ts_ns: int, quality: Quality = Quality.GOOD) -> None:
        payload = sample_payload(Sample(f"{MACHINE}/{tag}", value, ts_ns, quality))
        self.client.publish(f"{MACHINE}/{tag}", payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_ingest(settings: MesSettings, config_path: Path) -> Ingestor:
    ingestor = Ingestor(settings, load_config(config_path), client_id="mes-under-test")
    ingestor.start()
    assert ingestor.connected.wait(10), "the ingest did not connect to Mosquitto"
    time.sleep(0.2)  # SUBACK
    return ingestor


def wait_processed(ingestor: Ingestor, at_least: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ingestor.processed + ingestor.reorder.duplicates >= at_least and ingestor.wait_idle(0.1):
            return
        time.sleep(0.05)
    raise AssertionError(
        f"ingest processed {ingestor.processed} (+{ingestor.reorder.duplicates} duplicates) of {at_least}"
    )


def oee_of(settings: MesSettings, start_ns: int, end_ns: int, headers: dict) -> dict:
    with TestClient(create_app(settings), headers=headers) as client:
        start = dt.datetime.fromtimestamp(start_ns / NS_PER_S, dt.UTC).isoformat()
        end = dt.datetime.fromtimestamp(end_ns / NS_PER_S, dt.UTC).isoformat()
        response = client.get(
            "/api/oee", params={"path": "dongguan/stamping/line1/press01", "start": start, "end": end}
        )
        assert response.status_code == 200, response.text
        return response.json()["total"]


def test_published_states_and_counters_become_the_oee_of_the_script_and_a_replay_counts_nothing_twice(
    mosquitto, mes_db_url: str, mes_auth_headers: dict, tmp_path: Path
) -> None:
    config_path = tmp_path / "edge.yaml"
    config_path.write_text(EDGE_CONFIG.format(url=mosquitto.url))
    settings = MesSettings(database_url=mes_db_url, reorder_window_s=0.5, micro_stop_threshold_s=120)
    ingestor = start_ingest(settings, config_path)
    plc = Publisher(mosquitto.port)
    sent = 0
    try:
        # a 60-minute script: ideal cycle 2 s; running, a 15 min fault, a 90 s micro stop, running
        plc.send("ideal_cycle_time", 2.0, T0 - 1)
        plc.send("state", 1, T0)
        plc.send("total_count", 2**32 - 600, T0)  # baseline close to the 32-bit limit
        plc.send("reject_count", 10, T0)
        sent += 4
        total = 2**32 - 600
        for minute in range(1, 61):
            ts = T0 + minute * MIN
            if minute == 20:
                plc.send("state", 5, ts)
                sent += 1
            elif minute == 35:
                plc.send("state", 1, ts)
                sent += 1
            elif minute == 50:
                plc.send("state", 0, ts)
                plc.send("state", 1, ts + 90 * NS_PER_S)
                sent += 2
            running = not 20 <= minute < 35
            total = (total + (27 if running else 0)) % 2**32  # rolls over around minute 23
            plc.send("total_count", total, ts)
            sent += 1
            if minute % 10 == 0:
                plc.send("reject_count", 10 + minute // 10, ts)
                sent += 1
        # QoS-1 style redelivery of already-processed messages, and one pair out of order
        plc.send("total_count", total, T0 + 60 * MIN)
        plc.send("state", 5, T0 + 20 * MIN)
        plc.send("temperature", 81.5, T0 + 61 * MIN)  # not an OEE tag: not subscribed
        sent += 2
        wait_processed(ingestor, sent)
    finally:
        ingestor.stop()

    # ground truth of the script, through the pure reference implementation
    states = [
        StateRecord(T0, T0 + 20 * MIN, "production"),
        StateRecord(T0 + 20 * MIN, T0 + 35 * MIN, "fault"),
        StateRecord(T0 + 35 * MIN, T0 + 50 * MIN, "production"),
        StateRecord(T0 + 50 * MIN, T0 + 50 * MIN + 90 * NS_PER_S, "idle"),
        StateRecord(T0 + 50 * MIN + 90 * NS_PER_S, T0 + 61 * MIN, "production"),  # still running
    ]
    produced = 27 * 45
    window = Span(T0, T0 + 61 * MIN)  # counts at minute 60 inside
    truth = compute(window_inputs(expand_calendar([], window), states, [CountRecord(T0 + MIN, produced, 6, 2.0)], 120))
    api = oee_of(settings, window.start_ns, window.end_ns, mes_auth_headers["admin"])
    assert api["counts"]["produced_qty"] == produced  # the rollover counted, the redelivery not
    assert api["counts"]["reject_qty"] == 6
    assert api["times"]["fault_s"] == 15 * 60 and api["times"]["micro_stop_s"] == 90
    assert api["availability"] == pytest.approx(truth.availability, abs=1e-9)
    assert api["effectiveness"] == pytest.approx(truth.effectiveness, abs=1e-9)
    assert api["oee"] == pytest.approx(truth.oee, abs=1e-9)

    # the MES is down while the machine keeps producing; QoS-1 messages wait in its broker session
    plc.send("total_count", (total + 30) % 2**32, T0 + 61 * MIN)
    plc.send("total_count", 5, T0 + 62 * MIN)  # a counter reset: no production
    plc.send("total_count", 25, T0 + 63 * MIN)
    ingestor = start_ingest(settings, config_path)
    try:
        plc.send("total_count", total, T0 + 60 * MIN)  # an old message replayed once more
        wait_processed(ingestor, 4)
    finally:
        ingestor.stop()
        plc.close()
    api = oee_of(settings, window.start_ns, window.end_ns + 10 * MIN, mes_auth_headers["admin"])
    assert api["counts"]["produced_qty"] == produced + 30 + 20


def test_a_batch_the_database_refuses_is_retried_and_counted_once(mes_templates, tmp_path: Path) -> None:
    """A real write failure (a SQLite trigger aborting inserts, like a full disk), then recovery."""
    import sqlite3

    from mes_lite.ingest.events import TagMessage

    db_url, headers = mes_templates.sqlite_copy(tmp_path / "mes.db")
    config_path = tmp_path / "edge.yaml"
    config_path.write_text(EDGE_CONFIG.format(url="mqtt://127.0.0.1:1"))  # never connected in this test
    settings = MesSettings(database_url=db_url, reorder_window_s=0)
    ingestor = Ingestor(settings, load_config(config_path), client_id="mes-retry")
    fail = "CREATE TRIGGER fail BEFORE INSERT ON production_counts BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    with sqlite3.connect(tmp_path / "mes.db") as db:
        db.execute(fail)
    for minute, total in enumerate([100, 160, 220]):
        ingestor.reorder.push(TagMessage(f"{MACHINE}/total_count", total, T0 + minute * MIN))
    ingestor._flush(everything=True)  # refused: rolled back, kept for a retry
    assert ingestor.processed == 0 and len(ingestor.reorder) == 3
    with sqlite3.connect(tmp_path / "mes.db") as db:
        db.execute("DROP TRIGGER fail")
    ingestor._flush(everything=True)
    assert ingestor.processed == 3
    ingestor.stop()
    api = oee_of(settings, T0, T0 + 10 * MIN, headers["admin"])
    assert api["counts"]["produced_qty"] == 120


def test_counts_from_the_machine_backflush_their_components_in_the_ingests_next_round(
    mosquitto, mes_client: TestClient, mes_session: Session, mes_db_url: str, tmp_path: Path, monkeypatch
) -> None:
    """MQTT -> ingest -> counts on the running order -> the ingest's automatic backflush -> stock. The
    round runs every 0.3 s here instead of every minute."""
    monkeypatch.setattr(auto_backflush, "INTERVAL_S", 0.3)
    config_path = tmp_path / "edge.yaml"
    config_path.write_text(EDGE_CONFIG.format(url=mosquitto.url))
    settings = MesSettings(database_url=mes_db_url, reorder_window_s=0.2, micro_stop_threshold_s=120)
    ingestor = start_ingest(settings, config_path)  # registers press01 from the edge config
    plc = Publisher(mosquitto.port)
    try:
        for body in ({"code": "bolt", "unit": "pcs", "backflush": True}, {"code": "frame", "unit": "pcs"}):
            assert mes_client.put("/api/inventory/materials", json=body).status_code == 200
        for body in (
            {"code": "WH1", "kind": "warehouse"},
            {"code": "WH1/LINE", "kind": "zone", "parent": "WH1"},
            {"code": "WH1/LINE/P1", "kind": "bin", "parent": "WH1/LINE", "work_center": "press01"},
        ):
            assert mes_client.post("/api/inventory/locations", json=body).status_code == 201
        assert (
            mes_client.post(
                "/api/inventory/receipts",
                json={"material": "bolt", "quantity": 500, "location": "WH1/LINE/P1", "lot": "B-1"},
            ).status_code
            == 201
        )
        frame, bolt = (mes_session.query(Product).filter_by(code=code).one() for code in ("frame", "bolt"))
        press = mes_session.query(WorkCenter).filter_by(code="press01").one()
        mes_session.add(BomLine(product_id=frame.id, component_id=bolt.id, quantity=4))
        mes_session.add(
            WorkOrder(number="WO-9", product_id=frame.id, work_center_id=press.id, planned_qty=100, status="running")
        )
        mes_session.commit()

        now = time.time_ns()
        plc.send("total_count", 1000, now - 2 * MIN)  # the baseline
        plc.send("total_count", 1025, now - MIN)  # 25 frames: 100 bolts
        wait_processed(ingestor, 2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and on_hand_of(mes_client, "bolt") != 400:
            time.sleep(0.1)
    finally:
        ingestor.stop()
        plc.close()
    assert on_hand_of(mes_client, "bolt") == 400
    (status,) = mes_client.get("/api/inventory/backflush-status").json()
    assert (status["work_order"], status["counted"], status["backflushed"], status["last_error"]) == (
        "WO-9", 25, 25, ""
    )  # fmt: skip


def on_hand_of(client: TestClient, material: str) -> float:
    return sum(row["quantity"] for row in client.get("/api/inventory/on-hand", params={"material": material}).json())
