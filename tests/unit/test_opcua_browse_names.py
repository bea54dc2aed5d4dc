"""Tag names inferred from browse paths: readable, valid for the config schema, unique."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors.opcua.browse import FoundVariable, device_yaml, snake_case, tag_names
from edge_config.loader import load_config
from edge_config.schema import NAME_PATTERN, Device


def test_browse_names_become_snake_case() -> None:
    assert snake_case("SpindleTemp") == "spindle_temp"
    assert snake_case("Oil Pressure (bar)") == "oil_pressure_bar"
    assert snake_case("PLCState") == "plc_state"
    assert snake_case("Axis X") == "axis_x"
    assert snake_case("温度") == "tag"


def test_parents_are_added_only_where_two_variables_would_share_a_name() -> None:
    paths = [("Cnc", "Spindle", "Temp"), ("Cnc", "Axis X", "Temp"), ("Cnc", "Running")]
    assert tag_names(paths) == ["spindle_temp", "axis_x_temp", "running"]


def test_identical_paths_are_numbered() -> None:
    assert tag_names([("A", "Temp"), ("A", "Temp"), ("A", "Temp")]) == ["a_temp", "a_temp_2", "a_temp_3"]


@given(st.lists(st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=4).map(tuple), max_size=30))
def test_inferred_names_are_unique_and_valid_tag_names(paths: list[tuple[str, ...]]) -> None:
    names = tag_names(paths)
    assert len(names) == len(paths)
    assert len(set(names)) == len(names)
    assert all(re.match(NAME_PATTERN, name) and len(name) <= 64 for name in names)


def test_device_yaml_parses_as_a_device_with_one_tag_per_variable() -> None:
    variables = [
        FoundVariable("ns=3;s=Line{1},Temp", ("Line", "Temp"), "Float", writable_on_server=True),
        FoundVariable("ns=3;i=1042", ("Line", "Count"), "UInt32", writable_on_server=False),
    ]
    text = device_yaml(
        variables, url="opc.tcp://10.0.0.5:4840", device="oven1", area="paint", line="l1", source="edgefab test"
    )

    assert text.startswith("# edgefab test\n")
    device = Device.model_validate(yaml.safe_load(text)[0])
    assert {name: tag.node for name, tag in device.tags.items()} == {
        "count": "ns=3;i=1042",
        "temp": "ns=3;s=Line{1},Temp",
    }
    assert device.tags["temp"].description == "Line/Temp (Float, writable on the server)"
    assert device.connection.url == "opc.tcp://10.0.0.5:4840"


def test_the_readme_sample_config_is_a_valid_site_config(tmp_path: Path) -> None:
    """The README opens with a complete sample; it must keep passing the loader as the schema evolves."""
    readme = (Path(__file__).parents[2] / "connectors" / "opcua" / "README.md").read_text(encoding="utf-8")
    sample = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "site.yaml").write_text(sample, encoding="utf-8")

    config = load_config(tmp_path / "site.yaml", env={"OPC_USER": "operator", "OPC_PASS": "s3cret"})

    (device,) = config.devices
    assert device.connection.username == "operator"
    assert {name: tag.mode for name, tag in device.tags.items()} == {
        "state": "subscribe",
        "spindle_temp": "subscribe",
        "oil_pressure": "subscribe",
        "part_count": "subscribe",
        "program": "poll",
    }
