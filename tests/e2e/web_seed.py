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


def seed(database_url: str) -> None:
    """Master data of the demo plant, users `operator` / `supervisor` / `admin`, order WO-1001 running on press01."""
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            import_file(session, str(DEMO_PLANT))
            for role in ("operator", "supervisor", "admin"):
                users.create_user(session, role, PASSWORD, role, display_name="")
            order = work_orders.create_order(session, "WO-1001", "BRK-100", PRESS01, 5000)
            work_orders.transition(session, order.id, "release")
            work_orders.transition(session, order.id, "start")
            second = work_orders.create_order(session, "WO-1002", "BRK-100", PRESS01, 1200)
            work_orders.transition(session, second.id, "release")
            session.commit()
    finally:
        engine.dispose()


if __name__ == "__main__":
    seed(f"sqlite:///{Path(sys.argv[1]).resolve()}")
