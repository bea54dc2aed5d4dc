"""Micro-benchmark: CPU per value of each in-process stage of the gateway's hot path.

The end-to-end benchmark (`gateway_throughput.py`) measures the whole process, which on a
shared machine varies by +-30 % between runs; this one times each stage alone, in one
process, on the issue's load shape (a device of 100 uint16 holding registers, read cycles
of 100 values sharing one timestamp, uns-batch batches of 1,000 values from 10 machines),
and reports the best of several repeats in microseconds of thread CPU per value.

Usage: python benchmarks/gateway_hot_path.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from connectors.modbus.client import ModbusConnector
from edge_config.schema import SiteConfig
from gateway.buffer import Buffer, encode_segment
from gateway.pipeline import DevicePipeline
from gateway.sample import Sample, SampleChain
from gateway.sinks.uns import BatchEncoder

REGISTERS = 100
DEVICES = 10


def site() -> SiteConfig:
    tags = {f"r{i:03d}": {"address": f"hr4{i + 1:04d}"} for i in range(REGISTERS)}
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "bench", "site": "lab"},
            "devices": [
                {
                    "name": f"dev{d:02d}",
                    "area": "bench",
                    "line": "line1",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1"},
                    "tags": tags,
                }
                for d in range(DEVICES)
            ],
        }
    )


def best_us_per_value(fn: Callable[[], object], values_per_call: int, calls: int, repeats: int) -> float:
    """Best (least disturbed) thread CPU time per value over `repeats` runs of `calls` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, time.thread_time() - start)
    return best / (calls * values_per_call) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    config = site()
    connectors = [ModbusConnector(config, device) for device in config.devices]
    (read,) = connectors[0].reads
    rng = random.Random(1)
    words = [rng.randrange(1 << 16) for _ in range(REGISTERS)]
    ts_ns = time.time_ns()
    cycles = [c._decode(c.reads[0], words, ts_ns) for c in connectors]
    pipeline = DevicePipeline(config, config.devices[0])
    chain = SampleChain(cycles)  # a forwarder's batch as it comes from the buffer: the reads' blocks
    batch: list[Sample] = list(chain)  # the same values as Samples (what other connectors give)
    tag_ids = {s.tag: i for i, s in enumerate(batch)}
    encoder = BatchEncoder()
    stages: dict[str, tuple[Callable[[], object], int, int]] = {
        "modbus decode (100 registers -> SampleBlock)": (
            lambda: connectors[0]._decode(read, words, ts_ns),
            REGISTERS,
            300,
        ),
        "pipeline (no deadband)": (lambda: pipeline.process(cycles[0]), REGISTERS, 3000),
        "buffer segment encode": (lambda: encode_segment(cycles[0], tag_ids), REGISTERS, 300),
        "uns-batch encode (10 read blocks)": (lambda: encoder.encode(chain), len(batch), 30),
        "uns-batch encode (1,000 Samples, one by one)": (lambda: encoder.encode(batch), len(batch), 30),
    }
    with tempfile.TemporaryDirectory() as tmp:
        buffer = Buffer(Path(tmp) / "b.db", ["mqtt"], fsync="batch")
        stages["buffer append (commit, fsync=batch)"] = (lambda: buffer.append(cycles[0]), REGISTERS, 100)
        if hasattr(buffer, "append_many"):  # group commit: the 10 devices' cycles in one transaction
            stages["buffer append_many (10 cycles, one commit)"] = (
                lambda: buffer.append_many(cycles),
                REGISTERS * DEVICES,
                30,
            )
        stages["buffer read_after (in-memory recent)"] = (
            lambda: buffer.read_after("mqtt", 1000, after_seq=buffer.last_seq - 1000),
            1000,
            100,
        )
        total = 0.0
        for name, (fn, per_call, calls) in stages.items():
            us = best_us_per_value(fn, per_call, calls, args.repeats)
            if "append_many" not in name and "one by one" not in name:  # alternatives, not extra stages
                total += us
            print(f"  {name:46s} {us:7.3f} us/value")
        buffer.close()
    print(f"  {'sum':46s} {total:7.3f} us/value = {total / 100:.3f} CPU s per 10,000 values")


if __name__ == "__main__":
    main()
