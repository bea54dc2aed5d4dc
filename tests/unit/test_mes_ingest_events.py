"""The pure ingest core: payload parsing, reordering, dedupe, counter rollover and reset, role semantics."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_config.schema import Role
from mes_lite.ingest.events import (
    Anomaly,
    CountEvent,
    PayloadError,
    ReorderBuffer,
    StateEvent,
    StepKind,
    TagBinding,
    TagMessage,
    counter_step,
    parse_message,
    translators_for,
)

M = "acme/dongguan/stamping/line1/press01"
STATE_MAP = {0: "idle", 1: "running", 5: "fault"}
S = 1_000_000_000


def press_translator(with_total: bool = True):  # type: ignore[no-untyped-def]
    bindings = [TagBinding(f"{M}/state", Role.STATE, STATE_MAP), TagBinding(f"{M}/reject_count", Role.REJECT_COUNT)]
    bindings.append(
        TagBinding(f"{M}/total_count", Role.TOTAL_COUNT)
        if with_total
        else TagBinding(f"{M}/good_count", Role.GOOD_COUNT)
    )
    return translators_for(bindings, max_counter_delta=10_000)[M]


def test_a_uns_json_payload_and_a_uns_batch_payload_are_read() -> None:
    doc = {"value": 1, "ts": "2026-11-26T11:38:00.000Z", "ts_ns": 1_700_000_000_000_000_000, "quality": "good"}
    [one] = parse_message(f"{M}/state", json.dumps(doc).encode())
    assert one == TagMessage(f"{M}/state", 1, 1_700_000_000_000_000_000, "good")
    batch = {
        "machine": M,
        "samples": [
            {"tag": "state", "value": 5, "ts_ns": 2},
            {"tag": "total_count", "value": 9, "ts_ns": 3, "quality": "bad"},
        ],
    }
    messages = parse_message(f"{M}/_batch", json.dumps(batch).encode())
    assert [(m.tag, m.value, m.quality) for m in messages] == [("state", 5, "good"), ("total_count", 9, "bad")]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"value": 1}', "'ts_ns' must be a positive integer"),
        (b'{"ts_ns": 5}', "no 'value'"),
    ],
)
def test_an_unreadable_payload_is_refused_with_a_reason(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_message(f"{M}/state", payload)


def test_a_32_bit_counter_rolling_over_counts_the_parts_across_the_wrap() -> None:
    step = counter_step(2**32 - 3, 4, max_delta=10_000)
    assert step == counter_step(2**32 - 3, 4, max_delta=10_000)
    assert step.kind == StepKind.ROLLOVER and step.delta == 7


def test_a_counter_reset_or_an_implausible_jump_counts_nothing() -> None:
    assert counter_step(52_000, 3, max_delta=10_000).kind == StepKind.RESET
    assert counter_step(52_000, 3, max_delta=10_000).delta == 0
    assert counter_step(10, 9_000_000, max_delta=10_000) == counter_step(10, 9_000_000, max_delta=10_000)
    assert counter_step(10, 9_000_000, max_delta=10_000).kind == StepKind.GLITCH
    assert counter_step(None, 123_456, max_delta=10_000).kind == StepKind.FIRST  # a baseline, not production


def test_total_and_reject_counters_become_produced_and_reject_quantities() -> None:
    t = press_translator()
    msgs = [
        TagMessage(f"{M}/total_count", 100, 1 * S),
        TagMessage(f"{M}/reject_count", 4, 1 * S),
        TagMessage(f"{M}/total_count", 130, 2 * S),
        TagMessage(f"{M}/reject_count", 6, 2 * S),
    ]
    events = [e for m in msgs for e in t.apply(m)]
    counts = [e for e in events if isinstance(e, CountEvent)]
    assert [(c.produced_qty, c.reject_qty) for c in counts] == [(30, 0), (0, 2)]


def test_good_and_reject_counters_without_a_total_add_up_to_produced() -> None:
    t = press_translator(with_total=False)
    msgs = [
        TagMessage(f"{M}/good_count", 10, S),
        TagMessage(f"{M}/reject_count", 1, S),
        TagMessage(f"{M}/good_count", 15, 2 * S),
        TagMessage(f"{M}/reject_count", 2, 2 * S),
    ]
    counts = [e for m in msgs for e in t.apply(m) if isinstance(e, CountEvent)]
    assert sum(c.produced_qty for c in counts) == 6 and sum(c.reject_qty for c in counts) == 1


def test_a_reset_counter_is_reported_and_counting_continues_from_the_new_baseline() -> None:
    t = press_translator()
    events = [
        e for v, ts in [(500, 1), (510, 2), (0, 3), (7, 4)] for e in t.apply(TagMessage(f"{M}/total_count", v, ts * S))
    ]
    assert [e.produced_qty for e in events if isinstance(e, CountEvent)] == [10, 7]
    assert [e.kind for e in events if isinstance(e, Anomaly)] == ["reset"]


def test_state_codes_are_named_by_the_tags_enum_map_and_bad_quality_is_skipped() -> None:
    t = press_translator()
    assert t.apply(TagMessage(f"{M}/state", 5, S)) == [StateEvent(M, "fault", S)]
    assert t.apply(TagMessage(f"{M}/state", "Running", 2 * S)) == [StateEvent(M, "running", 2 * S)]
    [anomaly] = t.apply(TagMessage(f"{M}/state", 0, 3 * S, "bad"))
    assert anomaly.kind == "bad_quality"


def test_a_duplicate_or_a_message_older_than_the_cursor_produces_nothing() -> None:
    t = press_translator()
    t.apply(TagMessage(f"{M}/total_count", 1, 5 * S))
    t.apply(TagMessage(f"{M}/total_count", 3, 6 * S))
    assert [a.kind for a in t.apply(TagMessage(f"{M}/total_count", 3, 6 * S))] == ["duplicate"]
    assert [a.kind for a in t.apply(TagMessage(f"{M}/total_count", 2, 5 * S + 1))] == ["late"]


def test_the_reorder_buffer_releases_in_timestamp_order_once_the_window_has_passed() -> None:
    buffer = ReorderBuffer(window_s=2.0)
    for ts, arrived in [(3, 0.0), (1, 0.1), (2, 0.2), (2, 0.3)]:
        buffer.push(TagMessage(f"{M}/state", ts, ts * S), arrived_s=arrived)
    assert buffer.duplicates == 1
    # ts 1 is already 2 s older than the newest message (ts 3): nothing older can still overtake it
    assert [m.ts_ns for m in buffer.release(now_s=1.0)] == [1 * S]
    assert [m.ts_ns for m in buffer.release(now_s=2.25)] == [2 * S, 3 * S]  # waited the window
    assert len(buffer) == 0


def simulated_messages(seed: int, n: int) -> list[TagMessage]:
    """A plausible press: state changes, a total counter that rolls over, rejects; one sample per second."""
    rng = random.Random(seed)
    total, rejects, out = 2**32 - 50, 0, []
    for i in range(n):
        ts = (1000 + i) * S
        out.append(TagMessage(f"{M}/state", rng.choice([0, 1, 1, 1, 5]), ts))
        total = (total + rng.randint(0, 5)) % 2**32
        rejects += rng.random() < 0.2
        out.append(TagMessage(f"{M}/total_count", total, ts))
        out.append(TagMessage(f"{M}/reject_count", rejects, ts))
    return out


def translate_through_buffer(messages: list[TagMessage], window_s: float) -> list:
    t = press_translator()
    buffer = ReorderBuffer(window_s)
    events = []
    for i, m in enumerate(messages):
        buffer.push(m, arrived_s=i * 0.01)
        events += [e for r in buffer.release(now_s=i * 0.01) for e in t.apply(r)]
    events += [e for r in buffer.release(everything=True) for e in t.apply(r)]
    # events of different tags with the same timestamp may come in either order: compare them sorted
    return sorted((e for e in events if not isinstance(e, Anomaly)), key=lambda e: (e.ts_ns, type(e).__name__, repr(e)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.data())
def test_duplicated_and_shuffled_delivery_within_the_window_gives_the_same_events_as_in_order(seed, data) -> None:
    ordered = simulated_messages(seed, 40)
    expected = translate_through_buffer(ordered, window_s=5.0)
    delivered = list(ordered)
    for i in data.draw(st.lists(st.integers(0, len(ordered) - 1), max_size=20)):
        delivered.insert(delivered.index(ordered[i]) + 1, ordered[i])  # QoS-1 redelivery: the same message again
    rng = random.Random(seed)
    # shuffle within blocks of 9 messages (3 s of source time), inside the 5 s window
    shuffled = []
    for start in range(0, len(delivered), 9):
        block = delivered[start : start + 9]
        rng.shuffle(block)
        shuffled += block
    assert translate_through_buffer(shuffled, window_s=5.0) == expected
    total_produced = sum(e.produced_qty for e in expected if isinstance(e, CountEvent))
    assert total_produced == (ordered[-2].value - ordered[1].value) % 2**32  # rollover counted, nothing more
