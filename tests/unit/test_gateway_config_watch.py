"""When `edgefab run` considers its configuration files changed: settled edits of their content, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from gateway.config_watch import ConfigWatch, Debounce, changed_files, content_digest, snapshot


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def touch_later(path: Path, seconds: float = 10.0) -> None:
    """Move the mtime forward by whole seconds, so the change shows on any filesystem's clock."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(seconds * 1e9)))


def test_a_snapshot_changes_with_a_write_a_touch_and_an_atomic_save_and_marks_a_missing_file(tmp_path: Path) -> None:
    site, gone = tmp_path / "site.yaml", tmp_path / "gone.yaml"
    site.write_text("devices: []\n")
    first = snapshot([site, gone])
    assert first[gone] is None and first[site] is not None
    assert snapshot([site, gone]) == first

    touch_later(site)
    touched = snapshot([site, gone])
    assert changed_files(first, touched) == [site]
    gone.write_text("devices: []\n")
    assert changed_files(touched, snapshot([site, gone])) == [gone], "a file that appears is a change"

    replacement = tmp_path / "site.yaml.tmp"
    replacement.write_text("devices: []\n")
    os.utime(replacement, ns=(site.stat().st_atime_ns, site.stat().st_mtime_ns))  # same size, same mtime
    os.replace(replacement, site)  # as editors save: a new file renamed over the old one
    assert snapshot([site])[site] != touched[site], "the inode tells an atomic save apart"


def test_the_digest_follows_the_bytes_not_the_stat(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("devices: []\n")
    before = content_digest([site])
    touch_later(site)
    assert content_digest([site]) == before
    site.write_text("devices: [] \n")
    assert content_digest([site]) != before
    site.write_text("")
    assert content_digest([site]) != content_digest([tmp_path / "missing.yaml"]), "empty is not missing"


def test_a_change_counts_once_it_has_held_for_one_more_poll() -> None:
    a, b = Path("/etc/site.yaml"), Path("/etc/devices.yaml")
    v0 = {a: (1, 10, 7), b: (1, 20, 8)}
    debounce = Debounce(v0)
    assert debounce.observe(v0) == []

    truncated = {a: (2, 0, 7), b: (1, 20, 8)}
    written = {a: (3, 12, 7), b: (1, 20, 8)}
    assert debounce.observe(truncated) == [], "first sight of a change: wait"
    assert debounce.observe(written) == [], "still being written: wait again"
    assert debounce.observe(written) == [a], "unchanged for one more poll: settled"
    assert debounce.observe(written) == [], "reported once"

    assert debounce.observe({a: (3, 12, 7), b: None}) == []
    assert debounce.observe(written) == [], "a change undone before it settled is no change"
    assert debounce.observe(written) == []


async def test_the_watch_calls_back_for_an_edit_of_an_included_file_but_not_for_a_touch(tmp_path: Path) -> None:
    site, devices = tmp_path / "site.yaml", tmp_path / "devices.yaml"
    site.write_text("include: devices.yaml\n")
    devices.write_text("devices: []\n")
    listed: list[list[Path]] = []

    def list_files() -> list[Path]:
        files = [site, devices] if "include" in site.read_text() else [site]
        listed.append(files)
        return files

    calls: list[list[Path]] = []

    async def on_change(changed: list[Path]) -> None:
        calls.append(changed)

    watch = ConfigWatch(list_files, interval_s=0.02)
    watch.rebase_now()
    task = asyncio.create_task(watch.run(on_change))
    try:
        touch_later(devices)
        # the touch is looked at (the files listed again) and taken as the loaded state; only then edit,
        # or the edit could land while the watcher is still reading the files for the touch
        touched = snapshot([devices])[devices]
        await wait_until(
            lambda: len(listed) == 2 and watch._state.stats.get(devices) == touched, 5, "the touch to be looked at"
        )
        assert calls == [], "same bytes: nothing to reload"

        devices.write_text("devices: [press01]\n")
        await wait_until(lambda: len(calls) == 1, 5, "the edit of the included file")
        assert calls == [[devices]]

        site.write_text("site: {}\n")  # the include is gone: devices.yaml is no longer watched
        await wait_until(lambda: len(calls) == 2, 5, "the edit of the top file")
        assert calls[1] == [site] and watch.files == (site,)
        devices.write_text("devices: [press02]\n")
        await asyncio.sleep(0.2)  # ten polls
        assert len(calls) == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
