"""A fresh MES database for the browser tests: the demo plant's master data, users, one running order.

Also runnable by hand to look at the pages: `python -m tests.e2e.web_seed /tmp/web.db` then
`EDGEFAB_MES_DATABASE_URL=sqlite:////tmp/web.db edgefab mes serve`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mes_lite.db import make_engine, session_factory
from mes_lite.schema import migrate
from mes_lite.services import users, work_orders
from mes_lite.services.master_data_import import import_file

DEMO_PLANT = Path(__file__).resolve().parents[2] / "mes_lite" / "examples" / "demo-plant.yaml"
PASSWORD = "correct-horse-battery"
PRESS01 = "dongguan/stamping/line1/press01"


def seed(database_url: str) -> dict[str, str]:
    """Master data of the demo plant, users `operator` / `supervisor` / `admin`, order WO-1001 running on press01.

    Returns an API token per user name, issued here so tests need not log in through the API while
    the ingest is writing.
    """
    tokens: dict[str, str] = {}
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            import_file(session, str(DEMO_PLANT))
            for role in ("operator", "supervisor", "admin"):
                user = users.create_user(session, role, PASSWORD, role, display_name="")
                tokens[role] = users.issue_token(session, user, name="e2e")
            order = work_orders.create_order(session, "WO-1001", "BRK-100", PRESS01, 120_000)
            work_orders.transition(session, order.id, "release")
            work_orders.transition(session, order.id, "start")
            second = work_orders.create_order(session, "WO-1002", "BRK-100", PRESS01, 1200)
            work_orders.transition(session, second.id, "release")
            session.commit()
    finally:
        engine.dispose()
    return tokens


def seed_history(database_url: str, now_ns: int, hours: float = 30, random_seed: int = 3) -> None:
    """Past states and counts for every machine (deterministic), some stops with reasons, press01 in fault now.

    Written through the production service like the ingest writes them, so OEE, the Gantt and the
    Pareto on the pages come from the same code paths as in a plant.
    """
    import random

    from sqlalchemy import select

    from mes_lite.models import MachineStateInterval, WorkCenter
    from mes_lite.services.production import ProductionRecorder, assign_reason

    rng = random.Random(random_seed)
    engine = make_engine(database_url)
    recorder = ProductionRecorder()
    states = ["running"] * 6 + ["idle", "starved", "blocked", "fault", "fault"]
    reasons = ["die_jam", "mechanical", "no_material", "changeover", None]
    try:
        with session_factory(engine)() as session:
            for wc in session.scalars(select(WorkCenter).order_by(WorkCenter.id)):
                at = now_ns - int(hours * 3600e9)
                state = "running"
                while at < now_ns - int(600e9):
                    recorder.record_state(session, wc.id, state, at)
                    duration_ns = (
                        int(rng.uniform(8, 40) * 60e9) if state == "running" else int(rng.uniform(2, 25) * 60e9)
                    )
                    if state == "running":
                        minute = 0
                        while minute * 60e9 < duration_ns:
                            recorder.record_count(
                                session, wc.id, at + int(minute * 60e9) + 1, 1040, rng.choice((0, 8, 18))
                            )
                            minute += 20
                    at += duration_ns
                    state = rng.choice([s for s in states if s != state])
                final = "fault" if wc.code == "press01" else "running"
                recorder.record_state(session, wc.id, final, now_ns - int(300e9))
            session.flush()
            stops = session.scalars(
                select(MachineStateInterval).where(
                    MachineStateInterval.state.in_(("fault", "idle", "starved", "blocked")),
                    MachineStateInterval.end_ns.is_not(None),
                )
            ).all()
            for interval in stops:
                reason = rng.choice(reasons)
                if reason:
                    assign_reason(session, interval.id, reason, None)
            session.commit()
    finally:
        engine.dispose()


def seed_warehouse(database_url: str) -> None:
    """Locations, two steel lots, steel issued to WO-1001, a finished lot from it, and an open sales order."""
    import datetime as dt
    from decimal import Decimal

    from mes_lite.inventory import master_data, operations, shipping
    from mes_lite.inventory.ledger import Actor

    engine = make_engine(database_url)
    who = Actor("seed")
    try:
        with session_factory(engine)() as session:
            master_data.create_location(session, code="WH1", kind="warehouse", name="Main warehouse")
            master_data.create_location(session, code="WH1-RM", kind="zone", parent_code="WH1")
            master_data.create_location(session, code="WH1-RM-01", kind="bin", parent_code="WH1-RM")
            master_data.create_location(session, code="WH1-FG", kind="zone", parent_code="WH1")
            master_data.create_location(session, code="WH1-FG-01", kind="bin", parent_code="WH1-FG")
            master_data.create_location(session, code="DOCK", kind="zone", parent_code="WH1", dispatch=True)
            for lot, qty in (("STEEL-L1", "800"), ("STEEL-L2", "500")):
                operations.receive(
                    session,
                    material="STEEL-2MM",
                    quantity=Decimal(qty),
                    location="WH1-RM-01",
                    lot=lot,
                    expiry_date=dt.date(2027, 6, 30),
                    actor=who,
                )
            operations.issue_to_work_order(
                session,
                work_order="WO-1001",
                material="STEEL-2MM",
                quantity=Decimal("120"),
                location="WH1-RM-01",
                lot="STEEL-L1",
                actor=who,
            )
            operations.receive_finished_goods(
                session,
                work_order="WO-1001",
                quantity=Decimal("1000"),
                location="WH1-FG-01",
                lot="BRK-FG-001",
                actor=who,
            )
            shipping.create_sales_order(
                session,
                number="SO-2001",
                customer="Shenzhen Brackets Ltd",
                ship_to="Bao'an, Shenzhen",
                lines=[("BRK-100", Decimal("400"), None)],
            )
            session.commit()
    finally:
        engine.dispose()


if __name__ == "__main__":
    import time

    url = f"sqlite:///{Path(sys.argv[1]).resolve()}"
    seed(url)
    seed_history(url, time.time_ns())
    seed_warehouse(url)
