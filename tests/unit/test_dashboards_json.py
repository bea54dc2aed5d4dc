"""The dashboard JSON files: current Grafana only, known data sources, variables, and up to date with build.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboards import build

DASHBOARD_DIR = Path(build.__file__).resolve().parent
FILES = sorted(DASHBOARD_DIR.glob("*.json"))
ANGULAR = {"graph", "singlestat", "table-old", "grafana-piechart-panel", "grafana-worldmap-panel"}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_the_four_dashboards_and_each_is_what_build_py_writes() -> None:
    assert [p.name for p in FILES] == sorted(build.DASHBOARDS)
    for path in FILES:
        assert path.read_text(encoding="utf-8") == build.render(build.DASHBOARDS[path.name]), (
            f"{path.name} is stale: run python -m dashboards.build"
        )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_dashboard_uses_only_current_panel_types_and_the_edgefab_data_sources(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"].startswith("edgefab-") and len(dashboard["uid"]) <= 40
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["type"] in build.PANEL_TYPES and panel["type"] not in ANGULAR, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] in (build.INFLUX, build.POSTGRES), panel["title"]
            query = target.get("rawSql") or target.get("query")
            assert (query and "$" in query) or path.name == "warehouse.json", panel["title"]


@pytest.mark.parametrize("name", ["factory-overview.json", "machine-detail.json", "production.json"])
def test_plant_dashboards_have_site_line_and_machine_variables_that_narrow_each_other(name: str) -> None:
    variables = {v["name"]: v for v in load(DASHBOARD_DIR / name)["templating"]["list"]}
    assert {"site", "line", "machine"} <= set(variables)
    assert "$site" in variables["line"]["query"]
    assert "$site" in variables["machine"]["query"] and "$line" in variables["machine"]["query"]
    assert all(variables[n]["multi"] and variables[n]["includeAll"] for n in ("site", "line", "machine"))
    assert variables["micro_stop_s"]["type"] == "constant"


def test_dashboard_uids_are_unique_across_files() -> None:
    uids = [load(p)["uid"] for p in FILES]
    assert len(uids) == len(set(uids))


def test_a_panel_type_grafana_no_longer_ships_is_refused() -> None:
    with pytest.raises(ValueError, match="graph is not one of the allowed panel types"):
        build.panel("graph", "old", (0, 0, 1, 1), [build.sql_target("SELECT 1")])
