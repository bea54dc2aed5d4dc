"""`edgefab run` and `edgefab status` answer bad input with one clear line and exit status 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from tests.servers import free_port

SITE = """
site: {{enterprise: acme, site: test}}
gateway: {{name: gw1, health_port: 0}}
devices:
  - name: press01
    area: press
    line: line1
    protocol: modbus
    connection: {{host: 127.0.0.1, port: {port}}}
    tags:
      voltage: {{address: hr40001}}
    derived:
      power_kw: {{expr: "{expr}"}}
buffer: {{path: "{buffer}"}}
"""


def test_run_with_a_missing_config_file_says_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "nope.yaml" in err and "Traceback" not in err


def test_run_with_a_derived_tag_over_an_unknown_tag_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE.format(port=free_port(), expr="voltage * amps / 1000", buffer=tmp_path / "b.db"))
    assert main(["run", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "site.yaml:" in err and "power_kw" in err and "'amps'" in err and "Traceback" not in err


def test_run_with_code_in_a_derived_expression_is_refused_when_the_config_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE.format(port=free_port(), expr="__import__('os').getcwd()", buffer=tmp_path / "b.db"))
    assert main(["run", str(config)]) == 1
    err = capsys.readouterr().err
    assert "derived" in err and "not allowed" in err and "Traceback" not in err


def test_status_without_a_running_gateway_says_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["status", "--url", url]) == 1
    err = capsys.readouterr().err
    assert f"no gateway answering at {url}/healthz" in err and "edgefab run" in err


def test_run_with_an_unknown_event_loop_choice_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE.format(port=free_port(), expr="voltage * 2", buffer=tmp_path / "b.db"))
    monkeypatch.setenv("EDGEFAB_EVENT_LOOP", "trio")
    assert main(["run", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "EDGEFAB_EVENT_LOOP" in err and "Traceback" not in err
