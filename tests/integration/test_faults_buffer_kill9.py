"""The buffer survives `kill -9` of the process writing it: every committed append is there afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.buffer import Buffer

WRITER = textwrap.dedent(
    """
    import sys
    from gateway.buffer import Buffer
    from gateway.sample import Sample

    buffer = Buffer(sys.argv[1], ["mqtt"], fsync=sys.argv[2])
    n = 0
    while True:
        batch = [Sample(f"acme/s/a/l/m/t{i}", n + i, n + i) for i in range(10)]
        last_seq = buffer.append(batch)
        n += 10
        print(last_seq, flush=True)  # reported only after the commit returned
    """
)


@pytest.mark.parametrize("fsync", ["batch", "always"])
def test_every_append_committed_before_a_kill_9_is_still_there(tmp_path: Path, fsync: str) -> None:
    path = tmp_path / "buffer.db"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), fsync], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    committed = 0
    try:
        for line in child.stdout:
            committed = int(line)
            if committed >= 2000:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert committed >= 2000, "the writer did not get going"

    buffer = Buffer(path, ["mqtt"])
    assert buffer.last_seq >= committed
    seen: list[int] = []
    while batch := buffer.read_after("mqtt", 5000):
        seen.extend(int(s.value) for s in batch.samples)  # type: ignore[arg-type]
        buffer.ack("mqtt", batch.last_seq)
    assert seen == list(range(buffer.last_seq)), "every sample, in order, no gap"
    buffer.close()
