"""All alarms of one gateway: conditions + delays + the ISA-18.2 state machine (pure, no I/O).

`AlarmEngine.observe(samples)` and `tick(now_ns)` return the alarm events to publish;
`command(...)` applies an operator's acknowledge / shelve / unshelve. The I/O shell
(`gateway.alarms.service`) persists `statuses()` and publishes the events.

One *alarm* is one definition on one machine, and for a limit definition one limit:
`oil_temp` with `hi` and `hihi` on press01 is two alarms, `oil_temp.hi` and
`oil_temp.hihi`, each acknowledged on its own (as ISA-18.2 counts them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_config.alarm_checks import alarm_targets, watched_tag
from edge_config.alarms_schema import AlarmDefinition, AlarmKind, Alarms, LimitLevel, Priority
from edge_config.schema import Device, SiteConfig
from gateway.alarms.conditions import (
    Delay,
    DeviationCondition,
    LimitCondition,
    RateCondition,
    StaleCondition,
    StateCondition,
    as_number,
    is_good,
)
from gateway.alarms.events import AlarmEvent, render_message
from gateway.alarms.lifecycle import (
    AlarmCommandError,
    AlarmStatus,
    Transition,
    acknowledge,
    expire_shelve,
    on_condition,
    shelve,
    unshelve,
)
from gateway.sample import Sample


@dataclass
class Alarm:
    """One alarm instance: where it is, what it watches, and its live state."""

    name: str
    definition_name: str
    definition: AlarmDefinition
    device: Device
    machine_path: str
    tag: str
    tag_path: str
    priority: Priority
    limit: float | None
    level: LimitLevel | None
    condition: Any
    delay: Delay
    status: AlarmStatus = field(default_factory=AlarmStatus)
    last_value: Any = None

    @property
    def key(self) -> str:
        """`enterprise/site/area/line/machine/alarm`: unique per gateway, the MES's alarm id."""
        return f"{self.machine_path}/{self.name}"


class AlarmEngine:
    def __init__(self, config: SiteConfig, alarms: Alarms, start_ns: int) -> None:
        self.config = config
        self.max_shelve_s = alarms.max_shelve
        self.alarms: dict[str, Alarm] = {}
        self._by_tag: dict[str, list[Alarm]] = {}
        self._by_setpoint: dict[str, list[Alarm]] = {}
        for def_name, definition in alarms.definitions.items():
            for device in alarm_targets(definition, config.devices):
                for alarm in _instances(config, def_name, definition, device, start_ns):
                    self.alarms[alarm.key] = alarm
                    self._by_tag.setdefault(alarm.tag_path, []).append(alarm)
                    if definition.setpoint_tag is not None:
                        setpoint_path = config.tag_path(device, definition.setpoint_tag)
                        self._by_setpoint.setdefault(setpoint_path, []).append(alarm)

    # ------------------------------------------------------------------ persistence

    def statuses(self) -> dict[str, AlarmStatus]:
        return {key: alarm.status for key, alarm in self.alarms.items()}

    def restore(self, statuses: dict[str, AlarmStatus]) -> None:
        """Statuses saved before a restart; an alarm that was active stays raised until its condition clears."""
        for key, status in statuses.items():
            alarm = self.alarms.get(key)
            if alarm is None:
                continue  # the definition was removed from the config
            alarm.status = status
            if status.state.active:
                alarm.delay.output = alarm.delay.raw = True
                if isinstance(alarm.condition, LimitCondition | DeviationCondition | RateCondition):
                    alarm.condition.active = True

    # ------------------------------------------------------------------ evaluation

    def observe(self, samples: Sequence[Sample]) -> list[AlarmEvent]:
        events: list[AlarmEvent] = []
        for sample in samples:
            for alarm in self._by_setpoint.get(sample.tag, ()):
                if is_good(sample):
                    alarm.condition.setpoint = as_number(sample.value)
            for alarm in self._by_tag.get(sample.tag, ()):
                event = self._evaluate(alarm, sample)
                if event is not None:
                    events.append(event)
        return events

    def _evaluate(self, alarm: Alarm, sample: Sample) -> AlarmEvent | None:
        condition = alarm.condition
        if isinstance(condition, StaleCondition):
            if not is_good(sample):
                return None
            condition.good_value(sample.ts_ns)
            raw: bool | None = False
            alarm.last_value = sample.value
        elif not is_good(sample):
            return None
        elif isinstance(condition, RateCondition):
            raw = condition.update_sample(sample.ts_ns, sample.value)
            alarm.last_value = condition.rate
        else:
            raw = condition.update(sample.value)
            alarm.last_value = sample.value
        if raw is None:
            return None
        active = alarm.delay.update(raw, sample.ts_ns)
        return self._apply(alarm, active, sample.ts_ns)

    def tick(self, now_ns: int) -> list[AlarmEvent]:
        """The clock: on-delays and off-delays that ran out, stale data, shelving that expired."""
        events: list[AlarmEvent] = []
        for alarm in self.alarms.values():
            if isinstance(alarm.condition, StaleCondition):
                alarm.delay.update(alarm.condition.at(now_ns), now_ns)
            event = self._apply(alarm, alarm.delay.at(now_ns), now_ns)
            if event is not None:
                events.append(event)
            if alarm.status.shelved_until_ns is None:
                continue
            status, transition = expire_shelve(alarm.status, now_ns)
            if transition is not None:
                alarm.status = status
                events.append(self.event(alarm, transition, now_ns))
        return events

    def _apply(self, alarm: Alarm, active: bool, ts_ns: int) -> AlarmEvent | None:
        if active is alarm.status.state.active:
            return None  # the common case: nothing changed
        status, transition = on_condition(alarm.status, active, ts_ns, _jsonable(alarm.last_value))
        if transition is None:
            return None
        alarm.status = status
        return self.event(alarm, transition, ts_ns)

    # ------------------------------------------------------------------ operator commands

    def command(self, key: str, action: str, user: str, now_ns: int, duration_s: float | None = None) -> AlarmEvent:
        """ack / shelve / unshelve; raises AlarmCommandError with a plain reason when it does not apply."""
        alarm = self.alarms.get(key)
        if alarm is None:
            raise AlarmCommandError(f"no alarm {key!r} on this gateway")
        if not user:
            raise AlarmCommandError("a command needs the user who gives it")
        if action == "ack":
            status, transition = acknowledge(alarm.status, user, now_ns)
        elif action == "shelve":
            status, transition = shelve(alarm.status, user, now_ns, duration_s or 0.0, self.max_shelve_s)
        elif action == "unshelve":
            status, transition = unshelve(alarm.status)
        else:
            raise AlarmCommandError(f"unknown action {action!r}: use ack, shelve or unshelve")
        alarm.status = status
        return self.event(alarm, transition, now_ns)

    def mark_escalated(self, key: str, route_index: int) -> None:
        from dataclasses import replace

        alarm = self.alarms[key]
        alarm.status = replace(alarm.status, escalated=(*alarm.status.escalated, route_index))

    # ------------------------------------------------------------------ events

    def event(self, alarm: Alarm, transition: Transition, ts_ns: int) -> AlarmEvent:
        """The event document of `alarm` as it is now (also used to describe an escalation)."""
        values = {
            "value": alarm.status.value if alarm.status.value is not None else _jsonable(alarm.last_value),
            "limit": alarm.limit,
            "machine": alarm.device.name,
            "area": alarm.device.area,
            "line": alarm.device.line,
            "tag": alarm.tag,
            "alarm": alarm.name,
        }
        return AlarmEvent(
            key=alarm.key,
            alarm=alarm.name,
            definition=alarm.definition_name,
            kind=alarm.definition.kind.value,
            level=alarm.level.value if alarm.level else None,
            machine_path=alarm.machine_path,
            machine=alarm.device.name,
            area=alarm.device.area,
            line=alarm.device.line,
            tag=alarm.tag,
            priority=alarm.priority,
            transition=transition,
            status=alarm.status,
            limit=alarm.limit,
            message=render_message(alarm.definition, values),
            ts_ns=ts_ns,
        )

    def by_key(self, keys: Iterable[str]) -> list[Alarm]:
        return [self.alarms[k] for k in keys if k in self.alarms]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if value == value and abs(value) != float("inf") else None
    return value


def _instances(
    config: SiteConfig, def_name: str, definition: AlarmDefinition, device: Device, start_ns: int
) -> list[Alarm]:
    tag = watched_tag(definition, device)
    if tag is None or tag not in device.tags:
        return []
    machine_path = config.tag_path(device, tag).rsplit("/", 1)[0]
    common: dict[str, Any] = {
        "definition_name": def_name,
        "definition": definition,
        "device": device,
        "machine_path": machine_path,
        "tag": tag,
        "tag_path": config.tag_path(device, tag),
    }

    def delay() -> Delay:
        return Delay(definition.on_delay, definition.off_delay)

    kind = definition.kind
    if kind is AlarmKind.LIMIT:
        out = []
        for level, limit in definition.limits().items():
            if limit is None:
                continue
            condition = LimitCondition(limit.limit, level.is_high, definition.deadband)
            priority = limit.priority or definition.priority
            out.append(
                Alarm(
                    f"{def_name}.{level.value}",
                    priority=priority,
                    limit=limit.limit,
                    level=level,
                    condition=condition,
                    delay=delay(),
                    **common,
                )
            )
        return out
    if kind is AlarmKind.DEVIATION:
        condition: Any = DeviationCondition(definition.max_deviation or 0.0, definition.deadband)
        limit_value: float | None = definition.max_deviation
    elif kind is AlarmKind.STATE:
        condition, limit_value = StateCondition(frozenset(definition.states or ())), None
    elif kind is AlarmKind.STALE:
        condition, limit_value = StaleCondition(definition.after or 0.0, start_ns), definition.after
    else:
        condition = RateCondition(definition.max_rate or 0.0, definition.per, definition.deadband)
        limit_value = definition.max_rate
    return [
        Alarm(
            def_name,
            priority=definition.priority,
            limit=limit_value,
            level=None,
            condition=condition,
            delay=delay(),
            **common,
        )
    ]
