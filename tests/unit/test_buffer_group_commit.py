"""Group commit: read cycles that arrive together are committed in one transaction, each its own segment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.buffer import AsyncBuffer, Buffer, BufferFull, encode_segment, segment_bytes
from gateway.sample import Sample

MACHINE = "acme/dg/press/line1/press{:02d}/"


def cycle(device: int, value: int, n: int = 10) -> list[Sample]:
    return [Sample(MACHINE.format(device) + f"r{i}", value, 1_000 + value) for i in range(n)]


def test_append_many_numbers_each_batch_in_order_and_keeps_one_segment_per_batch(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt"])
    assert buffer.append_many([cycle(1, 1), [], cycle(2, 1, n=5)]) == [10, 10, 15]
    assert buffer.metrics().segments == 2
    batch = buffer.read_after("mqtt", 100)
    assert batch is not None and batch.samples == cycle(1, 1) + cycle(2, 1, n=5)
    buffer.close()
    reopened = Buffer(tmp_path / "b.db", ["mqtt"], recent_samples=0)  # read back from the file, not memory
    assert reopened.last_seq == 15
    again = reopened.read_after("mqtt", 100)
    assert again is not None and again.samples == cycle(1, 1) + cycle(2, 1, n=5)
    reopened.close()


def test_under_stop_reading_only_the_batch_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    one = segment_bytes(encode_segment(cycle(1, 1), {s.tag: i for i, s in enumerate(cycle(1, 1))}))
    buffer = Buffer(tmp_path / "b.db", ["mqtt"], max_bytes=one + 10, when_full="stop_reading")
    first, second = buffer.append_many([cycle(1, 1), cycle(2, 1)])
    assert first == 10 and isinstance(second, BufferFull)
    metrics = buffer.metrics()
    assert (metrics.last_seq, metrics.refused_appends, metrics.refused_samples) == (10, 1, 10)
    with pytest.raises(BufferFull):
        buffer.append(cycle(3, 1))
    buffer.close()


async def test_concurrent_appends_share_commits_and_each_returns_its_own_last_seq(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt"])
    trips: list[int] = []
    append_many = buffer.append_many

    def counting(batches):  # type: ignore[no-untyped-def]
        trips.append(len(batches))
        return append_many(batches)

    buffer.append_many = counting  # type: ignore[method-assign]
    queue = AsyncBuffer(buffer)
    last_seqs = await asyncio.gather(*(queue.append(cycle(d, 1)) for d in range(10)))
    assert sorted(last_seqs) == list(range(10, 101, 10))
    assert sum(trips) == 10 and len(trips) < 10, trips  # fewer trips to the buffer's thread than appends
    batch = await queue.read_after("mqtt", 1000)
    assert batch is not None and len(batch.samples) == 100
    # every device's cycle is stored whole and in its own order
    for d in range(10):
        assert [s for s in batch.samples if s.tag.startswith(MACHINE.format(d))] == cycle(d, 1)
    await queue.close()


async def test_a_refused_append_raises_only_in_its_own_caller(tmp_path: Path) -> None:
    one = segment_bytes(encode_segment(cycle(1, 1), {s.tag: i for i, s in enumerate(cycle(1, 1))}))
    queue = AsyncBuffer(Buffer(tmp_path / "b.db", ["mqtt"], max_bytes=one + 10, when_full="stop_reading"))
    results = await asyncio.gather(queue.append(cycle(1, 1)), queue.append(cycle(2, 1)), return_exceptions=True)
    assert results[0] == 10 and isinstance(results[1], BufferFull)
    await queue.close()


def test_a_group_that_fails_midway_stores_nothing_and_memory_agrees_with_the_file(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt"])
    assert buffer.append(cycle(1, 1)) == 10
    unencodable = [Sample(MACHINE.format(9) + "bad", object(), 5)]  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        buffer.append_many([cycle(2, 2), unencodable])  # the first one was inserted, then rolled back
    assert buffer.last_seq == 10
    batch = buffer.read_after("mqtt", 1000)
    assert batch is not None and batch.samples == cycle(1, 1)
    assert buffer.append(cycle(2, 3)) == 20
    buffer.close()
    reopened = Buffer(tmp_path / "b.db", ["mqtt"])
    again = reopened.read_after("mqtt", 1000)
    assert again is not None and again.samples == cycle(1, 1) + cycle(2, 3)  # tag ids consistent with the file
    reopened.close()
