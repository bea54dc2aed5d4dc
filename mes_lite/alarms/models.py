"""Alarm tables: the current state of each alarm, its event history, and the command outbox.

- `alarms`: one row per alarm key (`enterprise/site/area/line/machine/alarm`), the latest state
  the gateway published; the board's query.
- `alarm_events`: every event once (unique `event_id`, so MQTT redelivery and retained
  re-sends store nothing twice): the history the ISA-18.2 KPIs are computed from.
- `mes_commands`: commands for the gateway (acknowledge an alarm, write a target quantity),
  committed in the same transaction as the action that caused them and published by the
  outbox publisher; the gateway's answer is stored on the row.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mes_lite.db import Base


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    work_center_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_centers.id", ondelete="SET NULL"), index=True, default=None
    )
    path: Mapped[str] = mapped_column(String(330), index=True)
    alarm: Mapped[str] = mapped_column(String(130))
    definition: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="")
    tag: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(20), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    acked: Mapped[bool] = mapped_column(Boolean, default=True)
    shelved: Mapped[bool] = mapped_column(Boolean, default=False)
    shelved_until_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    message_en: Mapped[str] = mapped_column(Text, default="")
    message_zh: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[str | None] = mapped_column(Text, default=None)
    """JSON of the value that raised it"""
    limit: Mapped[float | None] = mapped_column(Float, default=None)
    active_since_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    acked_by: Mapped[str | None] = mapped_column(String(64), default=None)
    acked_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
    raise_count: Mapped[int] = mapped_column(Integer, default=0)
    last_event_ns: Mapped[int] = mapped_column(BigInteger, default=0)


class AlarmEvent(Base):
    __tablename__ = "alarm_events"
    __table_args__ = (Index("ix_alarm_events_key_ts", "key", "ts_ns"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(500), unique=True)
    key: Mapped[str] = mapped_column(String(400))
    path: Mapped[str] = mapped_column(String(330), index=True)
    alarm: Mapped[str] = mapped_column(String(130))
    area: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[str] = mapped_column(String(16))
    transition: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    ts_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    user: Mapped[str | None] = mapped_column(String(64), default=None)
    value: Mapped[str | None] = mapped_column(Text, default=None)
    payload: Mapped[str] = mapped_column(Text)


class MesCommand(Base):
    __tablename__ = "mes_commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    """alarm_ack | alarm_shelve | write"""
    topic: Mapped[str] = mapped_column(String(400))
    payload: Mapped[str] = mapped_column(Text)
    user: Mapped[str] = mapped_column(String(64))
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL"), default=None, index=True
    )
    created_ns: Mapped[int] = mapped_column(BigInteger)
    published_ns: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending -> published -> done | refused | failed"""
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    answered_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
