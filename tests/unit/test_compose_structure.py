"""docker-compose.yml, Dockerfile and the deploy/ files: a structural validation that runs here.

Docker cannot run containers in this environment, so the compose file is validated by Debian's
`docker-compose config` (it parses, interpolates `.env`, checks the schema) with a dummy `.env`
in a temporary folder, and then by assertions on the resolved configuration.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from edge_config.loader import check_config
from tests.servers import require_program

pytestmark = pytest.mark.xdist_group("compose-structure")  # one worker runs docker-compose config once

REPO = Path(__file__).resolve().parents[2]
STATEFUL = {
    "mosquitto": "/mosquitto/data",
    "influxdb": "/var/lib/influxdb2",
    "postgres": "/var/lib/postgresql/data",
    "grafana": "/var/lib/grafana",
    "gateway": "/var/lib/edgefab",
}
ARM64_IMAGES = {  # official multi-arch images (linux/arm64 and linux/amd64)
    "mosquitto": "eclipse-mosquitto:",
    "influxdb": "influxdb:2.7",
    "postgres": "postgres:16",
    "grafana": "grafana/grafana-oss:",
}


def compose_config(
    tmp_path: Path, *extra: str, config_options: tuple[str, ...] = (), env: str | None = None
) -> subprocess.CompletedProcess[str]:
    exe = require_program("docker-compose", "docker-compose")
    env_file = tmp_path / ".env"
    env_file.write_text(env if env is not None else (REPO / ".env.example").read_text())
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "INFLUX_", "GRAFANA_", "EDGEFAB_"))}
    return subprocess.run(
        [exe, "-f", str(REPO / "docker-compose.yml"), "--env-file", str(env_file), *extra, "config", *config_options],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
        cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict:
    result = compose_config(tmp_path_factory.mktemp("compose"), "--profile", "demo")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_accepts_the_file_with_the_example_env(resolved: dict) -> None:
    assert set(resolved["services"]) == {
        "mosquitto",
        "influxdb",
        "postgres",
        "grafana",
        "mes",
        "mes-ingest",
        "gateway",
        "simulator",
    }


def test_every_service_has_a_healthcheck_and_dependencies_wait_for_healthy(resolved: dict) -> None:
    for name, service in resolved["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, f"{name} -> {dependency}"


def test_every_stateful_service_keeps_its_data_in_a_named_volume(resolved: dict) -> None:
    for name, target in STATEFUL.items():
        mounts = resolved["services"][name].get("volumes", [])
        named = [m for m in mounts if m.split(":")[1] == target and not m.startswith(("/", "."))]
        assert named, f"{name}: no named volume at {target} ({mounts})"
        assert named[0].split(":")[0] in resolved["volumes"]


def test_images_are_official_multi_arch_ones_and_edgefab_is_built_here(resolved: dict) -> None:
    for name, prefix in ARM64_IMAGES.items():
        assert resolved["services"][name]["image"].startswith(prefix)
    for name in ("mes", "mes-ingest", "gateway", "simulator"):
        assert resolved["services"][name]["build"]["context"] == str(REPO)


def test_the_simulator_runs_only_under_the_demo_profile(resolved: dict) -> None:
    # docker-compose 1.29's `config --services` lists every service whatever the profile: check the key
    profiles = {name: service.get("profiles") for name, service in resolved["services"].items()}
    assert profiles.pop("simulator") == ["demo"]
    assert set(profiles.values()) == {None}
    assert resolved["services"]["gateway"]["environment"]["DEMO_PLC_HOST"] == "simulator"


def test_a_missing_secret_stops_compose_with_the_variable_named(tmp_path: Path) -> None:
    env = re.sub(r"^INFLUX_TOKEN=.*$", "", (REPO / ".env.example").read_text(), flags=re.M)
    result = compose_config(tmp_path, env=env)
    assert result.returncode != 0
    assert "set INFLUX_TOKEN in .env" in result.stderr


def test_secrets_come_from_env_and_the_example_names_every_one(resolved: dict) -> None:
    text = (REPO / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = set(re.findall(r"^(\w+)=", (REPO / ".env.example").read_text(), flags=re.M))
    assert required <= example, required - example
    assert not re.search(r"^\s*\w*(PASSWORD|TOKEN|SECRET_KEY): *(?!\$\{)\S", text, flags=re.M), (
        "a secret is written into docker-compose.yml"
    )


def test_grafana_is_provisioned_from_the_dashboards_folder(resolved: dict) -> None:
    mounts = resolved["services"]["grafana"]["volumes"]
    provider = yaml.safe_load((REPO / "dashboards/provisioning/dashboards/edgefab.yaml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert f"{REPO / 'dashboards'}:{dashboards_path}:ro" in mounts
    assert f"{REPO / 'dashboards/provisioning/datasources'}:/etc/grafana/provisioning/datasources:ro" in mounts
    grafana_env = resolved["services"]["grafana"]["environment"]
    datasources = yaml.safe_dump(
        yaml.safe_load((REPO / "dashboards/provisioning/datasources/edgefab.yaml").read_text())
    )
    for variable in set(re.findall(r"\$\{(\w+)\}", datasources)):
        assert variable in grafana_env, f"the data source file needs {variable} in Grafana's environment"


def test_the_influxdb_init_script_maps_the_bucket_for_influxql(resolved: dict) -> None:
    script = (REPO / "deploy/influxdb/init-dbrp.sh").read_text()
    assert "influx v1 dbrp create" in script and "DOCKER_INFLUXDB_INIT_BUCKET_ID" in script
    assert os.access(REPO / "deploy/influxdb/init-dbrp.sh", os.X_OK)
    env = resolved["services"]["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert {"DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET", "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"} <= set(env)


def test_the_dockerfile_is_slim_multi_stage_and_runs_as_a_non_root_user() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert stages == ["python:3.11-slim", "python:3.11-slim"]
    final = text.split("\nFROM python:3.11-slim\n", 1)[1]
    assert "build-essential" not in final and "apt-get install" not in final
    assert re.search(r"^USER edgefab$", final, flags=re.M)
    assert ".env" in (REPO / ".dockerignore").read_text().split()


def test_the_deployment_edge_configs_pass_the_config_check(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"INFLUX_TOKEN": "t"}
    for path in ("deploy/compose/edge.yaml", "deploy/systemd/site.yaml"):
        assert check_config(REPO / path, env=env) == [], path


def test_systemd_units_run_edgefab_as_its_own_user_from_the_venv() -> None:
    units = sorted((REPO / "deploy/systemd").glob("edgefab-*.service"))
    assert [u.name for u in units] == ["edgefab-gateway.service", "edgefab-mes-ingest.service", "edgefab-mes.service"]
    for unit in units:
        text = unit.read_text()
        assert "User=edgefab" in text and "EnvironmentFile=/etc/edgefab/edgefab.env" in text
        assert re.search(r"^ExecStart=/opt/edgefab/venv/bin/edgefab ", text, flags=re.M)
