"""OEE query time over a year of minute-resolution data: 20 machines, SQLite and PostgreSQL.

Generates, with bulk inserts (COPY on PostgreSQL, executemany on SQLite), one year of machine
states for 20 machines at minute resolution (`--minutes-per-interval 1`: a new state interval
every minute, the worst case, 10.5 M intervals; larger values merge minutes into longer
intervals) and one production-count row per running minute. Then times the OEE queries the API
runs: the whole site over the whole year, one machine over the year, the site for one day, and
the andon board. Bounded: `--machines`, `--days`. Run:

    python benchmarks/mes_oee_query.py --db sqlite --db postgresql
    python benchmarks/mes_oee_query.py --db postgresql --minutes-per-interval 10
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mes_lite.db import make_engine, session_factory
from mes_lite.models import Area, Line, Site, WorkCenter
from mes_lite.schema import migrate
from mes_lite.services.oee_query import count_sums, oee_report, state_sums
from mes_lite.spans import NS_PER_S, Span

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.servers for a throwaway PostgreSQL database

MIN_NS = 60 * NS_PER_S
START_NS = 1_735_689_600 * NS_PER_S  # 2025-01-01T00:00Z
STATES = [
    ("running", "production", 0.7),
    ("idle", "idle", 0.1),
    ("fault", "fault", 0.1),
    ("setup", "setup", 0.05),
    ("planned_stop", "planned_down", 0.05),
]


def rows_for(machine_id: int, days: int, minutes_per_interval: int, rng: random.Random) -> Iterator[tuple]:
    """(intervals, counts) rows: state intervals of `minutes_per_interval` minutes, one count per running minute."""
    names = [s for s, _, _ in STATES]
    weights = [w for _, _, w in STATES]
    categories = {s: c for s, c, _ in STATES}
    minutes = days * 24 * 60
    t = 0
    previous = None
    while t < minutes:
        state = rng.choices(names, weights)[0]
        if state == previous:  # a state change every interval
            state = "running" if state != "running" else "idle"
        previous = state
        length = min(minutes_per_interval, minutes - t)
        start_ns = START_NS + t * MIN_NS
        yield ("state", (machine_id, start_ns, start_ns + length * MIN_NS, state, categories[state]))
        if state == "running":
            for m in range(length):
                yield (
                    "count",
                    (machine_id, start_ns + m * MIN_NS + 30 * NS_PER_S, 55.0, 1.0 if rng.random() < 0.3 else 0.0, 1.0),
                )
        t += length


def setup_plant(session_maker, machines: int) -> list[int]:  # type: ignore[no-untyped-def]
    with session_maker() as session:
        site = Site(enterprise="bench", code="bench", name="bench", timezone="UTC")
        session.add(site)
        session.flush()
        area = Area(site_id=site.id, code="area1")
        session.add(area)
        session.flush()
        ids = []
        for line_no in range(machines // 5 or 1):
            line = Line(area_id=area.id, code=f"line{line_no}")
            session.add(line)
            session.flush()
            for m in range(5):
                wc = WorkCenter(line_id=line.id, code=f"m{line_no}{m}", ideal_cycle_time_s=1.0)
                session.add(wc)
                session.flush()
                ids.append(wc.id)
        session.commit()
        return ids[:machines]


def load_postgres(url: str, ids: list[int], days: int, minutes_per_interval: int) -> tuple[int, int]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    n_states = n_counts = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # bulk load: skip per-row foreign-key triggers
        for wc_id in ids:
            rng = random.Random(wc_id)
            states, counts = io.StringIO(), io.StringIO()
            for kind, row in rows_for(wc_id, days, minutes_per_interval, rng):
                if kind == "state":
                    states.write("\t".join(map(str, row)) + "\tt\tbench\n")
                    n_states += 1
                else:
                    counts.write("\t".join(map(str, row)) + "\tt\tbench\n")
                    n_counts += 1
            with cur.copy(
                "COPY machine_state_intervals (work_center_id, start_ns, end_ns, state, category, planned_busy, source) FROM STDIN"
            ) as copy:
                copy.write(states.getvalue())
            with cur.copy(
                "COPY production_counts (work_center_id, ts_ns, produced_qty, reject_qty, ideal_cycle_time_s, planned_busy, source) FROM STDIN"
            ) as copy:
                copy.write(counts.getvalue())
        conn.commit()
        cur.execute("ANALYZE machine_state_intervals")
        cur.execute("ANALYZE production_counts")
        conn.commit()
    return n_states, n_counts


def load_sqlite(path: str, ids: list[int], days: int, minutes_per_interval: int) -> tuple[int, int]:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    n_states = n_counts = 0
    for wc_id in ids:
        rng = random.Random(wc_id)
        states, counts = [], []
        for kind, row in rows_for(wc_id, days, minutes_per_interval, rng):
            (states if kind == "state" else counts).append(row)
        conn.executemany(
            "INSERT INTO machine_state_intervals (work_center_id, start_ns, end_ns, state, category, planned_busy, source) VALUES (?,?,?,?,?,1,'bench')",
            states,
        )
        conn.executemany(
            "INSERT INTO production_counts (work_center_id, ts_ns, produced_qty, reject_qty, ideal_cycle_time_s, planned_busy, source) VALUES (?,?,?,?,?,1,'bench')",
            counts,
        )
        n_states += len(states)
        n_counts += len(counts)
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return n_states, n_counts


def timed(fn, repeat: int = 3) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times[1:] or times), result


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'bench-oee.db'}"
        return
    from tests.servers import postgres_database

    with postgres_database() as url:
        yield url


def run(
    kind: str, machines: int, days: int, minutes_per_interval: int, directory: Path, skip_raw: bool = False
) -> None:
    with database(kind, directory) as url:
        migrate(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        ids = setup_plant(sessions, machines)
        t0 = time.perf_counter()
        if kind == "sqlite":
            n_states, n_counts = load_sqlite(url.split("///", 1)[1], ids, days, minutes_per_interval)
        else:
            n_states, n_counts = load_postgres(url, ids, days, minutes_per_interval)
        load_s = time.perf_counter() - t0
        print(f"[{kind}] generated {n_states:,} state intervals + {n_counts:,} count rows in {load_s:.1f} s")
        year = Span(START_NS, START_NS + days * 24 * 60 * MIN_NS)
        day = Span(year.end_ns - 24 * 60 * MIN_NS, year.end_ns)  # the last day
        now_ns = year.end_ns
        cases = [
            ("site, whole period (20 machines)", "bench", year),
            ("one machine, whole period", "bench/area1/line0/m00", year),
            ("site, one day", "bench", day),
        ]
        if not skip_raw:
            with sessions() as session:
                raw_s, _, _ = timed(
                    lambda s=session: (state_sums(s, ids, year, 120.0, now_ns), count_sums(s, ids, year)), repeat=1
                )
            print(
                f"[{kind}] without the hourly cache, one pass over the raw rows for the site-year: {raw_s * 1000:.0f} ms"
            )
        for label, path, window in cases:
            with sessions() as session:
                first, median, report = timed(
                    lambda s=session, p=path, w=window: oee_report(s, p, w, 120.0, "UTC", now_ns)
                )
            print(
                f"[{kind}] OEE {label}: first {first * 1000:.0f} ms, median {median * 1000:.0f} ms "
                f"(OEE {report.total.oee:.3f}, A {report.total.availability:.3f}, P {report.total.effectiveness:.3f})"
            )
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--skip-raw", action="store_true", help="do not time the uncached pass over the raw rows")
    parser.add_argument("--minutes-per-interval", type=int, default=1, help="divide 60: intervals never cross an hour")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db or ["sqlite", "postgresql"]:
            run(kind, args.machines, args.days, args.minutes_per_interval, Path(tmp), args.skip_raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
