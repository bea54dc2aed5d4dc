"""The `alarms:` section of the edge YAML: alarm definitions, notification channels and routes.

Alarms are evaluated in the gateway, next to the data, so they keep working while the
network to the plant server is down. One definition applies to every machine that has its
tag (or to the machines / profile it names), so a profile's ten presses share one rule.

    alarms:
      definitions:
        oil_temp:
          kind: limit
          tag: oil_temp
          profile: press-v2
          hi: 70
          hihi: {limit: 80, priority: urgent}
          deadband: 1.0
          on_delay: 5s
          priority: high
          message: {en: "Oil temperature {value:.1f} degC", zh-CN: "油温 {value:.1f} ℃"}
      notify:
        channels:
          stamping-wecom: {type: wecom, url: "${WECOM_HOOK_URL}"}
        routes:
          - {areas: [stamping], min_priority: high, channels: [stamping-wecom], escalate_after: 10m,
             escalate_to: [supervisor-mail]}

The rules are in docs/alarms.md.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from edge_config.units import parse_duration_s

DurationS = Annotated[float, BeforeValidator(parse_duration_s)]
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Priority(StrEnum):
    """ISA-18.2 recommends three or four priorities; `urgent` is the one that wakes someone up."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return list(Priority).index(self)


class AlarmKind(StrEnum):
    LIMIT = "limit"
    DEVIATION = "deviation"
    STATE = "state"
    STALE = "stale"
    RATE = "rate"


class LimitLevel(StrEnum):
    """The four limits of a limit alarm; each one is its own alarm (acknowledged on its own)."""

    HIHI = "hihi"
    HI = "hi"
    LO = "lo"
    LOLO = "lolo"

    @property
    def is_high(self) -> bool:
        return self in (LimitLevel.HI, LimitLevel.HIHI)


class Message(_Strict):
    """Alarm text in Chinese and English; `{value}`, `{limit}`, `{machine}`, `{tag}`... are filled in."""

    en: str
    zh_cn: str = Field(alias="zh-CN")


def _limit_shorthand(value: Any) -> Any:
    """`hi: 70` is `hi: {limit: 70}`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"limit": value}
    return value


class Limit(_Strict):
    limit: float
    priority: Priority | None = Field(default=None, description="overrides the definition's priority")


LimitSetting = Annotated[Limit | None, BeforeValidator(_limit_shorthand)]


class AlarmDefinition(_Strict):
    """One alarm rule; which settings apply depends on `kind` (checked below)."""

    kind: AlarmKind
    tag: Name | None = Field(default=None, description="the tag watched (state: defaults to the tag with role state)")
    machines: list[Name] | None = Field(default=None, description="devices it applies to (default: all with the tag)")
    profile: Name | None = Field(default=None, description="or: every device using this profile")
    priority: Priority = Priority.MEDIUM
    message: Message | None = None
    on_delay: DurationS = Field(default=0.0, ge=0, description="condition must hold this long before raising")
    off_delay: DurationS = Field(default=0.0, ge=0, description="condition must be gone this long before clearing")
    deadband: float = Field(default=0.0, ge=0, description="limit/deviation/rate: clear only this far inside")
    # limit
    hihi: LimitSetting = None
    hi: LimitSetting = None
    lo: LimitSetting = None
    lolo: LimitSetting = None
    # deviation
    setpoint_tag: Name | None = None
    max_deviation: float | None = Field(default=None, gt=0)
    # state
    states: list[str] | None = Field(default=None, description="state names that are abnormal, e.g. [fault]")
    # stale
    after: DurationS | None = Field(default=None, gt=0, description="stale: no good value for this long")
    # rate of change
    max_rate: float | None = Field(default=None, gt=0, description="rate: |change| per `per` above this")
    per: DurationS = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _settings_match_kind(self) -> AlarmDefinition:
        kind = self.kind
        needs: dict[AlarmKind, tuple[str, ...]] = {
            AlarmKind.LIMIT: (),
            AlarmKind.DEVIATION: ("tag", "setpoint_tag", "max_deviation"),
            AlarmKind.STATE: ("states",),
            AlarmKind.STALE: ("tag", "after"),
            AlarmKind.RATE: ("tag", "max_rate"),
        }
        missing = [key for key in needs[kind] if getattr(self, key) in (None, [])]
        if missing:
            raise ValueError(f"a {kind.value} alarm needs {', '.join(missing)}")
        foreign = {
            "hihi/hi/lo/lolo": kind is not AlarmKind.LIMIT and any(self.limits().values()),
            "setpoint_tag": kind is not AlarmKind.DEVIATION and self.setpoint_tag is not None,
            "max_deviation": kind is not AlarmKind.DEVIATION and self.max_deviation is not None,
            "states": kind is not AlarmKind.STATE and self.states is not None,
            "after": kind is not AlarmKind.STALE and self.after is not None,
            "max_rate": kind is not AlarmKind.RATE and self.max_rate is not None,
        }
        wrong = [key for key, bad in foreign.items() if bad]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} does not apply to a {kind.value} alarm: remove it")
        if kind is AlarmKind.LIMIT:
            if self.tag is None:
                raise ValueError("a limit alarm needs tag")
            limits = {level: lim.limit for level, lim in self.limits().items() if lim is not None}
            if not limits:
                raise ValueError("a limit alarm needs at least one of hihi, hi, lo, lolo")
            order = [LimitLevel.LOLO, LimitLevel.LO, LimitLevel.HI, LimitLevel.HIHI]
            present = [(level, limits[level]) for level in order if level in limits]
            for (low_level, low), (high_level, high) in itertools.pairwise(present):
                if low >= high:
                    raise ValueError(
                        f"limits must rise lolo < lo < hi < hihi: {low_level.value} {low:g} "
                        f"is not below {high_level.value} {high:g}"
                    )
        if self.machines is not None and self.profile is not None:
            raise ValueError("give machines or profile, not both")
        return self

    def limits(self) -> dict[LimitLevel, Limit | None]:
        return {LimitLevel.HIHI: self.hihi, LimitLevel.HI: self.hi, LimitLevel.LO: self.lo, LimitLevel.LOLO: self.lolo}


class ChannelType(StrEnum):
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"
    WEBHOOK = "webhook"
    EMAIL = "email"


class Channel(_Strict):
    """Where a notification goes. Webhook types need `url`; email needs `smtp_host`, `sender`, `to`."""

    type: ChannelType
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    secret: str | None = Field(default=None, description="DingTalk sign secret (SEC...) / Feishu signature key")
    format: Literal["markdown", "text"] = "markdown"
    language: Literal["zh-CN", "en", "both"] = "both"
    mention_all: bool = False
    mention_mobiles: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict, description="webhook: extra HTTP headers")
    timeout: DurationS = Field(default=5.0, gt=0)
    # email
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    sender: str | None = None
    to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> Channel:
        if self.type is ChannelType.EMAIL:
            missing = [k for k in ("smtp_host", "sender") if getattr(self, k) is None] + ([] if self.to else ["to"])
            if missing:
                raise ValueError(f"an email channel needs {', '.join(missing)}")
        elif self.url is None:
            raise ValueError(f"a {self.type.value} channel needs url")
        return self


class Route(_Strict):
    """Which alarms go to which channels; an alarm goes to every route it matches."""

    areas: list[Name] | None = Field(default=None, description="default: every area")
    machines: list[Name] | None = None
    min_priority: Priority = Priority.LOW
    channels: list[Name] = Field(min_length=1)
    escalate_after: DurationS | None = Field(default=None, gt=0, description="still unacknowledged after this...")
    escalate_to: list[Name] = Field(default_factory=list, description="...notify these channels too")
    notify_cleared: bool = Field(default=True, description="also tell when the alarm cleared")

    @model_validator(mode="after")
    def _escalation_complete(self) -> Route:
        if (self.escalate_after is None) != (not self.escalate_to):
            raise ValueError("escalate_after and escalate_to go together")
        return self


class RateLimit(_Strict):
    """Per alarm and channel: a token bucket, so a chattering alarm cannot flood a phone."""

    burst: int = Field(default=3, ge=1)
    per_hour: float = Field(default=6.0, gt=0)


class Notify(_Strict):
    channels: dict[Name, Channel] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    rate_limit: RateLimit = RateLimit()

    @model_validator(mode="after")
    def _routes_name_channels(self) -> Notify:
        for index, route in enumerate(self.routes):
            for name in [*route.channels, *route.escalate_to]:
                if name not in self.channels:
                    known = ", ".join(sorted(self.channels)) or "none defined"
                    raise ValueError(f"routes[{index}]: unknown channel {name!r} (channels: {known})")
        return self


class Alarms(_Strict):
    definitions: dict[Name, AlarmDefinition] = Field(default_factory=dict)
    notify: Notify = Notify()
    max_shelve: DurationS = Field(default=8 * 3600.0, gt=0, description="longest an operator may shelve an alarm")
    evaluate_every: DurationS = Field(default=1.0, gt=0, description="clock tick for delays and stale data")
