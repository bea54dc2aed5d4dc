"""The alarm event: what the gateway publishes on the UNS alarm topic and hands to notifications.

Topic: `{enterprise}/{site}/{area}/{line}/{machine}/_alarms/{alarm}` (retained, QoS 1), so a
board or the MES that subscribes later gets every alarm's current state at once. The
payload is `AlarmEvent.document()` (JSON, documented in docs/alarms.md). Commands for an
alarm go to the same topic plus `/cmd`, answers to `/cmd/response`.
"""

from __future__ import annotations

import json
import logging
import string
from dataclasses import dataclass
from typing import Any

from edge_config.alarms_schema import AlarmDefinition, Priority
from gateway.alarms.lifecycle import AlarmStatus, Transition
from gateway.sinks.uns import iso_utc_ms

log = logging.getLogger(__name__)

ALARMS_LEVEL = "_alarms"
"""The topic level under a machine that holds its alarms (tag names cannot start with '_' by convention)."""
COMMAND_SUFFIX = "cmd"


def alarm_topic(machine_path: str, alarm: str) -> str:
    return f"{machine_path}/{ALARMS_LEVEL}/{alarm}"


def alarm_command_filter(enterprise: str, site: str) -> str:
    """The subscription for every alarm command of a site."""
    return f"{enterprise}/{site}/+/+/+/{ALARMS_LEVEL}/+/{COMMAND_SUFFIX}"


def parse_alarm_command_topic(topic: str) -> str | None:
    """`.../machine/_alarms/oil_temp.hi/cmd` -> the alarm key `.../machine/oil_temp.hi` (None if not a command)."""
    parts = topic.split("/")
    if len(parts) != 8 or parts[5] != ALARMS_LEVEL or parts[7] != COMMAND_SUFFIX:
        return None
    return "/".join((*parts[:5], parts[6]))


class _Lenient(string.Formatter):
    """Message templates never break an alarm: an unknown field or a bad format spec prints as-is."""

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        return kwargs.get(key, "{" + str(key) + "}") if isinstance(key, str) else super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _Lenient()


def render_message(definition: AlarmDefinition, values: dict[str, Any]) -> dict[str, str]:
    """The alarm's text in both languages, placeholders filled; a default text when none is configured."""
    if definition.message is None:
        limit = values.get("limit")
        detail = f" {values.get('value')}" + (f" (limit {limit:g})" if isinstance(limit, int | float) else "")
        default = f"{values['machine']} {values['alarm']}:{detail}"
        return {"en": default, "zh-CN": default}
    out = {}
    for lang, template in (("en", definition.message.en), ("zh-CN", definition.message.zh_cn)):
        try:
            out[lang] = _FORMATTER.format(template, **values)
        except (IndexError, KeyError, ValueError) as e:
            log.warning("alarm message %r cannot be formatted: %s", template, e)
            out[lang] = template
    return out


@dataclass(frozen=True)
class AlarmEvent:
    key: str
    alarm: str
    definition: str
    kind: str
    level: str | None
    machine_path: str
    machine: str
    area: str
    line: str
    tag: str
    priority: Priority
    transition: Transition
    status: AlarmStatus
    limit: float | None
    message: dict[str, str]
    ts_ns: int

    @property
    def topic(self) -> str:
        return alarm_topic(self.machine_path, self.alarm)

    @property
    def event_id(self) -> str:
        """Unique per event; the MES stores each event once however often MQTT delivers it."""
        return f"{self.key}@{self.ts_ns}/{self.transition.value}"

    def document(self) -> dict[str, Any]:
        s = self.status
        return {
            "event_id": self.event_id,
            "alarm": self.alarm,
            "key": self.key,
            "definition": self.definition,
            "kind": self.kind,
            "level": self.level,
            "path": self.machine_path,
            "machine": self.machine,
            "area": self.area,
            "line": self.line,
            "tag": self.tag,
            "priority": self.priority.value,
            "transition": self.transition.value,
            "state": s.state.value,
            "active": s.state.active,
            "acked": not s.state.unacked,
            "shelved": s.shelved,
            "value": s.value,
            "limit": self.limit,
            "message": self.message,
            "ts": iso_utc_ms(self.ts_ns),
            "ts_ns": self.ts_ns,
            "active_since_ns": s.active_since_ns,
            "cleared_ns": s.cleared_ns,
            "acked_by": s.acked_by,
            "acked_ns": s.acked_ns,
            "shelved_by": s.shelved_by,
            "shelved_until_ns": s.shelved_until_ns,
            "raise_count": s.raise_count,
        }

    def payload(self) -> bytes:
        return json.dumps(self.document(), ensure_ascii=False, separators=(",", ":")).encode()
