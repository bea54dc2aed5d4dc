"""What happens to a device's samples between its connector and the durable buffer.

1. Derived tags are computed from the device's raw values (a counter's rate, arithmetic
   over other tags).
2. Report by exception: a tag with a `deadband` or a `heartbeat` is passed on only when
   its value moved by more than the deadband since the last *reported* value, when its
   quality changed (always), or when it has been silent for `heartbeat`. A tag with
   neither is passed on every time it is read.

Connectors already applied scale, offset and enum maps. Everything here is a pure
function of the samples and the per-tag state it keeps; time is the samples' own
source timestamp, so the behaviour is the same live, in replay and in tests.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from edge_config.schema import DerivedTag, Device, SiteConfig
from gateway.expression import Expression, parse_expression
from gateway.sample import Quality, Sample, Value, chain_samples

_QUALITY_RANK = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}


class PipelineConfigError(ValueError):
    """A derived tag refers to something the device does not have."""


# ---------------------------------------------------------------- report by exception


@dataclass(frozen=True)
class ReportPolicy:
    deadband: float | None = None
    heartbeat_s: float | None = None

    @property
    def by_exception(self) -> bool:
        return self.deadband is not None or self.heartbeat_s is not None


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_changed(old: Value, new: Value, deadband: float) -> bool:
    """Numbers: moved by more than `deadband` (any change when it is 0); anything else: differs."""
    if _is_number(old) and _is_number(new):
        assert isinstance(old, int | float) and isinstance(new, int | float)
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) != math.isnan(new)
        return new != old if deadband == 0 else abs(new - old) > deadband
    return type(old) is not type(new) or old != new


def should_report(policy: ReportPolicy, last_reported: Sample | None, sample: Sample) -> bool:
    """The report-by-exception rule for one sample, given the tag's last reported sample."""
    if last_reported is None or not policy.by_exception:
        return True
    if sample.quality != last_reported.quality:
        return True
    if policy.heartbeat_s is not None and sample.ts_ns - last_reported.ts_ns >= policy.heartbeat_s * 1e9:
        return True
    return value_changed(last_reported.value, sample.value, policy.deadband or 0.0)


class ReportByException:
    """Per-tag state for `should_report`; tags without a policy always pass."""

    def __init__(self, policies: dict[str, ReportPolicy]) -> None:
        self.policies = {tag: p for tag, p in policies.items() if p.by_exception}
        self.last_reported: dict[str, Sample] = {}
        self.suppressed = 0

    def filter(self, samples: Sequence[Sample]) -> Sequence[Sample]:
        if not self.policies:
            return samples  # no tag reports by exception: everything passes, no per-sample work
        passed: list[Sample] = []
        for sample in samples:
            policy = self.policies.get(sample.tag)
            if policy is None:
                passed.append(sample)
            elif should_report(policy, self.last_reported.get(sample.tag), sample):
                self.last_reported[sample.tag] = sample
                passed.append(sample)
            else:
                self.suppressed += 1
        return passed


# ---------------------------------------------------------------- derived tags


class CounterRate:
    """A counter's increase over the last `per_s`, expressed per `per_s` (e.g. parts per minute).

    The window holds the newest sample at or before its start plus everything since, so
    the rate spans (nearly) `per_s` once the tag has been read for that long. A counter
    that goes down (reset, rollover) restarts the window instead of giving a negative rate.
    """

    def __init__(self, tag: str, per_s: float) -> None:
        self.tag, self.per_s = tag, per_s
        self.window: deque[tuple[int, float]] = deque()

    def update(self, sample: Sample) -> Sample | None:
        if sample.quality == Quality.BAD or not _is_number(sample.value):
            return None
        value = float(sample.value)  # type: ignore[arg-type]
        if self.window and (value < self.window[-1][1] or sample.ts_ns <= self.window[-1][0]):
            if value < self.window[-1][1]:
                self.window.clear()
            else:
                return None  # out of order or repeated timestamp: no new information
        self.window.append((sample.ts_ns, value))
        start_ns = sample.ts_ns - self.per_s * 1e9
        while len(self.window) >= 2 and self.window[1][0] <= start_ns:
            self.window.popleft()
        if len(self.window) < 2:
            return None
        (t0, v0), (t1, v1) = self.window[0], self.window[-1]
        rate = (v1 - v0) / ((t1 - t0) / 1e9) * self.per_s
        return Sample(self.tag, rate, sample.ts_ns, sample.quality, sample.reason)


class Arithmetic:
    """`expr` over the latest values of other tags of the same device, recomputed when one of them arrives."""

    def __init__(self, tag: str, expression: Expression) -> None:
        self.tag, self.expression = tag, expression

    def update(self, latest: dict[str, Sample], arrived: set[str]) -> Sample | None:
        if not (self.expression.names & arrived) or not self.expression.names <= latest.keys():
            return None
        inputs = [latest[name] for name in sorted(self.expression.names)]
        ts_ns = max(s.ts_ns for s in inputs)
        worst = max(inputs, key=lambda s: _QUALITY_RANK[s.quality])
        for name, s in zip(sorted(self.expression.names), inputs, strict=True):
            if s.quality == Quality.BAD or not _is_number(s.value):
                reason = f"input {name} is {s.quality.value}" + (f": {s.reason}" if s.reason else " (not a number)")
                return Sample(self.tag, None, ts_ns, Quality.BAD, reason)
        try:
            value = self.expression.evaluate({name: latest[name].value for name in self.expression.names})  # type: ignore[misc]
        except ZeroDivisionError:
            return Sample(self.tag, None, ts_ns, Quality.BAD, f"division by zero in {self.expression.text}")
        return Sample(self.tag, value, ts_ns, worst.quality, worst.reason)


class DevicePipeline:
    """Derived tags, then report by exception, for the samples of one device."""

    def __init__(self, config: SiteConfig, device: Device) -> None:
        self.device = device
        self._name_of = {config.tag_path(device, name): name for name in device.tags}
        self._latest: dict[str, Sample] = {}
        self._rates: dict[str, list[CounterRate]] = {}
        self._arithmetic: list[Arithmetic] = []
        policies: dict[str, ReportPolicy] = {}
        for name, tag in device.tags.items():
            policies[config.tag_path(device, name)] = ReportPolicy(tag.deadband, tag.heartbeat)
        for name, derived in device.derived.items():
            path = config.tag_path(device, name)
            if name in device.tags:
                raise PipelineConfigError(f"device {device.name}: derived tag {name!r} has the name of a read tag")
            self._add_derived(name, path, derived)
            policies[path] = ReportPolicy(derived.deadband, derived.heartbeat)
        self.report = ReportByException(policies)

    def _add_derived(self, name: str, path: str, derived: DerivedTag) -> None:
        where = f"device {self.device.name}: derived tag {name!r}"
        if derived.rate_of is not None:
            if derived.rate_of not in self.device.tags:
                raise PipelineConfigError(f"{where}: rate_of {derived.rate_of!r} is not a tag of this device")
            self._rates.setdefault(derived.rate_of, []).append(CounterRate(path, derived.per))
        else:
            expression = parse_expression(derived.expr or "")
            unknown = sorted(expression.names - self.device.tags.keys())
            if unknown:
                raise PipelineConfigError(f"{where}: {', '.join(unknown)} not a tag of this device")
            self._arithmetic.append(Arithmetic(path, expression))

    def process(self, samples: Sequence[Sample]) -> Sequence[Sample]:
        """The samples (and derived samples) to store, in read order (`samples` itself when
        nothing is derived or filtered: a `SampleBlock` stays one)."""
        out: Sequence[Sample] = samples
        if self._rates or self._arithmetic:
            derived_samples: list[Sample] = []
            arrived: set[str] = set()
            for sample in samples:
                name = self._name_of.get(sample.tag)
                if name is None:
                    continue
                arrived.add(name)
                self._latest[name] = sample
                for rate in self._rates.get(name, ()):
                    derived = rate.update(sample)
                    if derived is not None:
                        derived_samples.append(derived)
            for arithmetic in self._arithmetic:
                derived = arithmetic.update(self._latest, arrived)
                if derived is not None:
                    derived_samples.append(derived)
            out = chain_samples([samples, derived_samples])
        return self.report.filter(out)


def build_pipelines(config: SiteConfig) -> dict[str, DevicePipeline]:
    """One pipeline per device (raises PipelineConfigError for a derived tag that cannot work)."""
    return {device.name: DevicePipeline(config, device) for device in config.devices}
