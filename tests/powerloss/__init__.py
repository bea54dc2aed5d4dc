"""Simulated power loss for a process writing the files under one directory.

`undo_shim.c` (compiled here with gcc) is LD_PRELOADed into the writer process: before
each write to a file under the rig's data directory it saves the bytes about to be
overwritten in an undo journal, and an fsync / fdatasync of the file empties that file's
journal. After the writer is killed with -9, `PowerLossRig.cut_power` applies the journals
in reverse: every file is back at its last synced state, i.e. every byte the writer did
not fsync is lost. That is the strictest outcome of a power cut (a real disk may also keep
some unsynced writes, or a random subset of them, which SQLite's own crash tests cover).

Memory-mapped writes are invisible to the shim, so files listed in `volatile` (SQLite's
`-shm` index, rebuilt by SQLite when the first connection opens the database) are
deleted by the cut instead.
"""

from __future__ import annotations

import fnmatch
import os
import struct
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path

from tests.servers import require_program

SHIM_SOURCE = Path(__file__).with_name("undo_shim.c")

_JOURNAL_MAGIC = b"PLUNDO1\n"
_RECORD = struct.Struct("<IIQQQ")  # magic, kind, offset, saved length, old size
_RECORD_MAGIC = 0x4F444E55
_RECORD_TRAILER = 0x454E4F44
_STATS = struct.Struct("<9Q")


def build_shim(out_dir: Path) -> Path:
    """Compile the shim into `out_dir`; skips (fails under CI=true) when gcc is missing."""
    gcc = require_program("gcc", "gcc")
    out = out_dir / "undo_shim.so"
    cmd = [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(SHIM_SOURCE)]
    result = subprocess.run([*cmd, "-ldl", "-pthread"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"compiling {SHIM_SOURCE.name} failed:\n{result.stderr}")
    return out


@dataclass(frozen=True)
class ShimStats:
    """What the shim saw in the writer process (summed over processes that loaded it)."""

    tracked_writes: int = 0
    tracked_bytes: int = 0
    undo_records: int = 0
    undo_bytes: int = 0
    syncs: int = 0
    truncates: int = 0
    files: int = 0
    last_sync_ns: int = 0
    """CLOCK_MONOTONIC (as `time.monotonic_ns()`) when the last sync of a tracked file returned; 0: never."""
    killed_ns: int = 0
    """When the shim killed the process (`kill_after_writes`); 0: it did not."""


@dataclass(frozen=True)
class UndoRecord:
    offset: int
    old_bytes: bytes
    old_size: int


@dataclass
class RolledBack:
    """One file's fate at the cut."""

    path: Path
    records: int
    size_before: int
    size_after: int
    restored_bytes: int
    """Old bytes written back over unsynced writes (cut-off appends are counted by the sizes)."""


@dataclass
class CutReport:
    files: list[RolledBack] = field(default_factory=list)
    torn_records: int = 0
    """Journals whose last record was cut short by the kill (its write never started)."""
    deleted: list[Path] = field(default_factory=list)

    @property
    def rolled_back(self) -> bool:
        """Whether the cut changed anything (a file restored, shortened or lengthened)."""
        return any(f.restored_bytes or f.size_before != f.size_after for f in self.files)


def read_journal(journal: Path) -> tuple[Path, list[UndoRecord], bool]:
    """(the tracked file, its undo records oldest first, whether a torn last record was dropped)."""
    data = journal.read_bytes()
    if not data.startswith(_JOURNAL_MAGIC):
        raise ValueError(f"{journal}: not an undo journal")
    (path_len,) = struct.unpack_from("<I", data, 8)
    path = Path(data[12 : 12 + path_len].decode())
    records: list[UndoRecord] = []
    pos = 12 + path_len
    while pos < len(data):
        if pos + _RECORD.size > len(data):
            return path, records, True
        magic, kind, offset, saved, old_size = _RECORD.unpack_from(data, pos)
        if magic != _RECORD_MAGIC or kind not in (1, 2):
            raise ValueError(f"{journal}: corrupt record at byte {pos}")
        end = pos + _RECORD.size + saved
        if end + 4 > len(data):
            return path, records, True
        if struct.unpack_from("<I", data, end)[0] != _RECORD_TRAILER:
            raise ValueError(f"{journal}: record at byte {pos} has no trailer")
        records.append(UndoRecord(offset, data[pos + _RECORD.size : end], old_size))
        pos = end + 4
    return path, records, False


@dataclass
class PowerLossRig:
    """A data directory whose unsynced writes a cut undoes, and where the undo journals live."""

    shim: Path
    data_dir: Path
    journal_dir: Path
    volatile: tuple[str, ...] = ("*-shm",)

    @classmethod
    def create(cls, shim: Path, root: Path) -> PowerLossRig:
        data, journal = root / "data", root / "undo-journal"
        data.mkdir(parents=True)
        journal.mkdir(parents=True)
        return cls(shim, data.resolve(), journal.resolve())

    def env(self, kill_after_writes: int = 0) -> dict[str, str]:
        """The environment for the writer process: the shim loaded, tracking `data_dir`; with `kill_after_writes`,
        the process kills itself with SIGKILL right after that many writes to tracked files."""
        env = dict(os.environ)
        env["POWERLOSS_KILL_AFTER_WRITES"] = str(kill_after_writes)
        env["LD_PRELOAD"] = " ".join(p for p in (str(self.shim), env.get("LD_PRELOAD", "")) if p)
        env["POWERLOSS_DIR"] = str(self.data_dir)
        env["POWERLOSS_JOURNAL"] = str(self.journal_dir)
        return env

    def stats(self) -> ShimStats:
        totals = [0] * len(fields(ShimStats))
        for path in self.journal_dir.glob("stats.*"):
            for i, value in enumerate(_STATS.unpack(path.read_bytes()[: _STATS.size])):
                totals[i] = max(totals[i], value) if i >= 7 else totals[i] + value
        return ShimStats(*totals)

    def cut_power(self) -> CutReport:
        """Roll every tracked file back to its last synced state (call after the writer is dead)."""
        report = CutReport()
        journals = sorted(self.journal_dir.glob("*.undo"))
        seen: set[Path] = set()
        for journal in journals:
            path, records, torn = read_journal(journal)
            if path in seen:  # one writer process, files neither deleted nor re-created
                raise RuntimeError(f"{path} has more than one undo journal: not supported by this rig")
            seen.add(path)
            report.torn_records += torn
            if not records or not path.exists():  # directory entries count as durable: a deleted file stays deleted
                continue
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in self.volatile):
                continue  # deleted below
            size_before = path.stat().st_size
            with path.open("r+b") as f:
                for record in reversed(records):
                    f.seek(record.offset)
                    f.write(record.old_bytes)
                    f.truncate(record.old_size)
            restored = sum(len(r.old_bytes) for r in records)
            report.files.append(RolledBack(path, len(records), size_before, path.stat().st_size, restored))
        for journal in journals:
            journal.unlink()
        for pattern in self.volatile:
            for path in self.data_dir.glob(pattern):
                path.unlink()
                report.deleted.append(path)
        return report
