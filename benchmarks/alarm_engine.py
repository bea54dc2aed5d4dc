"""What alarm evaluation costs on the gateway's hot path.

The load is the gateway benchmark's: 10 devices x 100 values per read cycle. Every tag has
a limit alarm (hi + hihi: 2 alarms per tag, 2,000 alarms) and every device a state alarm and a
stale alarm; values wander inside the limits with one excursion per device per 50 cycles, so
alarms are raised and cleared now and then, as on a real line. Reports samples/s through
`AlarmEngine.observe` flat out, CPU seconds per 10,000 samples, and the cost of one clock tick
(`tick`, run every `evaluate_every`) over all alarms.

    python benchmarks/alarm_engine.py --cycles 300
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from edge_config.schema import SiteConfig
from gateway.alarms.engine import AlarmEngine
from gateway.sample import Sample

DEVICES = 10
VALUES_PER_DEVICE = 100


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def config() -> SiteConfig:
    tags = {f"t{i}": {"address": f"hr4{i + 2:04d}"} for i in range(VALUES_PER_DEVICE - 1)}
    tags["state"] = {"address": "hr40001", "role": "state", "map": {0: "idle", 1: "running", 5: "fault"}}
    definitions = {
        f"limit_t{i}": {"kind": "limit", "tag": f"t{i}", "hi": 80, "hihi": 90, "deadband": 1, "on_delay": 1}
        for i in range(VALUES_PER_DEVICE - 1)
    }
    definitions["fault"] = {"kind": "state", "states": ["fault"], "on_delay": 300}
    definitions["stale"] = {"kind": "stale", "tag": "state", "after": 30}
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "bench"},
            "devices": [
                {
                    "name": f"m{d}",
                    "area": "a",
                    "line": "l",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1"},
                    "tags": tags,
                }
                for d in range(DEVICES)
            ],
            "alarms": {"definitions": definitions},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=300, help="read cycles of all devices (100 ms each)")
    args = parser.parse_args()
    site = config()
    engine = AlarmEngine(site, site.alarms, time.time_ns())  # type: ignore[arg-type]
    rng = random.Random(1)
    paths = [[site.tag_path(d, name) for name in d.tags] for d in site.devices]
    excursion_left = [0] * DEVICES
    ts = time.time_ns()
    batches = []  # built beforehand: only the engine is timed
    for _ in range(int(args.cycles)):
        ts += 100_000_000
        for d, device_paths in enumerate(paths):
            if excursion_left[d] == 0 and rng.random() < 1 / 50:
                excursion_left[d] = 15  # 1.5 s above hihi: longer than the 1 s on-delay
            excursion = excursion_left[d] > 0
            excursion_left[d] = max(0, excursion_left[d] - 1)
            batches.append(
                [
                    Sample(p, "running" if p.endswith("/state") else (95.0 if excursion else 50.0 + rng.random()), ts)
                    for p in device_paths
                ]
            )
    samples, events = sum(map(len, batches)), 0
    t0, c0 = time.perf_counter(), cpu_s()
    for batch in batches:
        events += len(engine.observe(batch))
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    t1 = time.perf_counter()
    for _ in range(20):
        engine.tick(ts)
    tick_ms = (time.perf_counter() - t1) / 20 * 1000
    print(f"alarms: {len(engine.alarms)}  samples: {samples}  events: {events}")
    print(f"samples/s through observe: {samples / wall:,.0f}")
    print(f"CPU s per 10,000 samples: {cpu / samples * 10_000:.4f}")
    print(f"one tick over all alarms: {tick_ms:.2f} ms")


if __name__ == "__main__":
    main()
