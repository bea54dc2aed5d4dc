"""`edgefab demo` runs the whole system: simulated PLCs -> gateway -> embedded broker -> MES ingest -> API and board.

One demo process (a subprocess, as a person runs it) on free loopback ports; MQTT_URL points at a
port where nothing listens, so the demo starts its embedded broker and the test is hermetic.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import free_port

MACHINES = ("press01", "press02", "cnc01", "imm01")
STARTUP_TIMEOUT_S = 40.0  # the simulators, broker, gateway and a migrated, filled database
COUNTS_TIMEOUT_S = 25.0


def _log_in(client: httpx.Client, username: str, password: str) -> None:
    """As a person does: the login form (with its CSRF token); the session cookie then opens the API too."""
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, "the login page carries a CSRF token"
    data = {"username": username, "password": password, "next": "/board", "csrf_token": csrf.group(1)}
    response = client.post("/login", data=data)
    assert response.status_code == 303 and response.headers["location"] == "/board", response.text[-2000:]


def _wait_for_mes(client: httpx.Client, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the demo exited early with status {process.returncode}"
        try:
            if client.get("/api/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"the MES did not answer on {client.base_url} within {STARTUP_TIMEOUT_S} s")


def _wait_for_states_on_the_board(client: httpx.Client) -> None:
    """The public board page shows a state on every tile (read without logging in).

    The demo serves its pages only once the ingest stored every machine's first state; anonymous,
    because a visitor's first look needs no login.
    """
    deadline = time.monotonic() + COUNTS_TIMEOUT_S
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        page = client.get("/board").text
        states = dict(re.findall(r'data-work-center="[^"]*/([^/"]+)" data-state="([^"]*)"', page))
        if all(states.get(m) for m in MACHINES):
            return
        time.sleep(0.5)
    raise AssertionError(f"the board shows no state for some machines within {COUNTS_TIMEOUT_S} s: {states}")


def _board_when_counting(client: httpx.Client) -> dict:
    """The andon document once every machine has a state and both presses have counted parts."""
    deadline = time.monotonic() + COUNTS_TIMEOUT_S
    doc: dict = {}
    while time.monotonic() < deadline:
        response = client.get("/api/andon", params={"path": "dongguan"})
        assert response.status_code == 200, response.text[-2000:]
        doc = response.json()
        tiles = {t["path"].rsplit("/", 1)[-1]: t for t in doc["work_centers"]}
        stated = all(tiles.get(m, {}).get("state") for m in MACHINES)
        presses_counted = all((tiles[m].get("order") or {}).get("good_qty", 0) > 0 for m in ("press01", "press02"))
        if stated and presses_counted:
            return doc
        time.sleep(0.5)
    raise AssertionError(f"no states and counts for every machine within {COUNTS_TIMEOUT_S} s: {doc}")


def test_the_demo_serves_the_mes_with_live_states_counts_and_the_board_then_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    mes_port = free_port()
    base_url = f"http://127.0.0.1:{mes_port}"
    env = dict(os.environ, MQTT_URL=f"mqtt://127.0.0.1:{free_port()}", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "gateway.cli", "demo", "--duration", "120", "--print-every", "5"]
    command += ["--health-port", "0", "--mqtt-port", str(free_port()), "--mes-port", str(mes_port)]
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        process = subprocess.Popen(command, env=env, stdout=out_file, stderr=err_file, text=True)
    try:
        with httpx.Client(base_url=base_url, timeout=10, follow_redirects=False) as client:
            _wait_for_mes(client, process)
            _wait_for_states_on_the_board(client)
            _log_in(client, "supervisor", "supervisor-demo")

            doc = _board_when_counting(client)
            tiles = {t["path"].rsplit("/", 1)[-1]: t for t in doc["work_centers"]}
            for machine in MACHINES:
                assert tiles[machine]["order"] is not None, f"{machine} has no running work order"
            press = tiles["press01"]["order"]
            assert press["number"] == "WO-1001" and press["product"] == "BRK-100"
            assert 0 < press["progress"] < 1

            board = client.get("/board")
            assert board.status_code == 200
            for machine in MACHINES:
                assert f">{machine}</a>" in board.text, f"{machine} is not on the board"

            response = client.get("/api/inventory/on-hand", params={"material": "STEEL-2MM"})
            assert response.status_code == 200, response.text[-2000:]
            steel = {(row["lot"], row["location"]): row["quantity"] for row in response.json()}
            # received 1200 + 800 kg; 200 kg of lot ST-A101 moved line side, 60 kg of it issued to WO-0999
            assert steel == {
                ("ST-A101", "WH1-RM-01"): 1000,
                ("ST-A101", "LS-PRESS01"): 140,
                ("ST-A102", "WH1-RM-02"): 800,
            }

        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=30)
    except BaseException:
        print("demo stdout (tail):", out_path.read_text()[-3000:], "demo stderr (tail):", err_path.read_text()[-6000:])
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out, err = out_path.read_text(), err_path.read_text()
    assert process.returncode == 0, err[-3000:]
    assert f"andon board       {base_url}/board" in out
    assert "operator / operator-demo" in out
    database = Path(re.search(r"MES: SQLite (\S+)", out).group(1))
    assert not database.parent.exists(), "the demo's data folder is removed when it stops"
    assert "everything delivered" in err
