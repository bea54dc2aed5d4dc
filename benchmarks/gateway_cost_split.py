"""Benchmark: where the gateway's CPU goes, by running it with more and more of the path.

The load of `gateway_throughput.py` (10 simulated Modbus TCP devices x 100 holding registers
every 100 ms, PLCs in a child process, a real `edgefab run` process, buffer `fsync: batch`),
measured with no subscriber (so nothing else competes for the cores) in three set-ups, one
after the other, each `--rounds` times alternating:

  no sink:     read, pipeline, commit to the buffer (every sample is acknowledged at once)
  mqtt qos 0:  plus the MQTT sink (`uns-batch`) to a private Mosquitto, fire and forget
  mqtt qos 1:  the same with PUBACKs (what the issue's target is about)

Prints the gateway's CPU seconds per 10,000 values read for each run and the mean per set-up.

Usage: python benchmarks/gateway_cost_split.py [--seconds 20] [--warmup 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gateway_throughput as bench  # the same load, config and process helpers

SETUPS = {
    "no sink": "sinks: {{}}",
    "mqtt qos 0": "sinks:\n  mqtt: {{url: 'mqtt://127.0.0.1:{port}', qos: 0, format: uns-batch}}",
    "mqtt qos 1": "sinks:\n  mqtt: {{url: 'mqtt://127.0.0.1:{port}', qos: 1, format: uns-batch}}",
}


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / bench.CLOCK_TICKS


def measure(name: str, ports: list[int], args: argparse.Namespace) -> float:
    """CPU s per 10,000 values read of one `edgefab run` in set-up `name`."""
    workdir = Path(tempfile.mkdtemp(prefix="edgefab-split-"))
    mosquitto = bench.Mosquitto(workdir)
    if "mqtt" in name:
        mosquitto.start()
    config = workdir / "split.yaml"
    bench.write_config(config, ports, 100, 100, SETUPS[name].format(port=mosquitto.port), workdir / "buffer.db")
    health_port = bench.free_port()
    gateway = bench.start_gateway(config, health_port, workdir / "gateway.log")
    try:
        time.sleep(args.warmup)
        read0, cpu0 = bench.total_read(bench.healthz(health_port)), process_cpu_s(gateway.pid)
        time.sleep(args.seconds)
        read1, cpu1 = bench.total_read(bench.healthz(health_port)), process_cpu_s(gateway.pid)
    finally:
        bench.stop(gateway)
        if "mqtt" in name:
            mosquitto.kill()
    return (cpu1 - cpu0) / max(read1 - read0, 1) * 10_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sim = subprocess.Popen(
        [sys.executable, bench.__file__, "--role", "simulator", "--devices", "10", "--registers", "100",
         "--interval-ms", "100"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        results: dict[str, list[float]] = {name: [] for name in SETUPS}
        for _ in range(args.rounds):
            for name in SETUPS:
                results[name].append(measure(name, ports, args))
                print(f"  {name:11s} {results[name][-1]:.3f} CPU s per 10,000 values", flush=True)
        print("mean:")
        for name, figures in results.items():
            print(f"  {name:11s} {statistics.mean(figures):.3f} CPU s per 10,000 values ({len(figures)} runs)")
    finally:
        sim.terminate()
        sim.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
