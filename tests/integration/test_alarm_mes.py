"""MES side of alarms over a real broker, on SQLite and PostgreSQL:

a real gateway alarm service publishes to Mosquitto -> the MES alarm subscriber stores events
and history -> the API lists active alarms per work center -> an operator acknowledges through
the API -> the command reaches the gateway over MQTT -> the acknowledged state comes back.
Starting a work order queues its target quantity for the machine's writable tag.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from edge_config.schema import SiteConfig
from gateway.alarms.service import AlarmService
from gateway.sample import Sample
from mes_lite.alarms.subscriber import AlarmSubscriber
from mes_lite.db import make_engine, session_factory
from tests.integration.alarm_harness import JsonRecorder
from tests.integration.gateway_harness import wait_until
from tests.integration.test_mes_api import import_demo_plant

PRESS = "acme/dongguan/stamping/line1/press01"


def edge_config(tmp_path: Path, mqtt_url: str) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "dongguan"},
            "gateway": {"name": "gw-mes-test"},
            "devices": [
                {
                    "name": "press01",
                    "area": "stamping",
                    "line": "line1",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1"},
                    "tags": {
                        "oil_temp": {"address": "ir30001", "type": "float32"},
                        "target_quantity": {"address": "hr40020", "type": "uint32", "writable": True},
                    },
                },
                {
                    "name": "press02",
                    "area": "stamping",
                    "line": "line1",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1"},
                    "tags": {"oil_temp": {"address": "ir30001", "type": "float32"}},
                },
            ],
            "alarms": {
                "definitions": {
                    "oil_temp": {"kind": "limit", "tag": "oil_temp", "hi": 70, "hihi": {"limit": 80, "priority": "urgent"},
                                 "message": {"en": "oil {value}", "zh-CN": "油温 {value}"}},
                },
            },
            "sinks": {"mqtt": {"url": mqtt_url}},
            "buffer": {"path": str(tmp_path / "buffer.db")},
        }
    )  # fmt: skip


async def test_alarms_reach_the_mes_and_an_operator_acknowledges_them_through_the_api(
    mosquitto, mes_client: TestClient, mes_db_url: str, mes_auth_headers: dict, tmp_path: Path
) -> None:
    import_demo_plant(mes_client)
    config = edge_config(tmp_path, mosquitto.url)
    gateway_side = AlarmService(config, config.alarms, tmp_path / "buffer.db")  # type: ignore[arg-type]
    engine = make_engine(mes_db_url)
    subscriber = AlarmSubscriber(session_factory(engine), mosquitto.url, "acme", "dongguan", config=config)
    recorder = JsonRecorder(mosquitto.port, [f"{PRESS}/_cmd/+"])
    await gateway_side.start()
    subscriber.start()
    try:
        assert await asyncio.to_thread(subscriber.connected.wait, 10)
        t0 = time.time_ns()
        await gateway_side.observe([Sample(f"{PRESS}/oil_temp", 85.0, t0)])
        await wait_until(lambda: subscriber.events_stored >= 2, 10, "the MES to store both raised alarms")

        board = mes_client.get("/api/alarms/work-centers").json()
        (press,) = board
        assert (press["path"], press["highest_priority"], press["unacked"], press["active"]) == (PRESS, "urgent", 2, 2)
        assert press["work_center_id"] is not None  # matched to the demo plant's press01
        assert [a["alarm"] for a in press["alarms"]] == ["oil_temp.hihi", "oil_temp.hi"]  # most urgent first
        assert press["alarms"][0]["message"] == {"en": "oil 85.0", "zh-CN": "油温 85.0"}

        operator = mes_auth_headers["operator"]
        response = mes_client.post("/api/alarms/ack", json={"key": f"{PRESS}/oil_temp.hihi"}, headers=operator)
        assert response.status_code == 202, response.text
        request_id = response.json()["request_id"]

        def answered() -> bool:
            return mes_client.get(f"/api/alarms/commands/{request_id}").json()["status"] == "done"

        await wait_until(answered, 10, "the gateway's answer to the acknowledgement")
        await wait_until(lambda: mes_client.get("/api/alarms/active").json()[-1]["acked"], 10, "the acknowledged state")
        active = {a["alarm"]: a for a in mes_client.get("/api/alarms/active").json()}
        assert (active["oil_temp.hihi"]["state"], active["oil_temp.hihi"]["acked_by"]) == ("active_acked", "operator")
        assert active["oil_temp.hi"]["state"] == "active_unacked"
        assert gateway_side.engine.alarms[f"{PRESS}/oil_temp.hihi"].status.acked_by == "operator"

        again = mes_client.post("/api/alarms/ack", json={"key": f"{PRESS}/oil_temp.hihi"}, headers=operator)
        assert again.status_code == 422 and "already acknowledged" in again.json()["detail"]
        unknown = mes_client.post("/api/alarms/ack", json={"key": f"{PRESS}/nope"}, headers=operator)
        assert unknown.status_code == 404

        # clear both; a redelivered (retained) event is stored once
        await gateway_side.observe([Sample(f"{PRESS}/oil_temp", 60.0, time.time_ns())])
        await wait_until(lambda: subscriber.events_stored >= 5, 10, "the clear events")
        history = mes_client.get("/api/alarms/history", params={"path": PRESS}).json()
        assert [h["transition"] for h in history if h["alarm"] == "oil_temp.hihi"] == [
            "cleared", "acknowledged", "raised",
        ]  # fmt: skip
        kpis = mes_client.get("/api/alarms/kpis", params={"path": "acme/dongguan"}).json()
        assert kpis["annunciated"] == 2 and {b["key"] for b in kpis["bad_actors"]} == {
            f"{PRESS}/oil_temp.hi", f"{PRESS}/oil_temp.hihi",
        }  # fmt: skip

        # a work order that starts sends its target quantity to the machine's writable tag
        supervisor = mes_auth_headers["supervisor"]
        body = {"number": "WO-ALM-1", "product": "BRK-100", "work_center": "dongguan/stamping/line1/press01",
                "planned_qty": 1500}  # fmt: skip
        order = mes_client.post("/api/work-orders", json=body, headers=supervisor).json()
        for action in ("release", "start"):
            response = mes_client.post(f"/api/work-orders/{order['id']}/transitions", json={"action": action},
                                       headers=supervisor)  # fmt: skip
            assert response.status_code == 200, response.text
        await wait_until(lambda: recorder.on("/_cmd/target_quantity") != [], 10, "the target quantity command")
        (command,) = recorder.on("/_cmd/target_quantity")
        assert (command["value"], command["work_order"], command["user"]) == (1500, "WO-ALM-1", "supervisor")
        assert command["request_id"]
    finally:
        subscriber.stop()
        await gateway_side.stop()
        recorder.close()
        engine.dispose()


def test_kpis_count_only_raises_inside_the_window(mes_session: Session) -> None:
    from mes_lite.alarms.service import kpis, record_event

    base = {"path": PRESS, "alarm": "a", "key": f"{PRESS}/a", "priority": "high", "state": "active_unacked"}
    for i, transition in enumerate(["raised", "cleared", "raised", "acknowledged"]):
        record_event(mes_session, {**base, "event_id": f"e{i}", "ts_ns": i * 10**9, "transition": transition})
    assert not record_event(mes_session, {**base, "event_id": "e0", "ts_ns": 0, "transition": "raised"})
    result = kpis(mes_session, None, 0, 600 * 10**9)
    assert (result.annunciated, result.per_operator_per_10_min, result.bad_actors) == (
        2, 2.0, [{"key": f"{PRESS}/a", "count": 2, "share": 1.0}],
    )  # fmt: skip
