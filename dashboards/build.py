"""The four edgefab dashboards, defined in Python and written as Grafana JSON (`python -m dashboards.build`).

The JSON files next to this module are what Grafana provisions and what `edgefab dashboards push`
uploads; they are generated from here so that every panel follows the same conventions (data
source uids, variables, no AngularJS panels) and a test can check that they are up to date.
Edit here, run the module, commit both.

Conventions:
- data sources by uid: `edgefab-influxdb` (InfluxQL) for tag series, `edgefab-postgres` for MES data;
- InfluxDB: measurement = machine, tags enterprise/site/area/line/machine, `quality` only on
  uncertain/bad points (so `"quality" = ''` keeps good values), field = tag name (docs/sinks.md);
- PostgreSQL: the `edgefab_*` views and `edgefab_oee(...)` of `mes_lite.reporting_views`;
- variables site / line / machine (multi-value, with All), and a hidden constant
  `micro_stop_s` that must equal the MES setting EDGEFAB_MES_MICRO_STOP_THRESHOLD_S.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INFLUX = {"type": "influxdb", "uid": "edgefab-influxdb"}
POSTGRES = {"type": "grafana-postgresql-datasource", "uid": "edgefab-postgres"}
SCHEMA_VERSION = 39
PANEL_TYPES = {"timeseries", "stat", "state-timeline", "bargauge", "table", "barchart", "piechart"}

STATE_COLOURS = {
    "running": "green",
    "idle": "yellow",
    "starved": "orange",
    "blocked": "purple",
    "planned_stop": "blue",
    "fault": "red",
}

PG_WHERE = "site IN ($site) AND line IN ($line) AND machine IN ($machine)"
INFLUX_WHERE = '"site" =~ /^$site$/ AND "line" =~ /^$line$/ AND "quality" = \'\''


def _pg_variable(name: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": name.capitalize(),
        "type": "query",
        "datasource": POSTGRES,
        "query": query,
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _influx_variable(name: str, query: str) -> dict[str, Any]:
    return {**_pg_variable(name, query), "datasource": INFLUX}


def pg_variables() -> list[dict[str, Any]]:
    return [
        _pg_variable("site", "SELECT DISTINCT site FROM edgefab_work_centers WHERE active ORDER BY 1"),
        _pg_variable(
            "line", "SELECT DISTINCT line FROM edgefab_work_centers WHERE active AND site IN ($site) ORDER BY 1"
        ),
        _pg_variable(
            "machine",
            "SELECT DISTINCT machine FROM edgefab_work_centers WHERE active AND site IN ($site) AND line IN ($line) ORDER BY 1",
        ),
        micro_stop_constant(),
    ]


def influx_variables() -> list[dict[str, Any]]:
    return [
        _influx_variable("site", 'SHOW TAG VALUES WITH KEY = "site"'),
        _influx_variable("line", 'SHOW TAG VALUES WITH KEY = "line" WHERE "site" =~ /^$site$/'),
        _influx_variable(
            "machine", 'SHOW TAG VALUES WITH KEY = "machine" WHERE "site" =~ /^$site$/ AND "line" =~ /^$line$/'
        ),
        micro_stop_constant(),
    ]


def micro_stop_constant() -> dict[str, Any]:
    return {"name": "micro_stop_s", "type": "constant", "hide": 2, "query": "120", "label": "micro-stop threshold (s)"}


def sql_target(sql: str, fmt: str = "table", ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": POSTGRES, "editorMode": "code", "format": fmt, "rawQuery": True, "rawSql": sql}


def influx_target(query: str, ref: str = "A", alias: str = "$tag_machine") -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": INFLUX,
        "query": query,
        "rawQuery": True,
        "resultFormat": "time_series",
        "alias": alias,
    }


def panel(kind: str, title: str, grid: tuple[int, int, int, int], targets: list[dict], **extra: Any) -> dict[str, Any]:
    if kind not in PANEL_TYPES:
        raise ValueError(f"{kind} is not one of the allowed panel types")
    x, y, w, h = grid
    datasource = targets[0]["datasource"]
    result: dict[str, Any] = {
        "type": kind,
        "title": title,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": datasource,
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    for key, value in extra.items():
        if key == "defaults":
            result["fieldConfig"]["defaults"].update(value)
        else:
            result[key] = value
    return result


def percent(decimals: int = 1) -> dict[str, Any]:
    return {
        "unit": "percentunit",
        "decimals": decimals,
        "min": 0,
        "max": 1,
        "thresholds": {
            "mode": "absolute",
            "steps": [
                {"color": "red", "value": None},
                {"color": "orange", "value": 0.6},
                {"color": "green", "value": 0.85},
            ],
        },
    }


def oee_bars(title: str, grid: tuple[int, int, int, int], sql: str) -> dict[str, Any]:
    """Horizontal bars of the `oee` column of `sql`, one per row (machine, line...)."""
    return panel(
        "bargauge",
        title,
        grid,
        [sql_target(sql)],
        defaults=percent(),
        options={
            "orientation": "horizontal",
            "displayMode": "gradient",
            "reduceOptions": {"values": True, "calcs": [], "fields": "/^oee$/"},
        },
    )


def state_mappings() -> dict[str, Any]:
    return {
        "mappings": [
            {"type": "value", "options": {s: {"color": c, "index": i, "text": s}}}
            for i, (s, c) in enumerate(STATE_COLOURS.items())
        ]
    }


def dashboard(uid: str, title: str, panels: list[dict], variables: list[dict], time_from: str = "now-12h") -> dict:
    for index, p in enumerate(panels, start=1):
        p["id"] = index
    return {
        "uid": uid,
        "title": title,
        "tags": ["edgefab"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "timezone": "browser",
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["edgefab"], "asDropdown": True, "title": "edgefab"}],
        "panels": panels,
    }


OEE_CALL = "edgefab_oee($__timeFrom(), $__timeTo(), '{group}', $micro_stop_s)"


def factory_overview() -> dict:
    site_oee = (
        'SELECT oee AS "OEE", availability AS "Availability", effectiveness AS "Performance", '
        f'quality_ratio AS "Quality" FROM {OEE_CALL.format(group="site")} WHERE site IN ($site)'
    )
    by_machine = (
        f"SELECT line || '/' || machine AS machine, oee FROM {OEE_CALL.format(group='machine')} "
        f"WHERE {PG_WHERE} ORDER BY line, machine"
    )
    by_line = (
        f"SELECT site || '/' || line AS line, oee FROM {OEE_CALL.format(group='line')} "
        "WHERE site IN ($site) AND line IN ($line) ORDER BY site, line"
    )
    state_now = (
        "SELECT line, machine, state, reason, since, duration_s FROM edgefab_machine_state_now "
        f"WHERE {PG_WHERE} ORDER BY line, machine"
    )
    timeline = (
        "SELECT to_timestamp(greatest(start_ns, $__unixEpochNanoFrom()) / 1e9) AS time, machine, state FROM edgefab_state_intervals "
        f"WHERE {PG_WHERE} AND start_ns < $__unixEpochNanoTo() "
        "AND (end_ns IS NULL OR end_ns > $__unixEpochNanoFrom()) ORDER BY 1"
    )
    panels = [
        panel("stat", "Site OEE (A x P x Q)", (0, 0, 24, 4), [sql_target(site_oee)], defaults=percent()),
        oee_bars("OEE by machine", (0, 4, 12, 9), by_machine),
        oee_bars("OEE by line", (12, 4, 12, 9), by_line),
        panel(
            "table",
            "Machine state now",
            (0, 13, 12, 9),
            [sql_target(state_now)],
            defaults={"custom": {"cellOptions": {"type": "color-background"}}, **state_mappings()},
            description="The latest state interval of every machine from the MES; an open interval is the current state.",
        ),
        panel(
            "state-timeline",
            "Machine states",
            (12, 13, 12, 9),
            [sql_target(timeline)],
            defaults=state_mappings(),
            transformations=[{"id": "partitionByValues", "options": {"fields": ["machine"], "keepFields": False}}],
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
    ]
    return dashboard("edgefab-factory-overview", "edgefab / Factory overview", panels, pg_variables())


def machine_detail() -> dict:
    measurement = "/^$machine$/"

    def series(field: str) -> str:
        return (
            f'SELECT mean("{field}") FROM {measurement} WHERE {INFLUX_WHERE} AND $timeFilter '
            'GROUP BY time($__interval), "machine" fill(none)'
        )

    temperature = (
        f"SELECT mean(/^(oil_temp|spindle_temp|barrel_temp|temperature)$/) FROM {measurement} "
        f'WHERE {INFLUX_WHERE} AND $timeFilter GROUP BY time($__interval), "machine" fill(none)'
    )
    parts = (
        f'SELECT non_negative_difference(last("total_count")) FROM {measurement} '
        f'WHERE {INFLUX_WHERE} AND $timeFilter GROUP BY time($__interval), "machine" fill(none)'
    )
    state = (
        f'SELECT last("state") FROM {measurement} WHERE {INFLUX_WHERE} AND $timeFilter '
        'GROUP BY time($__interval), "machine" fill(previous)'
    )
    oee = (
        "SELECT line || '/' || machine AS machine, availability, effectiveness AS performance, quality_ratio AS quality, oee "
        f"FROM {OEE_CALL.format(group='machine')} WHERE {PG_WHERE} ORDER BY line, machine"
    )
    panels = [
        panel(
            "state-timeline",
            "State (from the PLC)",
            (0, 0, 24, 6),
            [influx_target(state)],
            defaults=state_mappings(),
            options={"showValue": "auto", "mergeValues": True},
        ),
        panel("timeseries", "Temperature", (0, 6, 12, 8), [influx_target(temperature)], defaults={"unit": "celsius"}),
        panel("timeseries", "Power", (12, 6, 12, 8), [influx_target(series("power"))], defaults={"unit": "kwatt"}),
        panel(
            "timeseries",
            "Parts per interval",
            (0, 14, 12, 8),
            [influx_target(parts)],
            defaults={"unit": "none", "custom": {"drawStyle": "bars", "fillOpacity": 60}},
            description="Increase of the total counter per interval; a counter reset or roll-over counts nothing.",
        ),
        panel(
            "bargauge",
            "OEE, availability, performance, quality (MES)",
            (12, 14, 12, 8),
            [sql_target(oee)],
            defaults=percent(),
            options={
                "orientation": "horizontal",
                "displayMode": "basic",
                "reduceOptions": {"values": True, "calcs": [], "fields": ""},
            },
        ),
    ]
    return dashboard("edgefab-machine-detail", "edgefab / Machine detail", panels, influx_variables(), "now-6h")


def production() -> dict:
    against_plan = (
        "SELECT work_order || ' ' || machine AS work_order, planned_qty AS planned, good_qty AS good, reject_qty AS rejects "
        f"FROM edgefab_work_order_progress WHERE {PG_WHERE} "
        "AND status IN ('released', 'running', 'paused', 'completed') ORDER BY work_order"
    )
    per_hour = (
        "SELECT $__timeGroupAlias(time, '1h'), machine AS metric, sum(good_qty) AS good "
        f"FROM edgefab_production_counts WHERE $__timeFilter(time) AND {PG_WHERE} GROUP BY 1, 2 ORDER BY 1"
    )
    totals = (
        "SELECT sum(produced_qty) AS produced, sum(good_qty) AS good, sum(reject_qty) AS rejects "
        f"FROM edgefab_production_counts WHERE $__timeFilter(time) AND {PG_WHERE}"
    )
    scrap = (
        "SELECT reason, sum(reject_qty) AS rejects FROM edgefab_scrap "
        f"WHERE $__timeFilter(time) AND {PG_WHERE} GROUP BY reason ORDER BY 2 DESC, 1"
    )
    clipped = "(least(coalesce(end_ns, $__unixEpochNanoTo()), $__unixEpochNanoTo()) - greatest(start_ns, $__unixEpochNanoFrom()))"
    downtime = (
        f"SELECT coalesce(reason, 'unassigned (' || state || ')') AS reason, sum({clipped})::float8 / 60e9 AS minutes "
        "FROM edgefab_state_intervals WHERE category IN ('fault', 'idle') AND planned_busy "
        f"AND start_ns < $__unixEpochNanoTo() AND (end_ns IS NULL OR end_ns > $__unixEpochNanoFrom()) AND {PG_WHERE} "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    panels = [
        panel("stat", "Produced, good, rejects", (0, 0, 24, 4), [sql_target(totals)], defaults={"unit": "none"}),
        panel(
            "barchart",
            "Count against plan (open work orders)",
            (0, 4, 12, 9),
            [sql_target(against_plan)],
            options={"xField": "work_order", "orientation": "horizontal", "stacking": "none"},
        ),
        panel(
            "timeseries",
            "Good parts per hour",
            (12, 4, 12, 9),
            [sql_target(per_hour, "time_series")],
            defaults={"custom": {"drawStyle": "bars", "fillOpacity": 60}},
        ),
        panel(
            "piechart",
            "Scrap by reason",
            (0, 13, 12, 9),
            [sql_target(scrap)],
            options={
                "reduceOptions": {"values": True, "calcs": [], "fields": "/^rejects$/"},
                "pieType": "donut",
                "legend": {"displayMode": "table", "placement": "right", "values": ["value"]},
            },
        ),
        panel(
            "barchart",
            "Downtime by reason (minutes, planned busy time)",
            (12, 13, 12, 9),
            [sql_target(downtime)],
            options={"xField": "reason", "orientation": "horizontal"},
        ),
    ]
    return dashboard("edgefab-production", "edgefab / Production", panels, pg_variables(), "now-24h")


def warehouse() -> dict:
    on_hand = (
        "SELECT material, location, lot, quantity, unit, expiry_date FROM edgefab_stock_on_hand "
        "ORDER BY material, location, lot"
    )
    by_material = (
        "SELECT material, sum(quantity) AS on_hand FROM edgefab_stock_on_hand GROUP BY material ORDER BY material"
    )
    low = (
        "SELECT material, coalesce(location, 'all locations') AS location, on_hand, min_quantity, reorder_quantity, unit "
        "FROM edgefab_stock_low ORDER BY material, location"
    )
    panels = [
        panel(
            "table",
            "Low stock (at or below the reorder point)",
            (0, 0, 24, 6),
            [sql_target(low)],
            defaults={
                "custom": {"cellOptions": {"type": "color-text"}},
                "color": {"mode": "fixed", "fixedColor": "red"},
            },
        ),
        panel(
            "bargauge",
            "On hand by material",
            (0, 6, 10, 10),
            [sql_target(by_material)],
            options={
                "orientation": "horizontal",
                "displayMode": "basic",
                "reduceOptions": {"values": True, "calcs": [], "fields": "/^on_hand$/"},
            },
        ),
        panel("table", "Stock by location and lot", (10, 6, 14, 10), [sql_target(on_hand)]),
    ]
    return dashboard("edgefab-warehouse", "edgefab / Warehouse", panels, [], "now-7d")


DASHBOARDS = {
    "factory-overview.json": factory_overview,
    "machine-detail.json": machine_detail,
    "production.json": production,
    "warehouse.json": warehouse,
}


def render(builder) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(builder(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, builder in DASHBOARDS.items():
        (HERE / name).write_text(render(builder), encoding="utf-8")
        print(f"wrote dashboards/{name}")


if __name__ == "__main__":
    main()
