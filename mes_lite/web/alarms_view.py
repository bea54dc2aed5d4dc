"""Active alarms per machine for the board, machine pages and operator station (`mes_lite.alarms`).

The alarm tables are filled by the MES ingest from the gateway's UNS alarm topics; the pages only
read them (`alarms.service.active_alarms`) and ask for an acknowledgement through the alarm
service's command outbox (`request_ack`), so the gateway remains the owner of the alarm state.
The board keeps working if the alarm tables are missing (an older database): it shows no alarms.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveAlarm:
    key: str
    priority: str
    message_zh: str
    message_en: str
    active: bool
    acknowledged: bool

    def message(self, locale: str) -> str:
        text = self.message_zh if locale == "zh-CN" else self.message_en
        return text or self.message_en or self.message_zh or self.key.rsplit("/", 1)[-1]


def active_alarms_by_work_center(session: Session) -> dict[int, list[ActiveAlarm]]:
    """Work center id -> its alarms not yet back to normal, most urgent first (shelved ones left out)."""
    try:
        from mes_lite.alarms.service import active_alarms
    except ImportError:
        return {}
    result: dict[int, list[ActiveAlarm]] = defaultdict(list)
    try:
        rows = active_alarms(session)
    except SQLAlchemyError:
        session.rollback()
        log.warning("alarm tables not readable: showing no alarms", exc_info=True)
        return {}
    for row in rows:
        if row.work_center_id is None:
            continue
        result[row.work_center_id].append(
            ActiveAlarm(row.key, row.priority, row.message_zh, row.message_en, row.active, row.acked)
        )
    return dict(result)


def request_acknowledgement(session: Session, key: str, username: str) -> None:
    """Queue an acknowledgement for the gateway (the alarm service's outbox); raises if the alarm is unknown."""
    from mes_lite.alarms.service import request_ack

    request_ack(session, key, username)
