"""Evidence from a simulated factory's data equals what the simulators' ground truth says.

Four machines are registered (the demo plant). press01 and cnc01 ran in the last hours, imm01 only
40 days ago, press02 never: the networked rate is 2 / 4. Yields of this 30-day period and the one
before come from the same ground truth the machines produced.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from mes_lite.assessment.evidence import collect_facts
from mes_lite.assessment.index import load_index
from mes_lite.assessment.proposals import YIELD_SAME_BAND, Proposal, propose
from mes_lite.assessment.scoring import score_assessment
from mes_lite.assessment.service import answers_of, start_assessment
from mes_lite.services import work_orders
from mes_lite.services.production import ProductionRecorder
from tests.integration.assessment_factory import (
    CNC01,
    IMM01,
    NS,
    PRESS01,
    PRESS02,
    load_demo_plant,
    receive_steel,
    simulate,
    write_run,
)

DEMO_EDGE_CONFIG = Path(__file__).resolve().parents[2] / "edge_config" / "examples" / "demo-factory.yaml"
DAY_NS = 86_400 * NS
RUN_S = 1200.0


def by_target(proposals: list[Proposal]) -> dict[str, Proposal]:
    return {p.target_id: p for p in proposals}


def evidence_keys(proposal: Proposal) -> list[str]:
    return [e.key for e in proposal.evidence]


@pytest.fixture
def factory(mes_session: Session) -> dict:
    """The demo plant with an order running on press01 and a simulated history; returns the runs and now."""
    now_ns = time.time_ns()
    session = mes_session
    load_demo_plant(session)
    order = work_orders.create_order(session, "WO-7001", "BRK-100", PRESS01, 100_000)
    work_orders.transition(session, order.id, "release")
    work_orders.transition(session, order.id, "start")
    recorder = ProductionRecorder()
    before = now_ns - 40 * DAY_NS
    recent = now_ns - 2 * 3600 * NS
    previous_runs = [
        write_run(session, recorder, PRESS01, simulate("press01", "stamping_press", 11, RUN_S), before),
        write_run(session, recorder, IMM01, simulate("imm01", "injection_moulding", 12, RUN_S), before),
    ]
    current_runs = [
        write_run(session, recorder, PRESS01, simulate("press01", "stamping_press", 21, RUN_S), recent),
        write_run(session, recorder, CNC01, simulate("cnc01", "cnc", 22, RUN_S), recent),
    ]
    receive_steel(session)
    session.commit()
    return {"now_ns": now_ns, "previous": previous_runs, "current": current_runs}


def good_ratio(runs: list) -> float:  # type: ignore[type-arg]
    produced = sum(r.produced for r in runs)
    return (produced - sum(r.rejects for r in runs)) / produced


def test_evidence_from_a_simulated_factory_matches_its_ground_truth_and_seeds_a_new_assessment(
    mes_session: Session, factory: dict
) -> None:
    facts = collect_facts(mes_session, time.time_ns(), edge_config_path=str(DEMO_EDGE_CONFIG))
    proposals = by_target(propose(facts))

    networked = proposals["equipment_networked_rate"]
    assert networked.value == 50.0  # press01, cnc01 live; imm01 (40 days ago) and press02 (never) silent
    silent = next(e for e in networked.evidence if e.key == "machines_silent").params["machines"]
    assert f"acme/{PRESS02}" in str(silent) and f"acme/{IMM01}" in str(silent)
    assert f"acme/{CNC01}" not in str(silent)

    current_rejects = sum(r.rejects for r in factory["current"])
    links = proposals["data_collection_links"].value
    assert links == ["production_control", "equipment"] + (["quality"] if current_rejects else []) + [
        "warehouse",
        "energy",
    ]
    assert facts.energy_meter_tags and facts.energy_meter_tags >= 3  # the demo factory's kWh meters

    assert proposals["equipment"].value == 3  # real-time states + counts + ideal cycle time (OEE)
    assert evidence_keys(proposals["equipment"])[:2] == ["equipment_realtime_yes", "equipment_oee_yes"]
    assert proposals["production_control"].value == 3  # counts booked to the running order
    assert proposals["warehouse"].value == 2

    now, before = good_ratio(factory["current"]), good_ratio(factory["previous"])
    yield_proposal = proposals["monthly_yield_change"]
    params = yield_proposal.evidence[0].params
    assert params["now"] == round(100 * now, 2) and params["before"] == round(100 * before, 2)
    assert params["produced_now"] == sum(r.produced for r in factory["current"])
    expected = "better" if now - before > YIELD_SAME_BAND else "worse" if now - before < -YIELD_SAME_BAND else "same"
    assert yield_proposal.value == expected

    energy = proposals["energy_per_revenue_change"]
    assert energy.value is None and evidence_keys(energy) == ["energy_in_timeseries"]  # not stored in the MES

    # A new assessment starts from these proposals and scores them.
    assessment = start_assessment(mes_session, "Q4")
    mes_session.commit()
    answers = answers_of(assessment)
    assert answers.items["equipment_networked_rate"] == 50.0
    assert answers.scenarios == {"production_control": 3, "equipment": 3, "warehouse": 2} | (
        {"quality": 2} if "quality" in answers.scenarios else {}
    )
    result = score_assessment(load_index(), answers)
    links = len(answers.items["data_collection_links"])  # type: ignore[arg-type]
    yield_points = {"worse": 0, "same": 3.5, "better": 7}[str(answers.items["monthly_yield_change"])]
    assert result.score == pytest.approx(4.5 + 0.7 * links + yield_points)  # 50 % networked -> 4.5 points
    assert result.level == 0  # proposals alone never grade a factory: the rest needs a person


@pytest.mark.parametrize("_mes_database", ["sqlite"], indirect=True)
def test_a_factory_with_master_data_only_is_zero_percent_networked(mes_session: Session) -> None:
    load_demo_plant(mes_session)
    mes_session.commit()
    proposals = by_target(propose(collect_facts(mes_session, time.time_ns())))
    assert proposals["equipment_networked_rate"].value == 0.0
    assert proposals["data_collection_links"].value == []
    assert proposals["equipment"].value is None and proposals["production_control"].value is None
    assert evidence_keys(proposals["monthly_yield_change"]) == ["yield_not_enough_data"]
    assert evidence_keys(proposals["energy_per_revenue_change"]) == ["energy_not_stored"]
