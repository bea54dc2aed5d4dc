"""Response shapes shared by several routes (OEE results, times)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from mes_lite.oee import OeeResult
from mes_lite.spans import NS_PER_S


def iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return dt.datetime.fromtimestamp(ts_ns / NS_PER_S, dt.UTC).isoformat().replace("+00:00", "Z")


def to_ns(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000


class LossesOut(BaseModel):
    equipment_failure_s: float
    setup_adjustment_s: float
    idling_minor_stops_s: float
    reduced_speed_s: float
    process_defects_s: float
    reduced_yield_s: float
    unaccounted_s: float


class TimesOut(BaseModel):
    planned_operation_s: float
    planned_down_s: float
    planned_busy_s: float
    actual_production_s: float
    production_s: float
    micro_stop_s: float
    setup_s: float
    fault_s: float
    idle_s: float
    unaccounted_s: float


class CountsOut(BaseModel):
    produced_qty: float
    good_qty: float
    reject_qty: float
    startup_reject_qty: float
    ideal_production_s: float


class OeeOut(BaseModel):
    availability: float | None
    effectiveness: float | None
    quality_ratio: float | None
    oee: float | None
    nee: float | None
    technical_efficiency: float | None
    scrap_ratio: float | None
    effectiveness_over_100: bool
    times: TimesOut
    counts: CountsOut
    losses: LossesOut
    warnings: list[str]

    @classmethod
    def of(cls, result: OeeResult) -> OeeOut:
        i = result.inputs
        return cls(
            availability=result.availability,
            effectiveness=result.effectiveness,
            quality_ratio=result.quality_ratio,
            oee=result.oee,
            nee=result.nee,
            technical_efficiency=result.technical_efficiency,
            scrap_ratio=result.scrap_ratio,
            effectiveness_over_100=result.effectiveness_over_100,
            times=TimesOut(
                planned_operation_s=i.planned_operation_s,
                planned_down_s=i.planned_down_s,
                planned_busy_s=result.planned_busy_s,
                actual_production_s=result.actual_production_s,
                production_s=i.production_s,
                micro_stop_s=i.micro_stop_s,
                setup_s=i.setup_s,
                fault_s=i.fault_s,
                idle_s=i.idle_s,
                unaccounted_s=result.unaccounted_s,
            ),
            counts=CountsOut(
                produced_qty=i.produced_qty,
                good_qty=i.good_qty,
                reject_qty=i.reject_qty,
                startup_reject_qty=i.startup_reject_qty,
                ideal_production_s=i.ideal_production_s,
            ),
            losses=LossesOut(**vars(result.losses)),
            warnings=result.warnings,
        )
