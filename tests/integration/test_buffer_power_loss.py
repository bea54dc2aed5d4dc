"""The buffer after a power cut: what `docs/buffer.md` promises per `fsync` policy holds.

A real writer process (`tests/powerloss/buffer_writer.py`: devices appending through
`AsyncBuffer`, two sinks acknowledging) runs with the undo shim (`tests/powerloss`), is
killed with -9 at a random moment, and the power is cut: every file of the buffer goes
back to its last fsynced state, so every byte SQLite did not fsync is lost (the strictest
outcome), and the `-shm` index is deleted. Then the normal code opens the buffer, and:

- the file passes `PRAGMA integrity_check`, its counters match its rows, every stored sample
  is exactly what was appended, and every sample after a sink's cursor is stored (a cursor
  never points past what survived);
- `fsync: always`: every append that returned before the cut is there, and every
  acknowledgement older than `CURSOR_SAVE_INTERVAL_S` (cursors are written with the next
  append or after that long: what is newer is sent again, never lost);
- `fsync: batch`: every append that returned before the last sync is there, and what is lost
  is younger than `CHECKPOINT_INTERVAL_S` (plus scheduling slack) at the cut, also when the
  writer stopped appending before the cut.

The writer reports each committed append and acknowledgement in a file outside the
directory that loses power: that is what it was told before the cut.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.buffer import CHECKPOINT_INTERVAL_S, CURSOR_SAVE_INTERVAL_S, Buffer
from gateway.sample import Sample
from tests.powerloss import CutReport, PowerLossRig, ShimStats, build_shim
from tests.powerloss.buffer_writer import DEVICES, SINKS, expected_sample, identify

REPO = Path(__file__).resolve().parents[2]
CUTS_PER_POLICY = 6
SEED = 20261126
CUT_AFTER_S = (0.4, 2.4)
"""Half the cuts come this long (uniformly random, seeded) after the writer opened the buffer: mostly
between two transactions, where the test sees what the writer had been told."""
CUT_AFTER_WRITES = (100, 1500)
"""The other half come right after the N-th write to the buffer's files (random, seeded): mostly in the
middle of a transaction or a checkpoint, whose unsynced part the cut then undoes."""
WRITES_CUT_TIMEOUT_S = 20.0
"""A writer on a slow disk that has not made its N writes by then is cut from outside instead."""
WINDOW_SLACK_S = 0.5
"""Beyond CHECKPOINT_INTERVAL_S: the checkpoint runs after the first append once the interval has
passed, takes its own fsyncs, and the two-core test machine may delay any of it."""

ALWAYS_WAL_AUTOCHECKPOINT = 100
"""Pages: under `always` SQLite checkpoints and restarts the WAL after 1000 pages (its default), about 5 s at
the writer's load; 100 brings that path (checkpoint fsyncs, WAL header rewritten) into every cut's 2 s."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def undo_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shim(tmp_path_factory.mktemp("undo-shim"))


@dataclass(frozen=True)
class Append:
    device: int
    cycle: int
    first_seq: int
    last_seq: int
    t_ns: int


@dataclass(frozen=True)
class Ack:
    sink: str
    seq: int
    t_ns: int


@dataclass(frozen=True)
class CutAt:
    """When the power goes: `seconds` after the writer opened the buffer, or right after its `writes`-th write."""

    seconds: float = 0.0
    writes: int = 0

    def __str__(self) -> str:
        return f"after {self.writes} writes" if self.writes else f"at {self.seconds:.2f} s"


@dataclass
class Run:
    """One writer process, killed and cut: what it reported, what the shim saw, what the cut undid."""

    appends: list[Append]
    acks: list[Ack]
    ready_ns: int
    cut_ns: int
    stats: ShimStats
    cut: CutReport
    wal_restarts: int
    """The WAL header's checkpoint sequence after the cut: how often SQLite restarted the WAL durably."""

    def age_s(self, t_ns: int) -> float:
        return (self.cut_ns - t_ns) / 1e9


def run_and_cut(rig: PowerLossRig, fsync: str, at: CutAt, *writer_args: str) -> Run:
    """Start the writer under the shim, kill it with -9 at `at`, cut the power."""
    report = rig.journal_dir.parent / "report.txt"
    stderr_path = rig.journal_dir.parent / "writer.stderr"
    db = rig.data_dir / "buffer.db"
    cmd = [sys.executable, "-m", "tests.powerloss.buffer_writer", str(db), fsync, str(report), *writer_args]
    env = rig.env(kill_after_writes=at.writes)
    with stderr_path.open("w") as stderr:
        child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    cut_ns = 0
    try:
        deadline = time.monotonic() + 30
        while not (report.exists() and report.read_text().startswith("R ")):
            assert child.poll() is None, f"the writer died before opening the buffer: {stderr_path.read_text()}"
            assert time.monotonic() < deadline, "the writer did not open the buffer within 30 s"
            time.sleep(0.02)
        if at.writes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(WRITES_CUT_TIMEOUT_S)
        else:
            time.sleep(at.seconds)
        if child.poll() is None:
            child.kill()
            cut_ns = time.monotonic_ns()
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL, f"the writer was killed, not crashed: {stderr_path.read_text()}"
    appends: list[Append] = []
    acks: list[Ack] = []
    ready_ns = 0
    for line in report.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # torn by the kill: not reported
        kind, *words = line.split()
        if kind == "R":
            ready_ns = int(words[0])
        elif kind == "A":
            appends.append(Append(*map(int, words)))  # type: ignore[arg-type]
        else:
            acks.append(Ack(words[0], int(words[1]), int(words[2])))
    stats = rig.stats()
    cut_ns = stats.killed_ns or cut_ns
    cut = rig.cut_power()
    wal = db.with_name(db.name + "-wal")
    header = wal.read_bytes()[:32] if wal.exists() else b""
    wal_restarts = struct.unpack(">I", header[12:16])[0] if len(header) == 32 else 0
    return Run(appends, acks, ready_ns, cut_ns, stats, cut, wal_restarts)


@dataclass
class Recovered:
    last_seq: int
    cursors: dict[str, int]
    stored: dict[int, Sample]
    """Every sample after the lowest cursor, by seq, as `read_after` returns it."""


def recover(db: Path, fsync: str) -> Recovered:
    """Open the cut buffer with the normal code, check it is sound, read everything a sink still needs."""
    buffer = Buffer(db, list(SINKS), fsync=fsync)  # type: ignore[arg-type]
    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        cursors = {sink: int(acked) for sink, acked in check.execute("SELECT sink, acked_seq FROM cursor")}
        assert set(cursors) == set(SINKS)
        segments = check.execute("SELECT first_seq, last_seq, nbytes FROM segment ORDER BY first_seq").fetchall()
        meta = dict(check.execute("SELECT key, value FROM meta"))
        last_seq = buffer.last_seq
        assert meta.get("last_seq", 0) == last_seq
        assert meta.get("bytes", 0) == sum(nbytes for _, _, nbytes in segments), "byte count matches the rows"
        assert meta.get("segments", 0) == len(segments), "segment count matches the rows"
        for (_, last, _), (first, _, _) in itertools.pairwise(segments):
            assert first == last + 1, f"segments are gap-free: {last} then {first}"
        for sink, acked in cursors.items():
            assert acked <= last_seq, f"{sink}'s cursor {acked} points past the stored data (last seq {last_seq})"
            assert buffer.metrics().sinks[sink].acked_seq == acked
        if segments:
            assert segments[-1][1] == last_seq
            assert segments[0][0] <= min(cursors.values()) + 1, "every sample after the lowest cursor is stored"
        else:
            assert min(cursors.values(), default=last_seq) == last_seq

        stored: dict[int, Sample] = {}
        for sink, acked in cursors.items():
            seq = acked
            while batch := buffer.read_after(sink, 1000, after_seq=seq):
                assert batch.first_seq == seq + 1
                for i, sample in enumerate(batch.samples, start=batch.first_seq):
                    assert stored.setdefault(i, sample) == sample
                seq = batch.last_seq
            assert seq == last_seq, f"{sink} reads up to the last stored seq"

        next_seq = buffer.append([Sample("acme/plant/press/line1/after/cut", 1, 1)])
        assert next_seq == last_seq + 1, "the recovered buffer appends where it left off"
        return Recovered(last_seq, cursors, stored)
    finally:
        check.close()
        buffer.close()


def check_common(run: Run, recovered: Recovered) -> list[Append]:
    """What holds under every syncing policy; returns the reported appends that did not survive."""
    assert run.stats.tracked_writes > 0 and run.stats.syncs > 0, f"the shim saw SQLite's I/O: {run.stats}"
    assert run.appends, "the writer appended before the cut"
    for seq, sample in recovered.stored.items():
        assert sample == expected_sample(*identify(sample)), f"seq {seq} holds what was appended"
    lowest_cursor = min(recovered.cursors.values())
    lost: list[Append] = []
    for append in run.appends:
        if append.last_seq > recovered.last_seq:
            lost.append(append)
            continue
        for seq in range(max(append.first_seq, lowest_cursor + 1), append.last_seq + 1):
            expected = expected_sample(append.device, append.cycle, seq - append.first_seq)
            assert recovered.stored.get(seq) == expected, f"seq {seq} of a surviving append is intact"
    return lost


def last_acks(run: Run, before_ns: int | None = None) -> dict[str, int]:
    acked = dict.fromkeys(SINKS, 0)
    for ack in run.acks:
        if before_ns is None or ack.t_ns < before_ns:
            acked[ack.sink] = max(acked[ack.sink], ack.seq)
    return acked


def cut_moments(fsync: str) -> list[CutAt]:
    rng = random.Random(f"{SEED}-{fsync}")
    return [
        CutAt(seconds=rng.uniform(*CUT_AFTER_S)) if i % 2 == 0 else CutAt(writes=rng.randint(*CUT_AFTER_WRITES))
        for i in range(CUTS_PER_POLICY)
    ]


def test_the_rig_loses_exactly_what_was_not_fsynced(undo_shim: Path, tmp_path: Path) -> None:
    """The shim and the cut themselves: a file goes back to its last fsync, whatever was done to it since."""
    rig = PowerLossRig.create(undo_shim, tmp_path)
    synced, never_synced, outside = rig.data_dir / "synced", rig.data_dir / "never", tmp_path / "outside"
    script = f"""
import os
fd = os.open({str(synced)!r}, os.O_RDWR | os.O_CREAT)
os.write(fd, b"durable-" * 1000)
os.fsync(fd)
os.pwrite(fd, b"XXXX", 4)                      # overwrite
os.ftruncate(fd, 100)                         # shrink
os.pwrite(fd, b"Y" * 50, 90)                  # grow again over the cut-off tail
os.writev(fd, [b"a", b"b"])                   # at the file position
os.ftruncate(fd, 20_000)                      # grow
app = os.open({str(synced)!r}, os.O_WRONLY | os.O_APPEND)
os.write(app, b"appended")
never = os.open({str(never_synced)!r}, os.O_RDWR | os.O_CREAT)
os.write(never, b"gone")
out = os.open({str(outside)!r}, os.O_RDWR | os.O_CREAT)
os.write(out, b"not tracked")
os.kill(os.getpid(), 9)
"""
    killed = subprocess.run([sys.executable, "-c", script], env=rig.env(), check=False, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    stats = rig.stats()
    assert stats.tracked_writes == 6 and stats.truncates == 2 and stats.syncs == 1 and stats.files == 2
    cut = rig.cut_power()
    assert synced.read_bytes() == b"durable-" * 1000
    assert never_synced.read_bytes() == b""
    assert outside.read_bytes() == b"not tracked"
    assert cut.rolled_back


def test_fsync_always_a_power_cut_loses_no_append_that_returned(undo_shim: Path, tmp_path: Path) -> None:
    """`always`: SQLite fsyncs the WAL at every commit, so every append that returned survives the cut,
    and so does every acknowledgement older than CURSOR_SAVE_INTERVAL_S (its cursor row was committed)."""
    undone = restarts = 0
    for i, at in enumerate(cut_moments("always")):
        rig = PowerLossRig.create(undo_shim, tmp_path / f"cut{i}")
        run = run_and_cut(rig, "always", at, "--wal-autocheckpoint", str(ALWAYS_WAL_AUTOCHECKPOINT))
        recovered = recover(rig.data_dir / "buffer.db", "always")
        lost = check_common(run, recovered)
        assert not lost, f"cut {i} {at} lost appends that had returned: {lost[:3]}"
        saved_before_ns = run.cut_ns - int((CURSOR_SAVE_INTERVAL_S + WINDOW_SLACK_S) * 1e9)
        for sink, seq in last_acks(run, before_ns=saved_before_ns).items():
            assert recovered.cursors[sink] >= seq, f"cut {i}: {sink}'s acknowledgement of {seq} survived"
        # an append shares its commit with at most DEVICES - 1 others (acknowledgements ride along)
        commits = math.ceil(len(run.appends) / DEVICES)
        assert run.stats.syncs >= commits, f"cut {i}: the WAL was synced at every commit ({commits})"
        undone += run.cut.rolled_back
        restarts += run.wal_restarts
        print(
            f"always cut {i} {at}: {len(run.appends)} appends, {run.stats.syncs} syncs, "
            f"{run.wal_restarts} WAL restarts, undone: {[(f.path.name, f.restored_bytes) for f in run.cut.files]}"
        )
    assert restarts, "the cuts came after SQLite had checkpointed and restarted the WAL"
    print(f"always: {undone} of {CUTS_PER_POLICY} cuts fell inside a commit and undid its unsynced writes")


def test_fsync_batch_a_power_cut_loses_at_most_the_last_checkpoint_interval(undo_shim: Path, tmp_path: Path) -> None:
    """`batch`: commits are synced by the checkpoint at least every CHECKPOINT_INTERVAL_S while appending,
    so a cut loses only appends younger than that (and replays the acknowledgements of that time)."""
    oldest_lost_s: list[float] = []
    for i, at in enumerate(cut_moments("batch")):
        rig = PowerLossRig.create(undo_shim, tmp_path / f"cut{i}")
        run = run_and_cut(rig, "batch", at)
        recovered = recover(rig.data_dir / "buffer.db", "batch")
        lost = check_common(run, recovered)
        last_sync_ns = run.stats.last_sync_ns
        assert all(a.t_ns > last_sync_ns for a in lost), f"cut {i}: lost an append that returned before the last sync"
        saved_before_ns = last_sync_ns - int((CURSOR_SAVE_INTERVAL_S + WINDOW_SLACK_S) * 1e9)
        for sink, seq in last_acks(run, before_ns=saved_before_ns).items():
            assert recovered.cursors[sink] >= seq, f"cut {i}: {sink}'s acknowledgement of {seq} before the last sync"
        oldest = max((run.age_s(a.t_ns) for a in lost), default=0.0)
        assert oldest <= CHECKPOINT_INTERVAL_S + WINDOW_SLACK_S, f"cut {i} lost an append {oldest:.2f} s old"
        window_start_ns = run.cut_ns - int((CHECKPOINT_INTERVAL_S + CURSOR_SAVE_INTERVAL_S + WINDOW_SLACK_S) * 1e9)
        for sink, seq in last_acks(run, before_ns=window_start_ns).items():
            assert recovered.cursors[sink] >= seq, f"cut {i}: {sink}'s acknowledgement of {seq}, older than the window"
        oldest_lost_s.append(oldest)
        print(
            f"batch cut {i} {at}: {len(run.appends)} appends, lost {len(lost)} "
            f"({sum(a.last_seq - a.first_seq + 1 for a in lost)} samples), oldest lost {oldest:.3f} s, "
            f"last sync {run.age_s(last_sync_ns) if last_sync_ns else float('nan'):.3f} s before the cut"
        )
    assert any(oldest_lost_s), "some cut lost unsynced appends (else the cut was not tested)"


def test_fsync_batch_appends_before_a_pause_are_synced_within_the_interval(undo_shim: Path, tmp_path: Path) -> None:
    """`batch` bounds the loss to the last ≈ CHECKPOINT_INTERVAL_S *before the cut*, also when the devices stopped
    delivering (a device offline, a paused connector) and the last appends are older than that."""
    rig = PowerLossRig.create(undo_shim, tmp_path)
    append_for_s, idle_s = 1.5, 2.0
    run = run_and_cut(rig, "batch", CutAt(seconds=append_for_s + idle_s), "--append-for", str(append_for_s))
    recovered = recover(rig.data_dir / "buffer.db", "batch")
    lost = check_common(run, recovered)
    assert max(a.t_ns for a in run.appends) < run.cut_ns - int(idle_s * 0.9e9), "the writer paused before the cut"
    oldest = max((run.age_s(a.t_ns) for a in lost), default=0.0)
    last_sync_s = run.age_s(run.stats.last_sync_ns)
    assert not lost, (  # the idle time is longer than CHECKPOINT_INTERVAL_S + slack: the timer synced them all
        f"{len(lost)} appends lost, the oldest {oldest:.2f} s old at the cut (last sync {last_sync_s:.2f} s before)"
    )
