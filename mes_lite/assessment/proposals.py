"""Proposed answers from the factory's facts, each with the evidence a person can check and override.

Pure: `propose(facts)` -> one `Proposal` per answer edgefab can know. A proposal with `value=None`
still carries evidence, saying why edgefab cannot answer (e.g. energy use is not stored in the MES).
Evidence lines are catalogue keys (`assessment.evidence.<key>`) with parameters, so both languages
show the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mes_lite.assessment.evidence import FactoryFacts

YIELD_SAME_BAND = 0.005  # |change| below 0.5 percentage points counts as "the same"
MAX_LISTED_MACHINES = 5


@dataclass(frozen=True)
class EvidenceLine:
    key: str  # assessment.evidence.<key>
    params: dict[str, str | int | float] = field(default_factory=dict)


@dataclass(frozen=True)
class Proposal:
    target: str  # "item" | "scenario"
    target_id: str
    value: float | str | list[str] | int | None  # None: edgefab cannot propose, see the evidence
    evidence: list[EvidenceLine]

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "target_id": self.target_id,
            "value": self.value,
            "evidence": [{"key": e.key, "params": e.params} for e in self.evidence],
        }

    @classmethod
    def from_json(cls, data: dict) -> Proposal:
        return cls(
            data["target"],
            data["target_id"],
            data.get("value"),
            [EvidenceLine(e["key"], dict(e.get("params", {}))) for e in data.get("evidence", [])],
        )


def _hours(seconds: float) -> int:
    return round(seconds / 3600)


def _days(seconds: float) -> int:
    return round(seconds / 86400)


def networked_rate(facts: FactoryFacts) -> Proposal:
    """生产设备联网率 = machines that sent data in the live window / machines registered (percent)."""
    registered, live = facts.machines_registered, facts.machines_live
    if registered == 0:
        return Proposal("item", "equipment_networked_rate", None, [EvidenceLine("no_machines")])
    rate = round(100.0 * live / registered, 1)
    evidence = [
        EvidenceLine("machines_live", {"live": live, "registered": registered, "hours": _hours(facts.live_window_s)})
    ]
    silent = [m.path for m in facts.machines if not m.live]
    if silent:
        shown = ", ".join(silent[:MAX_LISTED_MACHINES]) + (" …" if len(silent) > MAX_LISTED_MACHINES else "")
        evidence.append(EvidenceLine("machines_silent", {"machines": shown}))
    return Proposal("item", "equipment_networked_rate", rate, evidence)


def data_collection_links(facts: FactoryFacts) -> Proposal:
    """The links edgefab itself collects: production counts, machine states, rejects, stock moves, energy meters."""
    days = _days(facts.period_s)
    links: list[str] = []
    evidence: list[EvidenceLine] = []
    if facts.automatic_counts:
        links.append("production_control")
        evidence.append(EvidenceLine("link_counts", {"rows": facts.automatic_counts, "days": days}))
    if facts.automatic_state_intervals:
        links.append("equipment")
        evidence.append(EvidenceLine("link_states", {"rows": facts.automatic_state_intervals, "days": days}))
    if facts.automatic_reject_counts:
        links.append("quality")
        evidence.append(EvidenceLine("link_rejects", {"rows": facts.automatic_reject_counts, "days": days}))
    elif facts.scrap_reports:
        links.append("quality")
        evidence.append(EvidenceLine("link_scrap_reports", {"rows": facts.scrap_reports, "days": days}))
    if facts.stock_moves:
        links.append("warehouse")
        evidence.append(EvidenceLine("link_stock_moves", {"rows": facts.stock_moves, "days": days}))
    elif facts.stock_moves is None:
        evidence.append(EvidenceLine("link_no_warehouse"))
    if facts.energy_meter_tags:
        links.append("energy")
        evidence.append(EvidenceLine("link_energy_tags", {"tags": facts.energy_meter_tags}))
    else:
        evidence.append(EvidenceLine("link_energy_unknown"))
    evidence.append(EvidenceLine("links_others_by_hand"))
    order = ("production_control", "equipment", "quality", "warehouse", "energy")
    return Proposal("item", "data_collection_links", [link for link in order if link in links], evidence)


def equipment_scenario(facts: FactoryFacts) -> Proposal:
    """设备管理: 三级 needs real-time parameter collection AND OEE statistics; states alone give 二级."""
    realtime = facts.automatic_state_intervals > 0 and facts.machines_live > 0
    oee = realtime and facts.automatic_counts > 0 and facts.machines_with_ideal_cycle_time > 0
    evidence = [
        EvidenceLine("equipment_realtime_yes" if realtime else "equipment_realtime_no", {"live": facts.machines_live}),
        EvidenceLine(
            "equipment_oee_yes" if oee else "equipment_oee_no",
            {"machines": facts.machines_with_ideal_cycle_time},
        ),
    ]
    if facts.reasons_assigned:
        evidence.append(EvidenceLine("equipment_reasons", {"stops": facts.reasons_assigned}))
    level = 3 if oee else 2 if realtime else None
    return Proposal("scenario", "equipment", level, evidence)


def production_control_scenario(facts: FactoryFacts) -> Proposal:
    """生产管控: work orders with machine counts booked to them -> 三级; work orders alone -> 二级."""
    if not facts.work_orders:
        return Proposal("scenario", "production_control", None, [EvidenceLine("no_work_orders")])
    evidence = [EvidenceLine("work_orders", {"orders": facts.work_orders, "days": _days(facts.period_s)})]
    if facts.automatic_counts:
        evidence.append(EvidenceLine("work_orders_counted", {"rows": facts.automatic_counts}))
        return Proposal("scenario", "production_control", 3, evidence)
    return Proposal("scenario", "production_control", 2, evidence)


def quality_scenario(facts: FactoryFacts) -> Proposal:
    """质量管理: rejects recorded digitally (counter or scrap reports with reasons) -> 二级."""
    if not (facts.automatic_reject_counts or facts.scrap_reports):
        return Proposal("scenario", "quality", None, [EvidenceLine("no_quality_records")])
    return Proposal(
        "scenario",
        "quality",
        2,
        [EvidenceLine("quality_records", {"rejects": facts.automatic_reject_counts, "reports": facts.scrap_reports})],
    )


def warehouse_scenario(facts: FactoryFacts) -> Proposal:
    """仓储物流: a stock ledger with lots kept in the MES -> 二级."""
    if not facts.stock_moves:
        return Proposal("scenario", "warehouse", None, [EvidenceLine("no_stock_moves")])
    return Proposal(
        "scenario",
        "warehouse",
        2,
        [EvidenceLine("link_stock_moves", {"rows": facts.stock_moves, "days": _days(facts.period_s)})],
    )


def monthly_yield_change(facts: FactoryFacts) -> Proposal:
    """月均产品合格率变化: good / produced this period vs the period before (±0.5 points = the same)."""
    now, before = facts.yield_current.good_ratio, facts.yield_previous.good_ratio
    days = _days(facts.period_s)
    if now is None or before is None:
        return Proposal("item", "monthly_yield_change", None, [EvidenceLine("yield_not_enough_data", {"days": days})])
    change = now - before
    trend = "better" if change > YIELD_SAME_BAND else "worse" if change < -YIELD_SAME_BAND else "same"
    evidence = [
        EvidenceLine(
            "yield_change",
            {
                "now": round(100 * now, 2),
                "before": round(100 * before, 2),
                "days": days,
                "produced_now": round(facts.yield_current.produced_qty),
                "produced_before": round(facts.yield_previous.produced_qty),
            },
        )
    ]
    return Proposal("item", "monthly_yield_change", trend, evidence)


def energy_per_revenue(facts: FactoryFacts) -> Proposal:
    """每百元营收综合能耗: the MES stores no energy readings and no revenue, so edgefab only says where the data is."""
    if facts.energy_meter_tags:
        return Proposal(
            "item",
            "energy_per_revenue_change",
            None,
            [EvidenceLine("energy_in_timeseries", {"tags": facts.energy_meter_tags})],
        )
    return Proposal("item", "energy_per_revenue_change", None, [EvidenceLine("energy_not_stored")])


def propose(facts: FactoryFacts) -> list[Proposal]:
    """Every proposal edgefab can make, in questionnaire order."""
    return [
        networked_rate(facts),
        data_collection_links(facts),
        energy_per_revenue(facts),
        monthly_yield_change(facts),
        production_control_scenario(facts),
        quality_scenario(facts),
        equipment_scenario(facts),
        warehouse_scenario(facts),
    ]


def proposed_answers(proposals: list[Proposal]) -> tuple[dict[str, object], dict[str, object]]:
    """(items, scenarios) of the proposals that have a value: the first answers of a new assessment."""
    items = {p.target_id: p.value for p in proposals if p.target == "item" and p.value is not None}
    scenarios = {p.target_id: p.value for p in proposals if p.target == "scenario" and p.value is not None}
    return items, scenarios
