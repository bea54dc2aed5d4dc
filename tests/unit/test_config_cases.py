"""Every folder in tests/config_cases is a bad configuration and the exact output it must produce.

A case folder holds `config.yaml` (plus any files it includes) and `expected.txt`: the lines
`edgefab config check config.yaml` prints, run with the case folder as working directory so
paths in the output are relative to it. An optional `env` file sets environment variables
(NAME=value per line); variables named EDGEFAB_CASE_* are otherwise unset.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main

CASES_DIR = Path(__file__).resolve().parent.parent / "config_cases"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "config.yaml").is_file())


@pytest.fixture
def in_case(monkeypatch: pytest.MonkeyPatch):
    def enter(name: str) -> Path:
        folder = CASES_DIR / name
        monkeypatch.chdir(folder)
        for variable in [v for v in os.environ if v.startswith("EDGEFAB_CASE_")]:
            monkeypatch.delenv(variable)
        env_file = folder / "env"
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    monkeypatch.setenv(key.strip(), value)
        return folder

    return enter


def test_there_are_at_least_thirty_bad_config_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_a_bad_config_case_prints_its_expected_problems_and_exits_1(name: str, in_case, capsys):
    folder = in_case(name)
    expected = (folder / "expected.txt").read_text()

    status = main(["config", "check", "config.yaml"])

    out, err = capsys.readouterr()
    assert out == expected
    assert err == ""
    assert status == 1
    assert "Traceback" not in out + err


@pytest.mark.parametrize("name", ["yaml-syntax-error", "include-cycle"])
def test_the_installed_command_prints_the_same_lines_without_a_traceback(name: str):
    folder = CASES_DIR / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFAB_CASE_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", "config.yaml"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == (folder / "expected.txt").read_text()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", CASES)
def test_every_expected_line_has_the_file_line_col_format(name: str):
    lines = (CASES_DIR / name / "expected.txt").read_text().splitlines()
    assert lines, "a bad-config case expects at least one problem"
    for line in lines:
        assert re.match(r"^[\w./-]+\.yaml:\d+:\d+: \S", line), line
