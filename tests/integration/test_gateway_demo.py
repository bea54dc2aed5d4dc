"""`edgefab demo` (the README's demo command) runs end to end and prints live values of every machine."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from tests.servers import free_port

MACHINES = ("press01", "press02", "imm01", "cnc01")


def test_the_demo_prints_live_values_of_every_machine_through_an_embedded_broker() -> None:
    env = dict(os.environ, MQTT_URL=f"mqtt://127.0.0.1:{free_port()}")  # nothing listens there: embedded broker
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--print-every", "1", "--health-port", "0", "--duration", "90"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in demo.stdout], daemon=True).start()  # type: ignore[union-attr]
    out: list[str] = []
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        while seen != set(MACHINES) and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            out.append(line)
            if any("live values" in o for o in out) and "total_count=" in line:
                seen |= {m for m in MACHINES if line.startswith(f"  {m} ")}
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
        _, err = demo.communicate(timeout=30)
    text = "".join(out)
    assert seen == set(MACHINES), f"live lines only for {sorted(seen)}:\n{text[-2000:]}\n{err[-2000:]}"
    assert "embedded amqtt" in text
    assert demo.returncode == 0, err[-2000:]
    assert "everything delivered" in err
