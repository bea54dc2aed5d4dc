"""The durable buffer as a queue: order, per-sink cursors, bounds and policies, restarts."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.buffer import (
    CHECKPOINT_INTERVAL_S,
    CURSOR_SAVE_INTERVAL_S,
    Buffer,
    BufferFull,
    decode_segment,
    encode_segment,
    segment_bytes,
)
from gateway.sample import Quality, Sample

TAG = "acme/dongguan/stamping/line1/press01/{}"


def samples(n: int, start: int = 0, tag: str = "count") -> list[Sample]:
    return [Sample(TAG.format(tag), start + i, 1_700_000_000_000_000_000 + start + i) for i in range(n)]


def values(batch_samples: list[Sample]) -> list[object]:
    return [s.value for s in batch_samples]


def test_a_sample_survives_the_round_trip_through_storage_with_its_exact_type() -> None:
    originals = [
        Sample(TAG.format("running"), True, 1, Quality.GOOD),
        Sample(TAG.format("parts"), 4_294_967_295, 2),
        Sample(TAG.format("temp"), 21.1, 3, Quality.UNCERTAIN, "sensor drifting"),
        Sample(TAG.format("temp"), math.inf, 4),
        Sample(TAG.format("state"), "running", 5),
        Sample(TAG.format("pressure"), None, 6, Quality.BAD, "timeout after 1.0 s"),
        Sample(TAG.format("count"), 0, 7),
    ]
    ids = {tag: i for i, tag in enumerate(dict.fromkeys(s.tag for s in originals))}
    decoded = decode_segment(encode_segment(originals, ids), {i: t for t, i in ids.items()})
    assert decoded == originals
    assert [type(s.value) for s in decoded] == [type(s.value) for s in originals]


@given(
    st.lists(
        st.one_of(
            st.booleans(),
            st.integers(min_value=-(2**63), max_value=2**64 - 1),
            st.floats(allow_nan=False),
            st.text(max_size=20),
            st.none(),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_every_value_kind_round_trips_exactly(vals: list[object]) -> None:
    originals = [Sample(TAG.format("x"), v, i, Quality.GOOD) for i, v in enumerate(vals)]  # type: ignore[arg-type]
    decoded = decode_segment(encode_segment(originals, {TAG.format("x"): 1}), {1: TAG.format("x")})
    assert [(type(s.value), s.value) for s in decoded] == [(type(v), v) for v in vals]


def test_each_sink_reads_in_append_order_from_its_own_cursor(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt", "influxdb"])
    buffer.append(samples(3, 0))
    buffer.append(samples(4, 3))
    first = buffer.read_after("mqtt", 5)
    assert first is not None and values(first.samples) == [0, 1, 2, 3, 4]
    assert (first.first_seq, first.last_seq) == (1, 5)
    buffer.ack("mqtt", first.last_seq)
    rest = buffer.read_after("mqtt", 100)
    assert rest is not None and values(rest.samples) == [5, 6] and rest.first_seq == 6
    # the other sink has not moved
    everything = buffer.read_after("influxdb", 100)
    assert everything is not None and values(everything.samples) == list(range(7))


def test_an_unacknowledged_batch_is_read_again(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt"])
    buffer.append(samples(10))
    once = buffer.read_after("mqtt", 4)
    again = buffer.read_after("mqtt", 4)
    assert once == again


def test_reading_from_memory_and_from_the_file_gives_the_same_batch(tmp_path: Path) -> None:
    in_memory = Buffer(tmp_path / "a.db", ["mqtt"])
    from_file = Buffer(tmp_path / "b.db", ["mqtt"], recent_samples=0)
    for buffer in (in_memory, from_file):
        for i in range(5):
            buffer.append(samples(7, 7 * i))
    for after in (0, 3, 7, 20):
        assert in_memory.read_after("mqtt", 10, after_seq=after) == from_file.read_after("mqtt", 10, after_seq=after)


def test_a_sink_that_is_up_to_date_reads_nothing(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt"])
    assert buffer.read_after("mqtt", 10) is None
    last = buffer.append(samples(2))
    buffer.ack("mqtt", last)
    assert buffer.read_after("mqtt", 10) is None


def test_segments_acknowledged_by_every_sink_are_compacted_away_when_the_cursors_are_written(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt", "influxdb"])
    last = buffer.append(samples(5))
    buffer.ack("mqtt", last)
    buffer.save_cursors()
    assert buffer.metrics().segments == 1, "influxdb has not acknowledged yet"
    buffer.ack("influxdb", last)
    assert buffer.metrics().sinks["influxdb"].depth == 0, "an acknowledgement moves the cursor at once"
    buffer.append(samples(1, 5))  # the cursors ride along with the next append's transaction
    metrics = buffer.metrics()
    assert metrics.segments == 1 and metrics.last_seq == last + 1


def test_an_acknowledgement_is_written_on_its_own_once_the_last_cursor_write_is_old(tmp_path: Path) -> None:
    """No append comes (a device went quiet): the cursor still reaches the file within CURSOR_SAVE_INTERVAL_S."""
    path = tmp_path / "b.db"
    buffer = Buffer(path, ["mqtt"])
    first = buffer.append(samples(3))
    buffer.ack("mqtt", first)
    assert on_disk_cursor(path, "mqtt") == 0, "written with the next append, not at once"
    time.sleep(CURSOR_SAVE_INTERVAL_S)
    second = buffer.append(samples(2, 3))
    time.sleep(CURSOR_SAVE_INTERVAL_S)
    buffer.ack("mqtt", second)
    assert on_disk_cursor(path, "mqtt") == second
    assert buffer.metrics().segments == 0


def test_acknowledgements_not_yet_written_are_written_on_close(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    buffer = Buffer(path, ["mqtt"])
    last = buffer.append(samples(3))
    buffer.ack("mqtt", last)
    buffer.close()
    assert on_disk_cursor(path, "mqtt") == last
    assert Buffer(path, ["mqtt"]).read_after("mqtt", 10) is None


def on_disk_cursor(path: Path, sink: str) -> int:
    """The cursor as another process (a restarted gateway) would find it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT acked_seq FROM cursor WHERE sink = ?", (sink,)).fetchone()[0])


def test_metrics_report_depth_and_the_age_of_the_oldest_unacknowledged_sample(tmp_path: Path) -> None:
    now = [1_000_000_000_000]
    buffer = Buffer(tmp_path / "b.db", ["mqtt", "influxdb"], clock_ns=lambda: now[0])
    buffer.append(samples(3))
    now[0] += 5_000_000_000
    last = buffer.append(samples(2, 3))
    buffer.ack("mqtt", 3)
    now[0] += 1_000_000_000
    metrics = buffer.metrics()
    assert metrics.sinks["mqtt"].depth == 2 and metrics.sinks["mqtt"].oldest_unacked_age_s == pytest.approx(1.0)
    assert metrics.sinks["influxdb"].depth == 5 and metrics.sinks["influxdb"].oldest_unacked_age_s == pytest.approx(6.0)
    buffer.ack("mqtt", last)
    assert buffer.metrics().sinks["mqtt"].oldest_unacked_age_s == 0.0


def test_drop_oldest_deletes_the_oldest_unacknowledged_samples_and_counts_them_per_sink(tmp_path: Path) -> None:
    one_batch = segment_bytes(encode_segment(samples(10, 100), {TAG.format("count"): 1}))
    buffer = Buffer(tmp_path / "b.db", ["mqtt", "influxdb"], max_bytes=3 * one_batch, when_full="drop_oldest")
    for i in range(3):
        buffer.append(samples(10, 100 + 10 * i))
    buffer.ack("mqtt", 10)  # mqtt delivered the first batch, influxdb nothing
    buffer.append(samples(10, 130))  # does not fit: the oldest batch goes
    metrics = buffer.metrics()
    assert metrics.bytes <= 3 * one_batch
    assert metrics.sinks["mqtt"].dropped == 0, "mqtt had already delivered the dropped batch"
    assert metrics.sinks["influxdb"].dropped == 10
    batch = buffer.read_after("influxdb", 100)
    assert batch is not None and values(batch.samples) == list(range(110, 140))


def test_stop_reading_refuses_the_append_and_stores_nothing_until_a_sink_catches_up(tmp_path: Path) -> None:
    one_batch = segment_bytes(encode_segment(samples(10, 100), {TAG.format("count"): 1}))
    buffer = Buffer(tmp_path / "b.db", ["mqtt"], max_bytes=2 * one_batch, when_full="stop_reading")
    buffer.append(samples(10, 100))
    buffer.append(samples(10, 110))
    with pytest.raises(BufferFull):
        buffer.append(samples(10, 120))
    metrics = buffer.metrics()
    assert (metrics.refused_appends, metrics.refused_samples, metrics.last_seq) == (1, 10, 20)
    assert metrics.sinks["mqtt"].dropped == 0
    buffer.ack("mqtt", 10)
    buffer.append(samples(10, 120))
    batch = buffer.read_after("mqtt", 100)
    assert batch is not None and values(batch.samples) == list(range(110, 130))


def test_a_batch_larger_than_the_whole_buffer_is_still_accepted_into_an_empty_buffer(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", ["mqtt"], max_bytes=100, when_full="stop_reading")
    assert buffer.append(samples(50)) == 50


def test_cursors_counters_and_samples_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    buffer = Buffer(path, ["mqtt", "influxdb"])
    buffer.append(samples(5))
    buffer.ack("mqtt", 3)
    buffer.close()
    reopened = Buffer(path, ["mqtt", "influxdb"])
    batch = reopened.read_after("mqtt", 100)
    assert batch is not None and values(batch.samples) == [3, 4] and batch.first_seq == 4
    assert reopened.append(samples(1, 5)) == 6, "sequence numbers continue where they were"


def test_a_new_sink_starts_at_the_end_and_a_removed_sink_no_longer_holds_back_compaction(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    buffer = Buffer(path, ["mqtt", "old"])
    buffer.append(samples(5))
    buffer.ack("mqtt", 5)
    buffer.close()
    reopened = Buffer(path, ["mqtt", "influxdb"])
    assert reopened.metrics().segments == 0, "only 'old' still needed them"
    assert reopened.read_after("influxdb", 10) is None
    reopened.append(samples(1, 5))
    batch = reopened.read_after("influxdb", 10)
    assert batch is not None and values(batch.samples) == [5]


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 8)),
            st.tuples(st.just("deliver"), st.sampled_from(["a", "b"]), st.integers(1, 12)),
        ),
        max_size=40,
    ),
    max_batches=st.integers(2, 6),
    recent_samples=st.sampled_from([0, 6, 20_000]),
)
def test_under_drop_oldest_each_sink_receives_every_sample_exactly_once_or_counts_it_dropped(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple], max_batches: int, recent_samples: int
) -> None:
    """Reads come from memory (recent samples) or from the file (older ones): the same either way."""
    path = tmp_path_factory.mktemp("prop") / "b.db"
    big = segment_bytes(encode_segment(samples(8, 10**6), {TAG.format("count"): 10**6}))
    buffer = Buffer(
        path, ["a", "b"], max_bytes=max_batches * big, when_full="drop_oldest", recent_samples=recent_samples
    )
    appended = 0
    received: dict[str, list[object]] = {"a": [], "b": []}
    for op in ops:
        if op[0] == "append":
            buffer.append(samples(op[1], appended))
            appended += op[1]
        else:
            batch = buffer.read_after(op[1], op[2])
            if batch:
                received[op[1]].extend(values(batch.samples))
                buffer.ack(op[1], batch.last_seq)
    for sink in ("a", "b"):
        while batch := buffer.read_after(sink, 100):
            received[sink].extend(values(batch.samples))
            buffer.ack(sink, batch.last_seq)
        got = received[sink]
        assert got == sorted(set(got)), "in order, no duplicates"
        assert len(got) + buffer.metrics().sinks[sink].dropped == appended
        assert buffer.metrics().bytes <= max_batches * big
    with sqlite3.connect(path) as db:  # the kept counts agree with the file
        stored_bytes, stored_segments = db.execute("SELECT COALESCE(SUM(nbytes), 0), COUNT(*) FROM segment").fetchone()
    assert (buffer.metrics().bytes, buffer.metrics().segments) == (stored_bytes, stored_segments)
    buffer.close()


def test_fsync_batch_a_commit_waits_at_most_one_checkpoint_interval_for_its_sync(tmp_path: Path) -> None:
    """The timer's question: is a sync due? Not before the last one is CHECKPOINT_INTERVAL_S old, then yes."""
    buffer = Buffer(tmp_path / "b.db", ["mqtt"], fsync="batch")
    assert buffer.sync_if_due() is None, "nothing committed, nothing to sync"
    buffer.append(samples(3))
    assert buffer.needs_sync
    remaining = buffer.sync_if_due()
    assert remaining is not None and 0 < remaining <= CHECKPOINT_INTERVAL_S
    time.sleep(remaining)
    assert buffer.sync_if_due() is None and not buffer.needs_sync
    always = Buffer(tmp_path / "a.db", ["mqtt"], fsync="always")
    always.append(samples(3))
    assert not always.needs_sync, "fsync=always syncs at every commit"
