"""Alarm conditions: is the process abnormal right now? (pure; time is the samples' own)

Each condition turns samples into a *raw* condition (`True` abnormal, `False` normal,
`None` unknown: a bad-quality or non-numeric value changes nothing). `Delay` then applies
the on-delay and off-delay, so a value that crosses a limit for one poll does not raise
an alarm, and one that dips back for one poll does not clear it. Hysteresis (the deadband)
lives in the conditions: a high limit raises above `limit` and clears only below
`limit - deadband`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.sample import Quality, Sample, Value


def as_number(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return None if math.isnan(number) else number


@dataclass
class LimitCondition:
    """One limit of a limit alarm: `high` means above `limit` is abnormal."""

    limit: float
    high: bool
    deadband: float = 0.0
    active: bool = False

    def update(self, value: Value) -> bool | None:
        number = as_number(value)
        if number is None:
            return None
        if self.high:
            self.active = number >= self.limit if not self.active else number > self.limit - self.deadband
        else:
            self.active = number <= self.limit if not self.active else number < self.limit + self.deadband
        return self.active


@dataclass
class DeviationCondition:
    """|value - setpoint| above `max_deviation` (clears at `max_deviation - deadband`)."""

    max_deviation: float
    deadband: float = 0.0
    active: bool = False
    setpoint: float | None = None

    def update(self, value: Value) -> bool | None:
        number = as_number(value)
        if number is None or self.setpoint is None:
            return None
        deviation = abs(number - self.setpoint)
        threshold = self.max_deviation - (self.deadband if self.active else 0.0)
        self.active = deviation > threshold if self.active else deviation >= self.max_deviation
        return self.active


@dataclass
class StateCondition:
    """The tag's state (enum name, or raw code) is one of `states`."""

    states: frozenset[str]

    def update(self, value: Value) -> bool | None:
        if value is None:
            return None
        return str(value) in self.states


@dataclass
class RateCondition:
    """|change per `per_s`| between consecutive good values above `max_rate`."""

    max_rate: float
    per_s: float
    deadband: float = 0.0
    active: bool = False
    last: tuple[int, float] | None = None
    rate: float | None = None

    def update_sample(self, ts_ns: int, value: Value) -> bool | None:
        number = as_number(value)
        if number is None:
            return None
        previous, self.last = self.last, (ts_ns, number)
        if previous is None or ts_ns <= previous[0]:
            return None
        self.rate = (number - previous[1]) / ((ts_ns - previous[0]) / 1e9) * self.per_s
        magnitude = abs(self.rate)
        self.active = magnitude > self.max_rate - self.deadband if self.active else magnitude > self.max_rate
        return self.active


@dataclass
class StaleCondition:
    """No good value for `after_s` (the clock starts when the gateway starts watching)."""

    after_s: float
    last_good_ns: int

    def good_value(self, ts_ns: int) -> None:
        self.last_good_ns = max(self.last_good_ns, ts_ns)

    def at(self, now_ns: int) -> bool:
        return now_ns - self.last_good_ns >= self.after_s * 1e9


@dataclass
class Delay:
    """On-delay and off-delay: the raw condition must hold this long before the output follows."""

    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    output: bool = False
    raw: bool = False
    raw_since_ns: int = 0

    def update(self, raw: bool, ts_ns: int) -> bool:
        if raw != self.raw:
            self.raw, self.raw_since_ns = raw, ts_ns
        return self.at(ts_ns)

    def at(self, now_ns: int) -> bool:
        """The output at `now_ns` (call on a clock tick too: a condition that holds raises after its delay)."""
        if self.raw != self.output:
            delay_s = self.on_delay_s if self.raw else self.off_delay_s
            if now_ns - self.raw_since_ns >= delay_s * 1e9:
                self.output = self.raw
        return self.output


def is_good(sample: Sample) -> bool:
    return sample.quality is Quality.GOOD
