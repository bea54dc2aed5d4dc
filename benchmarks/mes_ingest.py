"""MES ingest rate: UNS messages per second turned into states and counts, SQLite and PostgreSQL.

Two measurements per database, both with realistic traffic (N machines; per machine and
second of source time: the total counter, every 10 s the reject counter, a state change every
30 s, the ideal cycle time once):

- `writer`: the ingest core alone (parse, reorder, translate, write in batches of 2000): the
  rate the database path sustains;
- `mqtt`: the whole ingest: messages published at QoS 1 to a private Mosquitto, received by the
  ingest's paho client, written; timed from the first publish until the last message is stored.

    python benchmarks/mes_ingest.py --db sqlite --db postgresql --machines 20 --seconds 300
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from edge_config.schema import Role
from mes_lite.db import make_engine, session_factory
from mes_lite.ingest.events import ReorderBuffer, TagBinding, TagMessage, translators_for
from mes_lite.ingest.writer import IngestWriter
from mes_lite.models import Area, Line, Site, WorkCenter
from mes_lite.schema import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.servers: throwaway servers

S = 1_000_000_000
STATES = {0: "idle", 1: "running", 5: "fault"}


def plant(sessions, machines: int) -> list[str]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        site = Site(enterprise="acme", code="bench", timezone="UTC")
        session.add(site)
        session.flush()
        area = Area(site_id=site.id, code="a1")
        session.add(area)
        session.flush()
        line = Line(area_id=area.id, code="l1")
        session.add(line)
        session.flush()
        for m in range(machines):
            session.add(WorkCenter(line_id=line.id, code=f"m{m:02d}"))
        session.commit()
    return [f"acme/bench/a1/l1/m{m:02d}" for m in range(machines)]


def bindings(machines: list[str]) -> list[TagBinding]:
    out = []
    for m in machines:
        out += [
            TagBinding(f"{m}/state", Role.STATE, STATES),
            TagBinding(f"{m}/total_count", Role.TOTAL_COUNT),
            TagBinding(f"{m}/reject_count", Role.REJECT_COUNT),
            TagBinding(f"{m}/ideal_cycle_time", Role.IDEAL_CYCLE_TIME),
        ]
    return out


def traffic(machines: list[str], seconds: int, t0_ns: int) -> list[TagMessage]:
    messages = []
    for m in machines:
        messages.append(TagMessage(f"{m}/ideal_cycle_time", 1.0, t0_ns - 1))
    for second in range(seconds):
        ts = t0_ns + second * S
        for i, m in enumerate(machines):
            if second % 30 == 0:
                messages.append(TagMessage(f"{m}/state", [1, 0, 1, 5][(second // 30 + i) % 4], ts))
            messages.append(TagMessage(f"{m}/total_count", second * 2, ts))
            if second % 10 == 0:
                messages.append(TagMessage(f"{m}/reject_count", second // 10, ts))
    return messages


@contextmanager
def database(kind: str, directory: Path):  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'bench-ingest.db'}"
        return
    from tests.servers import postgres_database

    with postgres_database() as url:
        yield url


def bench_writer(url: str, machines: int, seconds: int) -> None:
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    paths = plant(sessions, machines)
    writer = IngestWriter(sessions, translators_for(bindings(paths)))
    messages = traffic(paths, seconds, time.time_ns() - seconds * S)
    reorder = ReorderBuffer(window_s=0)
    t0 = time.perf_counter()
    for start in range(0, len(messages), 2000):
        for message in messages[start : start + 2000]:
            reorder.push(message)
        writer.write(reorder.release(everything=True))
    elapsed = time.perf_counter() - t0
    print(
        f"  writer: {len(messages):,} messages in {elapsed:.1f} s = {len(messages) / elapsed:,.0f} messages/s; {dict(writer.stats)}"
    )
    engine.dispose()


def bench_mqtt(url: str, machines: int, seconds: int, directory: Path) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge_config.schema import Device, ModbusTag, ModbusTcpConnection, MqttSink, Sinks, SiteConfig
    from edge_config.schema import Site as SiteModel
    from mes_lite.ingest.runner import Ingestor
    from mes_lite.settings import MesSettings
    from tests.servers import mosquitto_server

    migrate(url)
    engine = make_engine(url)
    with mosquitto_server(directory) as broker:
        tags = {
            "state": ModbusTag(address="hr40001", role=Role.STATE, map=STATES),
            "total_count": ModbusTag(address="hr40002", type="uint32", role=Role.TOTAL_COUNT),
            "reject_count": ModbusTag(address="hr40004", type="uint32", role=Role.REJECT_COUNT),
            "ideal_cycle_time": ModbusTag(address="hr40006", type="float32", role=Role.IDEAL_CYCLE_TIME),
        }
        devices = [
            Device(
                name=f"m{m:02d}",
                area="a1",
                line="l1",
                protocol="modbus",
                connection=ModbusTcpConnection(host="127.0.0.1"),
                tags=tags,
            )
            for m in range(machines)
        ]
        config = SiteConfig(
            site=SiteModel(enterprise="acme", site="bench"), devices=devices, sinks=Sinks(mqtt=MqttSink(url=broker.url))
        )
        ingestor = Ingestor(MesSettings(database_url=url, reorder_window_s=1.0), config, client_id="bench-ingest")
        ingestor.start()
        ingestor.connected.wait(10)
        time.sleep(0.3)
        paths = [f"acme/bench/a1/l1/m{m:02d}" for m in range(machines)]
        messages = traffic(paths, seconds, time.time_ns() - seconds * S)
        publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-publisher")
        publisher.max_inflight_messages_set(1000)
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        t0 = time.perf_counter()
        infos = []
        for m in messages:
            payload = json.dumps({"value": m.value, "ts_ns": m.ts_ns, "quality": "good"}).encode()
            infos.append(publisher.publish(m.tag_path, payload, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        published = time.perf_counter() - t0
        deadline = time.monotonic() + 600
        while ingestor.processed < len(messages) and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0 - 1.0  # minus the reorder window the last messages wait
        publisher.disconnect()
        publisher.loop_stop()
        ingestor.stop()
        print(
            f"  mqtt:   {ingestor.processed:,} of {len(messages):,} messages stored in {elapsed:.1f} s = "
            f"{ingestor.processed / elapsed:,.0f} messages/s (published in {published:.1f} s)"
        )
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=300, help="seconds of source time per machine")
    args = parser.parse_args()
    for kind in args.db or ["sqlite", "postgresql"]:
        print(f"[{kind}] {args.machines} machines x {args.seconds} s of traffic")
        with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
            bench_writer(url, args.machines, args.seconds)
        with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
            bench_mqtt(url, args.machines, args.seconds, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
