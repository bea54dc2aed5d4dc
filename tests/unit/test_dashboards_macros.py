"""Worked examples of Grafana's macro expansion as the dashboard tests use it."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboards.macros import TimeRange, duration_s, expand_influxql, expand_sql

START = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 2, 13, 0, 0, 250000, tzinfo=dt.UTC)


def test_sql_time_macros_become_literals_and_epoch_nanoseconds() -> None:
    query = (
        "SELECT * FROM edgefab_oee($__timeFrom(), $__timeTo()) "
        "WHERE $__timeFilter(time) AND ts_ns >= $__unixEpochNanoFrom() AND ts_ns < $__unixEpochNanoTo()"
    )
    assert expand_sql(query, TimeRange(START, END)) == (
        "SELECT * FROM edgefab_oee('2026-03-02T03:00:00Z', '2026-03-02T13:00:00.250Z') "
        "WHERE time BETWEEN '2026-03-02T03:00:00Z' AND '2026-03-02T13:00:00.250Z' "
        "AND ts_ns >= 1772420400000000000 AND ts_ns < 1772456400250000000"
    )


def test_sql_time_group_alias_floors_to_the_interval_in_epoch_seconds() -> None:
    assert expand_sql("SELECT $__timeGroupAlias(time, '1h'), 1", TimeRange(START, END)) == (
        'SELECT floor(extract(epoch from time)/3600)*3600 AS "time", 1'
    )


def test_sql_variables_are_quoted_lists_and_quotes_are_doubled() -> None:
    values = {"machine": ["press01", "o'brien"], "mach": ["x"], "micro_stop_s": ["120"]}
    query = "WHERE machine IN ($machine) AND m = ${mach} AND t = $micro_stop_s"
    assert expand_sql(query, TimeRange(START, END, variables=values)) == (
        "WHERE machine IN ('press01','o''brien') AND m = 'x' AND t = '120'"
    )


def test_influxql_time_filter_interval_and_regex_variables() -> None:
    values = {"machine": ["press01", "cnc.01"], "site": ["dongguan"]}
    query = (
        'SELECT mean("power") FROM /^$machine$/ WHERE "site" =~ /^$site$/ AND $timeFilter GROUP BY time($__interval)'
    )
    assert expand_influxql(query, TimeRange(START, END, "30s", values)) == (
        'SELECT mean("power") FROM /^(press01|cnc\\.01)$/ WHERE "site" =~ /^dongguan$/ '
        "AND time >= 1772420400000ms and time <= 1772456400250ms GROUP BY time(30s)"
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h", 3600), ("'15m'", 900), ("30s", 30), ("500ms", 0.5), ("1d", 86400)]
)
def test_grafana_intervals_in_seconds(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


def test_a_naive_time_range_and_a_bad_interval_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeRange(dt.datetime(2026, 3, 2), END)
    with pytest.raises(ValueError, match="not a Grafana interval"):
        duration_s("an hour")
