"""The andon board's query under 50 concurrent clients: p50 / p99 latency and requests/s.

A real server (`edgefab mes serve`: uvicorn, one process) on loopback over SQLite or PostgreSQL,
20 machines with today's minute-resolution states and counts (8 hours), a running order on each;
50 asyncio clients (httpx) call `GET /api/andon?path=bench` in a loop for `--seconds`.

    python benchmarks/mes_andon_latency.py --db sqlite --db postgresql --clients 50 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mes_lite.db import make_engine, session_factory
from mes_lite.models import Product, WorkOrder
from mes_lite.schema import migrate
from mes_lite.services import users

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import mes_oee_query as data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, machines: int) -> str:
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    ids = data.setup_plant(sessions, machines)
    hours = 8
    now_ns = time.time_ns()
    data.START_NS = now_ns - hours * 3600 * 1_000_000_000 - (now_ns % 60_000_000_000)
    days_fraction = hours / 24
    rows_states, rows_counts = [], []
    import random

    for wc in ids:
        for kind, row in data.rows_for(wc, 1, 1, random.Random(wc)):
            if row[1] >= data.START_NS + int(days_fraction * 86400e9):
                break
            (rows_states if kind == "state" else rows_counts).append(row)
    with sessions() as session:
        from sqlalchemy import insert

        from mes_lite.models import MachineStateInterval, ProductionCount

        session.execute(
            insert(MachineStateInterval),
            [
                dict(
                    work_center_id=r[0],
                    start_ns=r[1],
                    end_ns=r[2],
                    state=r[3],
                    category=r[4],
                    planned_busy=True,
                    source="bench",
                )
                for r in rows_states
            ],
        )
        session.execute(
            insert(ProductionCount),
            [
                dict(
                    work_center_id=r[0],
                    ts_ns=r[1],
                    produced_qty=r[2],
                    reject_qty=r[3],
                    ideal_cycle_time_s=r[4],
                    planned_busy=True,
                    source="bench",
                )
                for r in rows_counts
            ],
        )
        product = Product(code="P1")
        session.add(product)
        session.flush()
        for i, wc in enumerate(ids):
            session.add(
                WorkOrder(
                    number=f"WO-{i}",
                    product_id=product.id,
                    work_center_id=wc,
                    planned_qty=50_000,
                    status="running",
                    started_ns=data.START_NS,
                )
            )
        user = users.create_user(session, "board", "board-password", "operator")
        token = users.issue_token(session, user, "bench")
        session.commit()
    engine.dispose()
    return token


async def clients(url: str, token: str, n: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=30
    ) as client:

        async def one() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = await client.get("/api/andon", params={"path": "bench"})
                response.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(one() for _ in range(n)))
    return latencies


def run(kind: str, machines: int, n: int, seconds: float, directory: Path) -> None:
    with data.database(kind, directory) as url:
        token = seed(url, machines)
        port = free_port()
        # the server in its own process (as `edgefab mes serve` runs it), so the clients do not share its GIL
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "mes", "serve", "--database", url, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        try:
            asyncio.run(clients(f"http://127.0.0.1:{port}", token, 1, 2.0))  # warm up
            t0 = time.perf_counter()
            latencies = asyncio.run(clients(f"http://127.0.0.1:{port}", token, n, seconds))
            elapsed = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(10)
        q = statistics.quantiles(latencies, n=100)
        print(
            f"[{kind}] andon board, {machines} machines, {n} clients: {len(latencies)} requests in {elapsed:.1f} s "
            f"= {len(latencies) / elapsed:.0f} req/s; p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db or ["sqlite", "postgresql"]:
            run(kind, args.machines, args.clients, args.seconds, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
