"""The durable store-and-forward queue between the pipeline and the sinks.

Every sample is committed to SQLite (WAL mode) before any sink can see it, so a broker
outage, a Wi-Fi drop or a `kill -9` of the gateway loses nothing that was collected.

Storage layout, chosen for a Raspberry Pi's CPU and SD card:

- one *segment* row per appended batch (one read cycle of one device), holding the
  batch's samples as a compact JSON array; samples are numbered by a global, gap-free
  sequence (`seq`), segment `first_seq..last_seq`;
- one *cursor* row per sink: the last seq that sink's destination confirmed, and how many
  samples were dropped before that sink could deliver them;
- a *tag* table mapping tag paths to small integers, so a path is stored once, not once
  per value.

Segments acknowledged by every sink are deleted (compaction). The store is bounded by
`max_bytes` (the payload bytes plus a fixed per-row overhead, see `ROW_OVERHEAD_BYTES`);
when full, `drop_oldest` deletes the oldest segments even if a sink has not delivered them
(counted per sink), and `stop_reading` refuses the append (`BufferFull`) so the runtime
pauses polling until the sinks catch up.

`Buffer` is synchronous and owns one sqlite3 connection; `AsyncBuffer` runs it on a
single worker thread so the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from gateway.sample import PerRead, Quality, Sample, SampleBlock, SampleChain, parts_of
from gateway.worker_thread import WorkerThread

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

WhenFull = Literal["drop_oldest", "stop_reading"]
FsyncPolicy = Literal["always", "batch", "off"]

ROW_OVERHEAD_BYTES = 48
"""Bytes counted per segment beyond its payload: SQLite record header, key and page cell."""

RECENT_SAMPLES = 20_000
"""The newest samples are also kept in memory, so a forwarder that keeps up reads them without
SQLite or JSON decoding; only a backlog older than this is read back from the file."""

CHECKPOINT_INTERVAL_S = 1.0
"""With fsync=batch, a commit reaches the disk (WAL checkpoint) at most this long after it was made,
also when appending stops: `AsyncBuffer` schedules the sync (bounds what a power cut can take)."""

CURSOR_SAVE_INTERVAL_S = 0.5
"""A sink's acknowledgement moves its cursor in memory at once; the cursor row is written with the
next append's transaction, or on its own when the last write is older than this. So a delivered
batch costs no transaction of its own, and after a kill -9 or power cut at most the deliveries
of about this long are sent again (at least once, never lost)."""

_QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
_CODE_QUALITY = {code: quality for quality, code in _QUALITY_CODE.items()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS segment (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    appended_ns INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cursor (
    sink TEXT PRIMARY KEY,
    acked_seq INTEGER NOT NULL,
    dropped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tag (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class BufferFull(Exception):
    """The buffer is at `max_bytes` and its policy is `stop_reading`: poll again once sinks caught up."""


# ---------------------------------------------------------------- pure serialisation


def encode_segment(samples: Sequence[Sample], tag_ids: Mapping[str, int]) -> bytes:
    """Samples -> the stored payload, a JSON object of columns.

    `{"i": [tag ids], "v": [values], "t": ts_ns or [ts_ns...], "q": code or [codes...], "r": [reasons]}`:
    a read cycle usually shares one timestamp and one quality, so those collapse to a
    single number, and `r` is left out when no sample has a reason. When the tag ids run
    without a gap (a device's read cycle: its tags get consecutive ids on first sight),
    `"j": first id` replaces the list, which halves the JSON work and the bytes on disk.
    JSON keeps bool / int / float / str / None apart exactly (floats round-trip by repr,
    NaN and infinities included), is fast in CPython, and is readable with the sqlite3 shell.
    `SampleBlock`s (and chains of them) are encoded from their columns, without a `Sample`
    per value. Raises KeyError for a tag without an id.
    """
    parts = parts_of(samples)
    if all(part.__class__ is SampleBlock for part in parts):
        blocks: list[SampleBlock] = parts  # type: ignore[assignment]
        ids = list(map(tag_ids.__getitem__, itertools.chain.from_iterable(b.paths for b in blocks)))
        values = blocks[0].values if len(blocks) == 1 else list(itertools.chain.from_iterable(b.values for b in blocks))
        first_ts = blocks[0].ts_ns
        if all(b.ts_ns == first_ts for b in blocks):
            ts: int | list[int] = first_ts
        else:
            ts = list(itertools.chain.from_iterable(itertools.repeat(b.ts_ns, len(b)) for b in blocks))
        return _encode_columns(_ids_text(ids), values, ts, 0, None)
    ids = [tag_ids[s.tag] for s in samples]
    timestamps = [s.ts_ns for s in samples]
    qualities = [_QUALITY_CODE[s.quality] for s in samples]
    n = len(ids)
    return _encode_columns(
        _ids_text(ids),
        [s.value for s in samples],
        timestamps[0] if timestamps.count(timestamps[0]) == n else timestamps,
        qualities[0] if qualities.count(qualities[0]) == n else qualities,
        [s.reason for s in samples] if any(s.reason for s in samples) else None,
    )


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
"""One encoder for every segment: `json.dumps(doc, separators=...)` builds a new one per call (~3 µs)."""


def _ids_text(ids: list[int]) -> str:
    """The ids' part of a segment: `"j":first` when they run on without a gap, else `"i":[ids]`."""
    first = ids[0]
    if ids[-1] - first == len(ids) - 1 and ids == list(range(first, first + len(ids))):
        return f'"j":{first}'
    return '"i":' + _COMPACT_JSON.encode(ids)


def _encode_columns(
    ids_text: str, values: Sequence[Any], ts: int | list[int], quality: int | list[int], reasons: list[str] | None
) -> bytes:
    doc: dict[str, Any] = {"v": values, "t": ts, "q": quality}
    if reasons is not None:
        doc["r"] = reasons
    return ("{" + ids_text + "," + _COMPACT_JSON.encode(doc)[1:]).encode()


class SegmentEncoder:
    """`encode_segment`, byte for byte, with the tag-id part of each read layout written once.

    A device's read cycle differs from its previous one only in values and timestamp: its ids
    (`"j":first` or `"i":[...]`) are the same text every time, so looking them up again for
    every read is waste (a 100-value read: 17 -> 11 µs). Bound to one `tag_ids` dict, whose
    existing entries never change (new tags only add ids); the buffer makes a new encoder
    whenever it loads its ids from the file again. Raises KeyError for a tag without an id.
    """

    def __init__(self, tag_ids: Mapping[str, int]) -> None:
        self.tag_ids = tag_ids
        self._id_text = PerRead(self._ids_of)  # not filled for a layout with a tag not yet known

    def _ids_of(self, paths: tuple[str, ...]) -> str:
        return _ids_text(list(map(self.tag_ids.__getitem__, paths)))

    def encode(self, samples: Sequence[Sample]) -> bytes:
        if samples.__class__ is SampleBlock and samples:  # one good read: the live path
            block: SampleBlock = samples  # type: ignore[assignment]
            return _encode_columns(self._id_text(block.paths), block.values, block.ts_ns, 0, None)
        return encode_segment(samples, self.tag_ids)


def decode_segment(payload: bytes, tag_paths: Mapping[int, str]) -> Sequence[Sample]:
    """The inverse of `encode_segment` (a `SampleBlock` when the segment is one good read)."""
    doc = json.loads(payload)
    values = doc["v"]
    n = len(values)
    ids = doc["i"] if "i" in doc else range(doc["j"], doc["j"] + n)
    t, q = doc["t"], doc["q"]
    paths = tuple(map(tag_paths.__getitem__, ids))
    if isinstance(t, int) and q == 0 and "r" not in doc:
        return SampleBlock(paths, values, t)
    return list(
        map(
            Sample,
            paths,
            values,
            itertools.repeat(t, n) if isinstance(t, int) else t,
            itertools.repeat(_CODE_QUALITY[q], n) if isinstance(q, int) else [_CODE_QUALITY[c] for c in q],
            doc.get("r") or itertools.repeat("", n),
        )
    )


def segment_bytes(payload: bytes) -> int:
    """What one stored segment counts against `max_bytes`."""
    return len(payload) + ROW_OVERHEAD_BYTES


# ---------------------------------------------------------------- the store


@dataclass(frozen=True)
class Batch:
    """Samples `first_seq..last_seq` for one sink; ack `last_seq` once the destination confirmed."""

    samples: Sequence[Sample]
    """A `SampleChain` of the stored segments (each part as it was appended or decoded)."""
    first_seq: int
    last_seq: int


@dataclass
class SinkMetrics:
    depth: int
    """Samples stored and not yet acknowledged by this sink."""
    oldest_unacked_age_s: float
    dropped: int
    acked_seq: int


@dataclass
class BufferMetrics:
    bytes: int
    max_bytes: int
    segments: int
    last_seq: int
    refused_appends: int
    """`stop_reading`: appends refused because the buffer was full (polling paused)."""
    refused_samples: int
    sinks: dict[str, SinkMetrics] = field(default_factory=dict)


class _Lazy:
    """A stored segment's samples, decoded only if a read reaches them."""

    __slots__ = ("payload", "tag_paths")

    def __init__(self, payload: bytes, tag_paths: Mapping[int, str]) -> None:
        self.payload, self.tag_paths = payload, tag_paths

    def __getitem__(self, items: slice) -> Sequence[Sample]:
        return decode_segment(self.payload, self.tag_paths)[items]


def _take_after(segments: Iterator[tuple[int, int, Sequence[Sample] | _Lazy]], acked: int, limit: int) -> Batch | None:
    """The first `limit` samples after seq `acked` from segments in seq order."""
    parts: list[Sequence[Sample]] = []
    taken = first = last = 0
    for first_seq, last_seq, segment_samples in segments:
        if last_seq <= acked:
            continue
        start = max(0, acked + 1 - first_seq)
        take = segment_samples[start : start + limit - taken]
        if not parts:
            first = first_seq + start
        parts.append(take)
        taken += len(take)
        last = first_seq + start + len(take) - 1
        if taken >= limit:
            break
    return Batch(SampleChain(parts), first, last) if taken else None


class Buffer:
    """The SQLite queue (synchronous; use from one thread, or through `AsyncBuffer`).

    A sink not yet known to the file starts at the current end: it receives what is
    appended from now on, not the history other sinks already delivered. A sink that
    is no longer configured loses its cursor, so it no longer holds back compaction.
    """

    def __init__(
        self,
        path: str | Path,
        sinks: Iterable[str],
        *,
        max_bytes: int = 1 << 30,
        when_full: WhenFull = "drop_oldest",
        fsync: FsyncPolicy = "batch",
        clock_ns: Callable[[], int] = time.time_ns,
        recent_samples: int = RECENT_SAMPLES,
    ) -> None:
        self.path = Path(path)
        self.recent_samples = recent_samples
        self._recent: deque[tuple[int, int, Sequence[Sample]]] = deque()
        self._recent_count = 0
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.fsync = fsync
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={ {'always': 'FULL', 'batch': 'NORMAL', 'off': 'OFF'}[fsync] }")
        self._db.executescript(_SCHEMA)
        self._last_checkpoint = time.monotonic()
        self._unsynced = False  # fsync=batch: a commit since the last checkpoint
        self._cursors_saved_at = time.monotonic()
        self._unsaved_cursors = False
        with self._transaction():
            self._load_counters()
            stored = {s: (a, d) for s, a, d in self._db.execute("SELECT sink, acked_seq, dropped FROM cursor")}
            wanted = list(dict.fromkeys(sinks))
            for gone in set(stored) - set(wanted):
                self._db.execute("DELETE FROM cursor WHERE sink = ?", (gone,))
            self._acked: dict[str, int] = {}
            self._dropped: dict[str, int] = {}
            for sink in wanted:
                acked, dropped = stored.get(sink, (self._last_seq, 0))
                if sink not in stored:
                    self._db.execute("INSERT INTO cursor (sink, acked_seq, dropped) VALUES (?, ?, 0)", (sink, acked))
                self._acked[sink], self._dropped[sink] = int(acked), int(dropped)
            self._compact()

    # -- helpers

    def _load_counters(self) -> None:
        """Tag ids, seq, byte and segment counts from the file (the caller holds the lock)."""
        self._tag_ids: dict[str, int] = dict(self._db.execute("SELECT path, id FROM tag").fetchall())
        self._tag_paths = {i: p for p, i in self._tag_ids.items()}
        self._encoder = SegmentEncoder(self._tag_ids)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self._last_seq = int(meta.get("last_seq", 0))
        self._bytes = int(meta.get("bytes", 0))
        if "segments" in meta:
            self._segments = int(meta["segments"])
        else:  # a file written before the count was kept: count once
            self._segments = int(self._db.execute("SELECT COUNT(*) FROM segment").fetchone()[0])
        self._refused_appends = int(meta.get("refused_appends", 0))
        self._refused_samples = int(meta.get("refused_samples", 0))

    def _reload(self) -> None:
        """After a rolled-back append: the in-memory state is the file's again (recent samples
        are forgotten, so reads come from the file until new appends refill them)."""
        with self._lock:
            if self._db.in_transaction:  # a failed COMMIT leaves it open
                self._db.execute("ROLLBACK")
            self._recent.clear()
            self._recent_count = 0
            self._load_counters()
            for sink, acked, dropped in self._db.execute("SELECT sink, acked_seq, dropped FROM cursor"):
                if sink in self._acked:
                    self._acked[sink], self._dropped[sink] = int(acked), int(dropped)
            self._unsaved_cursors = False  # acknowledgements not yet written are sent again: at least once

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One IMMEDIATE transaction under the lock: committed on success, rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _set_meta(self, **values: int) -> None:
        self._db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            values.items(),
        )

    def _tag_id(self, path: str) -> int:
        tag_id = self._tag_ids.get(path)
        if tag_id is None:
            tag_id = int(self._db.execute("INSERT INTO tag (path) VALUES (?)", (path,)).lastrowid or 0)
            self._tag_ids[path] = tag_id
            self._tag_paths[tag_id] = path
        return tag_id

    def _compact(self) -> None:
        """Delete segments every sink has acknowledged (all of them when no sink is configured)."""
        horizon = min(self._acked.values(), default=self._last_seq)
        # `first_seq <= horizon` lets SQLite walk only the primary key's range of old rows
        where = "FROM segment WHERE first_seq <= ? AND last_seq <= ?"
        freed_bytes, freed_rows = self._db.execute(f"SELECT COALESCE(SUM(nbytes), 0), COUNT(*) {where}",
                                                   (horizon, horizon)).fetchone()  # fmt: skip
        if freed_rows:
            self._db.execute(f"DELETE {where}", (horizon, horizon))
            self._bytes -= int(freed_bytes)
            self._segments -= int(freed_rows)
            self._set_meta(bytes=self._bytes, segments=self._segments)

    def _drop_oldest(self, needed_bytes: int) -> None:
        """Delete the oldest segments until `needed_bytes` fit; count unacked samples as dropped per sink."""
        freed = freed_rows = last_dropped = 0
        rows = self._db.execute("SELECT last_seq, nbytes FROM segment ORDER BY first_seq")
        try:
            while self._bytes - freed + needed_bytes > self.max_bytes:
                chunk = rows.fetchmany(256)
                if not chunk:
                    break
                for last_seq, nbytes in chunk:
                    freed += nbytes
                    freed_rows += 1
                    last_dropped = last_seq
                    if self._bytes - freed + needed_bytes <= self.max_bytes:
                        break
        finally:
            rows.close()
        if not freed_rows:
            return
        self._db.execute("DELETE FROM segment WHERE first_seq <= ?", (last_dropped,))
        while self._recent and self._recent[0][1] <= last_dropped:
            self._recent_count -= len(self._recent.popleft()[2])
        self._bytes -= freed
        self._segments -= freed_rows
        for sink, acked in self._acked.items():
            if acked < last_dropped:
                self._dropped[sink] += last_dropped - acked
                self._acked[sink] = last_dropped
                self._db.execute(
                    "UPDATE cursor SET acked_seq = ?, dropped = ? WHERE sink = ?",
                    (last_dropped, self._dropped[sink], sink),
                )
        self._set_meta(bytes=self._bytes, segments=self._segments)

    def _maybe_checkpoint(self) -> None:
        """After a commit: fsync=batch syncs the WAL when the last sync is CHECKPOINT_INTERVAL_S old."""
        if self.fsync == "batch":
            self._unsynced = True
            self.sync_if_due()

    def sync(self) -> None:
        """fsync=batch: checkpoint now if anything was committed since the last one (AsyncBuffer calls
        this CHECKPOINT_INTERVAL_S after a commit, so the bound holds when appending stops too)."""
        if self.fsync != "batch" or not self._unsynced:
            return
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._last_checkpoint = time.monotonic()
        self._unsynced = False

    def sync_if_due(self) -> float | None:
        """The timer's sync: checkpoint if the last one is CHECKPOINT_INTERVAL_S old; else the seconds
        until it will be (the caller waits that long and asks again); None when nothing waits."""
        if self.fsync != "batch" or not self._unsynced:
            return None
        remaining = CHECKPOINT_INTERVAL_S - (time.monotonic() - self._last_checkpoint)
        if remaining > 0:
            return remaining
        self.sync()
        return None

    @property
    def needs_sync(self) -> bool:
        """A commit is waiting for `sync` (fsync=batch only)."""
        return self._unsynced

    # -- the queue

    def append(self, samples: Sequence[Sample]) -> int:
        """Commit `samples` as one transaction; returns the seq of the last one (0 for an empty batch).

        Raises `BufferFull` (policy `stop_reading`) when they do not fit; nothing is stored then.
        """
        if not samples:
            return self._last_seq
        (result,) = self.append_many([samples])
        if isinstance(result, BufferFull):
            raise result
        return result

    def append_many(self, batches: Sequence[Sequence[Sample]]) -> list[int | BufferFull]:
        """Several appends, each its own segment, committed in ONE transaction (group commit).

        Returns, per batch, the seq of its last sample, or the `BufferFull` that refused it
        (policy `stop_reading`; the others are stored). One commit for the read cycles of
        several devices that arrived together costs about as much as one commit for one.
        """
        results: list[int | BufferFull] = []
        try:
            with self._transaction():
                stored = False
                for samples in batches:
                    result = self._append_segment(samples) if samples else self._last_seq
                    results.append(result)
                    stored = stored or (bool(samples) and not isinstance(result, BufferFull))
                if stored:
                    self._set_meta(last_seq=self._last_seq, bytes=self._bytes, segments=self._segments)
                self._save_cursors_locked()  # acknowledgements ride along: no transaction of their own
        except BaseException:
            self._reload()  # rolled back: forget what the transaction changed in memory too
            raise
        self._maybe_checkpoint()
        return results

    def _append_segment(self, samples: Sequence[Sample]) -> int | BufferFull:
        """Inside `append_many`'s transaction (the lock is held): store one segment, or refuse it."""
        try:
            payload = self._encoder.encode(samples)
        except KeyError:  # tags seen for the first time: ids in read order, so a cycle's ids run on
            for tag in dict.fromkeys(s.tag for s in samples):
                self._tag_id(tag)
            payload = self._encoder.encode(samples)
        nbytes = segment_bytes(payload)
        if self._bytes + nbytes > self.max_bytes:
            if self.when_full == "drop_oldest":
                self._drop_oldest(nbytes)
            else:
                self._compact()
                if not self.has_room(nbytes):
                    # the counters are committed, the samples are not stored
                    self._refused_appends += 1
                    self._refused_samples += len(samples)
                    self._set_meta(refused_appends=self._refused_appends, refused_samples=self._refused_samples)
                    return BufferFull(f"buffer full ({self._bytes} of {self.max_bytes} bytes): polling paused")
        first_seq = self._last_seq + 1
        last_seq = self._last_seq + len(samples)
        self._db.execute(
            "INSERT INTO segment (first_seq, last_seq, appended_ns, nbytes, payload) VALUES (?, ?, ?, ?, ?)",
            (first_seq, last_seq, self._clock_ns(), nbytes, payload),
        )
        self._last_seq = last_seq
        self._bytes += nbytes
        self._segments += 1
        kept = (
            samples if samples.__class__ in (SampleBlock, SampleChain) else list(samples)
        )  # the column forms are immutable
        self._remember_locked(first_seq, last_seq, kept)
        return last_seq

    def read_after(self, sink: str, limit: int, after_seq: int | None = None) -> Batch | None:
        """Up to `limit` samples after `sink`'s cursor, in append order; None when it is up to date.

        `after_seq` reads further on (a forwarder prefetching the batch after the one in flight);
        never before the cursor.
        """
        with self._lock:
            acked = self._acked[sink] if after_seq is None else max(after_seq, self._acked[sink])
            if acked >= self._last_seq:
                return None
            if self._recent and self._recent[0][0] <= acked + 1:
                return _take_after(iter(self._recent), acked, limit)  # all in memory: no SQL, no decoding
            rows = self._db.execute(
                "SELECT first_seq, last_seq, payload FROM segment WHERE first_seq >= "
                "COALESCE((SELECT MAX(first_seq) FROM segment WHERE first_seq <= ?), 0) ORDER BY first_seq",
                (acked + 1,),
            )
            try:
                return _take_after(
                    ((f, last, _Lazy(payload, self._tag_paths)) for f, last, payload in rows), acked, limit
                )
            finally:
                rows.close()

    def _remember_locked(self, first_seq: int, last_seq: int, samples: Sequence[Sample]) -> None:
        """Keep the newest segments in memory too (the caller holds the lock)."""
        self._recent.append((first_seq, last_seq, samples))
        self._recent_count += len(samples)
        while self._recent_count > self.recent_samples and len(self._recent) > 1:
            self._recent_count -= len(self._recent.popleft()[2])

    def ack(self, sink: str, up_to_seq: int) -> None:
        """`sink`'s destination confirmed everything up to `up_to_seq`: move its cursor.

        The cursor row is written (and acknowledged segments compacted) with the next append's
        transaction, or here when the last write is CURSOR_SAVE_INTERVAL_S old or the buffer
        is over half full (room matters then). `save_cursors` writes it now.
        """
        if up_to_seq <= self._acked[sink]:
            return
        with self._lock:
            self._acked[sink] = min(up_to_seq, self._last_seq)
            self._unsaved_cursors = True
        if time.monotonic() - self._cursors_saved_at >= CURSOR_SAVE_INTERVAL_S or self._bytes * 2 > self.max_bytes:
            self.save_cursors()

    def ack_and_read(self, sink: str, up_to_seq: int, limit: int) -> Batch | None:
        """`ack`, then `read_after` from the new cursor: one call, for one trip to the buffer's thread."""
        self.ack(sink, up_to_seq)
        return self.read_after(sink, limit)

    def save_cursors(self) -> None:
        """Write the acknowledged cursors now and compact (the ack path and `close` call this)."""
        if not self._unsaved_cursors:
            return
        with self._transaction():
            self._save_cursors_locked()
        self._maybe_checkpoint()

    def _save_cursors_locked(self) -> None:
        """Inside a transaction: the in-memory cursors to the file, then compaction."""
        if not self._unsaved_cursors:
            return
        self._db.executemany("UPDATE cursor SET acked_seq = ? WHERE sink = ?", [(a, s) for s, a in self._acked.items()])
        self._compact()
        self._unsaved_cursors = False
        self._cursors_saved_at = time.monotonic()

    def has_room(self, nbytes: int = 0) -> bool:
        return self._bytes + nbytes <= self.max_bytes or self._bytes == 0

    @property
    def sinks(self) -> list[str]:
        return list(self._acked)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def metrics(self) -> BufferMetrics:
        with self._lock:
            now_ns = self._clock_ns()
            segments = self._segments
            result = BufferMetrics(
                self._bytes, self.max_bytes, segments, self._last_seq, self._refused_appends, self._refused_samples
            )
            for sink, acked in self._acked.items():
                age_s = 0.0
                if acked < self._last_seq:
                    row = self._db.execute(
                        "SELECT appended_ns FROM segment WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1",
                        (acked + 1,),
                    ).fetchone()
                    if row:
                        age_s = max(0.0, (now_ns - row[0]) / 1e9)
                result.sinks[sink] = SinkMetrics(self._last_seq - acked, age_s, self._dropped[sink], acked)
            return result

    def close(self) -> None:
        self.save_cursors()
        with self._lock:
            if self.fsync != "off":
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()


class AsyncBuffer:
    """`Buffer` for the event loop: every call runs on one dedicated thread, in order.

    It also wakes the waiters: a forwarder sleeping in `wait_for_data` when samples are
    appended, a paused reader sleeping in `wait_for_room` when a sink acknowledged; and
    with fsync=batch it syncs CHECKPOINT_INTERVAL_S after a commit that was not synced,
    so the bound on a power cut's loss holds when appending stops.
    """

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer
        self._thread = WorkerThread("edgefab-buffer")
        self._data = {sink: asyncio.Event() for sink in buffer.sinks}
        self._room = asyncio.Event()
        self._pending: list[tuple[Sequence[Sample], asyncio.Future[int | BufferFull]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._sync_timer: asyncio.TimerHandle | None = None
        self._syncing: asyncio.Task[None] | None = None

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._thread.call(fn, *args, **kwargs)

    async def append(self, samples: Sequence[Sample]) -> int:
        """Commit `samples`; raises `BufferFull` under `stop_reading` when they do not fit.

        Group commit: appends that arrive while a commit is running (the read cycles of
        devices polled at the same moment) are committed together in the next transaction,
        one trip to the buffer's thread for all of them. Each caller still returns only
        after its own samples are committed, so nothing is acknowledged earlier than before.
        """
        if not samples:
            return self.buffer.last_seq
        done: asyncio.Future[int | BufferFull] = asyncio.get_running_loop().create_future()
        self._pending.append((samples, done))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_pending(), name="edgefab-buffer-commit")
        result = await done
        if isinstance(result, BufferFull):
            raise result
        return result

    async def _commit_pending(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    results = await self._run(self.buffer.append_many, [samples for samples, _ in group])
                except BaseException as e:  # every waiter gets the commit's failure
                    for _, done in group:
                        if not done.done():
                            if isinstance(e, asyncio.CancelledError):
                                done.cancel()
                            else:
                                done.set_exception(e)
                    if not isinstance(e, Exception):
                        raise
                    continue
                for event in self._data.values():
                    event.set()
                self._schedule_sync()
                for (_, done), result in zip(group, results, strict=True):
                    if not done.done():
                        done.set_result(result)
        finally:
            self._committer = None

    def _schedule_sync(self, delay_s: float = CHECKPOINT_INTERVAL_S) -> None:
        if self._sync_timer is None and self._syncing is None and self.buffer.needs_sync:
            self._sync_timer = asyncio.get_running_loop().call_later(delay_s, self._sync_due)

    def _sync_due(self) -> None:
        self._sync_timer = None
        if self._syncing is None:
            self._syncing = asyncio.create_task(self._sync(), name="edgefab-buffer-sync")

    async def _sync(self) -> None:
        """A checkpoint appends already made (while appending, they checkpoint every interval
        themselves: then this only waits for the next one to be due)."""
        remaining = None
        try:
            remaining = await self._run(self.buffer.sync_if_due)
        except Exception:
            log.exception("buffer sync failed (retried with the next commit)")
        finally:
            self._syncing = None
        if remaining is not None:
            self._schedule_sync(remaining)

    async def read_after(self, sink: str, limit: int, after_seq: int | None = None) -> Batch | None:
        self._data[sink].clear()
        return await self._run(self.buffer.read_after, sink, limit, after_seq)

    async def ack(self, sink: str, up_to_seq: int) -> None:
        await self._run(self.buffer.ack, sink, up_to_seq)
        self._room.set()
        self._schedule_sync()

    async def ack_and_read(self, sink: str, up_to_seq: int, limit: int) -> Batch | None:
        """`ack` and `read_after` in one trip to the buffer's thread (a forwarder that keeps up)."""
        self._data[sink].clear()
        batch = await self._run(self.buffer.ack_and_read, sink, up_to_seq, limit)
        self._room.set()
        self._schedule_sync()
        return batch

    async def wait_for_data(self, sink: str, timeout_s: float) -> None:
        """Sleep until something is appended (or `timeout_s`); call after `read_after` returned None."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(
                timeout_s
            ):  # not wait_for: no task per wait (a forwarder waits ~10 times a second)
                await self._data[sink].wait()

    async def wait_for_room(self, timeout_s: float) -> None:
        """Sleep until a sink acknowledged something (or `timeout_s`)."""
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._room.wait()

    async def metrics(self) -> BufferMetrics:
        return await self._run(self.buffer.metrics)

    async def close(self) -> None:
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        if self._syncing is not None:
            await self._syncing
        await self._run(self.buffer.close)
        self._thread.stop()
