"""Active alarms per machine for the board and machine pages, when the alarms module is installed.

The alarms part of the MES (`mes_lite.alarms`) is optional here: if it offers
`active_alarms(session)` returning objects with `work_center_path` (site/area/line/machine),
`priority`, `message_zh`, `message_en` and `state`, the pages show them; otherwise no alarms are shown.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveAlarm:
    work_center_path: str
    priority: str
    message_zh: str
    message_en: str
    acknowledged: bool

    def message(self, locale: str) -> str:
        return self.message_zh if locale == "zh-CN" else self.message_en


def _source():  # type: ignore[no-untyped-def]
    try:
        module = importlib.import_module("mes_lite.alarms.queries")
    except ImportError:
        return None
    return getattr(module, "active_alarms", None)


def active_alarms_by_work_center(session: Session) -> dict[str, list[ActiveAlarm]]:
    source = _source()
    if source is None:
        return {}
    result: dict[str, list[ActiveAlarm]] = defaultdict(list)
    try:
        for alarm in source(session):
            state = str(getattr(alarm, "state", ""))
            result[alarm.work_center_path].append(
                ActiveAlarm(
                    work_center_path=alarm.work_center_path,
                    priority=str(getattr(alarm, "priority", "")),
                    message_zh=getattr(alarm, "message_zh", "") or getattr(alarm, "message", ""),
                    message_en=getattr(alarm, "message_en", "") or getattr(alarm, "message", ""),
                    acknowledged="acknowledged" in state and "unacknowledged" not in state,
                )
            )
    except Exception:  # the board must keep working whatever the optional part does
        log.exception("reading active alarms failed")
        return {}
    return dict(result)
