"""The alarm engine as a pure function of samples and the clock: worked examples per alarm kind."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edge_config.loader import load_config
from edge_config.schema import SiteConfig
from gateway.alarms.engine import AlarmEngine
from gateway.alarms.events import AlarmEvent
from gateway.alarms.lifecycle import AlarmCommandError, AlarmState
from gateway.sample import Quality, Sample

S = 1_000_000_000
T0 = 1_800_000_000 * S
PATH = "acme/dongguan/stamping/line1/press01"

CONFIG = """
site: {enterprise: acme, site: dongguan}
devices:
  - name: press01
    area: stamping
    line: line1
    protocol: modbus
    connection: {host: 127.0.0.1, port: 502, unit: 1}
    tags:
      state: {address: hr40001, role: state, map: {0: idle, 1: running, 5: fault}}
      oil_temp: {address: hr40002, scale: 0.1}
      pressure: {address: hr40003}
      pressure_sp: {address: hr40004}
alarms:
  definitions:
    oil_temp:
      kind: limit
      tag: oil_temp
      hi: 70
      hihi: {limit: 80, priority: urgent}
      lo: 10
      deadband: 2
      on_delay: 5s
      priority: high
      message: {en: "{machine}: oil {value:.1f} > {limit:g}", zh-CN: "{machine}：油温 {value:.1f}"}
    long_fault: {kind: state, states: [fault], on_delay: 300s, priority: high}
    no_data: {kind: stale, tag: oil_temp, after: 30s}
    pressure_off: {kind: deviation, tag: pressure, setpoint_tag: pressure_sp, max_deviation: 10, deadband: 1}
    pressure_jump: {kind: rate, tag: pressure, max_rate: 5, per: 1s}
"""


@pytest.fixture
def config(tmp_path: Path) -> SiteConfig:
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    return load_config(path)


def temp(value: float, t_s: float, quality: Quality = Quality.GOOD) -> Sample:
    return Sample(f"{PATH}/oil_temp", value, T0 + int(t_s * S), quality)


def test_each_limit_is_its_own_alarm_with_its_own_priority(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    names = {a.name: a.priority.value for a in engine.alarms.values() if a.definition_name == "oil_temp"}
    assert names == {"oil_temp.hihi": "urgent", "oil_temp.hi": "high", "oil_temp.lo": "high"}


def test_a_high_limit_raises_only_after_the_on_delay_and_clears_below_the_deadband(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    assert engine.observe([temp(50, 0)]) == []
    assert engine.observe([temp(71, 1)]) == []  # above hi, but for less than 5 s
    assert engine.observe([temp(72, 4)]) == []
    (raised,) = engine.observe([temp(72.5, 6)])  # held 5 s since t=1
    assert (raised.alarm, raised.transition.value, raised.status.state) == ("oil_temp.hi", "raised", "active_unacked")
    assert raised.message["en"] == "press01: oil 72.5 > 70"
    assert raised.ts_ns == T0 + 6 * S
    assert engine.observe([temp(69, 7)]) == []  # inside the deadband (70 - 2): still active
    (cleared,) = engine.observe([temp(67.5, 8)])  # below the deadband; no off-delay configured
    key = f"{PATH}/oil_temp.hi"
    assert (cleared.key, cleared.status.state) == (key, AlarmState.CLEARED_UNACKED)
    ack = engine.command(key, "ack", "li.wei", T0 + 9 * S)
    assert (ack.transition.value, ack.status.state, ack.status.acked_by) == ("acknowledged", "normal", "li.wei")


def test_a_dip_back_within_the_on_delay_restarts_it(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    engine.observe([temp(71, 0)])
    engine.observe([temp(60, 3)])
    assert engine.observe([temp(71, 4)]) == []
    assert engine.tick(T0 + 8 * S) == []  # 4 s since it came back
    (raised,) = engine.tick(T0 + 9 * S)  # the clock raises it: no new sample needed
    assert raised.alarm == "oil_temp.hi"


def test_bad_quality_changes_nothing_but_feeds_the_stale_alarm(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    engine.observe([temp(50, 0)])
    assert engine.observe([temp(0, 10, Quality.BAD)]) == []  # 0 would be below lo: ignored when bad
    assert engine.tick(T0 + 29 * S) == []
    (stale,) = engine.tick(T0 + 30 * S)  # no good value for 30 s after t=0
    assert (stale.alarm, stale.transition.value) == ("no_data", "raised")
    (cleared,) = engine.observe([temp(50, 31)])
    assert (cleared.alarm, cleared.transition.value, cleared.status.state) == ("no_data", "cleared", "cleared_unacked")


def named(events: list[AlarmEvent], alarm: str) -> list[AlarmEvent]:
    return [e for e in events if e.alarm == alarm]


def state(name: str, t_s: float) -> Sample:
    return Sample(f"{PATH}/state", name, T0 + int(t_s * S))


def test_a_state_alarm_needs_the_state_to_last(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    engine.observe([state("fault", 0)])
    assert named(engine.tick(T0 + 299 * S), "long_fault") == []
    (raised,) = named(engine.tick(T0 + 300 * S), "long_fault")
    assert raised.alarm == "long_fault"
    engine.command(raised.key, "ack", "op1", T0 + 301 * S)
    (cleared,) = engine.observe([state("running", 400)])
    assert cleared.status.state is AlarmState.NORMAL  # acknowledged while active: back to normal on clear


def test_deviation_from_the_setpoint_tag(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    p = f"{PATH}/pressure"
    assert engine.observe([Sample(p, 100, T0)]) == []  # no setpoint yet: unknown, not normal
    events = engine.observe([Sample(f"{PATH}/pressure_sp", 100, T0 + S), Sample(p, 111, T0 + 60 * S)])
    assert [(e.alarm, e.transition.value) for e in events] == [("pressure_off", "raised")]
    assert engine.observe([Sample(p, 109.5, T0 + 120 * S)]) == []  # deviation 9.5 > 10 - 1
    (cleared,) = engine.observe([Sample(p, 108.9, T0 + 180 * S)])
    assert cleared.alarm == "pressure_off"


def test_rate_of_change_between_consecutive_values(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    p = f"{PATH}/pressure"
    engine.observe([Sample(f"{PATH}/pressure_sp", 100, T0)])
    assert engine.observe([Sample(p, 100, T0)]) == []
    assert engine.observe([Sample(p, 104, T0 + S)]) == []  # 4 per second
    (raised,) = engine.observe([Sample(p, 107, T0 + 3 * S // 2)])  # 3 in 0.5 s = 6 per second
    assert (raised.alarm, raised.status.value) == ("pressure_jump", 6.0)


def test_shelving_expires_by_itself_and_is_bounded(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    key = f"{PATH}/long_fault"
    with pytest.raises(AlarmCommandError, match="longer than the allowed 28800 s"):
        engine.command(key, "shelve", "op1", T0, duration_s=9 * 3600)
    shelved = engine.command(key, "shelve", "op1", T0, duration_s=60)
    assert shelved.status.shelved_until_ns == T0 + 60 * S
    assert [e.transition.value for e in named(engine.tick(T0 + 60 * S), "long_fault")] == ["shelve_expired"]
    assert not engine.alarms[key].status.shelved


def test_commands_that_do_not_apply_say_why(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    with pytest.raises(AlarmCommandError, match="nothing to acknowledge"):
        engine.command(f"{PATH}/long_fault", "ack", "op1", T0)
    with pytest.raises(AlarmCommandError, match="no alarm"):
        engine.command(f"{PATH}/nope", "ack", "op1", T0)
    with pytest.raises(AlarmCommandError, match="needs the user"):
        engine.command(f"{PATH}/long_fault", "shelve", "", T0, 60)


def test_a_restart_keeps_an_active_alarm_raised_without_raising_it_again(config: SiteConfig) -> None:
    engine = AlarmEngine(config, config.alarms, T0)  # type: ignore[arg-type]
    engine.observe([temp(85, 0)])
    raised = engine.tick(T0 + 5 * S)
    assert {e.alarm for e in raised} == {"oil_temp.hi", "oil_temp.hihi"}
    saved = engine.statuses()
    again = AlarmEngine(config, config.alarms, T0 + 100 * S)  # type: ignore[arg-type]
    again.restore(saved)
    assert again.observe([temp(85, 101)]) == []  # still active: nothing new
    cleared = again.observe([temp(60, 102)])
    assert {e.alarm for e in cleared} == {"oil_temp.hi", "oil_temp.hihi"}
