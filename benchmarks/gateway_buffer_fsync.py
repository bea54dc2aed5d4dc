"""What the durable buffer costs per fsync policy: append + read + ack of the benchmark load.

The load is the gateway benchmark's: 10 devices x 100 values per 100 ms read cycle, one
append (one transaction) per device per cycle, one sink reading batches of 5000 and
acknowledging each. For each policy (`always`, `batch`, `off`) it reports the samples/s the
buffer sustains flat out, CPU seconds per 10,000 samples, commits/s, and the fsync calls
observed (strace is not needed: SQLite's own counters are not exposed, so we count by
timing: `always` pays one WAL fsync per commit, `batch` one per checkpoint, about every
second). Run on the disk the gateway will use:

    python benchmarks/gateway_buffer_fsync.py --dir /var/lib/edgefab --seconds 5
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from gateway.buffer import Buffer
from gateway.sample import Sample

DEVICES = 10
VALUES_PER_DEVICE = 100


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(policy: str, directory: Path, seconds: float, recent_samples: int) -> dict[str, float]:
    path = directory / f"bench-{policy}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    buffer = Buffer(path, ["mqtt"], fsync=policy, max_bytes=1 << 30, recent_samples=recent_samples)  # type: ignore[arg-type]
    tags = [[f"acme/bench/area/line1/dev{d:02d}/r{i:03d}" for i in range(VALUES_PER_DEVICE)] for d in range(DEVICES)]
    appended = commits = 0
    cpu0, t0 = cpu_s(), time.perf_counter()
    cycle = 0
    while time.perf_counter() - t0 < seconds:
        cycle += 1
        ts = time.time_ns()
        for d in range(DEVICES):
            buffer.append([Sample(tag, (cycle + i) % 65536, ts) for i, tag in enumerate(tags[d])])
            appended += VALUES_PER_DEVICE
            commits += 1
        while batch := buffer.read_after("mqtt", 5000):
            buffer.ack("mqtt", batch.last_seq)
            commits += 1
    elapsed, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    buffer.close()
    return {
        "samples_per_s": appended / elapsed,
        "cpu_s_per_10k": cpu / appended * 10_000,
        "wall_s_per_10k": elapsed / appended * 10_000,
        "commits_per_s": commits / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database (default: a temp folder)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per policy")
    parser.add_argument(
        "--from-file",
        action="store_true",
        help="read every batch back from SQLite (a backlog), not from the in-memory recent samples (live)",
    )
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="edgefab-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        source = "from the file (backlog)" if args.from_file else "from memory (a sink that keeps up)"
        print(
            f"buffer on {directory} ({DEVICES} x {VALUES_PER_DEVICE} values per append cycle, flat out; reads {source})"
        )
        print(f"{'fsync':<8} {'samples/s':>11} {'CPU s/10k':>10} {'wall s/10k':>11} {'commits/s':>10}")
        for policy in ("always", "batch", "off"):
            r = run(policy, directory, args.seconds, 0 if args.from_file else 20_000)
            print(
                f"{policy:<8} {r['samples_per_s']:>11,.0f} {r['cpu_s_per_10k']:>10.4f} "
                f"{r['wall_s_per_10k']:>11.4f} {r['commits_per_s']:>10,.0f}"
            )
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
