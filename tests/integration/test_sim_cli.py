"""`edgefab simulate` as a user runs it: a subprocess that serves, stops on SIGTERM and leaves its ground truth."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymodbus.client import ModbusTcpClient

from simulators.machine import MachineState
from tests.servers import free_port, wait_for_port

EDGEFAB = [sys.executable, "-m", "gateway.cli"]


def test_simulate_serves_the_factory_and_sigterm_stops_it_cleanly_with_the_ground_truth_written(
    tmp_path: Path,
) -> None:
    modbus_port, opcua_port = free_port(), free_port()
    truth_file = tmp_path / "truth.json"
    argv = [
        *EDGEFAB,
        "simulate",
        "--speed", "30",
        "--seed", "4",
        "--modbus-port", str(modbus_port),
        "--opcua-port", str(opcua_port),
        "--ground-truth", str(truth_file),
    ]  # fmt: skip
    log_path = tmp_path / "simulate.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env())
    try:
        wait_for_port(modbus_port, 20.0)
        wait_for_port(opcua_port, 20.0)
        client = ModbusTcpClient("127.0.0.1", port=modbus_port, timeout=2)
        assert client.connect()
        try:
            for unit in (1, 2, 3):  # press01, press02, imm01
                response = client.read_holding_registers(0, count=1, device_id=unit)
                assert not response.isError()
                assert response.registers[0] in {s.code for s in MachineState}
        finally:
            client.close()
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log_path.read_text()
    assert "Traceback" not in output
    assert "ready" in output and "press01" in output and "cnc01" in output
    truth = json.loads(truth_file.read_text())
    assert set(truth["machines"]) == {"press01", "press02", "cnc01", "imm01"}
    assert truth["seed"] == 4 and truth["speed"] == 30.0
    for machine in truth["machines"].values():
        elapsed = machine["end_s"] - machine["start_s"]
        assert elapsed > 1.0
        assert math.isclose(sum(machine["state_durations_s"].values()), elapsed, rel_tol=1e-9)
        assert machine["counts"]["total"] == len(machine["part_times_s"])


def test_a_taken_port_is_a_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*EDGEFAB, "simulate", "--modbus-port", str(port), "--opcua-port", str(free_port()), "--duration", "1"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
            env=_env(),
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "edgefab simulate: cannot listen:" in result.stdout


def test_a_bad_speed_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [*EDGEFAB, "simulate", "--speed", "0"], capture_output=True, text=True, timeout=30, cwd=tmp_path, env=_env()
    )
    assert result.returncode == 2
    assert result.stdout.strip() == "edgefab simulate: --speed must be positive, got 0.0"


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
