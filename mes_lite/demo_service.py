"""The MES inside `edgefab demo`: database, master data, users, running orders, ingest and web, on loopback.

`edgefab demo` (gateway/demo.py) starts the simulated factory and a broker, calls
`demo_mes_service(context)` and starts the service, then starts the gateway. This module turns that into a factory a person can look at
in a browser within seconds of a fresh clone, with nothing to configure:

1. a SQLite database `mes.db` in the demo's data folder, migrated to every branch head;
2. the demo plant (`examples/demo-plant.yaml`: sites, machines, one product routed per machine
   with the simulator's ideal cycle times, shifts, reasons), demo users, one work order per
   machine started, and a small stocked warehouse (locations, lots, an issue, a finished lot,
   a sales order, a low-stock reorder point) so no page opens empty;
3. the ingest subscribed to the demo broker with the gateway's own edge config, as `edgefab mes
   run` does, before the gateway publishes (so it sees every tag's first value);
4. once every machine's first state is stored: the API and web pages with uvicorn on 127.0.0.1
   (port 8000 or the next free one), then the alarm and command side (target quantities).

Everything lives in the demo's temporary data folder and is gone when the demo stops. The
passwords are fixed and printed: this is for a demo on one's own machine, never a deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from gateway.demo import DemoContext, DemoService
    from mes_lite.alarms.subscriber import AlarmSubscriber
    from mes_lite.ingest.runner import Ingestor

log = logging.getLogger("edgefab.demo.mes")

DEMO_PLANT = Path(__file__).resolve().parent / "examples" / "demo-plant.yaml"
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
PORTS_TRIED = 20
"""8000, 8001, ... 8019 are tried in turn before any free port."""
STOP_TIMEOUT_S = 10.0
FIRST_VALUES_TIMEOUT_S = 30.0
COMMANDS_GRACE_S = 1.0
"""After the first states: the gateway's command subscription is surely in place too."""
UNWATCHED_BEFORE = dt.timedelta(days=2)
SERVER_GRACE_S = 3.0
"""Open event streams (the board's SSE) are cut after this at shutdown."""

DEMO_USERS: tuple[tuple[str, str], ...] = (
    ("admin", "admin-demo"),
    ("supervisor", "supervisor-demo"),
    ("operator", "operator-demo"),
)
"""(user name = role, password): demo-only credentials, printed in the terminal and in docs/demo.md."""


@dataclass(frozen=True)
class DemoOrder:
    number: str
    product: str
    work_center: str
    planned_qty: float


DEMO_ORDERS: tuple[DemoOrder, ...] = (
    # about an hour of each machine's ideal output, so progress moves visibly on the board
    DemoOrder("WO-1001", "BRK-100", "dongguan/stamping/line1/press01", 3000),
    DemoOrder("WO-1002", "BRK-200", "dongguan/stamping/line1/press02", 3000),
    DemoOrder("WO-1003", "SHF-20", "dongguan/machining/line2/cnc01", 80),
    DemoOrder("WO-1004", "CAP-30", "dongguan/moulding/line3/imm01", 160),
)
PAST_ORDER = DemoOrder("WO-0999", "BRK-100", "dongguan/stamping/line1/press01", 500)
"""Completed before the demo starts: it consumed a steel lot and made a finished lot (traceability)."""


# ---------------------------------------------------------------- the database


def prepare_database(database_url: str, speed: float = 1.0, unwatched_since: dt.datetime | None = None) -> None:
    """Migrate, import the demo plant, add users, start one order per machine and stock the warehouse."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per plugin and migration is noise here
    from sqlalchemy import select

    from mes_lite.db import make_engine, session_factory
    from mes_lite.models import RoutingOperation
    from mes_lite.schema import migrate
    from mes_lite.services import users
    from mes_lite.services.master_data_import import import_file

    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            import_file(session, str(DEMO_PLANT))
            if speed != 1.0:  # the simulator serves cycle times divided by its speed: route the same
                for operation in session.scalars(select(RoutingOperation)):
                    operation.ideal_cycle_time_s = operation.ideal_cycle_time_s / speed
            for username, password in DEMO_USERS:
                users.create_user(session, username, password, role=username, display_name=f"Demo {username}")
            stock_the_warehouse(session)
            start_orders(session)
            now = dt.datetime.now(dt.UTC)  # the gateway's first values follow within a second or two
            mark_unwatched_time_as_planned_down(session, unwatched_since or now - UNWATCHED_BEFORE, now)
            session.commit()
    finally:
        engine.dispose()


def mark_unwatched_time_as_planned_down(session: Any, since: dt.datetime, until: dt.datetime) -> None:
    """A site-wide planned stop over the time the MES never saw the machines, so "OEE today" counts
    from the demo's start instead of losing the hours since midnight as unaccounted time."""
    from mes_lite.services.master_data import PlannedStopIn, upsert_planned_stop

    note = "edgefab demo: the factory was not watched before the demo started"
    upsert_planned_stop(session, PlannedStopIn(site="dongguan", start=since, end=until, note=note))


def start_orders(session: Any) -> None:
    from mes_lite.services import work_orders

    for order in DEMO_ORDERS:
        created = work_orders.create_order(session, order.number, order.product, order.work_center, order.planned_qty)
        work_orders.transition(session, created.id, "release")
        work_orders.transition(session, created.id, "start")


def stock_the_warehouse(session: Any) -> None:
    """Warehouse -> zones -> bins, raw-material lots, a finished lot traced to a steel lot, a sales order."""
    from mes_lite.inventory import master_data, operations, shipping
    from mes_lite.inventory.ledger import Actor
    from mes_lite.services import work_orders

    who = Actor("demo")
    today = dt.date.today()
    locations = [
        ("WH1", "warehouse", None, "Main warehouse", False, None),
        ("WH1-RM", "zone", "WH1", "Raw material", False, None),
        ("WH1-RM-01", "bin", "WH1-RM", "Rack A", False, None),
        ("WH1-RM-02", "bin", "WH1-RM", "Rack B", False, None),
        ("WH1-FG", "zone", "WH1", "Finished goods", False, None),
        ("WH1-FG-01", "bin", "WH1-FG", "Rack F", False, None),
        ("WH1-DOCK", "zone", "WH1", "Dispatch dock", True, None),
        ("WH1-LS", "zone", "WH1", "Line side", False, None),
        ("LS-PRESS01", "bin", "WH1-LS", "Press 01 line side", False, "press01"),
        ("LS-PRESS02", "bin", "WH1-LS", "Press 02 line side", False, "press02"),
        ("LS-CNC01", "bin", "WH1-LS", "CNC 01 line side", False, "cnc01"),
        ("LS-IMM01", "bin", "WH1-LS", "Moulding line side", False, "imm01"),
    ]
    for code, kind, parent, name, dispatch, work_center in locations:
        master_data.create_location(
            session,
            code=code,
            kind=kind,
            parent_code=parent,
            name=name,
            dispatch=dispatch,
            work_center_code=work_center,
        )
    master_data.upsert_material(session, code="STEEL-2MM", pick_strategy="fifo", standard_cost=Decimal("6.80"))
    master_data.upsert_material(session, code="BAR-20MM", pick_strategy="fifo", standard_cost=Decimal("21.50"))
    master_data.upsert_material(
        session, code="PP-GRAN", pick_strategy="fefo", standard_cost=Decimal("11.20"), shelf_life_days=365
    )
    for code, cost in (("BRK-100", "1.35"), ("BRK-200", "2.10"), ("SHF-20", "14.00"), ("CAP-30", "0.42")):
        master_data.upsert_material(session, code=code, pick_strategy="fifo", standard_cost=Decimal(cost))
    receipts = [
        ("STEEL-2MM", "1200", "WH1-RM-01", "ST-A101", None),
        ("STEEL-2MM", "800", "WH1-RM-02", "ST-A102", None),
        ("BAR-20MM", "300", "WH1-RM-02", "BAR-B07", None),
        ("PP-GRAN", "250", "WH1-RM-01", "PP-C31", today + dt.timedelta(days=60)),
        ("PP-GRAN", "500", "WH1-RM-01", "PP-C44", today + dt.timedelta(days=240)),
    ]
    for material, quantity, location, lot, expiry in receipts:
        operations.receive(
            session,
            material=material,
            quantity=Decimal(quantity),
            location=location,
            lot=lot,
            expiry_date=expiry,
            supplier_lot=f"SUP-{lot}",
            actor=who,
        )
    operations.transfer(
        session,
        material="STEEL-2MM",
        lot="ST-A101",
        quantity=Decimal("200"),
        from_location="WH1-RM-01",
        to_location="LS-PRESS01",
        actor=who,
    )
    master_data.set_reorder_point(
        session,
        material_code="PP-GRAN",
        location_code=None,
        min_quantity=Decimal("1000"),
        reorder_quantity=Decimal("1500"),
    )

    # yesterday's order on press01: steel lot ST-A101 in, finished lot BRK-FG-0999 out (a trace both ways)
    past = work_orders.create_order(session, PAST_ORDER.number, PAST_ORDER.product, PAST_ORDER.work_center, 500)
    started_ns = (int(dt.datetime.now(dt.UTC).timestamp()) - 26 * 3600) * 1_000_000_000
    work_orders.transition(session, past.id, "release", at_ns=started_ns)
    work_orders.transition(session, past.id, "start", at_ns=started_ns)
    operations.issue_to_work_order(
        session,
        work_order=PAST_ORDER.number,
        material="STEEL-2MM",
        quantity=Decimal("60"),
        location="LS-PRESS01",
        lot="ST-A101",
        actor=who,
    )
    operations.receive_finished_goods(
        session,
        work_order=PAST_ORDER.number,
        quantity=Decimal("500"),
        location="WH1-FG-01",
        lot="BRK-FG-0999",
        production_date=today - dt.timedelta(days=1),
        actor=who,
    )
    work_orders.transition(session, past.id, "complete", at_ns=started_ns + 3600 * 1_000_000_000)
    shipping.create_sales_order(
        session,
        number="SO-2001",
        customer="Shenzhen Brackets Ltd",
        ship_to="Bao'an, Shenzhen",
        lines=[("BRK-100", Decimal("400"), None)],
    )


# ---------------------------------------------------------------- the service


class DemoServer(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handlers: the demo stops every service in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def pick_port(requested: int | None) -> int:
    """`requested` as given (0 = any free port); by default 8000 or the next free one."""
    candidates: Iterator[int] = (
        iter([requested]) if requested is not None else iter(range(DEFAULT_PORT, DEFAULT_PORT + PORTS_TRIED))
    )
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                if requested is not None:
                    raise OSError(
                        f"MES: port {requested} on {HOST} is in use (choose another with --mes-port)"
                    ) from None
                continue
            return int(s.getsockname()[1])
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def page_urls(base_url: str) -> list[tuple[str, str]]:
    return [
        ("andon board", f"{base_url}/board"),
        ("machines", f"{base_url}/machines"),
        ("operator station", f"{base_url}/operator"),
        ("warehouse", f"{base_url}/warehouse"),
        ("assessment", f"{base_url}/assessment"),
        ("API docs", f"{base_url}/docs"),
    ]


class DemoMes:
    """The MES of the demo: `start` prepares the database and starts ingest and web; `stop` undoes it all."""

    def __init__(self, context: DemoContext) -> None:
        self.context = context
        self.port = pick_port(context.options.get("mes_port"))
        self.database_path = context.data_dir / "mes.db"
        self.database_url = f"sqlite:///{self.database_path}"
        self.ingestor: Ingestor | None = None
        self.alarms: AlarmSubscriber | None = None
        self.server: DemoServer | None = None
        self.app: Any = None
        self._server_task: asyncio.Task[None] | None = None
        self._live_task: asyncio.Task[None] | None = None
        self.unwatched_since = dt.datetime.now(dt.UTC).replace(microsecond=0) - UNWATCHED_BEFORE

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def settings(self) -> Any:
        from mes_lite.settings import MesSettings

        defaults = MesSettings(database_url=self.database_url)
        return MesSettings(
            database_url=self.database_url,
            edge_config=str(self.context.config_path),
            mqtt_url=self.context.mqtt_url,
            # at --speed X a simulated 2-minute stop lasts 120/X wall seconds: keep it a stop, not a minor stop
            micro_stop_threshold_s=defaults.micro_stop_threshold_s / self.context.speed,
        )

    async def start(self) -> None:
        await asyncio.to_thread(prepare_database, self.database_url, self.context.speed, self.unwatched_since)
        await asyncio.to_thread(self._start_ingest)
        self._live_task = asyncio.create_task(self._when_the_gateway_is_live(), name="mes-demo-live")
        self._print_banner()

    def _start_ingest(self) -> None:
        from mes_lite.alarms.subscriber import AlarmSubscriber
        from mes_lite.ingest.runner import Ingestor

        config = self.context.config
        suffix = f"demo-{os.getpid()}"  # never resume (or steal) the session of a real `edgefab mes run`
        self.ingestor = Ingestor(
            self.settings(), config, mqtt_url=self.context.mqtt_url, client_id=f"edgefab-mes-{suffix}"
        )
        self.ingestor.start()
        self.alarms = AlarmSubscriber(  # started once the gateway listens for commands (the orders' targets)
            self.ingestor.sessions,
            self.context.mqtt_url,
            config.site.enterprise,
            config.site.site,
            config=config,
            client_id=f"edgefab-mes-alarms-{suffix}",
        )

    async def _when_the_gateway_is_live(self) -> None:
        """Once the ingest has stored every machine's first state: serve the web pages, then start the
        alarm and command side.

        Not before, because on SQLite every other writer (a login token, the board filling its OEE
        cache, a command marked published) can make a concurrent ingest batch fail and wait for its
        retry: the first states land fastest alone. And the orders' target quantities, published
        before the gateway listens, would be lost.
        """
        assert self.ingestor is not None and self.alarms is not None
        machines = {b.tag_path.rsplit("/", 1)[0] for b in self.ingestor.bindings if b.role == "state"}
        stats, deadline = self.ingestor.writer.stats, time.monotonic() + FIRST_VALUES_TIMEOUT_S
        while time.monotonic() < deadline and stats["state"] + stats["late_state"] < len(machines):
            await asyncio.sleep(0.1)
        try:
            await self._start_web()
        except OSError as e:
            log.error("%s", e)
            return
        await asyncio.sleep(COMMANDS_GRACE_S)
        self.alarms.start()

    async def _start_web(self) -> None:
        from mes_lite.api.app import create_app

        self.app = create_app(self.settings())
        config = uvicorn.Config(
            self.app,
            host=HOST,
            port=self.port,
            log_level="warning",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=SERVER_GRACE_S,
        )
        self.server = DemoServer(config)
        self._server_task = asyncio.create_task(self.server.serve(), name="mes-web")
        while not self.server.started:
            if self._server_task.done():
                with contextlib.suppress(asyncio.CancelledError, SystemExit):
                    self._server_task.result()
                raise OSError(f"MES: the web server did not start on {self.base_url} (port taken?)")
            await asyncio.sleep(0.05)

    def _print_banner(self) -> None:
        width = max(len(name) for name, _ in page_urls(self.base_url))
        lines = [f"MES: SQLite {self.database_path}, ingest from {self.context.mqtt_url}"]
        lines += [f"  {name:<{width}}  {url}" for name, url in page_urls(self.base_url)]
        users = ", ".join(f"{name} / {password}" for name, password in DEMO_USERS)
        lines.append(f"  demo users (demo only; deleted when the demo stops): {users}")
        orders = ", ".join(f"{o.number} on {o.work_center.rsplit('/', 1)[-1]}" for o in DEMO_ORDERS)
        lines.append(f"  running work orders: {orders}")
        print("\n".join(lines), flush=True)

    async def stop(self) -> None:
        if self._live_task is not None:
            self._live_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # it logged what went wrong
                await self._live_task
        if self.server is not None and self._server_task is not None:
            self.server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, SystemExit):
                await asyncio.wait_for(self._server_task, STOP_TIMEOUT_S)
            live = getattr(self.app.state, "live_tags", None)  # the machine pages' subscriber
            if live is not None:
                await asyncio.to_thread(live.stop)
        if self.alarms is not None and self.alarms.client is not None:
            await asyncio.to_thread(self.alarms.stop)
        if self.ingestor is not None:
            await asyncio.to_thread(self.ingestor.stop)  # flushes what it holds, disposes its engine


def demo_mes_service(context: DemoContext) -> DemoService:
    from gateway.demo import DemoService

    mes = DemoMes(context)
    return DemoService(name="MES", start=mes.start, stop=mes.stop, description=f"{mes.base_url}/board")
