"""Report by exception, heartbeats and derived tags: worked examples and properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_config.schema import SiteConfig
from gateway.expression import ExpressionError, parse_expression
from gateway.pipeline import (
    CounterRate,
    PipelineConfigError,
    ReportByException,
    ReportPolicy,
    build_pipelines,
    should_report,
    value_changed,
)
from gateway.sample import Quality, Sample

S = 1_000_000_000  # ns per second
PATH = "acme/dg/press/line1/press01/"


def site(tags: dict, derived: dict | None = None) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "dg"},
            "devices": [
                {
                    "name": "press01",
                    "area": "press",
                    "line": "line1",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1"},
                    "tags": tags,
                    "derived": derived or {},
                }
            ],
        }
    )


def sample(tag: str, value: object, t_s: float, quality: Quality = Quality.GOOD) -> Sample:
    return Sample(PATH + tag, value, int(t_s * S), quality)  # type: ignore[arg-type]


# ---------------------------------------------------------------- report by exception


def test_a_tag_without_deadband_or_heartbeat_is_reported_every_read() -> None:
    assert should_report(ReportPolicy(), sample("t", 1.0, 0), sample("t", 1.0, 1))


def test_a_change_within_the_deadband_is_suppressed_and_a_larger_one_passes() -> None:
    policy = ReportPolicy(deadband=0.5)
    last = sample("temp", 20.0, 0)
    assert not should_report(policy, last, sample("temp", 20.4, 1))
    assert not should_report(policy, last, sample("temp", 20.5, 1)), "exactly the deadband is not more than it"
    assert should_report(policy, last, sample("temp", 20.6, 1))
    assert should_report(policy, last, sample("temp", 19.4, 1))


def test_the_deadband_is_measured_from_the_last_reported_value_so_a_slow_drift_is_reported() -> None:
    rbe = ReportByException({PATH + "temp": ReportPolicy(deadband=0.5)})
    drift = [sample("temp", 20.0 + 0.2 * i, i) for i in range(6)]  # 20.0 20.2 ... 21.0
    assert [s.value for s in rbe.filter(drift)] == [20.0, pytest.approx(20.6)]
    assert rbe.suppressed == 4


def test_a_quality_change_always_passes_even_without_a_value_change() -> None:
    policy = ReportPolicy(deadband=10.0)
    assert should_report(policy, sample("p", 5.0, 0), sample("p", 5.0, 1, Quality.BAD))


def test_an_unchanged_tag_is_reported_again_after_its_heartbeat() -> None:
    rbe = ReportByException({PATH + "state": ReportPolicy(heartbeat_s=10.0)})
    reads = [sample("state", "running", t) for t in range(0, 25)]
    assert [s.ts_ns // S for s in rbe.filter(reads)] == [0, 10, 20]


def test_a_heartbeat_alone_means_report_on_any_change() -> None:
    rbe = ReportByException({PATH + "state": ReportPolicy(heartbeat_s=60.0)})
    reads = [sample("state", v, t) for t, v in enumerate(["idle", "idle", "running", "running", "idle"])]
    assert [s.value for s in rbe.filter(reads)] == ["idle", "running", "idle"]


def test_strings_bools_and_nan_compare_by_change() -> None:
    assert value_changed("idle", "running", 5.0)
    assert not value_changed(True, True, 0.0)
    assert value_changed(1, True, 0.0), "a type change is a change"
    assert not value_changed(float("nan"), float("nan"), 0.0)
    assert value_changed(1.0, float("nan"), 0.0)


@given(
    st.lists(st.floats(-1000, 1000), min_size=1, max_size=60),
    st.floats(0, 50),
    st.integers(1, 20),
)
def test_reported_values_differ_by_more_than_the_deadband_or_fill_a_heartbeat_gap(
    readings: list[float], deadband: float, heartbeat_s: int
) -> None:
    rbe = ReportByException({PATH + "x": ReportPolicy(deadband=deadband, heartbeat_s=heartbeat_s)})
    reads = [sample("x", v, t) for t, v in enumerate(readings)]
    reported = rbe.filter(reads)
    assert reported[0] == reads[0]
    for before, after in itertools.pairwise(reported):
        gap_s = (after.ts_ns - before.ts_ns) / S
        assert abs(after.value - before.value) > deadband or gap_s >= heartbeat_s  # type: ignore[operator]
        assert gap_s <= heartbeat_s, "never silent for longer than the heartbeat (reads are 1 s apart)"
    # every suppressed read was within the deadband of the value reported before it
    last = reported[0]
    for read in reads[1:]:
        if read in reported:
            last = read
        else:
            assert abs(read.value - last.value) <= deadband  # type: ignore[operator]


# ---------------------------------------------------------------- derived tags


def test_the_rate_of_a_counter_is_its_increase_per_period_over_the_window() -> None:
    rate = CounterRate(PATH + "parts_per_min", per_s=60.0)
    out = [rate.update(sample("parts", 100 + t // 5, t)) for t in range(0, 121, 10)]  # 2 parts every 10 s
    assert out[0] is None, "one point is not a rate"
    assert [round(s.value, 6) for s in out[1:] if s] == [12.0] * 12
    assert out[-1] is not None and out[-1].tag == PATH + "parts_per_min"


def test_a_counter_reset_restarts_the_rate_instead_of_giving_a_negative_rate() -> None:
    rate = CounterRate(PATH + "r", per_s=60.0)
    assert rate.update(sample("parts", 500, 0)) is None
    assert rate.update(sample("parts", 510, 10)).value == pytest.approx(60.0)  # type: ignore[union-attr]
    assert rate.update(sample("parts", 3, 20)) is None, "reset: no rate from one point"
    assert rate.update(sample("parts", 5, 30)).value == pytest.approx(12.0)  # type: ignore[union-attr]


def test_power_is_computed_from_voltage_and_current_of_the_same_device() -> None:
    config = site(
        {"voltage": {"address": "hr40001"}, "current": {"address": "hr40002"}},
        {"power_kw": {"expr": "voltage * current / 1000"}},
    )
    pipeline = build_pipelines(config)["press01"]
    out = pipeline.process([sample("voltage", 400.0, 1), sample("current", 25.0, 1)])
    power = [s for s in out if s.tag.endswith("power_kw")]
    assert len(power) == 1 and power[0].value == pytest.approx(10.0) and power[0].quality == Quality.GOOD
    # later only the current changes: power follows with the latest voltage
    out = pipeline.process([sample("current", 50.0, 2)])
    assert [s.value for s in out if s.tag.endswith("power_kw")] == [pytest.approx(20.0)]


def test_a_bad_input_makes_the_derived_value_bad_with_a_reason() -> None:
    config = site(
        {"voltage": {"address": "hr40001"}, "current": {"address": "hr40002"}},
        {"power_kw": {"expr": "voltage * current / 1000"}},
    )
    pipeline = build_pipelines(config)["press01"]
    out = pipeline.process([sample("voltage", None, 1, Quality.BAD), sample("current", 25.0, 1)])
    power = next(s for s in out if s.tag.endswith("power_kw"))
    assert power.quality == Quality.BAD and power.value is None and "voltage" in power.reason


def test_division_by_zero_gives_a_bad_sample_not_a_crash() -> None:
    config = site(
        {"a": {"address": "hr40001"}, "b": {"address": "hr40002"}},
        {"ratio": {"expr": "a / b"}},
    )
    out = build_pipelines(config)["press01"].process([sample("a", 1, 1), sample("b", 0, 1)])
    ratio = next(s for s in out if s.tag.endswith("ratio"))
    assert ratio.quality == Quality.BAD and "division by zero" in ratio.reason


def test_a_derived_tag_over_an_unknown_tag_is_a_clear_configuration_error() -> None:
    config = site({"voltage": {"address": "hr40001"}}, {"power_kw": {"expr": "voltage * amps"}})
    with pytest.raises(PipelineConfigError, match="derived tag 'power_kw': amps not a tag"):
        build_pipelines(config)
    config = site({"voltage": {"address": "hr40001"}}, {"ppm": {"rate_of": "parts"}})
    with pytest.raises(PipelineConfigError, match="rate_of 'parts' is not a tag"):
        build_pipelines(config)


def test_derived_tags_go_through_report_by_exception_like_read_tags() -> None:
    config = site(
        {"parts": {"address": "hr40001"}},
        {"parts_per_min": {"rate_of": "parts", "per": "1m", "deadband": 1.0}},
    )
    pipeline = build_pipelines(config)["press01"]
    rates = []
    for t in range(0, 60, 5):
        rates += [s.value for s in pipeline.process([sample("parts", t // 5, t)]) if s.tag.endswith("parts_per_min")]
    assert rates == [pytest.approx(12.0)], "a steady 12 parts/min is reported once"


@pytest.mark.parametrize(
    "text",
    ["__import__('os').system('x')", "a ** 2", "a if b else c", "a.b", "a[0]", "f(a)", "'text'", "a < b", "True"],
)
def test_an_expression_that_is_not_plain_arithmetic_is_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_arithmetic_follows_the_usual_precedence() -> None:
    expression = parse_expression("-(a + b) * 2 / c - 1.5")
    assert expression.names == {"a", "b", "c"}
    assert expression.evaluate({"a": 1, "b": 2, "c": 4}) == pytest.approx(-3.0)
