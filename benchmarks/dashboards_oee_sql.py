"""Grafana's OEE query (`edgefab_oee()` in PostgreSQL) over a long history: query times per panel.

Loads the same synthetic history as `benchmarks/mes_oee_query.py` (20 machines, state intervals
of `--minutes-per-interval` minutes, one count row per running minute) into a throwaway
PostgreSQL database migrated to `heads`, then times the SQL the dashboards run: OEE by machine,
by line and for the site over the whole period and over the last day, and the machine-state
timeline of the last day. The function sums raw rows (no hourly cache), so the whole-period
figure is the worst case a Grafana user can ask for. Bounded by `--machines` and `--days`. Run:

    python benchmarks/dashboards_oee_sql.py                     # 20 machines, 365 days, 10-minute intervals
    python benchmarks/dashboards_oee_sql.py --days 30 --minutes-per-interval 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

from mes_lite.db import make_engine, session_factory
from mes_lite.schema import migrate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.servers for a throwaway PostgreSQL database


def _history_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("mes_oee_query", ROOT / "benchmarks" / "mes_oee_query.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def median_ms(session, sql: str, params: dict, repeat: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    times, rows = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = len(session.execute(text(sql), params).all())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--minutes-per-interval", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    history = _history_generator()
    from tests.servers import postgres_database

    with postgres_database() as url:
        migrate(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        ids = history.setup_plant(sessions, args.machines)
        t0 = time.perf_counter()
        n_states, n_counts = history.load_postgres(url, ids, args.days, args.minutes_per_interval)
        print(f"loaded {n_states:,} state intervals + {n_counts:,} count rows in {time.perf_counter() - t0:.1f} s")
        start = dt.datetime.fromtimestamp(history.START_NS / 1e9, dt.UTC)
        end = start + dt.timedelta(days=args.days)
        last_day = end - dt.timedelta(days=1)
        cases = [
            ("OEE by machine, whole period", "SELECT * FROM edgefab_oee(:s, :e, 'machine', 120, :e)", start),
            ("OEE by line, whole period", "SELECT * FROM edgefab_oee(:s, :e, 'line', 120, :e)", start),
            ("site OEE, whole period", "SELECT * FROM edgefab_oee(:s, :e, 'site', 120, :e)", start),
            ("OEE by machine, last day", "SELECT * FROM edgefab_oee(:s, :e, 'machine', 120, :e)", last_day),
            (
                "state timeline, last day",
                "SELECT start_time, machine, state FROM edgefab_state_intervals WHERE start_ns < :e_ns "
                "AND (end_ns IS NULL OR end_ns > :s_ns) ORDER BY 1",
                last_day,
            ),
        ]
        with sessions() as session:
            for label, sql, window_start in cases:
                params = {
                    "s": window_start,
                    "e": end,
                    "s_ns": int(window_start.timestamp()) * 10**9,
                    "e_ns": int(end.timestamp()) * 10**9,
                }
                ms, rows = median_ms(session, sql, params, args.repeat)
                print(f"{label:32s} {ms:9.0f} ms  ({rows} rows, median of {args.repeat})")
        engine.dispose()


if __name__ == "__main__":
    main()
