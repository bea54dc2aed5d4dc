"""The InfluxDB sink against real servers: VictoriaMetrics (speaks /api/v2/write) and
InfluxDB 1.6 (Debian's; its answers, its storage, its type-conflict errors).

InfluxDB 1.8+ serves `/api/v2/write` itself (org `-`, bucket `db/rp`); Debian's 1.6 only
has `/write`. For the 1.6 tests a small forwarder in this file maps one onto the other,
exactly as 1.8's compatibility endpoint does (`bucket` -> `db` and `rp`); the status
codes and messages the sink sees are InfluxDB's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge_config.schema import InfluxSink as InfluxSinkConfig
from gateway.sample import Quality, Sample
from gateway.sinks.base import SinkUnavailable
from gateway.sinks.influx import InfluxSink
from tests.integration.test_sink_mqtt import T0_NS, demo_site
from tests.servers import InfluxDB1, VictoriaMetrics, influxdb1_server

PRESS = "acme/dongguan/stamping/line1/press01"
RECENT_NS = (time.time_ns() // 10**9 - 3600) * 10**9
"""An hour ago, whole seconds: inside VictoriaMetrics' default retention (T0_NS is a year old)."""
PRESS_SERIES = 'area="stamping",enterprise="acme",line="line1",machine="press01",site="dongguan"'


async def started(sink: InfluxSink) -> InfluxSink:
    await sink.start()
    return sink


async def test_values_land_as_one_measurement_per_machine_with_the_hierarchy_as_tags(victoria_metrics: VictoriaMetrics):
    sink = await started(InfluxSink(InfluxSinkConfig(url=victoria_metrics.url, bucket="factory"), demo_site()))
    try:
        await sink.deliver(
            [Sample(f"{PRESS}/temp", 70.0 + i / 4, RECENT_NS + i * 10**8) for i in range(40)]
            + [Sample(f"{PRESS}/parts", 1000 + i, RECENT_NS + i * 10**8) for i in range(40)]
            + [Sample(f"{PRESS}/running", i % 2 == 0, RECENT_NS + i * 10**8) for i in range(40)]
        )
    finally:
        await sink.stop()
    assert victoria_metrics.wait_for_points("press01_temp", 40) == 40
    assert victoria_metrics.wait_for_points("press01_parts", 40) == 40
    exported = export(victoria_metrics, "press01_temp")
    (series,) = exported
    assert series["metric"] == {
        "__name__": "press01_temp",
        "area": "stamping",
        "enterprise": "acme",
        "line": "line1",
        "machine": "press01",
        "site": "dongguan",
        **({"db": series["metric"]["db"]} if "db" in series["metric"] else {}),
    }
    assert series["values"][:3] == [70.0, 70.25, 70.5]
    assert series["timestamps"][0] == RECENT_NS // 10**6  # source time, not arrival time
    running = export(victoria_metrics, "press01_running")[0]["values"]
    assert running[:4] == [1, 0, 1, 0]  # booleans (VictoriaMetrics stores them as 1/0)


async def test_delivering_the_same_batch_twice_overwrites_instead_of_duplicating(victoria_metrics: VictoriaMetrics):
    sink = await started(InfluxSink(InfluxSinkConfig(url=victoria_metrics.url, bucket="factory"), demo_site()))
    batch = [Sample(f"{PRESS}/parts", 500 + i, RECENT_NS + i * 10**9) for i in range(25)]
    try:
        await sink.deliver(batch)
        await sink.deliver(batch)  # the buffer's replay after an unconfirmed delivery
    finally:
        await sink.stop()
    assert victoria_metrics.wait_for_points("press01_parts", 25) == 25
    assert victoria_metrics.series_count("press01_parts") == 25


async def test_an_unreachable_server_raises_sink_unavailable_and_every_point_arrives_after_it_returns(
    victoria_metrics: VictoriaMetrics,
):
    sink = await started(
        InfluxSink(InfluxSinkConfig(url=victoria_metrics.url, bucket="factory", batch_size=100), demo_site())
    )
    first = [Sample(f"{PRESS}/temp", float(i), RECENT_NS + i * 10**8) for i in range(300)]
    outage = [Sample(f"{PRESS}/temp", float(i), RECENT_NS + i * 10**8) for i in range(300, 600)]
    try:
        await sink.deliver(first)
        assert sink.connected
        # A graceful stop: VictoriaMetrics confirms a write once it is in memory, and only its own
        # shutdown flushes that to disk (a kill -9 would lose points it had already confirmed).
        victoria_metrics.stop()
        with pytest.raises(SinkUnavailable, match="connection refused"):
            await sink.deliver(outage)
        assert not sink.connected and sink.counters.messages_failed == 1
        victoria_metrics.start()
        await sink.deliver(outage)  # the buffer's retry
        assert sink.connected
    finally:
        await sink.stop()
    assert victoria_metrics.wait_for_points("press01_temp", 600) == 600
    assert sink.counters.messages_confirmed == 3 + 3  # chunks of 100 lines


def export(vm: VictoriaMetrics, match: str) -> list[dict]:
    import json

    urllib.request.urlopen(f"{vm.url}/internal/force_flush", timeout=10).read()
    query = urllib.parse.urlencode({"match[]": match})
    body = urllib.request.urlopen(f"{vm.url}/api/v1/export?{query}", timeout=10).read().decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


# ---------------------------------------------------------------- InfluxDB 1.x


class _V2ToV1(BaseHTTPRequestHandler):
    """Forwards POST /api/v2/write?bucket=db/rp to InfluxDB 1.x's /write?db=db&rp=rp, answer untouched."""

    target = ""

    def do_POST(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        db, _, rp = query["bucket"][0].partition("/")
        params = {"db": db, "precision": query.get("precision", ["ns"])[0], **({"rp": rp} if rp else {})}
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = urllib.request.Request(f"{self.target}/write?{urllib.parse.urlencode(params)}", data=body)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def v2_forwarder(target: str) -> Iterator[str]:
    handler = type("Handler", (_V2ToV1,), {"target": target})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def influx18_endpoint(influxdb1: InfluxDB1) -> Iterator[str]:
    influxdb1.create_database("factory")
    with v2_forwarder(influxdb1.url) as url:
        yield url


@pytest.fixture
def small_body_influx(tmp_path: Path) -> Iterator[tuple[InfluxDB1, str]]:
    """InfluxDB 1.6 that refuses request bodies over 4 kB with 413, as a proxy or a small server would."""
    with influxdb1_server(tmp_path) as server:
        server.stop()
        conf = tmp_path / "influxdb.conf"
        conf.write_text(conf.read_text().replace("[http]\n", "[http]\n  max-body-size = 4000\n"))
        server.start()
        server.create_database("factory")
        with v2_forwarder(server.url) as url:
            yield server, url


def influxql(influxdb1: InfluxDB1, q: str) -> list[list]:
    result = influxdb1.query(q, "factory")["results"][0]
    return result["series"][0]["values"] if "series" in result else []


async def test_influxdb_1x_stores_strings_booleans_integers_and_floats_with_their_types(influxdb1, influx18_endpoint):
    config = InfluxSinkConfig(url=influx18_endpoint, org="-", bucket="factory/autogen")
    sink = await started(InfluxSink(config, demo_site()))
    try:
        await sink.deliver(
            [
                Sample(f"{PRESS}/state", "running", T0_NS),
                Sample(f"{PRESS}/running", True, T0_NS),
                Sample(f"{PRESS}/parts", 1234, T0_NS),
                Sample(f"{PRESS}/temp", 71.0, T0_NS),  # a float tag keeps float type even for a whole number
                Sample(f"{PRESS}/temp", 71.5, T0_NS + 1, Quality.UNCERTAIN, "sensor drifting"),
                Sample(f"{PRESS}/parts", None, T0_NS + 2, Quality.BAD, "timeout"),  # no value: no field
            ]
        )
    finally:
        await sink.stop()
    keys = influxdb1.query('SHOW FIELD KEYS FROM "press01"', "factory")["results"][0]["series"][0]["values"]
    assert dict(keys) == {"parts": "integer", "running": "boolean", "state": "string", "temp": "float"}
    rows = influxql(
        influxdb1, 'SELECT "state","running","parts","temp","quality" FROM "press01" WHERE "machine"=\'press01\''
    )
    assert rows == [[T0_NS, "running", True, 1234, 71.0, None], [T0_NS + 1, None, None, None, 71.5, "uncertain"]]
    assert sink.counters.samples_delivered == 5


async def test_a_field_type_conflict_drops_only_the_offending_points_counts_them_and_does_not_block(
    influxdb1, influx18_endpoint
):
    config = InfluxSinkConfig(url=influx18_endpoint, org="-", bucket="factory")
    sink = await started(InfluxSink(config, demo_site()))
    try:
        await sink.deliver([Sample(f"{PRESS}/rate", 1.5, T0_NS)])  # a derived tag: float field
        await sink.deliver(
            [
                Sample(f"{PRESS}/rate", "fast", T0_NS + 10**9),  # now a string: InfluxDB refuses this point
                Sample("acme/dongguan/machining/line2/cnc02/spindle_rpm", 1200.0, T0_NS + 10**9),
            ]
        )  # returns: the batch is acknowledged so the queue moves on
        await sink.deliver([Sample(f"{PRESS}/rate", 2.5, T0_NS + 2 * 10**9)])
    finally:
        await sink.stop()
    assert sink.counters.samples_dropped == 1
    assert [row[1] for row in influxql(influxdb1, 'SELECT "rate" FROM "press01"')] == [1.5, 2.5]
    assert [row[1] for row in influxql(influxdb1, 'SELECT "spindle_rpm" FROM "cnc02"')] == [1200.0]


async def test_a_missing_database_keeps_the_data_in_the_buffer_and_says_why(influxdb1, influx18_endpoint):
    sink = await started(InfluxSink(InfluxSinkConfig(url=influx18_endpoint, bucket="nosuchdb"), demo_site()))
    try:
        with pytest.raises(SinkUnavailable, match=r"HTTP 404.*database not found"):
            await sink.deliver([Sample(f"{PRESS}/temp", 1.0, T0_NS)])
        assert sink.counters.samples_dropped == 0
    finally:
        await sink.stop()


async def test_a_request_too_large_for_the_server_is_split_until_it_fits(small_body_influx):
    server, url = small_body_influx
    sink = await started(InfluxSink(InfluxSinkConfig(url=url, bucket="factory", batch_size=1000), demo_site()))
    samples = [Sample(f"{PRESS}/parts", i, T0_NS + i * 10**6) for i in range(400)]  # ~45 kB of line protocol
    try:
        await sink.deliver(samples)
    finally:
        await sink.stop()
    assert influxql(server, 'SELECT count("parts") FROM "press01"')[0][1] == 400
    assert sink.counters.samples_dropped == 0
    assert sink.counters.messages_sent > 16  # 413s first, then chunks under 4 kB


async def test_start_does_not_block_without_a_server():
    from tests.servers import free_port

    sink = InfluxSink(InfluxSinkConfig(url=f"http://127.0.0.1:{free_port()}", bucket="factory"), demo_site())
    await asyncio.wait_for(sink.start(), 1.0)
    try:
        with pytest.raises(SinkUnavailable, match="connection refused"):
            await sink.deliver([Sample(f"{PRESS}/temp", 1.0, T0_NS)])
        assert not sink.connected
    finally:
        await sink.stop()
