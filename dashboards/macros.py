"""Grafana's query macros and template variables, expanded the way Grafana expands them.

Grafana rewrites a panel's query before it reaches the database. The tests run every panel's
query against a real InfluxDB and PostgreSQL, so they need the same rewriting; this module is
that rewriting for the macros the edgefab dashboards use (and nothing more):

InfluxQL (Grafana's InfluxDB data source, InfluxQL mode):
    $timeFilter            time >= <from>ms and time <= <to>ms
    $__interval            the group-by interval, e.g. 60s
    /^$var$/               a multi-value variable as a regex alternation: /^(a|b)$/ (values regex-escaped)

SQL (Grafana's PostgreSQL data source):
    $__timeFrom()          '2026-03-02T03:00:00Z'
    $__timeTo()            '2026-03-02T13:00:00Z'
    $__timeFilter(col)     col BETWEEN '<from>' AND '<to>'
    $__unixEpochNanoFrom() / $__unixEpochNanoTo()   nanoseconds since the epoch
    $__timeGroupAlias(col, '1h')   floor(extract(epoch from col)/3600)*3600 AS "time"
    $var                   a variable as single-quoted, comma-separated values: 'a','b'

Grafana's own expansion has more cases (custom formats `${var:csv}`, `$__all` values); the
dashboards avoid them so that this list is the whole contract.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class TimeRange:
    """A dashboard's time range and the group-by interval Grafana picked for a panel."""

    start: dt.datetime
    end: dt.datetime
    interval: str = "60s"
    variables: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")

    @property
    def from_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def to_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def duration_s(text: str) -> float:
    match = _DURATION.match(text.strip().strip("'\""))
    if not match:
        raise ValueError(f"{text!r} is not a Grafana interval like 1h or 30s")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def _iso(moment: dt.datetime) -> str:
    text = moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z").replace(".000Z", "Z")


def _variables(query: str, values: Mapping[str, Sequence[str]], render) -> str:  # type: ignore[no-untyped-def]
    # longest names first so that $machine is not taken for $mach + "ine"
    for name in sorted(values, key=len, reverse=True):
        query = re.sub(r"\$\{" + re.escape(name) + r"\}|\$" + re.escape(name) + r"\b", render(values[name]), query)
    return query


def expand_influxql(query: str, time_range: TimeRange) -> str:
    query = query.replace("$timeFilter", f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms")
    query = query.replace("$__interval", time_range.interval)

    def regex(values: Sequence[str]) -> str:
        escaped = [re.escape(v).replace("/", r"\/") for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return _variables(query, time_range.variables, regex)


def expand_sql(query: str, time_range: TimeRange) -> str:
    start, end = _iso(time_range.start), _iso(time_range.end)
    query = query.replace("$__timeFrom()", f"'{start}'").replace("$__timeTo()", f"'{end}'")
    query = query.replace("$__unixEpochNanoFrom()", str(time_range.from_ms * 1_000_000))
    query = query.replace("$__unixEpochNanoTo()", str(time_range.to_ms * 1_000_000))
    query = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1).strip()} BETWEEN '{start}' AND '{end}'", query)

    def group(match: re.Match[str]) -> str:
        column, interval = (part.strip() for part in match.group(1).split(",", 1))
        seconds = int(duration_s(interval))
        return f'floor(extract(epoch from {column})/{seconds})*{seconds} AS "time"'

    query = re.sub(r"\$__timeGroupAlias\(([^)]+)\)", group, query)

    def quoted(values: Sequence[str]) -> str:
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)

    return _variables(query, time_range.variables, quoted)
