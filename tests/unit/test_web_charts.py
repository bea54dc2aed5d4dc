"""Chart geometry, SSE framing, live tag payloads and state labels of the web pages (pure functions)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mes_lite.web import charts
from mes_lite.web.i18n import Translator
from mes_lite.web.live_tags import TagValue, apply_payload
from mes_lite.web.plant_labels import reason_label, state_key, state_label
from mes_lite.web.sse import frame

S = 1_000_000_000


def test_gantt_clips_intervals_to_the_window_and_scales_them() -> None:
    bars = charts.gantt(
        [(0, 30 * S, "running"), (30 * S, 90 * S, "fault"), (120 * S, 200 * S, "idle")], 10 * S, 110 * S, 1000
    )
    assert [(round(b.x), round(b.width), b.state_key) for b in bars] == [(0, 200, "running"), (200, 600, "fault")]


@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 5_000)), max_size=30),
    st.integers(0, 5_000),
    st.integers(1, 10_000),
)
def test_gantt_bars_never_leave_the_chart(pieces: list[tuple[int, int]], start: int, length: int) -> None:
    intervals = [(a, a + d, "running") for a, d in pieces]
    for bar in charts.gantt(intervals, start, start + length, 500.0):
        assert bar.x >= 0 and bar.width > 0 and bar.x + bar.width <= 500.0 + 1e-6


def test_bars_keep_a_slot_for_a_missing_value_and_cap_at_the_maximum() -> None:
    bars = charts.bars([("a", 0.5), ("b", None), ("c", 1.7)], 300, 100)
    assert [b.height for b in bars] == [50, 0, 100]
    assert bars[1].value is None and bars[1].label == "b"
    assert bars[2].x > bars[1].x > bars[0].x


def test_pareto_scales_bars_to_the_largest_and_the_line_to_100_percent() -> None:
    chart = charts.pareto([("jam", 600, 0.6), ("material", 300, 0.9), ("other", 100, 1.0)], 300, 200)
    assert [b.height for b in chart.bars] == pytest.approx([200, 100, 200 / 6])
    assert [y for _, y in chart.cumulative] == pytest.approx([80, 20, 0])


def test_time_ticks_fall_on_whole_steps() -> None:
    ticks = charts.time_ticks(90 * 60 * S, 5 * 3600 * S, 350, 3600, lambda ns: str(ns // (3600 * S)))
    assert [t.label for t in ticks] == ["2", "3", "4", "5"]
    assert ticks[0].x == 350 * (30 * 60) / (3.5 * 3600)


def test_an_sse_frame_puts_every_line_in_its_own_data_field() -> None:
    assert frame("tiles", "<li>\n<b>x</b>\r\n</li>") == "event: tiles\ndata: <li>\ndata: <b>x</b>\ndata: </li>\n\n"


def test_live_values_fold_single_and_batch_payloads_newest_wins() -> None:
    store: dict[str, TagValue] = {}
    apply_payload(
        store, "oil_temp", json.dumps({"value": 41.5, "ts_ns": 20, "quality": "good", "unit": "degC"}).encode()
    )
    apply_payload(
        store,
        "_batch",
        json.dumps(
            {
                "samples": [
                    {"tag": "oil_temp", "value": 40.0, "ts_ns": 10},
                    {"tag": "state", "value": "running", "ts_ns": 30},
                ]
            }
        ).encode(),
    )
    apply_payload(store, "power", b"not json")
    assert store["oil_temp"] == TagValue(41.5, 20, "good", "degC"), "an older batch value does not overwrite"
    assert store["state"].value == "running"
    assert "power" not in store


def test_states_and_reasons_have_labels_in_both_languages() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    assert state_key("Fault ") == "fault" and state_key(None) == "unknown" and state_key("warming") == "unknown"
    assert (state_label(zh, "fault"), state_label(en, "fault")) == ("故障", "Fault")
    assert state_label(en, "warming") == "State: warming"
    assert reason_label(zh, "die_jam") == "卡模"
    assert reason_label(en, "custom_reason", "Custom reason from master data") == "Custom reason from master data"
