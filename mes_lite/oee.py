"""OEE after ISO 22400-2: pure functions from times and counts to KPIs, losses and a Pareto.

Time model (seconds), per work unit and window:

    POT  planned operation time     shift time from the calendar
    PDOT planned down time          breaks, planned stops, stops given a planned reason
    PBT  planned busy time          POT - PDOT
    APT  actual production time     running, plus minor stops shorter than the micro-stop threshold
    AUST actual unit setup time     changeover, adjustment
    ADET actual unit delay time     malfunction (fault) longer than the threshold
    ADOT actual unit down time      available but not executing (idle, starved, blocked) longer than the threshold
    unaccounted                     PBT - APT - AUST - ADET - ADOT: no data (gateway or network down)

KPIs:  availability A = APT / PBT;  effectiveness E = ideal production time / APT, where ideal
production time = sum of produced quantity x ideal cycle time (ISO: PRI x PQ);  quality ratio
Q = good / produced;  OEE = A x E x Q (= good x ideal cycle time / PBT for one product);
NEE = OEE with setup not counted as lost time: APT / (PBT - AUST) x E x Q;
technical efficiency = APT / (APT + ADET);  scrap ratio = rejects / produced.

Aggregates over machines or windows add the *inputs* (`OeeInputs.__add__`) and compute the KPIs
once: percentages are never averaged. An effectiveness above 100 % (ideal cycle time set too
long, or counts without matching run time) is reported as is and flagged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class OeeInputs:
    """Times (seconds) and counts of one work unit over one window; add them to aggregate."""

    planned_operation_s: float = 0.0
    planned_down_s: float = 0.0
    production_s: float = 0.0
    micro_stop_s: float = 0.0
    setup_s: float = 0.0
    fault_s: float = 0.0
    idle_s: float = 0.0
    produced_qty: float = 0.0
    reject_qty: float = 0.0
    startup_reject_qty: float = 0.0  # part of reject_qty: rejects while starting up (six big losses)
    ideal_production_s: float = 0.0  # sum of produced quantity x ideal cycle time

    def __add__(self, other: OeeInputs) -> OeeInputs:
        return OeeInputs(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def planned_busy_s(self) -> float:
        return max(0.0, self.planned_operation_s - self.planned_down_s)

    @property
    def actual_production_s(self) -> float:
        """APT: running time plus minor stops (those are a speed loss, not an availability loss)."""
        return self.production_s + self.micro_stop_s

    @property
    def good_qty(self) -> float:
        return self.produced_qty - self.reject_qty


def sum_inputs(parts: Iterable[OeeInputs]) -> OeeInputs:
    total = OeeInputs()
    for part in parts:
        total = total + part
    return total


def ideal_production_s(produced_qty: float, ideal_cycle_time_s: float) -> float:
    return produced_qty * ideal_cycle_time_s


@dataclass(frozen=True)
class SixBigLosses:
    """Lost time in seconds of PBT, by the classic six big losses (plus time without data).

    For effectiveness <= 100 %: PBT = fully productive time + all of these.
    """

    equipment_failure_s: float
    setup_adjustment_s: float
    idling_minor_stops_s: float  # long idle (availability) + micro stops (speed)
    reduced_speed_s: float
    process_defects_s: float
    reduced_yield_s: float  # startup rejects
    unaccounted_s: float

    @property
    def total_s(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass(frozen=True)
class OeeResult:
    inputs: OeeInputs
    planned_busy_s: float
    actual_production_s: float
    unaccounted_s: float
    fully_productive_s: float
    availability: float | None
    effectiveness: float | None
    quality_ratio: float | None
    oee: float | None
    nee: float | None
    technical_efficiency: float | None
    scrap_ratio: float | None
    effectiveness_over_100: bool
    losses: SixBigLosses
    warnings: list[str] = field(default_factory=list)


def compute(inputs: OeeInputs) -> OeeResult:
    """Every KPI of one work unit or one aggregate; a KPI whose denominator is zero is None."""
    pbt = inputs.planned_busy_s
    apt = inputs.actual_production_s
    accounted = apt + inputs.setup_s + inputs.fault_s + inputs.idle_s
    unaccounted = max(0.0, pbt - accounted)
    warnings: list[str] = []
    if accounted > pbt + 1e-6:
        warnings.append(f"state time {accounted:.0f} s exceeds planned busy time {pbt:.0f} s")

    availability = _ratio(apt, pbt)
    effectiveness = _ratio(inputs.ideal_production_s, apt)
    if apt == 0 and inputs.ideal_production_s > 0:
        warnings.append("parts were counted but no production time was recorded")
    quality = _ratio(inputs.good_qty, inputs.produced_qty)
    oee = None if None in (availability, effectiveness, quality) else availability * effectiveness * quality  # type: ignore[operator]
    utilisation = _ratio(apt, pbt - inputs.setup_s)
    nee = None if None in (utilisation, effectiveness, quality) else utilisation * effectiveness * quality  # type: ignore[operator]
    over_100 = effectiveness is not None and effectiveness > 1.0 + 1e-9
    if over_100:
        warnings.append(f"effectiveness {effectiveness:.1%} is above 100 %: check the ideal cycle time and the counter")

    cycle_s = _ratio(inputs.ideal_production_s, inputs.produced_qty) or 0.0
    good_ideal_s = inputs.good_qty * cycle_s
    startup = min(inputs.startup_reject_qty, inputs.reject_qty)
    # the speed loss APT - ideal time is split into minor stops (as far as they explain it) and slow running
    speed_loss_s = max(0.0, apt - inputs.ideal_production_s)
    minor_stops_s = min(inputs.micro_stop_s, speed_loss_s)
    losses = SixBigLosses(
        equipment_failure_s=inputs.fault_s,
        setup_adjustment_s=inputs.setup_s,
        idling_minor_stops_s=inputs.idle_s + minor_stops_s,
        reduced_speed_s=speed_loss_s - minor_stops_s,
        process_defects_s=(inputs.reject_qty - startup) * cycle_s,
        reduced_yield_s=startup * cycle_s,
        unaccounted_s=unaccounted,
    )
    return OeeResult(
        inputs=inputs,
        planned_busy_s=pbt,
        actual_production_s=apt,
        unaccounted_s=unaccounted,
        fully_productive_s=good_ideal_s,
        availability=availability,
        effectiveness=effectiveness,
        quality_ratio=quality,
        oee=oee,
        nee=nee,
        technical_efficiency=_ratio(apt, apt + inputs.fault_s),
        scrap_ratio=_ratio(inputs.reject_qty, inputs.produced_qty),
        effectiveness_over_100=over_100,
        losses=losses,
        warnings=warnings,
    )


@dataclass(frozen=True)
class ParetoBar:
    reason: str
    duration_s: float
    stops: int
    share: float
    cumulative_share: float


UNASSIGNED_REASON = "unassigned"


def downtime_pareto(stops: Iterable[tuple[str | None, float]]) -> list[ParetoBar]:
    """Stops `(reason, duration_s)` grouped by reason, longest total first, with cumulative share."""
    totals: dict[str, list[float]] = {}
    for reason, duration_s in stops:
        entry = totals.setdefault(reason or UNASSIGNED_REASON, [0.0, 0])
        entry[0] += duration_s
        entry[1] += 1
    grand = sum(t for t, _ in totals.values())
    bars = []
    cumulative = 0.0
    for reason, (duration_s, count) in sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0])):
        share = duration_s / grand if grand else 0.0
        cumulative += share
        bars.append(ParetoBar(reason, duration_s, int(count), share, min(1.0, cumulative)))
    return bars
