"""`edgefab dashboards push` against a recorded Grafana HTTP exchange.

No Grafana server can run here (no Debian package, no network), so a small HTTP server on
loopback plays the part of Grafana's HTTP API: it answers the endpoints the push uses the way
Grafana 11 answers them (404 for an unknown uid, the stored dashboard with `meta.folderUid`,
the save result of POST /api/dashboards/db) and keeps what was stored, so a second run sees
the first run's result. The tests assert the requests the command sends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dashboards.cli import run_push
from gateway.cli import build_parser

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards"
UIDS = sorted(json.loads(p.read_text())["uid"] for p in DASHBOARD_DIR.glob("*.json"))


class FakeGrafana(ThreadingHTTPServer):
    """Grafana's HTTP API as far as the push uses it, with state, recording every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict | None, str]] = []
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.valid_token = "glsa_test"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _, _ in self.requests if method != "GET"]


class _Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        g = self.server
        g.requests.append((method, self.path, body, self.headers.get("Authorization", "")))
        if self.headers.get("Authorization") != f"Bearer {g.valid_token}":
            return self._reply(401, {"message": "invalid API key"})
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:3] == ["api", "datasources", "uid"] and method == "GET":
            source = g.datasources.get(parts[3])
            return self._reply(200, source) if source else self._reply(404, {"message": "Data source not found"})
        if parts == ["api", "datasources"] and method == "POST":
            source = {**body, "id": len(g.datasources) + 1}
            g.datasources[body["uid"]] = source
            return self._reply(200, {"datasource": source, "id": source["id"], "message": "Datasource added"})
        if parts[:3] == ["api", "datasources", "uid"] and method == "PUT":
            g.datasources[parts[3]] = body
            return self._reply(200, {"datasource": body, "message": "Datasource updated"})
        if parts[:2] == ["api", "folders"] and method == "GET":
            folder = g.folders.get(parts[2])
            return self._reply(200, folder) if folder else self._reply(404, {"message": "folder not found"})
        if parts == ["api", "folders"] and method == "POST":
            g.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": len(g.folders) + 1}
            return self._reply(200, g.folders[body["uid"]])
        if parts[:3] == ["api", "dashboards", "uid"] and method == "GET":
            stored = g.dashboards.get(parts[3])
            return self._reply(200, stored) if stored else self._reply(404, {"message": "Dashboard not found"})
        if parts == ["api", "dashboards", "db"] and method == "POST":
            dashboard = body["dashboard"]
            previous = g.dashboards.get(dashboard["uid"])
            version = previous["dashboard"]["version"] + 1 if previous else 1
            stored = {**dashboard, "id": 7, "version": version}
            g.dashboards[dashboard["uid"]] = {"dashboard": stored, "meta": {"folderUid": body["folderUid"]}}
            return self._reply(200, {"id": 7, "uid": dashboard["uid"], "status": "success", "version": version})
        return self._reply(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def push(grafana: FakeGrafana, *extra: str, token: str = "glsa_test") -> int:
    args = build_parser().parse_args(
        ["dashboards", "push", "--url", grafana.url, "--token", token, "--timeout-s", "5", *extra]
    )
    return run_push(args)


FULL = (
    "--influx-url",
    "http://influxdb:8086",
    "--influx-token",
    "tok-123",
    "--postgres-url",
    "postgresql://grafana:s%3Dcret@postgres:5432/edgefab",
)


def test_a_first_push_creates_both_data_sources_the_folder_and_every_dashboard(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, *FULL) == 0
    assert grafana.writes() == [
        ("POST", "/api/datasources"),
        ("POST", "/api/datasources"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(UIDS),
    ]
    influx = grafana.datasources["edgefab-influxdb"]
    assert influx["type"] == "influxdb" and influx["url"] == "http://influxdb:8086"
    assert influx["jsonData"]["dbName"] == "factory"
    assert influx["secureJsonData"] == {"httpHeaderValue1": "Token tok-123"}
    postgres = grafana.datasources["edgefab-postgres"]
    assert postgres["type"] == "grafana-postgresql-datasource" and postgres["url"] == "postgres:5432"
    assert postgres["user"] == "grafana" and postgres["secureJsonData"] == {"password": "s=cret"}
    assert postgres["jsonData"]["database"] == "edgefab"
    assert sorted(grafana.dashboards) == UIDS
    saved = [body for method, path, body, _ in grafana.requests if path == "/api/dashboards/db"]
    assert all(b["overwrite"] is True and b["folderUid"] == "edgefab" and "id" not in b["dashboard"] for b in saved)
    assert all(auth == "Bearer glsa_test" for *_, auth in grafana.requests)
    assert "dashboard edgefab-factory-overview: created" in capsys.readouterr().out


def test_a_second_push_updates_by_uid_and_leaves_unchanged_dashboards_alone(grafana: FakeGrafana) -> None:
    assert push(grafana, *FULL) == 0
    grafana.requests.clear()
    assert push(grafana, *FULL) == 0
    # data sources are looked up by uid and updated in place (secrets cannot be compared), nothing else is written
    assert grafana.writes() == [
        ("PUT", "/api/datasources/uid/edgefab-influxdb"),
        ("PUT", "/api/datasources/uid/edgefab-postgres"),
    ]
    looked_up = [path for method, path, _, _ in grafana.requests if method == "GET"]
    assert [f"/api/dashboards/uid/{uid}" for uid in UIDS] == [p for p in looked_up if p.startswith("/api/dashboards")]
    assert len(grafana.datasources) == 2 and sorted(grafana.dashboards) == UIDS
    assert grafana.datasources["edgefab-influxdb"]["id"] == 1  # the same data source, not a new one


def test_a_dashboard_changed_in_grafana_is_overwritten_under_the_same_uid(grafana: FakeGrafana) -> None:
    assert push(grafana, *FULL) == 0
    grafana.dashboards["edgefab-warehouse"]["dashboard"]["title"] = "edited by hand"
    grafana.requests.clear()
    assert push(grafana) == 0  # data sources exist: kept without the URLs
    assert grafana.writes() == [("POST", "/api/dashboards/db")]
    stored = grafana.dashboards["edgefab-warehouse"]["dashboard"]
    assert stored["title"] == "edgefab / Warehouse" and stored["version"] == 2


def test_without_urls_a_missing_data_source_is_a_one_line_error(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "edgefab dashboards push: data source edgefab-influxdb does not exist on this Grafana: give --influx-url to create it"
    )
    assert grafana.writes() == []


def test_a_wrong_token_and_an_unreachable_grafana_give_one_line_errors(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, *FULL, token="wrong") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused the token (401)" in err
    assert grafana.writes() == []
    grafana.shutdown()
    grafana.server_close()
    assert push(grafana, *FULL) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edgefab dashboards push: cannot reach Grafana")
