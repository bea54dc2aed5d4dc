"""A simulated factory's history written into the MES through its own services, for the assessment tests.

The simulators' machines (seeded, faster than real time) produce a ground truth; it is written the
way the ingest writes it (`ProductionRecorder.record_state` / `record_count`, source `ingest`),
counts bucketed per minute. The tests compare the assessment's evidence with the ground truth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from mes_lite.inventory import operations
from mes_lite.inventory.ledger import Actor
from mes_lite.inventory.master_data import create_location, upsert_material
from mes_lite.services.master_data import work_center_by_path
from mes_lite.services.master_data_import import import_file
from mes_lite.services.production import ProductionRecorder
from simulators.machine import MACHINE_KINDS, GroundTruth, Machine
from tests.e2e.web_seed import DEMO_PLANT

NS = 1_000_000_000
SITE = "dongguan"
PRESS01 = f"{SITE}/stamping/line1/press01"
PRESS02 = f"{SITE}/stamping/line1/press02"
CNC01 = f"{SITE}/machining/line2/cnc01"
IMM01 = f"{SITE}/moulding/line3/imm01"
BUCKET_S = 60


@dataclass(frozen=True)
class Run:
    path: str
    truth: GroundTruth
    origin_ns: int

    @property
    def produced(self) -> int:
        return len(self.truth.part_times_s)

    @property
    def rejects(self) -> int:
        return len(self.truth.reject_times_s)


def simulate(name: str, kind: str, seed: int, duration_s: float) -> GroundTruth:
    machine = Machine(name, MACHINE_KINDS[kind], seed=seed)
    machine.step_to(duration_s)
    return machine.ground_truth()


def write_run(session: Session, recorder: ProductionRecorder, path: str, truth: GroundTruth, origin_ns: int) -> Run:
    """States at their start times, counts per minute (as the ingest's reorder window would batch them)."""
    work_center = work_center_by_path(session, path)
    for interval in truth.intervals:
        recorder.record_state(session, work_center.id, interval.state.value, origin_ns + int(interval.start_s * NS))
    parts = Counter(int(t // BUCKET_S) for t in truth.part_times_s)
    rejects = Counter(int(t // BUCKET_S) for t in truth.reject_times_s)
    for minute in sorted(parts):
        recorder.record_count(
            session,
            work_center.id,
            origin_ns + (minute + 1) * BUCKET_S * NS - 1,
            produced_qty=parts[minute],
            reject_qty=rejects.get(minute, 0),
            source_key=f"{path}/{origin_ns}/{minute}",
            machine_ideal_cycle_time_s=truth.ideal_cycle_time_s,
        )
    session.flush()
    return Run(path, truth, origin_ns)


def load_demo_plant(session: Session) -> None:
    import_file(session, str(DEMO_PLANT))
    session.flush()


def receive_steel(session: Session) -> None:
    """One goods receipt into a bin: the warehouse module now holds data."""
    upsert_material(session, code="STEEL-2MM", unit="kg")
    create_location(session, code="WH1", kind="warehouse")
    create_location(session, code="WH1-A", kind="zone", parent_code="WH1")
    create_location(session, code="WH1-A-01", kind="bin", parent_code="WH1-A")
    operations.receive(
        session,
        material="STEEL-2MM",
        quantity=Decimal("500"),
        location="WH1-A-01",
        lot="COIL-1",
        actor=Actor("supervisor"),
        reason="coil delivery",
    )
    session.flush()
