"""Warehouse queries on a big ledger: on-hand of one material and a three-level lot genealogy trace.

Builds a fresh PostgreSQL database with the MES schema (Alembic heads), bulk-loads a synthetic ledger of
1,000,000 stock moves (COPY) over 200 materials, 20,000 lots and 60 bins, plus a three-level genealogy
(raw -> bracket -> frame -> finished; 8,750 produced lots each made by its own work order), then times:

- on-hand of one material across all lots and locations, from the cached balance rows (what the API uses)
  and summed from the ledger itself (what reconciliation uses);
- a backward trace of a finished lot down three levels, and a forward trace (recall list) of a raw lot,
  both through the service functions the API calls (recursive SQL + the pure walk).

Target: under 100 ms each. Usage (drops the database afterwards unless --keep):

    python benchmarks/inventory_queries.py [--moves 1000000] [--admin-url postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg
import sqlalchemy

from mes_lite.db import make_engine, session_factory
from mes_lite.inventory import ledger, operations, trace
from mes_lite.inventory.stock import format_quantity
from mes_lite.schema import migrate

MATERIALS = 200
LOTS = 20_000
BINS = 60
RAW_LOTS, L1_LOTS, L2_LOTS, L3_LOTS = 10_000, 5_000, 2_500, 1_250
REPEATS = 25


def copy_rows(cursor: psycopg.Cursor, table: str, columns: list[str], rows: object) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:  # type: ignore[attr-defined]
            copy.write_row(row)


def build(conn: psycopg.Connection, moves: int, rng: random.Random) -> dict[str, float]:
    t0 = time.perf_counter()
    now = time.time_ns()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO sites (enterprise, code, name) VALUES ('acme', 'bench', '') RETURNING id")
        site = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("INSERT INTO areas (site_id, code, name) VALUES (%s, 'a', '') RETURNING id", (site,))
        area = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("INSERT INTO lines (area_id, code, name) VALUES (%s, 'l', '') RETURNING id", (area,))
        line = cur.fetchone()[0]  # type: ignore[index]
        cur.execute(
            "INSERT INTO work_centers (line_id, code, name, allow_parallel_orders, active) VALUES (%s, 'press01', '', false, true) RETURNING id",
            (line,),
        )
        work_center = cur.fetchone()[0]  # type: ignore[index]
        copy_rows(
            cur,
            "products",
            ["id", "code", "name", "unit_of_measure", "active"],
            ((i, f"M{i:04d}", f"material {i}", "pcs", True) for i in range(1, MATERIALS + 1)),
        )
        copy_rows(
            cur,
            "materials",
            ["product_id", "allow_negative", "backflush", "pick_strategy", "standard_cost"],
            ((i, True, False, "fifo", 1) for i in range(1, MATERIALS + 1)),
        )
        copy_rows(
            cur,
            "locations",
            ["id", "code", "name", "kind", "parent_id", "dispatch", "active"],
            [(1, "WH", "", "warehouse", None, False, True)],
        )
        copy_rows(
            cur,
            "locations",
            ["id", "code", "name", "kind", "parent_id", "dispatch", "active"],
            ((1 + z, f"WH/Z{z}", "", "zone", 1, False, True) for z in range(1, 7)),
        )
        copy_rows(
            cur,
            "locations",
            ["id", "code", "name", "kind", "parent_id", "dispatch", "active"],
            ((100 + b, f"WH/Z{1 + b % 6}/B{b:02d}", "", "bin", 2 + b % 6, False, True) for b in range(BINS)),
        )
        # lots: the first ones form the genealogy levels; each level uses its own materials
        produced = L1_LOTS + L2_LOTS + L3_LOTS
        copy_rows(
            cur,
            "work_orders",
            ["id", "number", "product_id", "work_center_id", "planned_qty", "status", "started_ns", "completed_ns"],
            (
                (i, f"WO{i:05d}", 1 + i % MATERIALS, work_center, 100, "completed", now - 3_600_000_000_000, now)
                for i in range(1, produced + 1)
            ),
        )

        def lot_material(lot: int) -> int:
            if lot <= RAW_LOTS:
                return 1 + lot % 50  # raw materials M0001..M0050
            if lot <= RAW_LOTS + L1_LOTS:
                return 51 + lot % 50
            if lot <= RAW_LOTS + L1_LOTS + L2_LOTS:
                return 101 + lot % 50
            if lot <= RAW_LOTS + produced:
                return 151 + lot % 50
            return 1 + lot % MATERIALS

        lot_product = {lot: lot_material(lot) for lot in range(1, LOTS + 1)}
        copy_rows(
            cur,
            "lots",
            ["id", "code", "product_id", "work_order_id", "supplier_lot", "created_at_ns"],
            (
                (
                    lot,
                    f"LOT{lot:06d}",
                    lot_product[lot],
                    lot - RAW_LOTS if RAW_LOTS < lot <= RAW_LOTS + produced else None,
                    "",
                    now,
                )
                for lot in range(1, LOTS + 1)
            ),
        )
        conn.commit()
        t_master = time.perf_counter()

        def ledger_rows() -> object:
            # more goes in than out, so balances stay mostly positive like a real ledger
            kinds = ("receipt",) * 8 + ("issue",) * 4 + ("transfer",) * 4 + ("shipment",) * 3 + ("adjustment",)
            for i in range(moves):
                lot = rng.randint(1, LOTS)
                kind = "receipt" if i < LOTS else rng.choice(kinds)
                a, b = 100 + rng.randrange(BINS), 100 + rng.randrange(BINS)
                src = None if kind == "receipt" else a
                dst = a if kind == "receipt" else (b if kind == "transfer" and b != a else None)
                if src is None and dst is None:
                    dst = a
                if src == dst:
                    dst = None
                yield (
                    kind,
                    lot_product[lot],
                    lot,
                    src,
                    dst,
                    rng.randint(1, 50) if src is None else rng.randint(1, 30),
                    now - (moves - i) * 1_000_000,
                    "bench",
                    "synthetic",
                )

        copy_rows(
            cur,
            "stock_moves",
            [
                "kind",
                "product_id",
                "lot_id",
                "from_location_id",
                "to_location_id",
                "quantity",
                "at_ns",
                "actor",
                "reason",
            ],
            ledger_rows(),
        )
        conn.commit()
        t_moves = time.perf_counter()
        # cached balances derived from the ledger (exactly what post_move keeps in step, move by move)
        cur.execute(
            """
            INSERT INTO stock_balances (product_id, location_id, lot_id, quantity)
            SELECT product_id, location_id, lot_id, sum(q) FROM (
                SELECT product_id, to_location_id AS location_id, lot_id, quantity AS q FROM stock_moves WHERE to_location_id IS NOT NULL
                UNION ALL
                SELECT product_id, from_location_id, lot_id, -quantity FROM stock_moves WHERE from_location_id IS NOT NULL
            ) m GROUP BY product_id, location_id, lot_id
            """
        )
        # genealogy: L1 consumes 4 raw lots, L2 consumes 3 L1 lots, L3 (finished) consumes 2 L2 + 2 raw lots

        def links() -> object:
            for i in range(L1_LOTS):
                lot = RAW_LOTS + 1 + i
                for raw in rng.sample(range(1, RAW_LOTS + 1), 4):
                    yield (lot, raw, lot - RAW_LOTS, 10)
            for i in range(L2_LOTS):
                lot = RAW_LOTS + L1_LOTS + 1 + i
                for l1 in rng.sample(range(RAW_LOTS + 1, RAW_LOTS + L1_LOTS + 1), 3):
                    yield (lot, l1, lot - RAW_LOTS, 10)
            for i in range(L3_LOTS):
                lot = RAW_LOTS + L1_LOTS + L2_LOTS + 1 + i
                for l2 in rng.sample(range(RAW_LOTS + L1_LOTS + 1, RAW_LOTS + L1_LOTS + L2_LOTS + 1), 2):
                    yield (lot, l2, lot - RAW_LOTS, 10)
                for raw in rng.sample(range(1, RAW_LOTS + 1), 2):
                    yield (lot, raw, lot - RAW_LOTS, 5)

        copy_rows(cur, "lot_consumptions", ["produced_lot_id", "consumed_lot_id", "work_order_id", "quantity"], links())
        # some finished lots shipped, so the forward trace ends in a recall list
        cur.execute(
            "INSERT INTO sales_orders (number, customer, ship_to, status, created_at_ns) VALUES ('SO-B', 'Acme', '', 'shipped', %s) RETURNING id",
            (now,),
        )
        so = cur.fetchone()[0]  # type: ignore[index]
        cur.execute(
            "INSERT INTO locations (id, code, name, kind, parent_id, dispatch, active) VALUES (99, 'WH/DOCK', '', 'zone', 1, true, true)"
        )
        cur.execute(
            "INSERT INTO sales_order_lines (sales_order_id, line_no, product_id, quantity) VALUES (%s, 1, 151, 1000000) RETURNING id",
            (so,),
        )
        so_line = cur.fetchone()[0]  # type: ignore[index]
        cur.execute(
            "INSERT INTO shipments (number, sales_order_id, dispatch_location_id, status, packages, carrier, tracking, created_at_ns, shipped_at_ns, created_by) VALUES ('SH-B', %s, 99, 'shipped', 1, '', '', %s, %s, 'bench') RETURNING id",
            (so, now, now),
        )
        shipment = cur.fetchone()[0]  # type: ignore[index]
        first_finished = RAW_LOTS + L1_LOTS + L2_LOTS + 1
        copy_rows(
            cur,
            "shipment_lines",
            ["shipment_id", "sales_order_line_id", "lot_id", "picked_from_id", "quantity"],
            ((shipment, so_line, lot, 100, 1) for lot in range(first_finished, first_finished + L3_LOTS, 2)),
        )
        conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE")
    conn.autocommit = False
    t_done = time.perf_counter()
    return {"master_s": t_master - t0, "moves_s": t_moves - t_master, "balances_links_analyze_s": t_done - t_moves}


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    samples, result = [], None
    for _ in range(REPEATS):
        t = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    name = f"edgefab_bench_inventory_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db_url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    sa_url = db_url.replace("postgresql://", "postgresql+psycopg://")
    try:
        migrate(sa_url)
        with psycopg.connect(db_url) as conn:
            phases = build(conn, args.moves, rng)
        engine = make_engine(sa_url)
        sessions = session_factory(engine)
        with sessions() as session:
            material = session.execute(sqlalchemy.text("SELECT id FROM products WHERE code = 'M0042'")).scalar_one()
            balances = timed(lambda: operations.total_on_hand(session, material))
            from_ledger = timed(lambda: ledger.on_hand_from_ledger(session, material))
            assert balances[2] == from_ledger[2], "cached balances disagree with the ledger"
            finished = f"LOT{RAW_LOTS + L1_LOTS + L2_LOTS + 1:06d}"
            backward = timed(lambda: trace.backward(session, finished))
            # a raw lot three levels below the first finished lot (which was shipped): the recall reaches a shipment
            raw = session.execute(
                sqlalchemy.text(
                    "SELECT l1.consumed_lot_id FROM lot_consumptions l3 "
                    "JOIN lot_consumptions l2 ON l2.produced_lot_id = l3.consumed_lot_id "
                    "JOIN lot_consumptions l1 ON l1.produced_lot_id = l2.consumed_lot_id "
                    "WHERE l3.produced_lot_id = :lot ORDER BY 1 LIMIT 1"
                ),
                {"lot": RAW_LOTS + L1_LOTS + L2_LOTS + 1},
            ).scalar_one()
            raw_code = f"LOT{raw:06d}"
            forward = timed(lambda: trace.forward(session, raw_code))
            moves_in_material = session.execute(
                sqlalchemy.text("SELECT count(*) FROM stock_moves WHERE product_id = :p"), {"p": material}
            ).scalar_one()
            total_moves = session.execute(sqlalchemy.text("SELECT count(*) FROM stock_moves")).scalar_one()
        engine.dispose()
        root = backward[2]
        nodes = list(root.walk())  # type: ignore[attr-defined]
        recall = forward[2]
        print(f"ledger: {total_moves:,} moves, {LOTS:,} lots, {MATERIALS} materials, {BINS} bins (database {name})")
        print(
            f"load: master {phases['master_s']:.1f} s, COPY moves {phases['moves_s']:.1f} s, balances+links+analyze {phases['balances_links_analyze_s']:.1f} s"
        )
        print(
            f"on-hand of one material ({moves_in_material:,} moves, {format_quantity(balances[2])} pcs), all lots and locations:"
        )
        print(f"  from cached balances : p50 {balances[0]:7.2f} ms  p95 {balances[1]:7.2f} ms")
        print(f"  summed from ledger   : p50 {from_ledger[0]:7.2f} ms  p95 {from_ledger[1]:7.2f} ms")
        print(f"backward trace of {finished}: {len(nodes)} nodes, {max(n.depth for n in nodes)} levels")
        print(f"  trace.backward       : p50 {backward[0]:7.2f} ms  p95 {backward[1]:7.2f} ms")
        print(
            f"forward trace (recall) of {recall.lot}: {len(recall.affected_lots)} lots, {len(recall.shipments)} shipments"
        )  # type: ignore[attr-defined]
        print(f"  trace.forward        : p50 {forward[0]:7.2f} ms  p95 {forward[1]:7.2f} ms")
        print("target: < 100 ms each")
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
