"""Shared fixtures: real servers on loopback (see tests/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[servers.Mosquitto]:
    """A private Mosquitto the test may stop, kill and start again."""
    with servers.mosquitto_server(tmp_path) as server:
        yield server


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[servers.VictoriaMetrics]:
    with servers.victoria_metrics_server(tmp_path) as server:
        yield server


@pytest.fixture
def influxdb1(tmp_path: Path) -> Iterator[servers.InfluxDB1]:
    with servers.influxdb1_server(tmp_path) as server:
        yield server


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    with servers.postgres_database() as url:
        yield url
