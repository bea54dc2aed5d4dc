"""The example configurations load, so they never rot (edge_config/examples/*.yaml).

Files in examples/includes/ are fragments for include: and are not loaded on their own.
The examples are loaded with an empty environment: every ${VAR} in them must have a default.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_config.loader import load_config
from edge_config.schema import ModbusRtuConnection, OpcUaConnection, Protocol
from gateway.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "edge_config" / "examples"
TOP_LEVEL = sorted(EXAMPLES.glob("*.yaml"))


def test_the_examples_folder_has_the_minimal_and_full_factory():
    names = {p.name for p in TOP_LEVEL}
    assert {"minimal.yaml", "full-factory.yaml"} <= names


@pytest.mark.parametrize("path", TOP_LEVEL, ids=lambda p: p.name)
def test_every_example_loads_and_every_device_has_protocol_and_tags(path: Path):
    config = load_config(path, env={})
    assert config.devices
    for device in config.devices:
        assert device.protocol is not None
        assert device.tags, device.name


@pytest.mark.parametrize("path", TOP_LEVEL, ids=lambda p: p.name)
def test_config_check_accepts_every_example(path: Path, capsys, monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    status = main(["config", "check", path.name])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith(f"{path.name}: OK: ")


def test_full_factory_resolves_profiles_includes_and_environment_defaults():
    config = load_config(EXAMPLES / "full-factory.yaml", env={"CNC01_PASSWORD": "s3cret"})
    names = [d.name for d in config.devices]
    assert names == ["screwdriver01", "press01", "press02", "cnc01", "oven01", "oven02"]  # includes first
    press01, press02 = config.device("press01"), config.device("press02")
    assert press01.protocol == Protocol.MODBUS
    assert press01.connection.host == "192.168.1.21"
    assert press01.tags["oil_temp"].address == "ir30001"
    assert press02.tags["oil_temp"].address == "ir30011"  # device tag replaces the profile's
    assert press02.tags["total_count"].address == "hr40004"  # the rest comes from the profile
    assert press01.tags["door_open"].type == "bool"
    cnc = config.device("cnc01")
    assert isinstance(cnc.connection, OpcUaConnection)
    assert cnc.connection.password == "s3cret"
    assert isinstance(config.device("oven02").connection, ModbusRtuConnection)
    assert config.device("oven02").protocol == Protocol.MODBUS_RTU
    assert config.sinks.influxdb is not None and config.sinks.mqtt is not None
    assert config.tag_path(press01, "state") == "acme/dongguan/stamping/line1/press01/state"
