"""Benchmark: the gateway's CPU per value, two (or more) checkouts of edgefab measured interleaved.

Why: on a shared 2-core machine a single run of `gateway_throughput.py` varies by about
±20 % with the time of day, so a change of a few percent only shows when the code before
and after it run one after the other, several times, against the same simulated PLCs.
This runs `gateway_cost_split.py`'s set-up (10 simulated Modbus TCP devices x 100 holding
registers every 100 ms, a real `edgefab run` started from each checkout in turn, a private
Mosquitto, no subscriber) for `--rounds` rounds, the checkouts alternating, and prints each
run and the mean and median per checkout.

Make the checkouts with git worktrees, for example:
  git worktree add /tmp/edgefab-before HEAD~1
  python benchmarks/gateway_ab.py /tmp/edgefab-before . --rounds 4

Usage: python benchmarks/gateway_ab.py CHECKOUT CHECKOUT... [--rounds 4] [--seconds 20]
       [--setup "mqtt qos 1"]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gateway_cost_split as split  # the set-ups and one measured run
import gateway_throughput as bench  # the simulated PLCs and process helpers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+", type=Path, help="edgefab source trees (each run from its own code)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--setup", choices=list(split.SETUPS), default="mqtt qos 1")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkouts]
    for checkout in checkouts:
        if not (checkout / "gateway" / "cli.py").is_file():
            parser.error(f"{checkout} is not an edgefab checkout (no gateway/cli.py)")
    sim = subprocess.Popen(
        [sys.executable, bench.__file__, "--role", "simulator", "--devices", "10", "--registers", "100",
         "--interval-ms", "100"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    results: dict[Path, list[float]] = {c: [] for c in checkouts}
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        for round_no in range(1, args.rounds + 1):
            for checkout in checkouts:
                bench.ROOT = checkout  # `edgefab run` is started as `python -m gateway.cli` in this folder
                results[checkout].append(split.measure(args.setup, ports, args))
                print(f"round {round_no}  {checkout}: {results[checkout][-1]:.4f} CPU s per 10,000 values", flush=True)
    finally:
        sim.terminate()
        sim.wait(10)
    print(f"{args.setup}, {args.rounds} rounds of {args.seconds:g} s:")
    for checkout, figures in results.items():
        print(f"  {checkout}: mean {statistics.mean(figures):.4f}, median {statistics.median(figures):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
