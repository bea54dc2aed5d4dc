"""`edgefab alarms ...` in-process: the example config's alarms, a test message to a local stand-in for
DingTalk (the real robot cannot be reached from here), the write-back audit log, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.alarms.service import side_files
from gateway.cli import main
from gateway.writeback import AuditEntry, AuditLog
from tests.integration.alarm_harness import HttpReceiver

EXAMPLE = Path(__file__).resolve().parents[2] / "edge_config" / "examples" / "alarms-factory.yaml"


def test_the_example_config_lists_one_alarm_per_limit_and_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alarms", "list", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "acme/dongguan/stamping/line1/press01/oil_temp.hihi  limit on oil_temp limit 80  priority urgent" in out
    assert "acme/dongguan/stamping/line1/press02/oil_temp.hi  limit on oil_temp limit 70  priority high" in out
    assert out[-1] == "13 alarms"  # 2 presses x 2 limits + 4 machines x (long_fault, no_data) + 1 rate on the CNC


def test_test_notify_sends_a_signed_message_and_reports_a_refusal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    http = HttpReceiver([(200, {"errcode": 0, "errmsg": "ok"}), (200, {"errcode": 310000, "errmsg": "sign not match"})])
    monkeypatch.setenv("DINGTALK_HOOK_URL", http.url("/robot/send?access_token=abc"))
    monkeypatch.setenv("DINGTALK_SECRET", "SECtest")
    try:
        assert main(["alarms", "test-notify", str(EXAMPLE), "supervisor-dingtalk"]) == 0
        assert capsys.readouterr().out == "sent to supervisor-dingtalk\n"
        (request,) = http.requests[:1]
        assert set(request["query"]) == {"access_token", "timestamp", "sign"}
        assert "edgefab 测试消息" in request["body"]["markdown"]["text"]
        assert main(["alarms", "test-notify", str(EXAMPLE), "supervisor-dingtalk"]) == 1
        assert "refused the message" in capsys.readouterr().err
    finally:
        http.close()
    assert main(["alarms", "test-notify", str(EXAMPLE), "nope"]) == 1
    assert capsys.readouterr().err.startswith("edgefab alarms: no channel 'nope' (channels: maintenance-feishu,")


def test_the_audit_log_is_printed_newest_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGEFAB_BUFFER", "buf/buffer.db")
    assert main(["alarms", "writes", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.startswith("no write-back audit log yet")
    log = AuditLog(side_files(Path("buf/buffer.db"))["audit"])
    path = "acme/dongguan/stamping/line1/press01/target_quantity"
    log.record(AuditEntry(1_795_000_000_000_000_000, "mes", "r1", "mqtt", path, 1200, 0, 1200, "written", ""), {})
    log.record(AuditEntry(1_795_000_001_000_000_000, "eve", "r2", "mqtt", path, -5, 1200, None, "refused", "below"), {})
    log.close()
    assert main(["alarms", "writes", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"2026-11-18T11:06:40.000Z  mes  {path}  0 -> 1200  written",
        f"2026-11-18T11:06:41.000Z  eve  {path}  1200 -> -5  refused  (below)",
    ]
    assert main(["alarms", "writes", str(tmp_path / "missing.yaml")]) == 1
