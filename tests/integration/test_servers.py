"""The test servers themselves start, answer and can be killed: the ground the fault tests stand on."""

from __future__ import annotations

import time

import psycopg
import sqlalchemy as sa

from tests.servers import InfluxDB1, Mosquitto, VictoriaMetrics, wait_for_port


def test_mosquitto_can_be_killed_and_restarted_on_the_same_port(mosquitto: Mosquitto) -> None:
    mosquitto.kill()
    assert not mosquitto.running
    mosquitto.start()
    wait_for_port(mosquitto.port)
    assert mosquitto.running


def test_victoria_metrics_stores_points_written_with_the_influx_v2_api(
    victoria_metrics: VictoriaMetrics,
) -> None:
    import urllib.request

    now = time.time_ns()  # VictoriaMetrics drops points outside its retention (default one month)
    body = f"press,machine=p1 temp=20.5 {now}\npress,machine=p1 temp=21.5 {now + 10**9}\n".encode()
    req = urllib.request.Request(f"{victoria_metrics.url}/api/v2/write?org=-&bucket=factory", data=body)
    assert urllib.request.urlopen(req).status == 204
    assert victoria_metrics.wait_for_points('{__name__="press_temp"}', 2) == 2


def test_influxdb1_answers_influxql(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("factory")
    influxdb1.write_lines("factory", "press,machine=p1 temp=20.5 1700000000000000000")
    result = influxdb1.query('SELECT "temp" FROM "press"', "factory")
    assert result["results"][0]["series"][0]["values"] == [[1700000000000000000, 20.5]]


def test_postgres_database_is_fresh(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from pg_tables where schemaname='public'")).scalar() == 0
    engine.dispose()
    assert psycopg  # the driver the URL names is importable
