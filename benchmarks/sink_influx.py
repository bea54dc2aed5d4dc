"""InfluxDB sink cost: values/s and CPU seconds per 10,000 values over the v2 write API.

Writes to a private VictoriaMetrics on a free loopback port (started here, stopped at the
end; it speaks InfluxDB's /api/v2/write), with the issue's yardstick load: 10 machines x
100 tags polled every 100 ms. Each `deliver` is confirmed by HTTP 204 before the next.

- throughput: batches of `--batch` samples as fast as the server answers;
- paced: 10,000 values/s for `--seconds` s, one batch per 100 ms poll cycle.

CPU is this process's user+system time (line protocol encoding and the HTTP client).

    python benchmarks/sink_influx.py [--values 200000] [--batch 5000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_config.schema import Device, Gateway, ModbusTag, ModbusTcpConnection, Site, SiteConfig
from edge_config.schema import InfluxSink as InfluxSinkConfig
from gateway.sample import Sample
from gateway.sinks.influx import InfluxSink
from tests.servers import victoria_metrics_server

MACHINES, TAGS, POLL_S = 10, 100, 0.1
CYCLE = MACHINES * TAGS


def factory() -> SiteConfig:
    return SiteConfig(
        site=Site(enterprise="acme", site="bench"),
        gateway=Gateway(name="bench"),
        devices=[
            Device(
                name=f"m{m:02d}",
                area="press",
                line="line1",
                protocol="modbus",
                connection=ModbusTcpConnection(host="127.0.0.1"),
                tags={f"r{t:03d}": ModbusTag(address=f"hr:{t}", type="uint16") for t in range(TAGS)},
            )
            for m in range(MACHINES)
        ],
    )


def cycles(first: int, count: int) -> list[Sample]:
    """`count` poll cycles, 100 ms apart in source time, ending about now."""
    base = time.time_ns() - 10**12
    return [
        Sample(f"acme/bench/press/line1/m{m:02d}/r{t:03d}", (n * 7 + t) % 65536, base + n * 100_000_000)
        for n in range(first, first + count)
        for m in range(MACHINES)
        for t in range(TAGS)
    ]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000, help="samples per deliver (throughput run)")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    per_batch = max(1, args.batch // CYCLE)
    with tempfile.TemporaryDirectory() as tmp, victoria_metrics_server(Path(tmp)) as vm:
        sink = InfluxSink(InfluxSinkConfig(url=vm.url, bucket="bench", batch_size=5000), factory())
        await sink.start()
        batches = [cycles(i * per_batch, per_batch) for i in range(args.values // (per_batch * CYCLE))]
        await sink.deliver(batches[0])  # warm-up
        cpu0, t0 = cpu_s(), time.perf_counter()
        for batch in batches:
            await sink.deliver(batch)
        wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
        total = sum(len(b) for b in batches)

        paced = [cycles(10_000 + n, 1) for n in range(int(args.seconds / POLL_S))]
        pcpu0, pt0, late = cpu_s(), time.perf_counter(), 0
        for n, batch in enumerate(paced):
            due = pt0 + n * POLL_S
            now = time.perf_counter()
            if now < due:
                await asyncio.sleep(due - now)
            elif now - due > POLL_S:
                late += 1
            await sink.deliver(batch)
        pwall, pcpu = time.perf_counter() - pt0, cpu_s() - pcpu0
        await sink.stop()
        expected = 10 * (total // CYCLE + len(paced))  # the warm-up batch is rewritten by the first batch
        stored = vm.wait_for_points('{__name__=~"m00_r00[0-9]"}', expected, 30)

    print(
        f"# InfluxDB sink (v2 write API -> VictoriaMetrics), {MACHINES} machines x {TAGS} tags, {os.cpu_count()} cores"
    )
    print("| run | values/s | CPU s/10k values | late cycles |")
    print("|---|---|---|---|")
    print(f"| throughput, {per_batch * CYCLE} samples/deliver | {total / wall:,.0f} | {cpu / total * 10_000:.3f} | - |")
    paced_values = len(paced) * CYCLE
    print(
        f"| paced 10,000 values/s, {CYCLE}/deliver | {paced_values / pwall:,.0f} | {pcpu / paced_values * 10_000:.3f} | {late} |"
    )
    print(
        f"(check: {stored} of {expected} points of 10 sampled series stored; failed requests {sink.counters.messages_failed})"
    )


if __name__ == "__main__":
    asyncio.run(main())
