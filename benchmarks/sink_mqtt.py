"""MQTT sink cost per format: values/s and CPU seconds per 10,000 values at QoS 1.

Publishes to a private Mosquitto on a free loopback port (started here, stopped at the
end) the load of the issue's yardstick: 10 machines x 100 tags polled every 100 ms, i.e.
batches of 1,000 samples, 10,000 values/s. Two runs per format:

- throughput: as fast as PUBACKs allow, for `--values` values;
- paced: 10,000 values/s for `--seconds` s, like the live gateway; reports whether it
  kept up and the CPU it needed.

CPU is this process's user+system time (the sink and paho, which runs on the event loop), not the
broker's. Every delivery is confirmed by PUBACKs before the next batch starts.

    python benchmarks/sink_mqtt.py [--values 50000] [--seconds 5] [--formats uns-json,uns-batch,sparkplug-b]
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

from edge_config.schema import (
    Device,
    Gateway,
    ModbusTag,
    ModbusTcpConnection,
    Site,
    SiteConfig,
)
from edge_config.schema import MqttSink as MqttSinkConfig
from gateway.sample import Sample
from gateway.sinks.mqtt import MqttSink
from tests.servers import mosquitto_server

MACHINES, TAGS, POLL_S = 10, 100, 0.1
BATCH = MACHINES * TAGS  # one poll cycle of every machine


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


def cycle(n: int) -> list[Sample]:
    ts = time.time_ns()
    return [
        Sample(f"acme/bench/press/line1/m{m:02d}/r{t:03d}", (n * 7 + t) % 65536, ts)
        for m in range(MACHINES)
        for t in range(TAGS)
    ]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_format(url: str, fmt: str, values: int, seconds: float) -> dict[str, float]:
    sink = MqttSink(MqttSinkConfig(url=url, qos=1, format=fmt), factory(), name=f"bench-{fmt}")
    await sink.start()
    if not await sink.wait_connected(10):
        raise SystemExit(f"cannot connect: {sink.last_error}")
    batches = [cycle(n) for n in range(20)]  # built up front: measure the sink, not the test data
    await sink.deliver(batches[0])  # warm-up (topic caches, births)

    sent0, cpu0, t0 = sink.counters.messages_sent, cpu_s(), time.perf_counter()
    delivered = 0
    while delivered < values:
        await sink.deliver(batches[delivered // BATCH % len(batches)])
        delivered += BATCH
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    messages = sink.counters.messages_sent - sent0
    result = {
        "max_values_per_s": delivered / wall,
        "cpu_s_per_10k_max": cpu / delivered * 10_000,
        "messages_per_10k": messages / delivered * 10_000,
    }

    # paced: one batch every POLL_S, as the live gateway produces them
    cpu0, t0, late = cpu_s(), time.perf_counter(), 0
    cycles = int(seconds / POLL_S)
    for n in range(cycles):
        due = t0 + n * POLL_S
        now = time.perf_counter()
        if now < due:
            await asyncio.sleep(due - now)
        elif now - due > POLL_S:
            late += 1
        await sink.deliver(batches[n % len(batches)])
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    result.update(
        {
            "paced_values_per_s": cycles * BATCH / wall,
            "cpu_s_per_10k_paced": cpu / (cycles * BATCH) * 10_000,
            "late_cycles": late,
        }
    )
    await sink.stop()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=50_000, help="values per throughput run")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each paced run")
    parser.add_argument("--formats", default="uns-json,uns-batch,sparkplug-b")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, mosquitto_server(Path(tmp)) as broker:
        print(
            f"# MQTT sink, QoS 1, {MACHINES} machines x {TAGS} tags every {POLL_S * 1000:.0f} ms, {os.cpu_count()} cores"
        )
        header = (
            "format",
            "max values/s",
            "CPU s/10k (max)",
            "msgs/10k",
            "paced values/s",
            "CPU s/10k (paced)",
            "late",
        )
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for fmt in args.formats.split(","):
            r = await run_format(broker.url, fmt, args.values, args.seconds)
            print(
                f"| {fmt} | {r['max_values_per_s']:,.0f} | {r['cpu_s_per_10k_max']:.3f} | {r['messages_per_10k']:,.0f} "
                f"| {r['paced_values_per_s']:,.0f} | {r['cpu_s_per_10k_paced']:.3f} | {r['late_cycles']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
