"""Push the edgefab data sources and dashboards to an existing Grafana, idempotently (grafana-client).

Everything is looked up by uid first: a data source that exists is updated in place (PUT by uid),
one that does not is created; a dashboard whose stored JSON already equals ours is left alone,
otherwise it is saved with `overwrite` (same uid: Grafana updates it, never a duplicate). The
folder is found or created by uid. Running the push twice changes nothing the second time
except the data sources (their secrets cannot be read back to compare, so they are re-sent).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from dashboards.build import INFLUX, POSTGRES

DASHBOARD_DIR = Path(__file__).resolve().parent
VOLATILE = ("id", "version", "iteration")
"""Dashboard keys Grafana sets by itself: ignored when comparing ours with the stored one."""


class PushError(Exception):
    """A one-line reason the push could not finish."""


@dataclass(frozen=True)
class DataSourceOptions:
    influx_url: str | None = None
    influx_database: str = "factory"
    influx_token: str | None = None
    postgres_url: str | None = None


@dataclass
class PushReport:
    actions: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.actions.append(text)


def influx_datasource(options: DataSourceOptions) -> dict[str, Any]:
    """InfluxQL data source; a token is sent as `Authorization: Token ...` (InfluxDB 2.x/3.x with DBRP)."""
    source: dict[str, Any] = {
        "name": "edgefab InfluxDB",
        "uid": INFLUX["uid"],
        "type": INFLUX["type"],
        "access": "proxy",
        "url": options.influx_url,
        "jsonData": {"dbName": options.influx_database, "httpMode": "POST"},
    }
    if options.influx_token:
        source["jsonData"]["httpHeaderName1"] = "Authorization"
        source["secureJsonData"] = {"httpHeaderValue1": f"Token {options.influx_token}"}
    return source


def postgres_datasource(url: str) -> dict[str, Any]:
    """From `postgresql://user:password@host:port/database` (a `+driver` suffix is ignored)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres") or not parts.hostname or not parts.path.strip("/"):
        raise PushError(f"--postgres-url {url!r} must look like postgresql://user:password@host:5432/database")
    source: dict[str, Any] = {
        "name": "edgefab MES",
        "uid": POSTGRES["uid"],
        "type": POSTGRES["type"],
        "access": "proxy",
        "url": f"{parts.hostname}:{parts.port or 5432}",
        "user": unquote(parts.username or ""),
        "jsonData": {"database": parts.path.strip("/"), "sslmode": "disable", "postgresVersion": 1500},
    }
    if parts.password:
        source["secureJsonData"] = {"password": unquote(parts.password)}
    return source


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[dict[str, Any]]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise PushError(f"no dashboard JSON in {directory}")
    return [json.loads(path.read_text(encoding="utf-8")) for path in files]


def _status(error: GrafanaException) -> int:
    return int(getattr(error, "status_code", 0) or 0)


def _describe(error: Exception) -> str:
    if isinstance(error, GrafanaException):
        code = _status(error)
        message = str(error.message or "").strip().splitlines()[0] if error.message else ""
        if code == 401:
            return "Grafana refused the token (401): create a service-account token with the Editor or Admin role"
        if code == 403:
            return "the token may not do this (403): the service account needs the Admin role for data sources"
        return f"Grafana answered {code}: {message}" if code else message or type(error).__name__
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _get_or_none(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except GrafanaException as error:
        if _status(error) == 404:
            return None
        raise


def _same_dashboard(stored: dict[str, Any], ours: dict[str, Any]) -> bool:
    strip = lambda d: {k: v for k, v in d.items() if k not in VOLATILE}  # noqa: E731
    return strip(stored) == strip(ours)


def push(
    api: GrafanaApi,
    options: DataSourceOptions,
    folder_title: str = "edgefab",
    dashboards: list[dict[str, Any]] | None = None,
) -> PushReport:
    """Create or update data sources, the folder and the dashboards; raises PushError with one line."""
    report = PushReport()
    try:
        _push_datasources(api, options, report)
        folder_uid = _ensure_folder(api, folder_title, report)
        for dashboard in dashboards if dashboards is not None else load_dashboards():
            _push_dashboard(api, dashboard, folder_uid, report)
    except GrafanaException as error:
        raise PushError(_describe(error)) from error
    except PushError:
        raise
    except Exception as error:  # network errors of the HTTP library: say it in one line
        raise PushError(f"cannot reach Grafana: {_describe(error)}") from error
    return report


def _push_datasources(api: GrafanaApi, options: DataSourceOptions, report: PushReport) -> None:
    wanted = {
        INFLUX["uid"]: (influx_datasource(options) if options.influx_url else None, "--influx-url"),
        POSTGRES["uid"]: (
            postgres_datasource(options.postgres_url) if options.postgres_url else None,
            "--postgres-url",
        ),
    }
    for uid, (source, flag) in wanted.items():
        existing = _get_or_none(lambda uid=uid: api.datasource.get_datasource_by_uid(uid))
        if source is None:
            if existing is None:
                raise PushError(f"data source {uid} does not exist on this Grafana: give {flag} to create it")
            report.add(f"data source {uid}: kept")
            continue
        if existing is None:
            api.datasource.create_datasource(source)
            report.add(f"data source {uid}: created")
        else:
            api.datasource.update_datasource_by_uid(uid, {**source, "id": existing.get("id")})
            report.add(f"data source {uid}: updated")


def _ensure_folder(api: GrafanaApi, title: str, report: PushReport) -> str:
    uid = "edgefab" if title == "edgefab" else "edgefab-" + "".join(c if c.isalnum() else "-" for c in title.lower())
    uid = uid[:40]
    if _get_or_none(lambda: api.folder.get_folder(uid)) is None:
        api.folder.create_folder(title, uid=uid)
        report.add(f"folder {title}: created")
    return uid


def _push_dashboard(api: GrafanaApi, dashboard: dict[str, Any], folder_uid: str, report: PushReport) -> None:
    uid = dashboard["uid"]
    stored = _get_or_none(lambda: api.dashboard.get_dashboard(uid))
    if stored is not None:
        same_folder = stored.get("meta", {}).get("folderUid") == folder_uid
        if same_folder and _same_dashboard(stored.get("dashboard", {}), dashboard):
            report.add(f"dashboard {uid}: unchanged")
            return
    body = {
        "dashboard": {k: v for k, v in dashboard.items() if k not in VOLATILE},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": "edgefab dashboards push",
    }
    api.dashboard.update_dashboard(body)
    report.add(f"dashboard {uid}: {'updated' if stored is not None else 'created'}")
