"""End to end: simulated PLCs -> gateway (Modbus + OPC UA, durable buffer, MQTT sink) -> Mosquitto
-> MES ingest -> OEE from the API, compared with the OEE computed from the simulator's ground truth.

Runs on SQLite (the Pi's default; the ingest-against-Mosquitto test covers PostgreSQL).

Tolerance, stated: the gateway sees a state change or a part up to one poll interval late
(plus MQTT and reorder latency, allowed 0.3 s). A stop's duration is then off by at most one poll
interval, and each of the window's two edges misplaces state time by at most `poll + 0.3 s` and
parts by at most max(one part, `poll + 0.3 s` of parts). Per KPI (window W, ideal cycle c):
availability  (stops x poll + 2 (poll + 0.3)) / W;  effectiveness (2 max(c, poll + 0.3) + that
time error) / APT;  quality 2 parts / produced;  OEE (2 max(c, poll + 0.3) + 2 c) / W; each + 0.01.
Slow machines (CNC: 45 s cycle, 4.5 s at 10x) get wide bounds in a 15 s window; the presses
(0.1 s cycle at 10x) are held to about 0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_config.loader import load_config
from gateway.runtime import Gateway
from mes_lite.api.app import create_app
from mes_lite.ingest.runner import Ingestor
from mes_lite.oee import compute
from mes_lite.services.production import category_of
from mes_lite.settings import MesSettings
from mes_lite.shift_calendar import expand_calendar
from mes_lite.spans import NS_PER_S, Span
from mes_lite.time_accounting import CountRecord, StateRecord, window_inputs
from simulators.factory import SimulatedFactory
from tests.servers import free_port

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "edge_config" / "examples" / "demo-factory.yaml"
SPEED = 10.0
WINDOW_S = 15.0
LATENCY_S = 0.3


def ns(t_s: float) -> int:
    return int(t_s * NS_PER_S)


def truth_oee(truth, start_s: float, end_s: float):  # type: ignore[no-untyped-def]
    window = Span(ns(start_s), ns(end_s))
    states = [StateRecord(ns(i.start_s), ns(i.end_s), category_of(i.state.value).value) for i in truth.intervals]
    counts = [CountRecord(ns(t), 1, 0, truth.ideal_cycle_time_s) for t in truth.part_times_s]
    counts += [CountRecord(ns(t), 0, 1, truth.ideal_cycle_time_s) for t in truth.reject_times_s]
    return compute(window_inputs(expand_calendar([], window), states, counts, micro_stop_threshold_s=0))


@pytest.mark.slow
async def test_oee_from_the_api_equals_the_simulators_ground_truth_within_the_polling_tolerance(
    mosquitto, mes_templates, tmp_path: Path
) -> None:
    db_url, headers = mes_templates.sqlite_copy(tmp_path / "mes.db")
    modbus_port, opcua_port = free_port(), free_port()
    env = dict(
        os.environ,
        DEMO_MODBUS_PORT=str(modbus_port),
        DEMO_OPCUA_PORT=str(opcua_port),
        MQTT_URL=mosquitto.url,
        EDGEFAB_BUFFER=str(tmp_path / "buffer.db"),
    )
    env.pop("DEMO_PLC_HOST", None)
    config = load_config(DEMO_CONFIG, env=env)
    settings = MesSettings(database_url=db_url, reorder_window_s=0.5, micro_stop_threshold_s=0)
    ingestor = Ingestor(settings, config, client_id="mes-e2e")
    ingestor.start()
    try:
        assert await asyncio.to_thread(ingestor.connected.wait, 10)
        async with SimulatedFactory(seed=7, speed=SPEED, modbus_port=modbus_port, opcua_port=opcua_port) as factory:
            gateway = Gateway(config, health_port=-1)
            ready = asyncio.Event()
            task = asyncio.create_task(gateway.run(install_signal_handlers=False, ready=ready))
            await asyncio.wait_for(ready.wait(), 20)
            await asyncio.sleep(3.0)  # first polls: the ingest has every counter's baseline
            start_s = time.time()
            await asyncio.sleep(WINDOW_S)
            end_s = time.time()
            await asyncio.sleep(2.0)  # the window's last polls reach the MES
            truths = factory.ground_truths()
            gateway.request_stop()
            await asyncio.wait_for(task, 15)
        assert await asyncio.to_thread(ingestor.wait_idle, 10)
    finally:
        ingestor.stop()

    iso = {k: dt.datetime.fromtimestamp(v, dt.UTC).isoformat() for k, v in (("start", start_s), ("end", end_s))}
    report = []
    with TestClient(create_app(settings), headers=headers["admin"]) as client:
        for device in config.devices:
            truth = truths[device.name]
            expected = truth_oee(truth, start_s, end_s)
            path = f"{config.site.site}/{device.area}/{device.line}/{device.name}"
            response = client.get("/api/oee", params={"path": path, **iso})
            assert response.status_code == 200, response.text
            got = response.json()["total"]
            stops = sum(1 for i in truth.intervals_in((start_s, end_s)) if i.state.value != "running")
            edge_s = device.poll + LATENCY_S
            time_error_s = stops * device.poll + 2 * edge_s  # state time misplaced
            ideal_error_s = 2 * max(truth.ideal_cycle_time_s, edge_s)  # parts moved across the window edges
            apt = max(expected.actual_production_s, 1e-9)
            tolerances = {
                "availability": time_error_s / WINDOW_S + 0.01,
                "effectiveness": (ideal_error_s + time_error_s) / apt + 0.01,
                "quality_ratio": 2 / max(expected.inputs.produced_qty, 1) + 0.01,
                "oee": (ideal_error_s + 2 * truth.ideal_cycle_time_s) / WINDOW_S + 0.01,
            }
            report.append(
                (device.name, {k: (round(getattr(expected, k) or 0, 3), round(got[k] or 0, 3)) for k in tolerances})
            )
            for kpi, tolerance in tolerances.items():
                truth_value = getattr(expected, kpi)
                if truth_value is not None:
                    assert got[kpi] == pytest.approx(truth_value, abs=tolerance), (device.name, kpi, report)
    assert len(report) == 4
