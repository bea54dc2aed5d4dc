"""The shift calendar of a work center as `CalendarSpans`, from the database, cached briefly.

The ingest asks for calendar edges on every state change; the rules change rarely, so they are
cached per site for `ttl_s` (a calendar edit is picked up within that time).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mes_lite.models import Area, Holiday, Line, PlannedStop, Shift, Site, WorkCenter
from mes_lite.shift_calendar import BreakRule, CalendarSpans, ShiftRule, expand_calendar
from mes_lite.spans import Span


@dataclass(frozen=True)
class SiteCalendar:
    site_id: int
    timezone: str
    shifts: tuple[ShiftRule, ...]
    holidays: frozenset[dt.date]


def load_site_calendar(session: Session, site_id: int, default_tz: str = "UTC") -> SiteCalendar:
    site = session.get(Site, site_id)
    shifts = session.scalars(select(Shift).where(Shift.site_id == site_id, Shift.active.is_(True))).all()
    rules = tuple(
        ShiftRule(
            s.name,
            s.start_time,
            s.end_time,
            s.weekdays,
            tuple(BreakRule(b.start_time, b.end_time) for b in s.breaks),
        )
        for s in shifts
    )
    holidays = frozenset(session.scalars(select(Holiday.day).where(Holiday.site_id == site_id)))
    return SiteCalendar(site_id, (site.timezone if site else None) or default_tz, rules, holidays)


def site_id_of(session: Session, work_center_id: int) -> int:
    return session.execute(
        select(Area.site_id).join(Line, Line.area_id == Area.id).join(WorkCenter).where(WorkCenter.id == work_center_id)
    ).scalar_one()


def planned_stops(session: Session, site_id: int, work_center_id: int | None, window: Span) -> list[Span]:
    statement = select(PlannedStop.start_ns, PlannedStop.end_ns).where(
        PlannedStop.site_id == site_id, PlannedStop.start_ns < window.end_ns, PlannedStop.end_ns > window.start_ns
    )
    if work_center_id is not None:
        statement = statement.where(
            or_(PlannedStop.work_center_id.is_(None), PlannedStop.work_center_id == work_center_id)
        )
    else:
        statement = statement.where(PlannedStop.work_center_id.is_(None))
    return [Span(a, b) for a, b in session.execute(statement)]


class CalendarCache:
    """Calendars per site (rules) and work center (planned stops), reloaded after `ttl_s`."""

    def __init__(self, default_tz: str = "UTC", ttl_s: float = 60.0) -> None:
        self.default_tz = default_tz
        self.ttl_s = ttl_s
        self._sites: dict[int, tuple[float, SiteCalendar]] = {}
        self._site_of: dict[int, int] = {}
        self._stops: dict[int, tuple[float, list[Span]]] = {}

    def site_calendar(self, session: Session, site_id: int) -> SiteCalendar:
        cached = self._sites.get(site_id)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        calendar = load_site_calendar(session, site_id, self.default_tz)
        self._sites[site_id] = (time.monotonic(), calendar)
        return calendar

    def for_work_center(self, session: Session, work_center_id: int, window: Span) -> CalendarSpans:
        site_id = self._site_of.get(work_center_id)
        if site_id is None:
            site_id = self._site_of[work_center_id] = site_id_of(session, work_center_id)
        calendar = self.site_calendar(session, site_id)
        cached = self._stops.get(work_center_id)
        if cached is None or time.monotonic() - cached[0] >= self.ttl_s:
            everything = Span(0, 2**62)
            cached = self._stops[work_center_id] = (
                time.monotonic(),
                planned_stops(session, site_id, work_center_id, everything),
            )
        return expand_calendar(calendar.shifts, window, calendar.timezone, calendar.holidays, cached[1])

    def invalidate(self) -> None:
        self._sites.clear()
        self._stops.clear()


def calendar_for(
    session: Session, work_center_id: int | None, site_id: int, window: Span, default_tz: str = "UTC"
) -> CalendarSpans:
    """Uncached: the calendar of a site (and a work center's planned stops) over `window`."""
    calendar = load_site_calendar(session, site_id, default_tz)
    stops = planned_stops(session, site_id, work_center_id, window)
    return expand_calendar(calendar.shifts, window, calendar.timezone, calendar.holidays, stops)
