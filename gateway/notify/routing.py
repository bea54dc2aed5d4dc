"""Who is told about an alarm event, and when to stop telling them (pure).

- A transition is announced when it is news for a person: `raised`; `cleared` (if the route
  wants it); `unshelved` / `shelve_expired` while the alarm is still active and unacknowledged.
  Acknowledging and shelving are not announced; a shelved alarm announces nothing.
- Routes match by area, machine and minimum priority; an event goes to the union of the
  channels of every route it matches (once per channel).
- Escalation: an alarm still active and unacknowledged `escalate_after` its activation is
  announced to the route's `escalate_to` channels, once per activation.
- Rate limit: a token bucket per alarm and channel (`burst`, refilled at `per_hour`), so a
  chattering alarm sends a few messages and then stays quiet until it calms down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge_config.alarms_schema import Notify, Priority, RateLimit, Route

ANNOUNCED = {"raised", "cleared", "unshelved", "shelve_expired"}


@dataclass(frozen=True)
class Notification:
    channel: str
    reason: str
    """raised, cleared, escalated, unshelved, shelve_expired"""
    event: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {"channel": self.channel, "reason": self.reason, "event": self.event}


def route_matches(route: Route, event: dict[str, Any]) -> bool:
    if route.areas is not None and event.get("area") not in route.areas:
        return False
    if route.machines is not None and event.get("machine") not in route.machines:
        return False
    try:
        return Priority(event.get("priority")).rank >= route.min_priority.rank
    except ValueError:
        return False


def channels_for(routes: Iterable[Route], event: dict[str, Any]) -> list[str]:
    """The channels an event goes to (route order, each once)."""
    reason = event.get("transition", "")
    out: list[str] = []
    for route in routes:
        if not route_matches(route, event):
            continue
        if reason == "cleared" and not route.notify_cleared:
            continue
        out.extend(c for c in route.channels if c not in out)
    return out


def is_announced(event: dict[str, Any]) -> bool:
    reason = event.get("transition", "")
    if reason not in ANNOUNCED or event.get("shelved"):
        return False
    if reason in ("unshelved", "shelve_expired"):
        return bool(event.get("active")) and not event.get("acked")
    return True


@dataclass
class RateLimiter:
    """Token bucket per (alarm key, channel); time in seconds from any monotonic-enough clock."""

    settings: RateLimit
    tokens: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    suppressed: int = 0

    def allow(self, key: str, channel: str, now_s: float) -> bool:
        burst, rate_per_s = float(self.settings.burst), self.settings.per_hour / 3600.0
        tokens, at = self.tokens.get((key, channel), (burst, now_s))
        tokens = min(burst, tokens + max(0.0, now_s - at) * rate_per_s)
        if tokens < 1.0:
            self.tokens[(key, channel)] = (tokens, now_s)
            self.suppressed += 1
            return False
        self.tokens[(key, channel)] = (tokens - 1.0, now_s)
        return True


def plan(notify: Notify, limiter: RateLimiter, event: dict[str, Any], now_s: float) -> list[Notification]:
    """The notifications one alarm event causes (after routing and rate limiting)."""
    if not is_announced(event):
        return []
    reason = event["transition"]
    return [
        Notification(channel, reason, event)
        for channel in channels_for(notify.routes, event)
        if limiter.allow(str(event.get("key")), channel, now_s)
    ]


def escalations_due(
    notify: Notify, event: dict[str, Any], active_since_ns: int, escalated: Iterable[int], now_ns: int
) -> list[tuple[int, list[str]]]:
    """(route index, channels) of the routes whose escalation is due for an active, unacknowledged alarm."""
    done = set(escalated)
    due = []
    for index, route in enumerate(notify.routes):
        if index in done or route.escalate_after is None or not route_matches(route, event):
            continue
        if now_ns - active_since_ns >= route.escalate_after * 1e9:
            due.append((index, list(route.escalate_to)))
    return due
