"""A gateway-shaped writer for the power-loss tests: `python -m tests.powerloss.buffer_writer DB FSYNC REPORT`.

It drives the real `gateway.buffer` the way the runtime does: `DEVICES` device tasks append
one read cycle each every `--period` seconds through `AsyncBuffer` (so appends that meet
are group-committed), and two sinks read batches and acknowledge them at different paces
(so compaction runs and the cursors differ). It runs until it is killed.

Every line of the report file is written only after the call it reports returned:

    R <monotonic_ns>                                            the buffer is open
    A <device> <cycle> <first_seq> <last_seq> <monotonic_ns>    an append was committed
    K <sink> <acked_seq> <monotonic_ns>                         an acknowledgement was committed

The report file lies outside the directory that loses power: it is what the writer was told.
Every stored sample can be checked on its own: its tag names the device and the tag number, its
timestamp the cycle, and `expected_sample` gives the value, quality and reason it must have.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from gateway.buffer import AsyncBuffer, Buffer
from gateway.sample import Quality, Sample, Value

DEVICES = 3
TAGS = 8
SINKS = {"mqtt": 0.005, "influxdb": 0.02}
"""Sink name -> seconds its simulated destination takes to confirm a batch."""
SINK_BATCH = 40
TS_BASE_NS = 1_764_000_000_000_000_000


def tag_path(device: int, k: int) -> str:
    return f"acme/plant/press/line1/dev{device}/t{k}"


def expected_sample(device: int, cycle: int, k: int) -> Sample:
    """What tag `k` of `device` read in `cycle`: every value kind the buffer stores, some bad qualities."""
    value: Value
    match k % 4:
        case 0:
            value = device * 1_000_000 + cycle * 100 + k
        case 1:
            value = cycle + k / 8
        case 2:
            value = (cycle + k) % 3 == 0
        case _:
            value = f"d{device}c{cycle}k{k}"
    ts_ns = TS_BASE_NS + cycle * 1_000 + device
    if k == TAGS - 1 and cycle % 5 == 0:
        return Sample(tag_path(device, k), None, ts_ns, Quality.BAD, f"timeout in cycle {cycle}")
    return Sample(tag_path(device, k), value, ts_ns)


def identify(sample: Sample) -> tuple[int, int, int]:
    """(device, cycle, k) of a stored sample, from its tag and timestamp."""
    device = int(sample.tag.split("/")[-2].removeprefix("dev"))
    k = int(sample.tag.split("/")[-1].removeprefix("t"))
    cycle, rest = divmod(sample.ts_ns - TS_BASE_NS, 1_000)
    if rest != device:
        raise ValueError(f"timestamp {sample.ts_ns} does not belong to device {device}")
    return device, cycle, k


async def run(
    db: str, fsync: str, report: str, period_s: float, append_for_s: float | None, wal_autocheckpoint: int | None
) -> None:
    out = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def say(*words: object) -> None:
        os.write(out, (" ".join(map(str, words)) + "\n").encode())

    buffer = AsyncBuffer(Buffer(db, list(SINKS), fsync=fsync))  # type: ignore[arg-type]
    if wal_autocheckpoint is not None:  # SQLite's own checkpoint and WAL restart, sooner than after 1000 pages
        buffer.buffer._db.execute(f"PRAGMA wal_autocheckpoint={wal_autocheckpoint:d}")
    started = time.monotonic()
    say("R", time.monotonic_ns())

    async def device(d: int) -> None:
        cycle = 0
        while append_for_s is None or time.monotonic() - started < append_for_s:
            samples = [expected_sample(d, cycle, k) for k in range(TAGS)]
            last_seq = await buffer.append(samples)
            say("A", d, cycle, last_seq - TAGS + 1, last_seq, time.monotonic_ns())
            cycle += 1
            await asyncio.sleep(period_s)

    async def sink(name: str, confirm_s: float) -> None:
        while True:
            batch = await buffer.read_after(name, SINK_BATCH)
            if batch is None:
                await buffer.wait_for_data(name, 0.1)
                continue
            await asyncio.sleep(confirm_s)
            await buffer.ack(name, batch.last_seq)
            say("K", name, batch.last_seq, time.monotonic_ns())

    await asyncio.gather(*(device(d) for d in range(DEVICES)), *(sink(n, s) for n, s in SINKS.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db")
    parser.add_argument("fsync", choices=["always", "batch", "off"])
    parser.add_argument("report")
    parser.add_argument("--period", type=float, default=0.01, help="seconds between a device's read cycles")
    parser.add_argument("--append-for", type=float, default=None, help="stop appending after this many seconds")
    parser.add_argument("--wal-autocheckpoint", type=int, default=None, help="pages (SQLite's default: 1000)")
    args = parser.parse_args()
    asyncio.run(run(args.db, args.fsync, args.report, args.period, args.append_for, args.wal_autocheckpoint))


if __name__ == "__main__":
    main()
