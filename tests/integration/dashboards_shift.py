"""A simulated shift for the dashboard tests: ground truth from `simulators.machine`, loaded two ways.

- into the MES (PostgreSQL) through the MES services: master data of the demo plant, a running
  work order with a scrap report, state changes and per-15-minute counts of every machine,
  a planned stop, stock receipts and a reorder point;
- into InfluxDB as the gateway's InfluxDB sink would write it (`gateway.sinks.influx_lines`):
  one line per machine and second with state, counters and process values.

The data runs from 11:00 to 21:00 Asia/Shanghai on 2026-03-02 (the demo plant's time zone): both
breaks of the day shift, a planned stop and the night shift's start; windows that begin earlier
also take in the end of the previous night shift (a shift over midnight).
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edge_config.loader import load_config
from gateway.sample import Sample
from gateway.sinks.influx_lines import LineEncoder, field_kinds
from mes_lite.inventory import master_data as inv_master
from mes_lite.inventory import operations as inv_ops
from mes_lite.inventory.ledger import Actor
from mes_lite.models import PlannedStop, WorkCenter
from mes_lite.services import master_data_import, work_orders
from mes_lite.services.production import ProductionRecorder
from simulators.machine import MACHINE_KINDS, GroundTruth, Machine

REPO = Path(__file__).resolve().parents[2]
DEMO_PLANT = REPO / "mes_lite" / "examples" / "demo-plant.yaml"
DEMO_EDGE = REPO / "edge_config" / "examples" / "demo-factory.yaml"
TZ = ZoneInfo("Asia/Shanghai")
SHIFT_START = dt.datetime(2026, 3, 2, 11, 0, tzinfo=TZ)
SHIFT_HOURS = 10
COUNT_BUCKET_S = 900
NS = 1_000_000_000

MACHINES = {  # demo plant machine -> (simulator kind, UNS path)
    "press01": ("stamping_press", "dongguan/stamping/line1/press01"),
    "press02": ("stamping_press", "dongguan/stamping/line1/press02"),
    "cnc01": ("cnc", "dongguan/machining/line2/cnc01"),
    "imm01": ("injection_moulding", "dongguan/moulding/line3/imm01"),
}
PLANNED_STOP = ("imm01", dt.datetime(2026, 3, 2, 14, 0, tzinfo=TZ), dt.datetime(2026, 3, 2, 15, 30, tzinfo=TZ))
SCRAP = ("burr", 7.0)
ORDER = ("WO-DASH-1", "BRK-100", 20_000.0)


def ts(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * NS


def origin_ts() -> float:
    return SHIFT_START.timestamp()


def end_ts() -> float:
    return origin_ts() + SHIFT_HOURS * 3600


@dataclass(frozen=True)
class SimulatedShift:
    truths: dict[str, GroundTruth]  # wall clock (UTC epoch seconds)
    samples: dict[str, list[tuple[float, dict[str, object]]]]  # machine -> (time, tag values) once a second

    @classmethod
    def run(cls, seed: int = 7) -> SimulatedShift:
        truths, samples = {}, {}
        for name, (kind, _) in MACHINES.items():
            machine = Machine(name, MACHINE_KINDS[kind], seed=seed)
            rows = []
            for second in range(0, SHIFT_HOURS * 3600, 60):  # one snapshot a minute is plenty for trends
                snap = machine.step_to(float(second))
                rows.append(
                    (
                        origin_ts() + second,
                        {
                            "state": snap.state.value,
                            "total_count": snap.total_count,
                            "reject_count": snap.reject_count,
                            machine.kind.temperature_label: round(snap.temperature_c, 3),
                            "power": round(snap.power_kw, 3),
                        },
                    )
                )
            machine.step_to(float(SHIFT_HOURS * 3600))
            truths[name] = machine.ground_truth().in_wall_clock(origin_ts(), 1.0)
            samples[name] = rows
        return cls(truths, samples)


def influx_lines(shift: SimulatedShift) -> str:
    """The shift's tag series as the gateway's InfluxDB sink writes them (same encoder)."""
    site = load_config(DEMO_EDGE)
    devices = {d.name: d for d in site.devices}
    encoder = LineEncoder(field_kinds(site))
    lines: list[str] = []
    for name, rows in shift.samples.items():
        device = devices[name]
        batch = [
            Sample(site.tag_path(device, tag), value, int(t * NS))
            for t, values in rows
            for tag, value in values.items()
        ]
        lines.extend(encoder.lines(batch)[0])
    return "\n".join(lines)


def load_mes(sessions: sessionmaker[Session], shift: SimulatedShift) -> dict[str, int]:
    """Master data, a work order, states, counts, a planned stop and stock; returns work center ids by code.

    Each machine's history is recorded in its own thread and session (the MES serves several
    machines at once the same way): most of the time is spent waiting for PostgreSQL.
    """
    with sessions() as session:
        master_data_import.import_file(session, str(DEMO_PLANT))
        ids = {wc.code: wc.id for wc in session.scalars(select(WorkCenter))}
        site_id = session.scalar(select(WorkCenter).where(WorkCenter.code == "imm01")).line.area.site_id
        stop_machine, stop_from, stop_to = PLANNED_STOP
        session.add(
            PlannedStop(site_id=site_id, work_center_id=ids[stop_machine], start_ns=ts(stop_from), end_ns=ts(stop_to))
        )
        number, product, qty = ORDER
        order = work_orders.create_order(session, number, product, MACHINES["press01"][1], qty)
        start_ns = int(origin_ts() * NS)
        work_orders.transition(session, order.id, "release", at_ns=start_ns)
        work_orders.transition(session, order.id, "start", at_ns=start_ns)
        load_stock(session)
        session.commit()
        order_id = order.id

    def record(name: str) -> None:
        truth = shift.truths[name]
        wc = ids[name]
        recorder = ProductionRecorder()
        with sessions() as session:
            for interval in truth.intervals:
                recorder.record_state(session, wc, interval.state.value, int(interval.start_s * NS))
            t = origin_ts()
            while t < end_ts():
                counts = truth.counts((t, t + COUNT_BUCKET_S))
                if counts.total:
                    recorder.record_count(
                        session,
                        wc,
                        int((t + COUNT_BUCKET_S - 1) * NS),
                        float(counts.total),
                        float(counts.rejects),
                        machine_ideal_cycle_time_s=truth.ideal_cycle_time_s,
                    )
                t += COUNT_BUCKET_S
            session.commit()

    with ThreadPoolExecutor(max_workers=len(MACHINES)) as pool:
        list(pool.map(record, MACHINES))  # list(): re-raise a thread's exception here
    with sessions() as session:
        reason, scrap_qty = SCRAP
        work_orders.report_scrap(session, order_id, scrap_qty, reason, at_ns=int(origin_ts() * NS) + 3 * 3600 * NS)
        session.commit()
    return ids


STOCK = {"STEEL-2MM": [("L-STEEL-1", Decimal(500)), ("L-STEEL-2", Decimal(250))]}
REORDER = ("STEEL-2MM", Decimal(1000), Decimal(2000))


def load_stock(session: Session) -> None:
    inv_master.upsert_material(session, code="STEEL-2MM")
    inv_master.create_location(session, code="WH1", kind="warehouse")
    inv_master.create_location(session, code="WH1-A", kind="zone", parent_code="WH1")
    for material, lots in STOCK.items():
        for lot, quantity in lots:
            inv_ops.receive(
                session, material=material, quantity=quantity, location="WH1-A", lot=lot, actor=Actor("test")
            )
    material, minimum, reorder = REORDER
    inv_master.set_reorder_point(
        session, material_code=material, location_code="WH1", min_quantity=minimum, reorder_quantity=reorder
    )
