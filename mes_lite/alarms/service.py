"""Alarm records and ISA-18.2 KPIs (plain functions over a session; the API, the subscriber and tests call them).

KPIs follow ANSI/ISA-18.2 (and EEMUA 191) as commonly used:
- alarm rate: annunciated alarms (transition `raised`) per operator per 10 minutes, average and
  peak, and the share of 10-minute periods in flood (more than 10 alarms);
- top 10 bad actors: the alarms raised most often in the window, with their share of all;
- chattering: an alarm raised 3 or more times within any 60 s.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mes_lite.alarms.models import Alarm, AlarmEvent, MesCommand
from mes_lite.models import Area, Line, Site, WorkCenter
from mes_lite.services.errors import InvalidInput, NotFound

TEN_MINUTES_NS = 600 * 1_000_000_000
FLOOD_PER_10_MIN = 10
CHATTER_COUNT = 3
CHATTER_WINDOW_NS = 60 * 1_000_000_000
PRIORITY_RANK = {"urgent": 3, "high": 2, "medium": 1, "low": 0}


def now_ns() -> int:
    return time.time_ns()


def work_center_for_path(session: Session, path: str) -> WorkCenter | None:
    """The work center of `enterprise/site/area/line/machine`, or None when the MES does not know it."""
    parts = path.split("/")
    if len(parts) != 5:
        return None
    enterprise, site, area, line, machine = parts
    return session.scalar(
        select(WorkCenter)
        .join(Line, WorkCenter.line_id == Line.id)
        .join(Area, Line.area_id == Area.id)
        .join(Site, Area.site_id == Site.id)
        .where(
            Site.enterprise == enterprise,
            Site.code == site,
            Area.code == area,
            Line.code == line,
            WorkCenter.code == machine,
        )
    )


def record_event(session: Session, doc: dict[str, Any]) -> bool:
    """Store one alarm event from the gateway; False when it was already stored (redelivery).

    The alarm's current row follows the newest event only, so events replayed out of order
    after an outage complete the history without turning back the current state.
    """
    try:
        event_id, key, ts_ns = str(doc["event_id"]), str(doc["key"]), int(doc["ts_ns"])
        path, alarm = str(doc["path"]), str(doc["alarm"])
        transition, state, priority = str(doc["transition"]), str(doc["state"]), str(doc["priority"])
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"not an alarm event: {e}") from None
    if session.scalar(select(AlarmEvent.id).where(AlarmEvent.event_id == event_id)) is not None:
        return False
    value = json.dumps(doc.get("value"))
    user = doc.get("acked_by") if transition == "acknowledged" else doc.get("shelved_by")
    try:
        with session.begin_nested():
            session.add(
                AlarmEvent(
                    event_id=event_id, key=key, path=path, alarm=alarm, area=str(doc.get("area", "")),
                    priority=priority, transition=transition, state=state, ts_ns=ts_ns, user=user, value=value,
                    payload=json.dumps(doc, ensure_ascii=False),
                )
            )  # fmt: skip
    except IntegrityError:
        return False  # a concurrent writer stored it first
    row = session.scalar(select(Alarm).where(Alarm.key == key))
    if row is None or row.work_center_id is None:  # the work center may be registered after the first event
        wc = work_center_for_path(session, path)
        if row is None:
            row = Alarm(key=key, path=path, alarm=alarm, last_event_ns=0)
            session.add(row)
        row.work_center_id = wc.id if wc else None
    if ts_ns >= (row.last_event_ns or 0):
        message = doc.get("message") or {}
        row.definition, row.kind, row.tag = (
            str(doc.get("definition", "")),
            str(doc.get("kind", "")),
            str(doc.get("tag", "")),
        )
        row.priority, row.state = priority, state
        row.active, row.acked, row.shelved = bool(doc.get("active")), bool(doc.get("acked")), bool(doc.get("shelved"))
        row.shelved_until_ns = doc.get("shelved_until_ns")
        row.message_en, row.message_zh = str(message.get("en", "")), str(message.get("zh-CN", ""))
        row.value, row.limit = value, doc.get("limit")
        row.active_since_ns, row.acked_by, row.acked_ns = (
            doc.get("active_since_ns"),
            doc.get("acked_by"),
            doc.get("acked_ns"),
        )
        row.raise_count = int(doc.get("raise_count") or 0)
        row.last_event_ns = ts_ns
    session.flush()
    return True


def alarm_view(row: Alarm) -> dict[str, Any]:
    return {
        "key": row.key,
        "alarm": row.alarm,
        "path": row.path,
        "work_center_id": row.work_center_id,
        "definition": row.definition,
        "kind": row.kind,
        "tag": row.tag,
        "priority": row.priority,
        "state": row.state,
        "active": row.active,
        "acked": row.acked,
        "shelved": row.shelved,
        "shelved_until_ns": row.shelved_until_ns,
        "message": {"en": row.message_en, "zh-CN": row.message_zh},
        "value": json.loads(row.value) if row.value else None,
        "limit": row.limit,
        "active_since_ns": row.active_since_ns,
        "acked_by": row.acked_by,
        "acked_ns": row.acked_ns,
        "raise_count": row.raise_count,
        "last_event_ns": row.last_event_ns,
    }


def _sort_key(row: Alarm) -> tuple[int, int, int]:
    """Unacknowledged first, then by priority, then newest first."""
    return (0 if not row.acked else 1, -PRIORITY_RANK.get(row.priority, 0), -(row.active_since_ns or 0))


def in_scope(path: str, scope: str | None) -> bool:
    """`path` (enterprise/site/area/line/machine) lies under `scope`, written with or without the enterprise
    (`acme/dongguan/stamping` or `dongguan/stamping`, as the andon board names scopes)."""
    if not scope:
        return True
    scope = scope.strip("/")
    without_enterprise = path.split("/", 1)[-1]
    return any(p == scope or p.startswith(scope + "/") for p in (path, without_enterprise))


def active_alarms(session: Session, path_prefix: str | None = None, include_shelved: bool = False) -> list[Alarm]:
    """Alarms not in `normal` (active, or cleared but not yet acknowledged), most urgent first."""
    rows = [
        r
        for r in session.scalars(select(Alarm).where(Alarm.state != "normal"))
        if (include_shelved or not r.shelved) and in_scope(r.path, path_prefix)
    ]
    return sorted(rows, key=_sort_key)


def active_by_work_center(session: Session, path_prefix: str | None = None) -> list[dict[str, Any]]:
    """The board's view: per work center, its alarms, the highest priority and how many are unacknowledged."""
    groups: dict[tuple[int | None, str], list[Alarm]] = defaultdict(list)
    for row in active_alarms(session, path_prefix):
        groups[(row.work_center_id, row.path)].append(row)
    out = []
    for (wc_id, path), rows in groups.items():
        top = max(rows, key=lambda r: PRIORITY_RANK.get(r.priority, 0))
        out.append(
            {
                "work_center_id": wc_id,
                "path": path,
                "highest_priority": top.priority,
                "unacked": sum(1 for r in rows if not r.acked),
                "active": sum(1 for r in rows if r.active),
                "alarms": [alarm_view(r) for r in rows],
            }
        )
    return sorted(out, key=lambda g: (-PRIORITY_RANK.get(g["highest_priority"], 0), g["path"]))


def history(
    session: Session, path_prefix: str | None, start_ns: int, end_ns: int, limit: int = 500
) -> list[AlarmEvent]:
    query = select(AlarmEvent).where(AlarmEvent.ts_ns >= start_ns, AlarmEvent.ts_ns < end_ns)
    if path_prefix:
        query = query.where(
            (AlarmEvent.path == path_prefix) | AlarmEvent.path.startswith(path_prefix.rstrip("/") + "/")
        )
    return list(session.scalars(query.order_by(AlarmEvent.ts_ns.desc(), AlarmEvent.id.desc()).limit(limit)))


# ---------------------------------------------------------------- KPIs (pure over raise times)


@dataclass(frozen=True)
class AlarmKpis:
    window_s: float
    operators: int
    annunciated: int
    per_operator_per_10_min: float
    peak_per_10_min: int
    flood_share: float
    """share of 10-minute periods with more than 10 alarms (per operator)"""
    bad_actors: list[dict[str, Any]]
    chattering: list[dict[str, Any]]


def kpis_from_raises(raises: list[tuple[str, int]], start_ns: int, end_ns: int, operators: int = 1) -> AlarmKpis:
    """ISA-18.2 KPIs from (alarm key, raise time) pairs inside [start, end)."""
    if end_ns <= start_ns:
        raise InvalidInput("the window must end after it starts", "end")
    if operators < 1:
        raise InvalidInput("operators must be at least 1", "operators")
    raises = sorted((k, t) for k, t in raises if start_ns <= t < end_ns)
    periods = max(1, -(-(end_ns - start_ns) // TEN_MINUTES_NS))
    per_period = Counter((t - start_ns) // TEN_MINUTES_NS for _, t in raises)
    counts = Counter(k for k, _ in raises)
    total = len(raises)
    bad_actors = [{"key": key, "count": n, "share": round(n / total, 4)} for key, n in counts.most_common(10)]
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, t in raises:
        by_key[key].append(t)
    chattering = []
    for key, times in by_key.items():
        times.sort()
        worst = max((sum(1 for u in times[i:] if u - t < CHATTER_WINDOW_NS) for i, t in enumerate(times)), default=0)
        if worst >= CHATTER_COUNT:
            chattering.append({"key": key, "max_per_minute": worst, "count": len(times)})
    chattering.sort(key=lambda c: (-c["max_per_minute"], c["key"]))
    return AlarmKpis(
        window_s=(end_ns - start_ns) / 1e9,
        operators=operators,
        annunciated=total,
        per_operator_per_10_min=round(total / periods / operators, 3),
        peak_per_10_min=max(per_period.values(), default=0),
        flood_share=round(sum(1 for n in per_period.values() if n / operators > FLOOD_PER_10_MIN) / periods, 4),
        bad_actors=bad_actors,
        chattering=chattering,
    )


def kpis(session: Session, path_prefix: str | None, start_ns: int, end_ns: int, operators: int = 1) -> AlarmKpis:
    query = select(AlarmEvent.key, AlarmEvent.ts_ns).where(
        AlarmEvent.transition == "raised", AlarmEvent.ts_ns >= start_ns, AlarmEvent.ts_ns < end_ns
    )
    if path_prefix:
        query = query.where(
            (AlarmEvent.path == path_prefix) | AlarmEvent.path.startswith(path_prefix.rstrip("/") + "/")
        )
    return kpis_from_raises([(k, t) for k, t in session.execute(query)], start_ns, end_ns, operators)


# ---------------------------------------------------------------- commands for the gateway


def queue_command(
    session: Session, kind: str, topic: str, body: dict[str, Any], user: str, work_order_id: int | None = None
) -> MesCommand:
    """Commit-with-the-caller: the command is published by the outbox publisher after the transaction."""
    request_id = uuid.uuid4().hex
    command = MesCommand(
        request_id=request_id,
        kind=kind,
        topic=topic,
        payload=json.dumps({**body, "request_id": request_id, "user": user}, ensure_ascii=False),
        user=user,
        work_order_id=work_order_id,
        created_ns=now_ns(),
    )
    session.add(command)
    session.flush()
    return command


def request_ack(session: Session, key: str, user: str) -> MesCommand:
    row = session.scalar(select(Alarm).where(Alarm.key == key))
    if row is None:
        raise NotFound(f"no alarm {key!r}")
    if row.acked:
        raise InvalidInput(f"alarm {row.alarm} on {row.path} is already acknowledged", "key")
    return queue_command(session, "alarm_ack", alarm_command_topic(key), {"action": "ack"}, user)


def request_shelve(session: Session, key: str, user: str, duration_s: float) -> MesCommand:
    row = session.scalar(select(Alarm).where(Alarm.key == key))
    if row is None:
        raise NotFound(f"no alarm {key!r}")
    if duration_s <= 0:
        raise InvalidInput("duration_s must be positive", "duration_s")
    body = {"action": "shelve", "duration_s": duration_s}
    return queue_command(session, "alarm_shelve", alarm_command_topic(key), body, user)


def alarm_command_topic(key: str) -> str:
    machine_path, alarm = key.rsplit("/", 1)
    return f"{machine_path}/_alarms/{alarm}/cmd"


def record_answer(session: Session, request_id: str, answer: dict[str, Any]) -> bool:
    command = session.scalar(select(MesCommand).where(MesCommand.request_id == request_id))
    if command is None:
        return False
    command.status = "done" if answer.get("ok") else ("failed" if answer.get("result") == "failed" else "refused")
    command.answer = json.dumps(answer, ensure_ascii=False)
    command.answered_ns = now_ns()
    session.flush()
    return True


def command_view(command: MesCommand) -> dict[str, Any]:
    return {
        "request_id": command.request_id,
        "kind": command.kind,
        "topic": command.topic,
        "status": command.status,
        "user": command.user,
        "work_order_id": command.work_order_id,
        "created_ns": command.created_ns,
        "published_ns": command.published_ns,
        "answer": json.loads(command.answer) if command.answer else None,
    }
