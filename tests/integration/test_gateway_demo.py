"""`edgefab demo` (the README's demo command) runs end to end and prints live values of every machine."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.servers import free_port


def test_the_demo_prints_live_values_of_every_machine_through_an_embedded_broker() -> None:
    env = dict(os.environ, MQTT_URL=f"mqtt://127.0.0.1:{free_port()}")  # nothing listens there: embedded broker
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--duration", "14", "--print-every", "2", "--health-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "embedded amqtt" in out
    live = out.split("live values", 1)[1]
    for machine in ("press01", "press02", "imm01", "cnc01"):
        assert f"  {machine} " in live, f"no live line for {machine}:\n{out[-2000:]}"
    assert "total_count=" in live
    assert "everything delivered" in result.stderr
