"""Real servers on loopback for the tests: Mosquitto, VictoriaMetrics, InfluxDB 1.x, PostgreSQL.

Each server is started by the test that needs it, on a free port, in a temporary
directory, so a test can kill it to inject a fault. Where the server's program is
missing, the test is skipped with the Debian package to install, except under
CI=true, where a missing server is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_program(program: str, debian_package: str) -> str:
    """The full path of `program`; skip (or fail in CI) naming the package that provides it."""
    path = shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}") if os.path.exists(p)), None
    )
    if path:
        return path
    message = f"{program} not found: install the Debian package '{debian_package}'"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing server is a failure)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s} s")


class ServerProcess:
    """A server subprocess that a test can stop, kill -9 and start again on the same port."""

    def __init__(self, argv: list[str], port: int, workdir: Path, name: str) -> None:
        self.argv, self.port, self.workdir, self.name = argv, port, workdir, name
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            wait_for_port(self.port, 20.0)
        except TimeoutError as e:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self.log_path.read_text()[-2000:]}") from e

    def kill(self) -> None:
        """Kill -9: the abrupt fault (power cut, crash)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Mosquitto(ServerProcess):
    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@contextlib.contextmanager
def mosquitto_server(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto on a free loopback port, persistence off, anonymous allowed."""
    exe = require_program("mosquitto", "mosquitto")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 1000000\nmax_inflight_messages 100\n"
    )
    server = Mosquitto([exe, "-c", str(conf)], port, tmp_path, "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class VictoriaMetrics(ServerProcess):
    """Accepts the InfluxDB v2 write API (/api/v2/write) and answers PromQL/export queries."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def series_count(self, match: str) -> int:
        """Number of raw points stored for the series selector `match` (flushes first)."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()
        query = urllib.parse.urlencode({"match[]": match})
        body = urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30).read().decode()
        import json

        return sum(len(json.loads(line)["values"]) for line in body.splitlines() if line.strip())

    def wait_for_points(self, match: str, expected: int, timeout_s: float = 15.0) -> int:
        """Poll until `expected` points are visible (new series appear with a short delay)."""
        deadline = time.monotonic() + timeout_s
        count = self.series_count(match)
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            count = self.series_count(match)
        return count


@contextlib.contextmanager
def victoria_metrics_server(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    exe = require_program("victoria-metrics", "victoria-metrics")
    port = free_port()
    server = VictoriaMetrics(
        [
            exe,
            f"-storageDataPath={tmp_path / 'vm-data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-search.disableCache",
            "-search.latencyOffset=0s",
            "-dedup.minScrapeInterval=1ms",
        ],
        port,
        tmp_path,
        "victoria-metrics",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


class InfluxDB1(ServerProcess):
    """InfluxDB 1.x: the v1 /write and /query (InfluxQL) endpoints."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, q: str, db: str) -> dict:
        import json

        params = urllib.parse.urlencode({"q": q, "db": db, "epoch": "ns"})
        with urllib.request.urlopen(f"{self.url}/query?{params}", timeout=30) as r:
            return json.loads(r.read())

    def create_database(self, db: str) -> None:
        data = urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}).encode()
        urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30).read()

    def write_lines(self, db: str, lines: str, precision: str = "ns") -> None:
        req = urllib.request.Request(
            f"{self.url}/write?db={db}&precision={precision}", data=lines.encode(), method="POST"
        )
        urllib.request.urlopen(req, timeout=30).read()


@contextlib.contextmanager
def influxdb1_server(tmp_path: Path) -> Iterator[InfluxDB1]:
    exe = require_program("influxd", "influxdb")
    port, bind_port = free_port(), free_port()
    root = tmp_path / "influx"
    conf = tmp_path / "influxdb.conf"
    conf.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{bind_port}"\n'
        f'[meta]\n  dir = "{root}/meta"\n'
        f'[data]\n  dir = "{root}/data"\n  wal-dir = "{root}/wal"\n  query-log-enabled = false\n'
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
    )
    server = InfluxDB1([exe, "-config", str(conf)], port, tmp_path, "influxd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


PG_ADMIN_URL = os.environ.get("EDGEFAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database; yields its SQLAlchemy URL and drops it after."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pytest.fail("psycopg is not installed")
    name = f"edgefab_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL} ({e}): install the Debian package 'postgresql'"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing server is a failure)")
        pytest.skip(message)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def chromium_path() -> str:
    return require_program("chromium", "chromium")
