"""The sample YAML that opens connectors/modbus/README.md loads and plans, so the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

from connectors.modbus.plan import plan_device
from edge_config.loader import load_config

README = Path(__file__).resolve().parents[2] / "connectors" / "modbus" / "README.md"


def test_the_readme_sample_configuration_loads_and_plans(tmp_path: Path) -> None:
    sample = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert sample is not None, "the README opens with a yaml sample"
    path = tmp_path / "site.yaml"
    path.write_text(sample.group(1))
    config = load_config(path, env={})
    press, oven = config.devices
    assert press.tags["oil_temp"].byte_order == "CDAB" and press.byte_order == "ABCD"
    assert oven.byte_order == "CDAB"
    reads = {(r.table.value, r.offset, r.count, r.poll_interval_s) for r in plan_device(press)}
    assert reads == {
        ("co", 0, 1, 0.5),
        ("di", 0, 1, 0.5),
        ("ir", 0, 3, 0.5),  # oil_temp (2) + power (1)
        ("hr", 0, 5, 0.5),  # state, door_open's register, a 1-register gap (hr:2) bridged by max_gap, parts
        ("hr", 19, 2, 0.5),  # target
        ("hr", 100, 8, 0.5),  # recipe (0-based hr:100)
        ("hr", 199, 1, 3600.0),  # firmware, polled hourly
    }
