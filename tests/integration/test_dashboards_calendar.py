"""The shift calendar in SQL (`edgefab_calendar_ns`) equals the MES's Python calendar, on PostgreSQL.

Grafana's OEE depends on planned operation and planned down time, which the API gets from
`shift_calendar.expand_calendar`. Here a plant with the awkward cases (a site in a time zone
with daylight saving, shifts on some weekdays only, a night shift over midnight with a break
after midnight, a holiday, site-wide and machine-specific planned stops, and a 24/7 site
without shifts) is compared on worked windows and on random windows (hypothesis).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mes_lite import reporting_views
from mes_lite.db import make_engine, session_factory
from mes_lite.models import PlannedStop, Site, WorkCenter
from mes_lite.schema import alembic_config, migrate
from mes_lite.services import master_data_import
from mes_lite.services.calendar_query import calendar_for
from mes_lite.services.oee_query import inputs_per_work_center, resolve_scope
from mes_lite.spans import NS_PER_S, Span
from tests import servers

pytestmark = pytest.mark.xdist_group("dashboards-calendar")  # one worker sets up the module's servers once

BERLIN = ZoneInfo("Europe/Berlin")
PLANT = """
sites:
  - {enterprise: acme, code: berlin, timezone: Europe/Berlin}
  - {enterprise: acme, code: plant24, timezone: Asia/Shanghai}
areas: [{site: berlin, code: a1}, {site: plant24, code: a2}]
lines: [{site: berlin, area: a1, code: l1}, {site: plant24, area: a2, code: l2}]
work_centers:
  - {site: berlin, area: a1, line: l1, code: m1}
  - {site: berlin, area: a1, line: l1, code: m2}
  - {site: plant24, area: a2, line: l2, code: m3}
shifts:
  - {site: berlin, name: early, start: "06:00", end: "14:00", weekdays: "12345", breaks: [{start: "09:00", end: "09:30"}]}
  - {site: berlin, name: late, start: "14:00", end: "22:00", weekdays: "123456"}
  - {site: berlin, name: night, start: "22:00", end: "06:00", weekdays: "1234", breaks: [{start: "02:00", end: "02:20"}]}
holidays:
  - {site: berlin, day: "2026-03-30"}
"""
# 2026-03-29 02:00 Europe/Berlin: clocks go forward (a 23-hour Sunday)
DAYS = (dt.datetime(2026, 3, 26, tzinfo=BERLIN), dt.datetime(2026, 4, 2, tzinfo=BERLIN))


def ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * NS_PER_S


@pytest.fixture(scope="module")
def plant() -> Iterator[tuple[Session, dict[str, tuple[int, int]]]]:
    """The plant above with two planned stops; yields a session and machine -> (site id, work center id)."""
    with servers.postgres_database() as url:
        migrate(url)
        engine = make_engine(url)
        with session_factory(engine)() as session:
            master_data_import.import_text(session, PLANT, "plant.yaml", "yaml")
            machines = {}
            for code, wc_id in session.execute(select(WorkCenter.code, WorkCenter.id)):
                site_code = "plant24" if code == "m3" else "berlin"
                machines[code] = (session.scalar(select(Site.id).where(Site.code == site_code)), wc_id)
            berlin = machines["m1"][0]
            stops = [  # site-wide (all Berlin machines) and one for m2 only, crossing the DST change
                (None, dt.datetime(2026, 3, 27, 10, 0, tzinfo=BERLIN), dt.datetime(2026, 3, 27, 11, 30, tzinfo=BERLIN)),
                ("m2", dt.datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN), dt.datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN)),
                ("m2", dt.datetime(2026, 3, 31, 13, 0, tzinfo=BERLIN), dt.datetime(2026, 3, 31, 15, 0, tzinfo=BERLIN)),
            ]
            for machine, start, end in stops:
                wc = machines[machine][1] if machine else None
                session.add(PlannedStop(site_id=berlin, work_center_id=wc, start_ns=ns(start), end_ns=ns(end)))
            session.commit()
            yield session, machines
        engine.dispose()


def sql_calendar(session: Session, site_id: int, wc_id: int, window: Span) -> tuple[float, float]:
    pot, pdot = session.execute(
        text("SELECT * FROM edgefab_calendar_ns(:site, :wc, :s, :e)"),
        {"site": site_id, "wc": wc_id, "s": window.start_ns, "e": window.end_ns},
    ).one()
    return pot / NS_PER_S, pdot / NS_PER_S


def python_calendar(session: Session, site_id: int, wc_id: int, window: Span) -> tuple[float, float]:
    calendar = calendar_for(session, wc_id, site_id, window)
    return calendar.planned_operation_s, calendar.planned_down_s


def test_worked_windows_across_daylight_saving_holiday_weekend_and_planned_stops(plant) -> None:  # type: ignore[no-untyped-def]
    session, machines = plant
    berlin, m1 = machines["m1"]
    # Sunday 29 March (DST, 23 h): no early shift (weekdays 12345), no late (123456), no night (1234);
    # Saturday's late shift ends 22:00 Saturday: nothing planned on Sunday at all
    sunday = Span(ns(dt.datetime(2026, 3, 29, tzinfo=BERLIN)), ns(dt.datetime(2026, 3, 30, tzinfo=BERLIN)))
    assert sql_calendar(session, berlin, m1, sunday) == python_calendar(session, berlin, m1, sunday) == (0.0, 0.0)
    # Thursday 26 March: early 8 h (30 min break), late 8 h, night from 22:00 (2 h today; its 02:00 break is tomorrow)
    # plus Wednesday's night shift until 06:00 with its break at 02:00-02:20
    thursday = Span(ns(dt.datetime(2026, 3, 26, tzinfo=BERLIN)), ns(dt.datetime(2026, 3, 27, tzinfo=BERLIN)))
    assert sql_calendar(session, berlin, m1, thursday) == (24 * 3600.0, 50 * 60.0)
    # Monday 30 March is a holiday: no shift starts that day; Sunday's night shift does not exist (weekdays 1234)
    holiday = Span(ns(dt.datetime(2026, 3, 30, tzinfo=BERLIN)), ns(dt.datetime(2026, 3, 31, tzinfo=BERLIN)))
    assert sql_calendar(session, berlin, m1, holiday) == python_calendar(session, berlin, m1, holiday) == (0.0, 0.0)
    # a week for every machine, with the planned stops
    week = Span(ns(DAYS[0]), ns(DAYS[1]))
    for site_id, wc_id in machines.values():
        assert sql_calendar(session, site_id, wc_id, week) == pytest.approx(
            python_calendar(session, site_id, wc_id, week)
        )
    m3_site, m3 = machines["m3"]
    assert sql_calendar(session, m3_site, m3, week) == (week.duration_s, 0.0)  # no shifts: a 24/7 plant


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start_min=st.integers(min_value=0, max_value=7 * 24 * 60),
    length_min=st.integers(min_value=1, max_value=3 * 24 * 60),
    second=st.integers(min_value=0, max_value=59),
    machine=st.sampled_from(["m1", "m2", "m3"]),
)
def test_any_window_gives_the_same_calendar_in_sql_and_python(plant, start_min, length_min, second, machine) -> None:  # type: ignore[no-untyped-def]
    session, machines = plant
    site_id, wc_id = machines[machine]
    start = ns(DAYS[0]) + (start_min * 60 + second) * NS_PER_S
    window = Span(start, start + length_min * 60 * NS_PER_S)
    assert sql_calendar(session, site_id, wc_id, window) == pytest.approx(
        python_calendar(session, site_id, wc_id, window), abs=1e-9
    )


def test_oee_inputs_of_a_line_without_data_are_the_calendar_of_the_api(plant) -> None:  # type: ignore[no-untyped-def]
    session, _ = plant
    start, end = DAYS
    api = inputs_per_work_center(session, resolve_scope(session, "berlin"), Span(ns(start), ns(end)), 120.0)
    rows = session.execute(
        text(
            "SELECT work_center_id, planned_operation_s, planned_down_s FROM edgefab_oee_inputs(:s, :e) WHERE site = 'berlin'"
        ),
        {"s": start, "e": end},
    ).all()
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        wc: pytest.approx((i.planned_operation_s, i.planned_down_s)) for wc, i in api.items()
    }


def test_the_dashboards_branch_downgrades_cleanly_and_upgrades_again(postgres_url: str) -> None:
    migrate(postgres_url)
    config = alembic_config(postgres_url)
    names = "SELECT count(*) FROM pg_proc WHERE proname LIKE 'edgefab_%'"
    views = "SELECT count(*) FROM pg_views WHERE viewname LIKE 'edgefab_%'"
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text(names)) == len(reporting_views.OBJECTS)
            assert connection.scalar(text(views)) == len(reporting_views.VIEWS)
        command.downgrade(config, "dashboards@base")
        with engine.connect() as connection:
            assert connection.scalar(text(names)) == 0 and connection.scalar(text(views)) == 0
        migrate(postgres_url)
        with engine.connect() as connection:
            assert connection.scalar(text(names)) == len(reporting_views.OBJECTS)
    finally:
        engine.dispose()
