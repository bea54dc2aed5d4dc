"""The ISA-18.2 alarm state machine (pure: no clock, no I/O).

    NORMAL --condition--> ACTIVE_UNACKED --ack--> ACTIVE_ACKED --clear--> NORMAL
                               |                                   ^
                             clear                                 |
                               v                                   |
                          CLEARED_UNACKED ----------ack-------------+
                               |
                            condition --> ACTIVE_UNACKED (raised again)

Shelving is orthogonal to the state: a shelved alarm keeps following its condition (so
the record stays true) but is not annunciated (no notifications) until it is unshelved
by an operator or its shelve time expires. Every change returns the transition's name,
which becomes the `transition` field of the published alarm event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


class AlarmState(StrEnum):
    NORMAL = "normal"
    ACTIVE_UNACKED = "active_unacked"
    ACTIVE_ACKED = "active_acked"
    CLEARED_UNACKED = "cleared_unacked"

    @property
    def active(self) -> bool:
        return self in (AlarmState.ACTIVE_UNACKED, AlarmState.ACTIVE_ACKED)

    @property
    def unacked(self) -> bool:
        return self in (AlarmState.ACTIVE_UNACKED, AlarmState.CLEARED_UNACKED)


class Transition(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"
    SHELVED = "shelved"
    UNSHELVED = "unshelved"
    SHELVE_EXPIRED = "shelve_expired"


class AlarmCommandError(ValueError):
    """An operator command that does not apply (ack of a normal alarm, shelving too long...)."""


@dataclass(frozen=True)
class AlarmStatus:
    """Everything the gateway remembers about one alarm (persisted across restarts)."""

    state: AlarmState = AlarmState.NORMAL
    active_since_ns: int | None = None
    cleared_ns: int | None = None
    acked_by: str | None = None
    acked_ns: int | None = None
    shelved_by: str | None = None
    shelved_until_ns: int | None = None
    raise_count: int = 0
    value: Any = None
    """The value that raised the alarm (or the latest one while it is active)."""
    escalated: tuple[int, ...] = field(default_factory=tuple)
    """Indexes of the notification routes already escalated for the current activation."""

    @property
    def shelved(self) -> bool:
        return self.shelved_until_ns is not None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"] = self.state.value
        doc["escalated"] = list(self.escalated)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AlarmStatus:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        known["state"] = AlarmState(known.get("state", "normal"))
        known["escalated"] = tuple(known.get("escalated") or ())
        return cls(**known)


def on_condition(
    status: AlarmStatus, active: bool, ts_ns: int, value: Any = None
) -> tuple[AlarmStatus, Transition | None]:
    """The (debounced) alarm condition became `active` or not at `ts_ns`."""
    if active and not status.state.active:
        return (
            replace(
                status,
                state=AlarmState.ACTIVE_UNACKED,
                active_since_ns=ts_ns,
                cleared_ns=None,
                acked_by=None,
                acked_ns=None,
                raise_count=status.raise_count + 1,
                value=value,
                escalated=(),
            ),
            Transition.RAISED,
        )
    if not active and status.state.active:
        state = AlarmState.NORMAL if status.state is AlarmState.ACTIVE_ACKED else AlarmState.CLEARED_UNACKED
        return replace(status, state=state, cleared_ns=ts_ns, value=value), Transition.CLEARED
    return status, None


def acknowledge(status: AlarmStatus, user: str, ts_ns: int) -> tuple[AlarmStatus, Transition]:
    if status.state is AlarmState.ACTIVE_UNACKED:
        return replace(status, state=AlarmState.ACTIVE_ACKED, acked_by=user, acked_ns=ts_ns), Transition.ACKNOWLEDGED
    if status.state is AlarmState.CLEARED_UNACKED:
        return replace(status, state=AlarmState.NORMAL, acked_by=user, acked_ns=ts_ns), Transition.ACKNOWLEDGED
    if status.state is AlarmState.ACTIVE_ACKED:
        raise AlarmCommandError(f"already acknowledged by {status.acked_by}")
    raise AlarmCommandError("the alarm is not active and has nothing to acknowledge")


def shelve(
    status: AlarmStatus, user: str, now_ns: int, duration_s: float, max_duration_s: float
) -> tuple[AlarmStatus, Transition]:
    if duration_s <= 0:
        raise AlarmCommandError("shelve duration must be positive")
    if duration_s > max_duration_s:
        raise AlarmCommandError(f"shelve duration {duration_s:g} s is longer than the allowed {max_duration_s:g} s")
    until = now_ns + int(duration_s * 1e9)
    return replace(status, shelved_by=user, shelved_until_ns=until), Transition.SHELVED


def unshelve(status: AlarmStatus) -> tuple[AlarmStatus, Transition]:
    if not status.shelved:
        raise AlarmCommandError("the alarm is not shelved")
    return replace(status, shelved_by=None, shelved_until_ns=None), Transition.UNSHELVED


def expire_shelve(status: AlarmStatus, now_ns: int) -> tuple[AlarmStatus, Transition | None]:
    """Shelving ends by itself at its expiry (ISA-18.2: shelving is always time-limited)."""
    if status.shelved_until_ns is not None and now_ns >= status.shelved_until_ns:
        return replace(status, shelved_by=None, shelved_until_ns=None), Transition.SHELVE_EXPIRED
    return status, None
