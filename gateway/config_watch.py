"""Notice when the configuration's files change on disk, so `edgefab run` reloads without a SIGHUP.

Polling, not inotify: a stat of a few files once a second costs next to nothing on a Pi and
works on every filesystem, Docker bind mounts included (where inotify events may never come).
A change counts once it has held for one more poll, because an editor saves in several steps
(truncate, write, rename); and a save that leaves the bytes as they were (a touch, an edit
undone) reloads nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("edgefab.gateway")

FileStat = tuple[int, int, int]
"""(mtime_ns, size, inode): a write changes the first two, an atomic save (write, then rename) the inode."""

Snapshot = dict[Path, FileStat | None]
"""Each watched file's stat; None when it is missing or cannot be read."""


def snapshot(paths: Iterable[Path]) -> Snapshot:
    """Stat every path (cheap: no file is opened)."""
    result: Snapshot = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            result[path] = None
        else:
            result[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return result


def changed_files(before: Snapshot, after: Snapshot) -> list[Path]:
    """The files whose stat differs between two snapshots (added or dropped files included), sorted."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def content_digest(paths: Iterable[Path]) -> str:
    """A hash of the files' names and bytes: equal digests mean nothing to reload."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(os.fsencode(path) + b"\0")
        try:
            data = path.read_bytes()
        except OSError:
            digest.update(b"\1unreadable\0")
        else:
            digest.update(b"\2%d\0" % len(data) + data)
    return digest.hexdigest()


@dataclass
class Debounce:
    """Report a change only once it has held for one more poll, so a save in several steps counts once."""

    settled: Snapshot
    candidate: Snapshot | None = None

    def observe(self, now: Snapshot) -> list[Path]:
        """The files changed since the last settled state once `now` equals the previous poll; else []."""
        if now == self.settled:  # nothing changed, or the change was undone before it settled
            self.candidate = None
            return []
        if now != self.candidate:  # new, or still being written: wait for one more poll
            self.candidate = now
            return []
        changed = changed_files(self.settled, now)
        self.settled, self.candidate = now, None
        return changed


@dataclass(frozen=True)
class _FilesState:
    files: tuple[Path, ...]
    stats: Snapshot
    digest: str


OnChange = Callable[[list[Path]], Awaitable[None]]


class ConfigWatch:
    """Poll the configuration's files and call back once an edit has settled and changed their content.

    `list_files` names the files (the configuration and its includes); it is asked again after
    every change, so a new include is watched from the reload that brought it in.
    """

    def __init__(self, list_files: Callable[[], Sequence[Path]], interval_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError(f"the watch interval must be positive, got {interval_s}")
        self.list_files = list_files
        self.interval_s = interval_s
        self._state = _FilesState((), {}, "")
        self._debounce = Debounce({})

    @property
    def files(self) -> tuple[Path, ...]:
        return self._state.files

    def _read(self) -> _FilesState:
        # Stat before hashing, and both before the caller loads the configuration: a write after
        # the stat is seen by the next poll, so no edit can slip between the load and the watch.
        files = tuple(dict.fromkeys(self.list_files()))
        stats = snapshot(files)
        return _FilesState(files, stats, content_digest(files))

    def _adopt(self, state: _FilesState) -> None:
        self._state = state
        self._debounce = Debounce(state.stats)

    def rebase_now(self) -> None:
        """Take the files as they are now as the loaded state; call it just before loading them."""
        self._adopt(self._read())

    async def rebase(self) -> None:
        """`rebase_now` off the event loop (it parses the configuration to list its files)."""
        self._adopt(await asyncio.to_thread(self._read))

    async def run(self, on_change: OnChange) -> None:
        """Poll until cancelled; `on_change(changed files)` runs after the new state is taken as loaded."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self._poll(on_change)
            except Exception:  # the watcher must never take the gateway down with it
                log.exception("watching the configuration files failed; still watching")

    async def _poll(self, on_change: OnChange) -> None:
        changed = self._debounce.observe(snapshot(self._state.files))
        if not changed:
            return
        before = self._state
        state = await asyncio.to_thread(self._read)
        self._adopt(state)
        if state.digest == before.digest:
            log.info(
                "configuration files saved with the same content: nothing to reload",
                extra={"event": "reload_unchanged", "files": [str(p) for p in changed]},
            )
            return
        await on_change(changed)
