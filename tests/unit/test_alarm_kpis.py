"""ISA-18.2 alarm KPIs as pure functions of raise times: worked examples."""

from __future__ import annotations

import pytest

from mes_lite.alarms.service import in_scope, kpis_from_raises
from mes_lite.services.errors import InvalidInput

S = 1_000_000_000
MIN10 = 600 * S


def test_rate_per_operator_per_10_minutes_peak_and_flood() -> None:
    # one hour = 6 periods; 12 raises in the first period (a flood), 6 spread over the rest
    raises = [("a/b/c/d/m/x", i * S) for i in range(12)] + [("a/b/c/d/m/y", MIN10 + i * MIN10 // 2) for i in range(6)]
    result = kpis_from_raises(raises, 0, 6 * MIN10, operators=1)
    assert (result.annunciated, result.per_operator_per_10_min, result.peak_per_10_min) == (18, 3.0, 12)
    assert result.flood_share == pytest.approx(1 / 6, abs=1e-4)
    two = kpis_from_raises(raises, 0, 6 * MIN10, operators=2)
    assert (two.per_operator_per_10_min, two.flood_share) == (1.5, 0.0)  # 12 / 2 operators = 6: no flood


def test_top_ten_bad_actors_with_their_share() -> None:
    raises = [(f"k{i}", t * S) for i in range(12) for t in range(i + 1)]  # k11 raised 12 times ... k0 once
    result = kpis_from_raises(raises, 0, MIN10)
    assert [b["key"] for b in result.bad_actors] == [f"k{i}" for i in range(11, 1, -1)]
    assert result.bad_actors[0] == {"key": "k11", "count": 12, "share": round(12 / 78, 4)}


def test_chattering_means_three_raises_within_a_minute() -> None:
    raises = [("chatty", t * S) for t in (0, 20, 59)] + [("slow", t * S) for t in (0, 40, 80, 120)]
    result = kpis_from_raises(raises, 0, MIN10)
    assert result.chattering == [{"key": "chatty", "max_per_minute": 3, "count": 3}]


def test_raises_outside_the_window_do_not_count_and_bad_windows_are_refused() -> None:
    assert kpis_from_raises([("a", -1), ("a", MIN10)], 0, MIN10).annunciated == 0
    with pytest.raises(InvalidInput, match="must end after it starts"):
        kpis_from_raises([], 10, 10)
    with pytest.raises(InvalidInput, match="operators must be at least 1"):
        kpis_from_raises([], 0, 10, operators=0)


def test_a_scope_may_be_written_with_or_without_the_enterprise() -> None:
    path = "acme/dongguan/stamping/line1/press01"
    assert in_scope(path, "acme/dongguan/stamping") and in_scope(path, "dongguan/stamping/line1")
    assert in_scope(path, None) and in_scope(path, path)
    assert not in_scope(path, "dongguan/stamp") and not in_scope(path, "acme/dongguan/moulding")
