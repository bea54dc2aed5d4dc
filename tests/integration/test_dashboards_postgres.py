"""Every SQL panel of the dashboards, run against a real PostgreSQL holding a simulated shift.

The database is migrated with the MES migrations to `heads` (which installs the reporting views
and `edgefab_oee()` of the `dashboards` branch), loaded through the MES services with a
simulated shift (tests/integration/dashboards_shift.py), and each panel's query is expanded with
`dashboards.macros.expand_sql` (what Grafana does with $__timeFrom() & co.) and executed.
Expected values come from the simulator's ground truth and from the MES API's own services.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from dashboards.macros import TimeRange, expand_sql
from mes_lite.db import make_engine, session_factory
from mes_lite.inventory.planning import low_stock
from mes_lite.schema import migrate
from mes_lite.services.oee_query import downtime_pareto_query, oee_report
from mes_lite.spans import Span
from tests import servers
from tests.integration import dashboards_shift as shift_data
from tests.integration.dashboards_shift import MACHINES, NS, TZ, SimulatedShift

pytestmark = pytest.mark.xdist_group("dashboards-postgres")  # one worker sets up the module's servers once

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards"
MICRO_STOP_S = 120.0
LINES = sorted({path.split("/")[2] for _, path in MACHINES.values()})
WINDOW_START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=TZ)  # an hour before the data: night shift's end
WINDOW_END = dt.datetime(2026, 3, 2, 21, 0, tzinfo=TZ)  # the data's end
VARIABLES = {"site": ["dongguan"], "line": LINES, "machine": sorted(MACHINES), "micro_stop_s": ["120"]}


@pytest.fixture(scope="module")
def shift() -> SimulatedShift:
    return SimulatedShift.run()


@pytest.fixture(scope="module")
def mes(shift: SimulatedShift) -> Iterator[Session]:
    """One migrated PostgreSQL database with the simulated shift, shared by this module's tests."""
    with servers.postgres_database() as url:
        migrate(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        shift_data.load_mes(sessions, shift)
        with sessions() as session:
            yield session
        engine.dispose()


def ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * NS


def sql_panels() -> dict[str, str]:
    panels = {}
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["uid"] == "edgefab-postgres":
                    panels[panel["title"]] = target["rawSql"]
    return panels


def run_panel(session: Session, title: str, start: dt.datetime = WINDOW_START, end: dt.datetime = WINDOW_END) -> list:
    query = expand_sql(sql_panels()[title], TimeRange(start, end, "60s", VARIABLES))
    return [dict(row) for row in session.execute(text(query)).mappings()]


# -- OEE: the SQL function equals the API ---------------------------------------------------------

WINDOWS = [
    # (start, end, "now"): whole day; the data window; a window cutting through intervals, both
    # breaks and the planned stop; a window whose "now" is inside it (open intervals end at now)
    (dt.datetime(2026, 3, 2, 0, 0, tzinfo=TZ), dt.datetime(2026, 3, 3, 0, 0, tzinfo=TZ), None),
    (WINDOW_START, WINDOW_END, None),
    (dt.datetime(2026, 3, 2, 12, 13, 7, tzinfo=TZ), dt.datetime(2026, 3, 2, 17, 41, 55, tzinfo=TZ), None),
    (WINDOW_START, dt.datetime(2026, 3, 2, 22, 0, tzinfo=TZ), dt.datetime(2026, 3, 2, 16, 20, 30, tzinfo=TZ)),
]
SCOPES = {"machine": 4, "line": 3, "area": 3, "site": 1}
KPIS = ("planned_busy_s", "actual_production_s", "availability", "effectiveness", "quality_ratio", "oee")


@pytest.mark.parametrize("window", WINDOWS, ids=["day", "data", "cut", "now-inside"])
def test_the_sql_oee_equals_the_api_oee_for_every_machine_line_area_and_site(
    mes: Session, window: tuple[dt.datetime, dt.datetime, dt.datetime | None]
) -> None:
    start, end, now = window
    now = now or dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    api = oee_report(mes, "dongguan", Span(ns(start), ns(end)), MICRO_STOP_S, "UTC", ns(now))
    mes.rollback()  # the API fills its hourly cache: leave the shared session clean
    for group, expected_rows in SCOPES.items():
        rows = mes.execute(
            text("SELECT * FROM edgefab_oee(:start, :end, :group, :micro, :now)"),
            {"start": start, "end": end, "group": group, "micro": MICRO_STOP_S, "now": now},
        ).mappings()
        rows = {r["path"]: r for r in rows}
        assert len(rows) == expected_rows
        for path, row in rows.items():
            members = [r for p, r in api.per_work_center.items() if p == path or p.startswith(path + "/")]
            if group == "site":
                expected = api.total
            elif group == "machine":
                expected = api.per_work_center[path]
            else:
                from mes_lite.oee import compute, sum_inputs

                expected = compute(sum_inputs(m.inputs for m in members))
            for kpi in KPIS:
                assert row[kpi] == pytest.approx(getattr(expected, kpi), rel=1e-9, abs=1e-9), (group, path, kpi)
            assert row["produced_qty"] == expected.inputs.produced_qty
            assert row["good_qty"] == expected.inputs.good_qty
    site = api.total
    assert 0.1 < site.oee < 0.95  # a plausible shift, not an empty one


@pytest.mark.parametrize("micro_stop_s", [0.0, 30.0, 600.0])
def test_the_micro_stop_threshold_moves_the_same_time_in_sql_and_in_the_api(mes: Session, micro_stop_s: float) -> None:
    now = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    api = oee_report(mes, "dongguan", Span(ns(WINDOW_START), ns(WINDOW_END)), micro_stop_s, "UTC", ns(now))
    mes.rollback()
    rows = mes.execute(
        text("SELECT path, micro_stop_s, fault_s, idle_s, oee FROM edgefab_oee(:s, :e, 'machine', :micro, :now)"),
        {"s": WINDOW_START, "e": WINDOW_END, "micro": micro_stop_s, "now": now},
    ).mappings()
    for row in rows:
        expected = api.per_work_center[row["path"]]
        assert row["micro_stop_s"] == pytest.approx(expected.inputs.micro_stop_s, abs=1e-6)
        assert (row["fault_s"], row["idle_s"]) == pytest.approx((expected.inputs.fault_s, expected.inputs.idle_s))
        assert row["oee"] == pytest.approx(expected.oee, rel=1e-9)
        if micro_stop_s == 0:
            assert row["micro_stop_s"] == 0


def test_planned_time_follows_the_shift_calendar_in_the_site_time_zone(mes: Session) -> None:
    # 10:00-21:00 Asia/Shanghai: the day shift 08-20 and the night shift from 20:00 = 11 h planned,
    # lunch 30 min and tea 15 min planned down; imm01 also has a 90 min planned stop
    rows = mes.execute(
        text("SELECT machine, planned_operation_s, planned_down_s FROM edgefab_oee_inputs(:s, :e, 120, :now)"),
        {"s": WINDOW_START, "e": WINDOW_END, "now": dt.datetime(2026, 3, 5, tzinfo=dt.UTC)},
    ).mappings()
    by_machine = {r["machine"]: r for r in rows}
    assert {m: r["planned_operation_s"] for m, r in by_machine.items()} == dict.fromkeys(MACHINES, 11 * 3600.0)
    calendar_down = 45 * 60.0
    assert by_machine["imm01"]["planned_down_s"] >= calendar_down + 90 * 60 - 1e-6
    assert by_machine["cnc01"]["planned_down_s"] >= calendar_down - 1e-6


# -- every SQL panel -------------------------------------------------------------------------------


def test_every_sql_panel_query_returns_what_the_shift_and_the_mes_say(mes: Session, shift: SimulatedShift) -> None:
    checked = set()
    window = Span(ns(WINDOW_START), ns(WINDOW_END))
    api = oee_report(mes, "dongguan", window, MICRO_STOP_S, "UTC")
    mes.rollback()
    truth_window = (WINDOW_START.timestamp(), WINDOW_END.timestamp())

    def check(title: str) -> list[dict]:
        checked.add(title)
        rows = run_panel(mes, title)
        assert rows, f"panel {title!r} returned nothing"
        return rows

    [site] = check("Site OEE (A x P x Q)")
    assert site["OEE"] == pytest.approx(api.total.oee, rel=1e-9)
    assert site["Availability"] == pytest.approx(api.total.availability, rel=1e-9)

    by_machine = {r["machine"]: r["oee"] for r in check("OEE by machine")}
    assert by_machine == {
        "/".join(p.split("/")[2:]): pytest.approx(r.oee, rel=1e-9) for p, r in api.per_work_center.items()
    }
    by_line = {r["line"]: r["oee"] for r in check("OEE by line")}
    assert set(by_line) == {f"dongguan/{line}" for line in LINES}

    now = {r["machine"]: r["state"] for r in check("Machine state now")}
    assert now == {m: truth.intervals[-1].state.value for m, truth in shift.truths.items()}

    timeline = check("Machine states")
    durations: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    per_machine: dict[str, list[dict]] = defaultdict(list)
    for row in timeline:
        per_machine[row["machine"]].append(row)
    for machine, rows in per_machine.items():
        times = [r["time"].timestamp() for r in rows] + [WINDOW_END.timestamp()]
        for row, t0, t1 in zip(rows, times, times[1:], strict=False):
            durations[machine][row["state"]] += t1 - t0
        expected = {s.value: d for s, d in shift.truths[machine].state_durations_s(truth_window).items() if d > 0}
        assert durations[machine] == {s: pytest.approx(d, abs=1e-3) for s, d in expected.items()}, machine

    detail = {r["machine"]: r for r in check("OEE, availability, performance, quality (MES)")}
    for path, result in api.per_work_center.items():
        row = detail["/".join(path.split("/")[2:])]
        assert (row["availability"], row["performance"], row["quality"], row["oee"]) == pytest.approx(
            (result.availability, result.effectiveness, result.quality_ratio, result.oee), rel=1e-9
        )

    totals = {name: shift.truths[name].counts(truth_window) for name in MACHINES}
    produced = sum(c.total for c in totals.values())
    rejects = sum(c.rejects for c in totals.values()) + shift_data.SCRAP[1]
    [count_row] = check("Produced, good, rejects")
    assert (count_row["produced"], count_row["rejects"], count_row["good"]) == (produced, rejects, produced - rejects)

    [order] = check("Count against plan (open work orders)")
    press = totals["press01"]
    assert order["work_order"] == f"{shift_data.ORDER[0]} press01" and order["planned"] == shift_data.ORDER[2]
    assert (order["good"], order["rejects"]) == (press.good - shift_data.SCRAP[1], press.rejects + shift_data.SCRAP[1])

    per_hour = check("Good parts per hour")
    assert sum(r["good"] for r in per_hour) == produced - rejects
    assert all(float(r["time"]) % 3600 == 0 for r in per_hour)

    scrap = {r["reason"]: r["rejects"] for r in check("Scrap by reason")}
    assert scrap == {"burr": shift_data.SCRAP[1], "machine reject counter": rejects - shift_data.SCRAP[1]}

    pareto = {r["reason"]: r["minutes"] * 60 for r in check("Downtime by reason (minutes, planned busy time)")}
    expected_pareto = {bar.reason: bar.duration_s for bar in downtime_pareto_query(mes, "dongguan", window)}
    assert pareto == {k: pytest.approx(v, abs=1e-6) for k, v in expected_pareto.items()}

    [low] = check("Low stock (at or below the reorder point)")
    [alert] = low_stock(mes)
    assert (low["material"], low["location"], low["on_hand"], low["min_quantity"]) == (
        alert.material,
        alert.location,
        float(alert.on_hand),
        float(alert.min_quantity),
    )
    lots = shift_data.STOCK["STEEL-2MM"]
    [material] = check("On hand by material")
    assert material == {"material": "STEEL-2MM", "on_hand": float(sum(q for _, q in lots))}
    by_lot = {r["lot"]: r["quantity"] for r in check("Stock by location and lot")}
    assert by_lot == {lot: float(q) for lot, q in lots}

    assert checked == set(sql_panels()), f"panels without a check: {set(sql_panels()) - checked}"


def test_the_site_line_machine_variables_narrow_each_other(mes: Session) -> None:
    variables = {}
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable.get("datasource", {}).get("uid") == "edgefab-postgres":
                variables[variable["name"]] = variable["query"]
    window = TimeRange(WINDOW_START, WINDOW_END, "60s", {"site": ["dongguan"], "line": ["line1"]})
    values = {
        name: [row[0] for row in mes.execute(text(expand_sql(query, window)))] for name, query in variables.items()
    }
    assert values == {"site": ["dongguan"], "line": LINES, "machine": ["press01", "press02"]}


def test_a_narrowed_machine_variable_narrows_the_oee_panel(mes: Session) -> None:
    query = expand_sql(
        sql_panels()["OEE by machine"],
        TimeRange(WINDOW_START, WINDOW_END, "60s", {**VARIABLES, "line": ["line2"], "machine": ["cnc01"]}),
    )
    assert [row[0] for row in mes.execute(text(query))] == ["line2/cnc01"]
