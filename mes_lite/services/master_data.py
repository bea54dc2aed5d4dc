"""Master data: plant hierarchy, products, BOM, routing, shift calendar, reasons.

Every entity is created or updated by its natural key (codes, not database ids), so the same
YAML/CSV import can be run again safely and the API and the import share one code path. The
`*In` models are the input contract: strict, with units in names and clear messages.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_lite.models import (
    Area,
    BomLine,
    Break,
    DowntimeCategory,
    DowntimeReason,
    Holiday,
    Line,
    PlannedStop,
    Product,
    RoutingOperation,
    ScrapCategory,
    ScrapReason,
    Shift,
    Site,
    WorkCenter,
)
from mes_lite.services.errors import InvalidInput, NotFound

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SiteIn(Row):
    enterprise: Code
    code: Code
    name: str = ""
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)") from None
        return value


class AreaIn(Row):
    site: Code
    code: Code
    name: str = ""


class LineIn(Row):
    site: Code
    area: Code
    code: Code
    name: str = ""


class WorkCenterIn(Row):
    site: Code
    area: Code
    line: Code
    code: Code
    name: str = ""
    ideal_cycle_time_s: float | None = Field(default=None, gt=0)
    allow_parallel_orders: bool = False
    active: bool = True


class ProductIn(Row):
    code: Code
    name: str = ""
    unit_of_measure: str = Field(default="pcs", min_length=1, max_length=16)
    active: bool = True


class BomLineIn(Row):
    product: Code
    component: Code
    quantity: float = Field(gt=0)


class RoutingIn(Row):
    product: Code
    work_center: str = Field(description="site/area/line/code of the work center")
    ideal_cycle_time_s: float = Field(gt=0)
    sequence: int = 10
    name: str = ""


class BreakIn(Row):
    start: dt.time
    end: dt.time
    name: str = "break"


class ShiftIn(Row):
    site: Code
    name: Code
    start: dt.time
    end: dt.time
    weekdays: str = Field(default="1234567", pattern=r"^[1-7]{1,7}$", description="ISO weekdays, Monday = 1")
    breaks: list[BreakIn] = Field(default_factory=list)
    active: bool = True


class HolidayIn(Row):
    site: Code
    day: dt.date
    name: str = ""


class PlannedStopIn(Row):
    """Planned down time: maintenance, trials, cleaning; for one work center or (without one) the whole site."""

    site: Code
    work_center: str | None = Field(default=None, description="site/area/line/machine; empty = the whole site")
    start: dt.datetime
    end: dt.datetime
    reason: Code | None = None
    note: str = ""


class DowntimeReasonIn(Row):
    code: Code
    name: str = ""
    parent: Code | None = None
    planned: bool = False
    category: Literal[tuple(c.value for c in DowntimeCategory)] = DowntimeCategory.OTHER.value  # type: ignore[valid-type]
    active: bool = True


class ScrapReasonIn(Row):
    code: Code
    name: str = ""
    category: Literal[tuple(c.value for c in ScrapCategory)] = ScrapCategory.PRODUCTION.value  # type: ignore[valid-type]
    active: bool = True


def _one(session: Session, statement, what: str, field: str):  # type: ignore[no-untyped-def]
    found = session.scalar(statement)
    if found is None:
        raise NotFound(f"{what} does not exist", field)
    return found


def site_by_code(session: Session, code: str, field: str = "site") -> Site:
    return _one(session, select(Site).where(Site.code == code), f"site {code!r}", field)


def area_by_codes(session: Session, site: str, area: str, field: str = "area") -> Area:
    statement = select(Area).join(Site).where(Site.code == site, Area.code == area)
    return _one(session, statement, f"area {site}/{area}", field)


def line_by_codes(session: Session, site: str, area: str, line: str, field: str = "line") -> Line:
    statement = select(Line).join(Area).join(Site).where(Site.code == site, Area.code == area, Line.code == line)
    return _one(session, statement, f"line {site}/{area}/{line}", field)


def work_center_by_path(session: Session, path: str, field: str = "work_center") -> WorkCenter:
    """A work center by `site/area/line/code` (or `enterprise/site/area/line/code`, the UNS prefix)."""
    parts = path.strip("/").split("/")
    if len(parts) == 5:
        parts = parts[1:]
    if len(parts) != 4:
        raise InvalidInput(f"{path!r} is not a work center path: write site/area/line/machine", field)
    site, area, line, code = parts
    statement = (
        select(WorkCenter)
        .join(Line)
        .join(Area)
        .join(Site)
        .where(Site.code == site, Area.code == area, Line.code == line, WorkCenter.code == code)
    )
    return _one(session, statement, f"work center {path}", field)


def product_by_code(session: Session, code: str, field: str = "product") -> Product:
    return _one(session, select(Product).where(Product.code == code), f"product {code!r}", field)


def upsert_site(session: Session, row: SiteIn) -> Site:
    site = session.scalar(select(Site).where(Site.code == row.code)) or Site(code=row.code)
    site.enterprise, site.name, site.timezone = row.enterprise, row.name, row.timezone
    session.add(site)
    session.flush()
    return site


def upsert_area(session: Session, row: AreaIn) -> Area:
    site = site_by_code(session, row.site)
    area = session.scalar(select(Area).where(Area.site_id == site.id, Area.code == row.code))
    area = area or Area(site_id=site.id, code=row.code)
    area.name = row.name
    session.add(area)
    session.flush()
    return area


def upsert_line(session: Session, row: LineIn) -> Line:
    area = area_by_codes(session, row.site, row.area)
    line = session.scalar(select(Line).where(Line.area_id == area.id, Line.code == row.code))
    line = line or Line(area_id=area.id, code=row.code)
    line.name = row.name
    session.add(line)
    session.flush()
    return line


def upsert_work_center(session: Session, row: WorkCenterIn) -> WorkCenter:
    line = line_by_codes(session, row.site, row.area, row.line)
    wc = session.scalar(select(WorkCenter).where(WorkCenter.line_id == line.id, WorkCenter.code == row.code))
    wc = wc or WorkCenter(line_id=line.id, code=row.code)
    wc.name, wc.ideal_cycle_time_s = row.name, row.ideal_cycle_time_s
    wc.allow_parallel_orders, wc.active = row.allow_parallel_orders, row.active
    session.add(wc)
    session.flush()
    return wc


def upsert_product(session: Session, row: ProductIn) -> Product:
    product = session.scalar(select(Product).where(Product.code == row.code)) or Product(code=row.code)
    product.name, product.unit_of_measure, product.active = row.name, row.unit_of_measure, row.active
    session.add(product)
    session.flush()
    return product


def upsert_bom_line(session: Session, row: BomLineIn) -> BomLine:
    if row.product == row.component:
        raise InvalidInput(f"product {row.product!r} cannot be its own component", "component")
    product = product_by_code(session, row.product)
    component = product_by_code(session, row.component, "component")
    bom = session.scalar(select(BomLine).where(BomLine.product_id == product.id, BomLine.component_id == component.id))
    bom = bom or BomLine(product_id=product.id, component_id=component.id)
    bom.quantity = row.quantity
    session.add(bom)
    session.flush()
    return bom


def upsert_routing(session: Session, row: RoutingIn) -> RoutingOperation:
    product = product_by_code(session, row.product)
    wc = work_center_by_path(session, row.work_center)
    op = session.scalar(
        select(RoutingOperation).where(
            RoutingOperation.product_id == product.id, RoutingOperation.work_center_id == wc.id
        )
    )
    op = op or RoutingOperation(product_id=product.id, work_center_id=wc.id)
    op.ideal_cycle_time_s, op.sequence, op.name = row.ideal_cycle_time_s, row.sequence, row.name
    session.add(op)
    session.flush()
    return op


def upsert_shift(session: Session, row: ShiftIn) -> Shift:
    if row.start == row.end:
        raise InvalidInput("a shift's start and end must differ (end before start means it runs over midnight)", "end")
    site = site_by_code(session, row.site)
    shift = session.scalar(select(Shift).where(Shift.site_id == site.id, Shift.name == row.name))
    shift = shift or Shift(site_id=site.id, name=row.name)
    shift.start_time, shift.end_time, shift.weekdays, shift.active = row.start, row.end, row.weekdays, row.active
    shift.breaks = [Break(name=b.name, start_time=b.start, end_time=b.end) for b in row.breaks]
    session.add(shift)
    session.flush()
    return shift


def upsert_holiday(session: Session, row: HolidayIn) -> Holiday:
    site = site_by_code(session, row.site)
    holiday = session.scalar(select(Holiday).where(Holiday.site_id == site.id, Holiday.day == row.day))
    holiday = holiday or Holiday(site_id=site.id, day=row.day)
    holiday.name = row.name
    session.add(holiday)
    session.flush()
    return holiday


def _aware_ns(moment: dt.datetime, tz_name: str) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz_name))
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def upsert_planned_stop(session: Session, row: PlannedStopIn) -> PlannedStop:
    """Same site, work center and start = the same stop (updated); times without a zone are site-local."""
    site = site_by_code(session, row.site)
    tz_name = site.timezone or "UTC"
    start_ns, end_ns = _aware_ns(row.start, tz_name), _aware_ns(row.end, tz_name)
    if end_ns <= start_ns:
        raise InvalidInput("a planned stop must end after it starts", "end")
    wc_id = work_center_by_path(session, row.work_center).id if row.work_center else None
    reason_id = None
    if row.reason:
        reason = _one(
            session, select(DowntimeReason).where(DowntimeReason.code == row.reason), f"reason {row.reason!r}", "reason"
        )
        reason_id = reason.id
    stop = session.scalar(
        select(PlannedStop).where(
            PlannedStop.site_id == site.id,
            PlannedStop.work_center_id.is_(None) if wc_id is None else PlannedStop.work_center_id == wc_id,
            PlannedStop.start_ns == start_ns,
        )
    )
    stop = stop or PlannedStop(site_id=site.id, work_center_id=wc_id, start_ns=start_ns)
    stop.end_ns, stop.reason_id, stop.note = end_ns, reason_id, row.note
    session.add(stop)
    session.flush()
    return stop


def upsert_downtime_reason(session: Session, row: DowntimeReasonIn) -> DowntimeReason:
    reason = session.scalar(select(DowntimeReason).where(DowntimeReason.code == row.code))
    reason = reason or DowntimeReason(code=row.code)
    parent_id = None
    if row.parent:
        parent = _one(
            session, select(DowntimeReason).where(DowntimeReason.code == row.parent), f"reason {row.parent!r}", "parent"
        )
        if parent.code == row.code:
            raise InvalidInput("a reason cannot be its own parent", "parent")
        parent_id = parent.id
    reason.name, reason.parent_id, reason.planned = row.name, parent_id, row.planned
    reason.category, reason.active = row.category, row.active
    session.add(reason)
    session.flush()
    return reason


def upsert_scrap_reason(session: Session, row: ScrapReasonIn) -> ScrapReason:
    reason = session.scalar(select(ScrapReason).where(ScrapReason.code == row.code)) or ScrapReason(code=row.code)
    reason.name, reason.category, reason.active = row.name, row.category, row.active
    session.add(reason)
    session.flush()
    return reason


SECTIONS: dict[str, tuple[type[Row], object]] = {
    # in dependency order: an import applies the sections in this order
    "sites": (SiteIn, upsert_site),
    "areas": (AreaIn, upsert_area),
    "lines": (LineIn, upsert_line),
    "work_centers": (WorkCenterIn, upsert_work_center),
    "products": (ProductIn, upsert_product),
    "bom_lines": (BomLineIn, upsert_bom_line),
    "routing": (RoutingIn, upsert_routing),
    "shifts": (ShiftIn, upsert_shift),
    "holidays": (HolidayIn, upsert_holiday),
    "downtime_reasons": (DowntimeReasonIn, upsert_downtime_reason),
    "planned_stops": (PlannedStopIn, upsert_planned_stop),
    "scrap_reasons": (ScrapReasonIn, upsert_scrap_reason),
}
