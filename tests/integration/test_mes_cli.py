"""`edgefab mes` on the command line: init, user add, import (row errors, nothing stored), exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

DEMO_PLANT = Path(__file__).resolve().parents[2] / "mes_lite" / "examples" / "demo-plant.yaml"


def test_init_user_add_and_import_work_and_a_bad_import_prints_row_errors_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'mes.db'}"
    assert main(["mes", "init", "--database", db]) == 0
    assert (
        main(["mes", "user", "add", "ann", "--role", "supervisor", "--password", "long-enough-1", "--database", db])
        == 0
    )
    assert main(["mes", "user", "add", "ann", "--password", "long-enough-1", "--database", db]) == 1
    assert "user 'ann' already exists" in capsys.readouterr().err
    assert main(["mes", "import", str(DEMO_PLANT), "--database", db]) == 0
    assert "work_centers: 4 row(s)" in capsys.readouterr().out
    bad = tmp_path / "lines.csv"
    bad.write_text("site,area,code\ndongguan,stamping,line9\ndongguan,nowhere,line8\n")
    assert main(["mes", "import", str(bad), "--database", db]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: lines[1]: area: area dongguan/nowhere does not exist" in err
    assert "Traceback" not in err
    assert main(["mes", "import", str(tmp_path / "missing.yaml"), "--database", db]) == 1
    assert "cannot read" in capsys.readouterr().err
