"""Benchmark: poll N simulated Modbus TCP devices x M holding registers every T ms.

Default load (issue 2): 10 devices x 100 registers every 100 ms = 10,000 values/s.
The simulated devices run in a child process (so their CPU is not counted) and count
the requests they answer; the collector (edgefab's ModbusConnector, one per device, as
the gateway runs them) runs in this process. Reported:

  values/s read (good samples) against the target, cycles on time / skipped,
  CPU seconds of the collector process per 10,000 values, its peak RSS,
  Modbus requests per device poll cycle against the minimum (ceil(M / 125)).

Usage: python benchmarks/modbus_poll.py [--seconds 20] [--devices 10] [--registers 100] [--interval-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def serve(devices: int, registers: int, interval_ms: int) -> None:
    """Child process: the simulated devices. Prints their ports, answers 'counts' and 'stop' on stdin."""
    from connectors.modbus.address import Table
    from simulators.modbus_server import ModbusSimServer, RegisterBank

    banks = [RegisterBank(sizes={Table.HOLDING_REGISTER: max(registers, 1)}) for _ in range(devices)]
    servers = [ModbusSimServer("127.0.0.1", 0, {1: bank}) for bank in banks]
    for server in servers:
        await server.start()
    print(json.dumps([s.port for s in servers]), flush=True)

    async def tick() -> None:  # the machines' values change every interval
        n = 0
        while True:
            n = (n + 1) % 65536
            for bank in banks:
                bank.set_registers(Table.HOLDING_REGISTER, 0, [n] * registers)
            await asyncio.sleep(interval_ms / 1000)

    ticker = asyncio.create_task(tick())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "reset":
            for s in servers:
                s.reset_counts()
            print("{}", flush=True)
        elif line == "counts":
            print(json.dumps({"requests": [s.request_count for s in servers]}), flush=True)
        elif line == "stop":
            break
    ticker.cancel()
    for server in servers:
        await server.stop()


def site_config(  # type: ignore[no-untyped-def]
    ports: list[int], registers: int, interval_ms: int, pipelining: bool, max_registers: int = 125
):
    from edge_config.schema import SiteConfig

    return SiteConfig(
        site={"enterprise": "bench", "site": "lab"},
        devices=[
            {
                "name": f"press{i:02d}",
                "area": "stamping",
                "line": "line1",
                "protocol": "modbus",
                "connection": {"host": "127.0.0.1", "port": port, "unit": 1, "timeout": "1s"},
                "poll": f"{interval_ms}ms",
                "pipelining": pipelining,
                "max_registers": max_registers,
                "tags": {f"r{j:03d}": {"address": f"hr:{j}"} for j in range(registers)},
            }
            for i, port in enumerate(ports)
        ],
    )


async def collect(args: argparse.Namespace) -> dict[str, float]:
    from connectors.modbus.client import ModbusConnector
    from gateway.sample import Quality, Sample, SampleBlock, parts_of

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--devices", str(args.devices), "--registers", str(args.registers),
         "--interval-ms", str(args.interval_ms)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None

    def ask(command: str) -> dict[str, list[int]]:
        child.stdin.write(command + "\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        return json.loads(child.stdout.readline())  # type: ignore[union-attr]

    try:
        ports = json.loads(child.stdout.readline())
        config = site_config(ports, args.registers, args.interval_ms, args.pipelining, args.max_registers)
        connectors = [ModbusConnector(config, device) for device in config.devices]
        good = bad = batches = 0
        cycle_ms: list[float] = []
        interval_s = args.interval_ms / 1000

        def emitter(connector: ModbusConnector):  # type: ignore[no-untyped-def]
            async def emit(samples: Sequence[Sample]) -> None:
                nonlocal good, bad, batches
                batches += 1
                for part in parts_of(samples):
                    if isinstance(part, SampleBlock):  # a read's columns: all good by construction
                        good += len(part)
                        continue
                    for sample in part:
                        if sample.quality == Quality.GOOD:
                            good += 1
                        else:
                            bad += 1
                cycle_ms.append(connector.health.extra["last_cycle_s"] * 1000)  # requests sent -> last answer

            return emit

        tasks = [asyncio.create_task(c.run(emitter(c))) for c in connectors]
        await asyncio.sleep(1.0)  # connect and settle
        ask("reset")
        good = bad = batches = 0
        cycle_ms.clear()
        cycles_before = sum(c.health.extra["cycles"] for c in connectors)
        skipped_before = sum(c.health.extra["cycles_skipped"] for c in connectors)
        cpu_before = os.times()
        start = time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - start
        cpu_after = os.times()
        counted_good, counted_bad, counted_batches = good, bad, batches
        requests = sum(ask("counts")["requests"])
        cycles = sum(c.health.extra["cycles"] for c in connectors) - cycles_before
        skipped = sum(c.health.extra["cycles_skipped"] for c in connectors) - skipped_before
        plan_reads = sum(len(c.reads) for c in connectors)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        child.stdin.write("stop\n")
        child.stdin.flush()
    finally:
        if child.poll() is None:
            child.terminate()
        child.wait(10)

    cpu_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    target = args.devices * args.registers / interval_s
    return {
        "seconds": elapsed,
        "target_values_per_s": target,
        "values_per_s": counted_good / elapsed,
        "bad_values": counted_bad,
        "cycles": cycles,
        "expected_cycles": args.devices * elapsed / interval_s,
        "cycles_skipped": skipped,
        "batches": counted_batches,
        "cpu_s": cpu_s,
        "cpu_s_per_10k_values": cpu_s / (counted_good / 10_000) if counted_good else math.inf,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "requests_per_cycle": requests / cycles if cycles else math.inf,
        "minimum_requests_per_cycle": plan_reads / args.devices,
        "theoretical_minimum_per_cycle": math.ceil(args.registers / 125),
        "cycle_p50_ms": statistics.median(cycle_ms) if cycle_ms else math.nan,
        "cycle_p99_ms": statistics.quantiles(cycle_ms, n=100)[98] if len(cycle_ms) >= 100 else math.nan,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration (default 20)")
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--registers", type=int, default=100, help="holding registers (uint16 tags) per device")
    parser.add_argument("--interval-ms", type=int, default=100, help="poll interval (default 100 ms)")
    parser.add_argument("--pipelining", action="store_true", help="configure the devices with pipelining: true")
    parser.add_argument(
        "--max-registers", type=int, default=125, help="registers per request (1 = one request per register)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.devices, args.registers, args.interval_ms))
        return 0
    figures = asyncio.run(collect(args))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    f = figures
    print(f"Modbus poll benchmark: {args.devices} devices x {args.registers} holding registers every "
          f"{args.interval_ms} ms for {f['seconds']:.1f} s (pipelining {'on' if args.pipelining else 'off'}, "
          f"max {args.max_registers} registers per request)")  # fmt: skip
    print(f"  values/s read            {f['values_per_s']:,.0f} of {f['target_values_per_s']:,.0f} target"
          f"  ({100 * f['values_per_s'] / f['target_values_per_s']:.1f} %), bad values: {f['bad_values']}")  # fmt: skip
    print(f"  poll cycles              {f['cycles']:.0f} of {f['expected_cycles']:.0f} scheduled, "
          f"{f['cycles_skipped']:.0f} skipped (overrun)")  # fmt: skip
    print(f"  poll cycle duration      p50 {f['cycle_p50_ms']:.1f} ms, p99 {f['cycle_p99_ms']:.1f} ms "
          f"(request sent -> last answer decoded)")  # fmt: skip
    print(f"  CPU per 10,000 values    {f['cpu_s_per_10k_values']:.3f} s (collector process, {f['cpu_s']:.2f} s total)")
    print(f"  peak RSS                 {f['peak_rss_mib']:.1f} MiB (collector process)")
    print(f"  requests per poll cycle  {f['requests_per_cycle']:.2f} per device "
          f"(minimum possible {f['theoretical_minimum_per_cycle']}; plan: {f['minimum_requests_per_cycle']:.0f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
