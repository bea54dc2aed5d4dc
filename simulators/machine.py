"""One simulated machine: a seeded state model on injected time, with a ground-truth log.

The model is pure: nothing reads a clock or a socket. Time moves only when the caller
says so (`advance(dt_s)` or `step_to(sim_s)`), so a test can run a day of production in
milliseconds and the factory can run at any speed factor.

Why event-driven: state changes, part completions and process-value ticks happen at
times drawn when the previous event happened, never at "now". Advancing in one big
step or in many small ones therefore gives exactly the same history; only the instant
at which the caller looks differs. That keeps the ground truth independent of how
often the factory's update loop happens to run.
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

U32_RANGE = 2**32
PROCESS_TICK_S = 1.0
"""Temperature and pressure take one random-walk step per simulated second."""


class MachineState(StrEnum):
    """What the machine is doing; the names are the values of the OEE `state` role."""

    IDLE = "idle"
    RUNNING = "running"
    STARVED = "starved"
    BLOCKED = "blocked"
    PLANNED_STOP = "planned_stop"
    FAULT = "fault"

    @property
    def code(self) -> int:
        """The integer a PLC reports for this state (the enum map of the state register)."""
        return STATE_CODES[self]


STATE_CODES: dict[MachineState, int] = {
    MachineState.IDLE: 0,
    MachineState.RUNNING: 1,
    MachineState.STARVED: 2,
    MachineState.BLOCKED: 3,
    MachineState.PLANNED_STOP: 4,
    MachineState.FAULT: 5,
}
STATE_BY_CODE: dict[int, MachineState] = {code: state for state, code in STATE_CODES.items()}


class StatusBit:
    """Bits of the status word (a bit field a PLC typically exposes next to the state)."""

    RUNNING = 0
    FAULT = 1
    STARVED = 2
    BLOCKED = 3
    PLANNED_STOP = 4
    TEMPERATURE_HIGH = 5


_STATE_STATUS_BIT = {
    MachineState.RUNNING: StatusBit.RUNNING,
    MachineState.FAULT: StatusBit.FAULT,
    MachineState.STARVED: StatusBit.STARVED,
    MachineState.BLOCKED: StatusBit.BLOCKED,
    MachineState.PLANNED_STOP: StatusBit.PLANNED_STOP,
}


@dataclass(frozen=True)
class ProcessVariable:
    """A value that drifts around a setpoint while running and relaxes to a rest value when stopped.

    The walk is an Ornstein-Uhlenbeck step (pull back towards the target plus noise),
    clipped to [min(rest, setpoint) - band, max(rest, setpoint) + band] so it never leaves
    a plausible range however long the simulation runs.
    """

    setpoint: float
    rest: float
    band: float
    noise_per_sqrt_s: float
    pull_per_s: float = 0.05

    @property
    def low(self) -> float:
        return min(self.rest, self.setpoint) - self.band

    @property
    def high(self) -> float:
        return max(self.rest, self.setpoint) + self.band

    def step(self, value: float, running: bool, dt_s: float, rng: random.Random) -> float:
        target = self.setpoint if running else self.rest
        pull = min(1.0, self.pull_per_s * dt_s)
        value += pull * (target - value) + rng.gauss(0.0, self.noise_per_sqrt_s * math.sqrt(dt_s))
        return min(self.high, max(self.low, value))


@dataclass(frozen=True)
class MachineKind:
    """What distinguishes a stamping press from a CNC: cycle time, stop behaviour, process values.

    `stop_weights` says which stop follows a running period (relative weights);
    `mean_stop_s` is the mean duration of each stop state (for `fault` the mean repair time).
    """

    name: str
    ideal_cycle_time_s: float
    mean_slowdown: float
    """mean extra time per cycle as a fraction of the ideal (speed loss)"""
    cycle_jitter: float
    """standard deviation of a cycle as a fraction of the ideal"""
    reject_rate: float
    mean_run_s: float
    stop_weights: Mapping[MachineState, float]
    mean_stop_s: Mapping[MachineState, float]
    fault_codes: Mapping[int, str]
    temperature_c: ProcessVariable
    pressure_bar: ProcessVariable
    power_kw: Mapping[MachineState, float]
    temperature_label: str = "temperature"
    pressure_label: str = "pressure"

    def __post_init__(self) -> None:
        if MachineState.RUNNING in self.stop_weights or not self.stop_weights:
            raise ValueError(f"{self.name}: stop_weights name the stops that follow running, not running itself")
        missing = [s for s in self.stop_weights if s not in self.mean_stop_s]
        if missing:
            raise ValueError(f"{self.name}: no mean duration for stop(s) {missing}")
        if not 0.0 <= self.reject_rate < 1.0:
            raise ValueError(f"{self.name}: reject_rate must be in [0, 1)")
        if self.ideal_cycle_time_s <= 0:
            raise ValueError(f"{self.name}: ideal_cycle_time_s must be positive")


_ALL_STOPS_POWER = dict.fromkeys(MachineState, 0.0)

STAMPING_PRESS = MachineKind(
    name="stamping_press",
    ideal_cycle_time_s=1.0,
    mean_slowdown=0.10,
    cycle_jitter=0.05,
    reject_rate=0.02,
    mean_run_s=240.0,
    stop_weights={
        MachineState.IDLE: 2,
        MachineState.STARVED: 3,
        MachineState.BLOCKED: 2,
        MachineState.FAULT: 2,
        MachineState.PLANNED_STOP: 0.5,
    },
    mean_stop_s={
        MachineState.IDLE: 45.0,
        MachineState.STARVED: 40.0,
        MachineState.BLOCKED: 30.0,
        MachineState.FAULT: 150.0,
        MachineState.PLANNED_STOP: 600.0,
    },
    fault_codes={1: "die_jam", 2: "misfeed", 3: "hydraulic_overpressure", 4: "light_curtain_tripped"},
    temperature_c=ProcessVariable(setpoint=45.0, rest=30.0, band=8.0, noise_per_sqrt_s=0.15),
    pressure_bar=ProcessVariable(setpoint=180.0, rest=60.0, band=15.0, noise_per_sqrt_s=1.5, pull_per_s=0.2),
    power_kw={
        **_ALL_STOPS_POWER,
        MachineState.RUNNING: 18.0,
        MachineState.IDLE: 4.0,
        MachineState.STARVED: 4.0,
        MachineState.BLOCKED: 4.0,
        MachineState.FAULT: 2.0,
        MachineState.PLANNED_STOP: 0.8,
    },
    temperature_label="oil_temp",
    pressure_label="hydraulic_pressure",
)

CNC = MachineKind(
    name="cnc",
    ideal_cycle_time_s=45.0,
    mean_slowdown=0.05,
    cycle_jitter=0.02,
    reject_rate=0.01,
    mean_run_s=1500.0,
    stop_weights={
        MachineState.IDLE: 2,
        MachineState.STARVED: 2,
        MachineState.BLOCKED: 1,
        MachineState.FAULT: 1,
        MachineState.PLANNED_STOP: 1,
    },
    mean_stop_s={
        MachineState.IDLE: 120.0,
        MachineState.STARVED: 180.0,
        MachineState.BLOCKED: 60.0,
        MachineState.FAULT: 600.0,
        MachineState.PLANNED_STOP: 900.0,
    },
    fault_codes={1: "tool_breakage", 2: "spindle_overload", 3: "coolant_low", 4: "axis_following_error"},
    temperature_c=ProcessVariable(setpoint=38.0, rest=25.0, band=6.0, noise_per_sqrt_s=0.1),
    pressure_bar=ProcessVariable(setpoint=6.0, rest=0.5, band=1.0, noise_per_sqrt_s=0.05, pull_per_s=0.2),
    power_kw={
        **_ALL_STOPS_POWER,
        MachineState.RUNNING: 9.5,
        MachineState.IDLE: 2.5,
        MachineState.STARVED: 2.5,
        MachineState.BLOCKED: 2.5,
        MachineState.FAULT: 1.5,
        MachineState.PLANNED_STOP: 0.5,
    },
    temperature_label="spindle_temp",
    pressure_label="coolant_pressure",
)

INJECTION_MOULDING = MachineKind(
    name="injection_moulding",
    ideal_cycle_time_s=22.0,
    mean_slowdown=0.06,
    cycle_jitter=0.03,
    reject_rate=0.03,
    mean_run_s=900.0,
    stop_weights={
        MachineState.IDLE: 1,
        MachineState.STARVED: 2,
        MachineState.BLOCKED: 1,
        MachineState.FAULT: 2,
        MachineState.PLANNED_STOP: 1,
    },
    mean_stop_s={
        MachineState.IDLE: 90.0,
        MachineState.STARVED: 120.0,
        MachineState.BLOCKED: 60.0,
        MachineState.FAULT: 420.0,
        MachineState.PLANNED_STOP: 1200.0,
    },
    fault_codes={1: "short_shot", 2: "heater_band_failure", 3: "mould_open_timeout", 4: "ejector_stuck"},
    temperature_c=ProcessVariable(setpoint=220.0, rest=180.0, band=10.0, noise_per_sqrt_s=0.3, pull_per_s=0.02),
    pressure_bar=ProcessVariable(setpoint=1200.0, rest=50.0, band=80.0, noise_per_sqrt_s=8.0, pull_per_s=0.3),
    power_kw={
        **_ALL_STOPS_POWER,
        MachineState.RUNNING: 30.0,
        MachineState.IDLE: 8.0,
        MachineState.STARVED: 8.0,
        MachineState.BLOCKED: 8.0,
        MachineState.FAULT: 6.0,
        MachineState.PLANNED_STOP: 2.0,
    },
    temperature_label="barrel_temp",
    pressure_label="injection_pressure",
)

MACHINE_KINDS: dict[str, MachineKind] = {k.name: k for k in (STAMPING_PRESS, CNC, INJECTION_MOULDING)}


@dataclass(frozen=True, slots=True)
class Counts:
    """Parts completed: `good` is derived so it can never disagree with total and rejects."""

    total: int
    rejects: int

    @property
    def good(self) -> int:
        return self.total - self.rejects


@dataclass(frozen=True, slots=True)
class StateInterval:
    """One stretch of one state, half-open [start_s, end_s), with the parts completed in it."""

    state: MachineState
    start_s: float
    end_s: float
    total: int = 0
    rejects: int = 0
    reason: str | None = None
    """for a fault: the fault code's name"""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def good(self) -> int:
        return self.total - self.rejects


Window = tuple[float, float]


@dataclass(frozen=True)
class GroundTruth:
    """What really happened on one machine, for tests to compare collected data against.

    Times are seconds on the truth's own clock: `clock="sim"` counts simulated seconds
    from 0; `clock="wall"` is UTC epoch seconds as a collector sees them (see
    `in_wall_clock`). Windows are half-open [start, end): a part completed exactly at
    `end` belongs to the next window.
    """

    machine: str
    kind: str
    ideal_cycle_time_s: float
    intervals: tuple[StateInterval, ...]
    part_times_s: tuple[float, ...]
    reject_times_s: tuple[float, ...]
    clock: str = "sim"
    origin_ts: float = 0.0
    speed: float = 1.0
    counter_start: int = 0

    @property
    def start_s(self) -> float:
        return self.intervals[0].start_s if self.intervals else 0.0

    @property
    def end_s(self) -> float:
        return self.intervals[-1].end_s if self.intervals else 0.0

    def _window(self, window: Window | None) -> Window:
        return (self.start_s, self.end_s) if window is None else window

    def state_durations_s(self, window: Window | None = None) -> dict[MachineState, float]:
        """Seconds spent in each state inside the window (every state present, zero if unseen)."""
        start, end = self._window(window)
        durations = dict.fromkeys(MachineState, 0.0)
        for interval in self.intervals:
            overlap = min(end, interval.end_s) - max(start, interval.start_s)
            if overlap > 0:
                durations[interval.state] += overlap
        return durations

    def counts(self, window: Window | None = None) -> Counts:
        """Parts completed (and rejected) inside the window."""
        start, end = self._window(window)
        if window is None:
            return Counts(len(self.part_times_s), len(self.reject_times_s))
        total = bisect.bisect_left(self.part_times_s, end) - bisect.bisect_left(self.part_times_s, start)
        rejects = bisect.bisect_left(self.reject_times_s, end) - bisect.bisect_left(self.reject_times_s, start)
        return Counts(total, rejects)

    def intervals_in(self, window: Window) -> list[StateInterval]:
        """The intervals overlapping the window, clipped to it (counts not recomputed for clipped ends)."""
        start, end = window
        return [
            StateInterval(i.state, max(start, i.start_s), min(end, i.end_s), i.total, i.rejects, i.reason)
            for i in self.intervals
            if min(end, i.end_s) > max(start, i.start_s)
        ]

    def state_at(self, t: float) -> MachineState | None:
        """The state at time t, or None outside the recorded history."""
        starts = [i.start_s for i in self.intervals]
        index = bisect.bisect_right(starts, t) - 1
        if index < 0 or t >= self.intervals[index].end_s:
            return None
        return self.intervals[index].state

    def in_wall_clock(self, origin_ts: float, speed: float) -> GroundTruth:
        """The same history on the collector's clock: t_wall = origin_ts + t_sim / speed.

        At speed X everything a collector observes happens X times faster, so the ideal
        cycle time is divided by X too: performance computed from wall-clock data then
        equals the performance of the simulated machine.
        """
        if self.clock != "sim":
            raise ValueError("ground truth is already on the wall clock")

        def wall(t: float) -> float:
            return origin_ts + t / speed

        return GroundTruth(
            machine=self.machine,
            kind=self.kind,
            ideal_cycle_time_s=self.ideal_cycle_time_s / speed,
            intervals=tuple(
                StateInterval(i.state, wall(i.start_s), wall(i.end_s), i.total, i.rejects, i.reason)
                for i in self.intervals
            ),
            part_times_s=tuple(wall(t) for t in self.part_times_s),
            reject_times_s=tuple(wall(t) for t in self.reject_times_s),
            clock="wall",
            origin_ts=origin_ts,
            speed=speed,
            counter_start=self.counter_start,
        )

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form (see docs/simulators.md, "Ground truth")."""
        return {
            "machine": self.machine,
            "kind": self.kind,
            "clock": self.clock,
            "origin_ts": self.origin_ts,
            "speed": self.speed,
            "ideal_cycle_time_s": self.ideal_cycle_time_s,
            "counter_start": self.counter_start,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "state_durations_s": {s.value: d for s, d in self.state_durations_s().items()},
            "counts": {"total": len(self.part_times_s), "rejects": len(self.reject_times_s)},
            "intervals": [
                {
                    "state": i.state.value,
                    "start_s": i.start_s,
                    "end_s": i.end_s,
                    "total": i.total,
                    "rejects": i.rejects,
                    "reason": i.reason,
                }
                for i in self.intervals
            ],
            "part_times_s": list(self.part_times_s),
            "reject_times_s": list(self.reject_times_s),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroundTruth:
        return cls(
            machine=data["machine"],
            kind=data["kind"],
            ideal_cycle_time_s=float(data["ideal_cycle_time_s"]),
            intervals=tuple(
                StateInterval(
                    MachineState(i["state"]), i["start_s"], i["end_s"], i["total"], i["rejects"], i.get("reason")
                )
                for i in data["intervals"]
            ),
            part_times_s=tuple(data["part_times_s"]),
            reject_times_s=tuple(data["reject_times_s"]),
            clock=data.get("clock", "sim"),
            origin_ts=float(data.get("origin_ts", 0.0)),
            speed=float(data.get("speed", 1.0)),
            counter_start=int(data.get("counter_start", 0)),
        )


@dataclass(frozen=True, slots=True)
class MachineSnapshot:
    """Everything a PLC would expose at one instant. Counters are the 32-bit register values."""

    sim_s: float
    state: MachineState
    fault_code: int
    total_count: int
    reject_count: int
    good_count: int
    ideal_cycle_time_s: float
    last_cycle_time_s: float
    temperature_c: float
    pressure_bar: float
    energy_kwh: float
    power_kw: float
    status_word: int
    parts_total: int
    """parts made since the simulation started (unbounded, not a register)"""
    parts_rejected: int

    @property
    def state_code(self) -> int:
        return self.state.code


@dataclass
class _Open:
    """The state interval in progress."""

    state: MachineState
    start_s: float
    end_s: float
    reason: str | None
    total: int = 0
    rejects: int = 0
    fault_code: int = 0


@dataclass
class Machine:
    """One machine of a given kind, deterministic for a given seed.

    `counter_start` is the total counter's value at sim time 0 (the reject counter starts
    at 0 and the good counter at `counter_start`), so a start near 2**32 makes the 32-bit
    counters roll over early in a run.
    """

    name: str
    kind: MachineKind
    seed: int = 0
    counter_start: int = 0
    _now_s: float = field(init=False, default=0.0)
    _rng_state: random.Random = field(init=False, repr=False)
    _rng_cycle: random.Random = field(init=False, repr=False)
    _rng_process: random.Random = field(init=False, repr=False)
    _open: _Open = field(init=False)
    _closed: list[StateInterval] = field(init=False, default_factory=list)
    _part_times: array = field(init=False, default_factory=lambda: array("d"))
    _reject_times: array = field(init=False, default_factory=lambda: array("d"))
    _cycle_end_s: float | None = field(init=False, default=None)
    _cycle_remaining_s: float | None = field(init=False, default=None)
    _cycle_start_s: float = field(init=False, default=0.0)
    _cycle_duration_s: float = field(init=False, default=0.0)
    _last_cycle_s: float = field(init=False, default=0.0)
    _tick_index: int = field(init=False, default=1)
    _temperature_c: float = field(init=False, default=0.0)
    _pressure_bar: float = field(init=False, default=0.0)
    _energy_kwh_at_open: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if not 0 <= self.counter_start < U32_RANGE:
            raise ValueError(f"counter_start must be in 0..{U32_RANGE - 1}")
        # Separate streams: how often the caller looks never shifts one stream against another.
        self._rng_state = random.Random(f"{self.seed}/{self.name}/state")
        self._rng_cycle = random.Random(f"{self.seed}/{self.name}/cycle")
        self._rng_process = random.Random(f"{self.seed}/{self.name}/process")
        self._temperature_c = self.kind.temperature_c.setpoint
        self._pressure_bar = self.kind.pressure_bar.setpoint
        self._last_cycle_s = self.kind.ideal_cycle_time_s
        self._open = _Open(MachineState.RUNNING, 0.0, self._draw_run_s(), None)
        self._start_cycle(0.0)

    # -- time ---------------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        return self._now_s

    @property
    def state(self) -> MachineState:
        return self._open.state

    def advance(self, dt_s: float) -> MachineSnapshot:
        if dt_s < 0:
            raise ValueError("time only moves forward")
        return self.step_to(self._now_s + dt_s)

    def step_to(self, sim_s: float) -> MachineSnapshot:
        """Run every event up to and including `sim_s`; return what the PLC shows then."""
        if sim_s < self._now_s:
            raise ValueError(f"time only moves forward: now {self._now_s}, asked {sim_s}")
        while True:
            cycle_end = self._cycle_end_s if self._cycle_end_s is not None else math.inf
            tick_s = self._tick_index * PROCESS_TICK_S
            next_s = min(cycle_end, self._open.end_s, tick_s)
            if next_s > sim_s:
                break
            # Same instant: a part finishes before the stop that follows it; the tick samples after both.
            if cycle_end == next_s:
                self._complete_part(next_s)
            elif self._open.end_s == next_s:
                self._change_state(next_s)
            else:
                self._process_tick()
        self._now_s = sim_s
        return self.snapshot()

    # -- events -------------------------------------------------------------------------------

    def _draw_run_s(self) -> float:
        return self._rng_state.expovariate(1.0 / self.kind.mean_run_s)

    def _start_cycle(self, t: float) -> None:
        kind = self.kind
        ideal = kind.ideal_cycle_time_s
        duration = self._rng_cycle.gauss(ideal * (1 + kind.mean_slowdown), ideal * kind.cycle_jitter)
        self._cycle_duration_s = max(ideal, duration)  # a real machine is never faster than its ideal
        self._cycle_start_s = t
        self._cycle_end_s = t + self._cycle_duration_s

    def _complete_part(self, t: float) -> None:
        self._part_times.append(t)
        self._open.total += 1
        if self._rng_cycle.random() < self.kind.reject_rate:
            self._reject_times.append(t)
            self._open.rejects += 1
        self._last_cycle_s = self._cycle_duration_s
        self._start_cycle(t)

    def _change_state(self, t: float) -> None:
        """The scheduled end of the open interval: running -> a drawn stop, any stop -> running."""
        rng = self._rng_state
        if self._open.state is MachineState.RUNNING:
            stops = list(self.kind.stop_weights)
            state = rng.choices(stops, weights=[self.kind.stop_weights[s] for s in stops])[0]
            mean_s = self.kind.mean_stop_s[state]
            duration = rng.gammavariate(2.0, mean_s / 2.0)  # shape 2: few near-zero stops, a long tail
            fault_code = rng.choice(sorted(self.kind.fault_codes)) if state is MachineState.FAULT else 0
            self._enter(t, state, duration, fault_code)
        else:
            self._enter(t, MachineState.RUNNING, self._draw_run_s(), 0)

    def _enter(self, t: float, state: MachineState, duration_s: float, fault_code: int) -> None:
        """Close the open interval at t and open `state` until t + duration_s."""
        ending = self._open
        if t > ending.start_s or ending.total:
            self._closed.append(
                StateInterval(ending.state, ending.start_s, t, ending.total, ending.rejects, ending.reason)
            )
        self._energy_kwh_at_open += self.kind.power_kw[ending.state] * (t - ending.start_s) / 3600.0
        if ending.state is MachineState.RUNNING and state is not MachineState.RUNNING:
            assert self._cycle_end_s is not None
            self._cycle_remaining_s = self._cycle_end_s - t  # the part in the press waits for the restart
            self._cycle_end_s = None
        elif ending.state is not MachineState.RUNNING and state is MachineState.RUNNING:
            assert self._cycle_remaining_s is not None
            self._cycle_end_s = t + self._cycle_remaining_s
            self._cycle_remaining_s = None
        reason = self.kind.fault_codes.get(fault_code) if state is MachineState.FAULT else None
        self._open = _Open(state, t, t + duration_s, reason, fault_code=fault_code)

    def force_state(self, state: MachineState, duration_s: float, fault: str | None = None) -> None:
        """Put the machine in `state` now for `duration_s` simulated seconds, then let it run on by itself.

        For tests that need a known event at a known time (a fault on the andon board, an alarm
        on a long stop) instead of waiting for the random one. `fault` names the fault code
        (default: the kind's first). The ground truth records it like any other interval.
        """
        if duration_s <= 0:
            raise ValueError("duration_s must be positive")
        fault_code = 0
        if state is MachineState.FAULT:
            codes = {name: code for code, name in self.kind.fault_codes.items()}
            if fault is None:
                fault_code = min(self.kind.fault_codes)
            elif fault in codes:
                fault_code = codes[fault]
            else:
                raise ValueError(f"{fault!r} is not a fault of {self.kind.name}: use one of {sorted(codes)}")
        elif fault is not None:
            raise ValueError("a fault name applies only to state fault")
        self._enter(self._now_s, state, duration_s, fault_code)

    def _process_tick(self) -> None:
        running = self._open.state is MachineState.RUNNING
        rng = self._rng_process
        self._temperature_c = self.kind.temperature_c.step(self._temperature_c, running, PROCESS_TICK_S, rng)
        self._pressure_bar = self.kind.pressure_bar.step(self._pressure_bar, running, PROCESS_TICK_S, rng)
        self._tick_index += 1

    # -- observation --------------------------------------------------------------------------

    def snapshot(self) -> MachineSnapshot:
        state = self._open.state
        total, rejects = len(self._part_times), len(self._reject_times)
        power_kw = self.kind.power_kw[state]
        energy_kwh = self._energy_kwh_at_open + power_kw * (self._now_s - self._open.start_s) / 3600.0
        temperature_high = self._temperature_c > self.kind.temperature_c.setpoint + 0.75 * self.kind.temperature_c.band
        status = 0
        if state in _STATE_STATUS_BIT:
            status |= 1 << _STATE_STATUS_BIT[state]
        if temperature_high:
            status |= 1 << StatusBit.TEMPERATURE_HIGH
        return MachineSnapshot(
            sim_s=self._now_s,
            state=state,
            fault_code=self._open.fault_code,
            total_count=(self.counter_start + total) % U32_RANGE,
            reject_count=rejects % U32_RANGE,
            good_count=(self.counter_start + total - rejects) % U32_RANGE,
            ideal_cycle_time_s=self.kind.ideal_cycle_time_s,
            last_cycle_time_s=self._last_cycle_s,
            temperature_c=self._temperature_c,
            pressure_bar=self._pressure_bar,
            energy_kwh=energy_kwh,
            power_kw=power_kw,
            status_word=status,
            parts_total=total,
            parts_rejected=rejects,
        )

    def ground_truth(self) -> GroundTruth:
        """The history so far on the simulated clock; the open interval is cut at now."""
        o = self._open
        current = StateInterval(o.state, o.start_s, self._now_s, o.total, o.rejects, o.reason)
        intervals = (*self._closed, current) if self._now_s > o.start_s or not self._closed else tuple(self._closed)
        return GroundTruth(
            machine=self.name,
            kind=self.kind.name,
            ideal_cycle_time_s=self.kind.ideal_cycle_time_s,
            intervals=tuple(intervals),
            part_times_s=tuple(self._part_times),
            reject_times_s=tuple(self._reject_times),
            counter_start=self.counter_start,
        )
