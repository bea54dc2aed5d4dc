"""Every InfluxQL panel and variable of the dashboards, run against a real InfluxDB (1.x, InfluxQL).

The simulated shift's tag series (one snapshot a minute of four machines, tests/integration/
dashboards_shift.py) are written as the gateway's InfluxDB sink encodes them; each query is
expanded with `dashboards.macros.expand_influxql` ($timeFilter, $__interval, /^$var$/) and sent
to InfluxDB's /query. With a 60 s interval every group holds exactly one snapshot, so each value
must equal the snapshot the simulator produced.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest

from dashboards.macros import TimeRange, expand_influxql
from tests import servers
from tests.integration import dashboards_shift as shift_data
from tests.integration.dashboards_shift import MACHINES, NS, SimulatedShift

pytestmark = pytest.mark.xdist_group("dashboards-influx")  # one worker sets up the module's servers once

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards"
DB = "factory"
LINES = sorted({path.split("/")[2] for _, path in MACHINES.values()})
TEMPERATURE = {"press01": "oil_temp", "press02": "oil_temp", "cnc01": "spindle_temp", "imm01": "barrel_temp"}


@pytest.fixture(scope="module")
def shift() -> SimulatedShift:
    return SimulatedShift.run()


@pytest.fixture(scope="module")
def influx(shift: SimulatedShift, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with servers.influxdb1_server(tmp_path_factory.mktemp("influx-dash")) as server:
        server.create_database(DB)
        server.write_lines(DB, shift_data.influx_lines(shift))
        yield server


def influx_panels() -> dict[str, str]:
    panels = {}
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["uid"] == "edgefab-influxdb":
                    panels[panel["title"]] = target["query"]
    return panels


def time_range(**variables: list[str]) -> TimeRange:
    start = dt.datetime.fromtimestamp(shift_data.origin_ts(), dt.UTC)
    end = dt.datetime.fromtimestamp(shift_data.end_ts(), dt.UTC)
    defaults = {"site": ["dongguan"], "line": LINES, "machine": sorted(MACHINES)}
    return TimeRange(start, end, "60s", {**defaults, **variables})


def series_by_machine(influx: servers.InfluxDB1, query: str) -> dict[str, list[tuple[int, object]]]:
    """machine -> [(time ns, value)], without the empty groups InfluxDB returns as null."""
    answer = influx.query(query, DB)
    result = answer["results"][0]
    assert "error" not in result, result
    by_machine: dict[str, list[tuple[int, object]]] = {}
    for s in result.get("series", []):
        rows = by_machine.setdefault(s["tags"]["machine"], [])
        for t, *values in s["values"]:
            present = [v for v in values if v is not None]  # mean(/regex/) gives a column per matching field
            assert len(present) <= 1, (s["columns"], values)
            if present:
                rows.append((int(t), present[0]))
    return by_machine


def snapshots(shift: SimulatedShift, machine: str, key: str) -> list[tuple[int, object]]:
    return [(int(t * NS), values[key]) for t, values in shift.samples[machine]]


def test_every_influxql_panel_returns_the_simulated_values(influx: servers.InfluxDB1, shift: SimulatedShift) -> None:
    panels = influx_panels()
    checked = set()

    def run(title: str) -> dict[str, list[tuple[int, object]]]:
        checked.add(title)
        result = series_by_machine(influx, expand_influxql(panels[title], time_range()))
        assert set(result) == set(MACHINES), title
        return result

    states = run("State (from the PLC)")
    end_ns = int(shift_data.end_ts() * NS)  # $timeFilter includes the end: fill(previous) carries the last state there
    for machine in MACHINES:
        expected = snapshots(shift, machine, "state")
        assert states[machine] == [*expected, (end_ns, expected[-1][1])], machine

    temperatures = run("Temperature")
    for machine, field in TEMPERATURE.items():
        expected = snapshots(shift, machine, field)
        assert temperatures[machine] == [(t, pytest.approx(v)) for t, v in expected], machine

    power = run("Power")
    for machine in MACHINES:
        assert power[machine] == [(t, pytest.approx(v)) for t, v in snapshots(shift, machine, "power")]

    parts = run("Parts per interval")
    for machine in MACHINES:
        counter = [v for _, v in snapshots(shift, machine, "total_count")]
        increases = [b - a for a, b in itertools.pairwise(counter)]
        assert [v for _, v in parts[machine]] == pytest.approx(increases), machine
        assert sum(v for _, v in parts[machine]) == counter[-1] - counter[0]

    assert checked == set(panels), f"panels without a check: {set(panels) - checked}"


def test_a_machine_variable_selects_only_that_machines_series(influx: servers.InfluxDB1) -> None:
    query = expand_influxql(influx_panels()["Power"], time_range(line=["line2"], machine=["cnc01"]))
    assert set(series_by_machine(influx, query)) == {"cnc01"}
    two = expand_influxql(influx_panels()["Power"], time_range(machine=["press01", "press02"]))
    assert set(series_by_machine(influx, two)) == {"press01", "press02"}


def test_the_site_line_machine_variables_come_from_the_tags(influx: servers.InfluxDB1) -> None:
    variables = {
        v["name"]: v["query"]
        for v in json.loads((DASHBOARD_DIR / "machine-detail.json").read_text())["templating"]["list"]
        if v.get("datasource", {}).get("uid") == "edgefab-influxdb"
    }

    def values(name: str, **chosen: list[str]) -> list[str]:
        answer = influx.query(expand_influxql(variables[name], time_range(**chosen)), DB)["results"][0]
        return sorted({value for s in answer.get("series", []) for _, value in s["values"]})

    assert values("site") == ["dongguan"]
    assert values("line", site=["dongguan"]) == LINES
    assert values("machine", site=["dongguan"], line=["line1"]) == ["press01", "press02"]
    assert values("machine", site=["dongguan"], line=["line1", "line3"]) == ["imm01", "press01", "press02"]


def test_uncertain_and_bad_values_stay_out_of_the_trends(influx: servers.InfluxDB1) -> None:
    # the sink tags non-good samples with quality=...; the panels keep only good values
    t = int(shift_data.origin_ts() + 30) * NS  # between two snapshots: its own 60 s group
    influx.write_lines(
        DB,
        f"press01,area=stamping,enterprise=acme,line=line1,machine=press01,quality=bad,site=dongguan power=999.0 {t}",
    )
    power = series_by_machine(influx, expand_influxql(influx_panels()["Power"], time_range(machine=["press01"])))
    assert 999.0 not in [v for _, v in power["press01"]]
