"""Applies ingest events to the database, one transaction per batch of messages.

The tag cursors (last timestamp and counter value) are saved in the same transaction as the
counts and states they produced, so after a crash or restart the ingest resumes exactly where
the database is: nothing is counted twice and no counter baseline is lost.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mes_lite.ingest.events import (
    Anomaly,
    CountEvent,
    CycleTimeEvent,
    MachineTranslator,
    StateEvent,
    TagCursor,
    TagMessage,
)
from mes_lite.models import IngestCursor, WorkCenter
from mes_lite.services.calendar_query import CalendarCache
from mes_lite.services.errors import ServiceError
from mes_lite.services.master_data import work_center_by_path
from mes_lite.services.production import CountContext, ProductionRecorder, add_ingest_count, count_context

log = logging.getLogger(__name__)


class IngestWriter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        translators: dict[str, MachineTranslator],
        timezone: str = "UTC",
    ) -> None:
        self.sessions = sessions
        self.translators = translators
        self.recorder = ProductionRecorder(CalendarCache(timezone))
        self.work_centers: dict[str, int | None] = {}
        self.cycle_times: dict[str, float] = {}
        self.stats: Counter[str] = Counter()

    def load_cursors(self) -> None:
        """Set every tag's cursor to what the database holds (at start, and after a failed batch was rolled back)."""
        with self.sessions() as session:
            stored = {c.tag_path: c for c in session.scalars(select(IngestCursor))}
        for translator in self.translators.values():
            for tag_path in translator.bindings:
                c = stored.get(tag_path)
                translator.cursors[tag_path] = (
                    TagCursor(c.last_ts_ns, int(c.last_counter) if c.last_counter is not None else None)
                    if c is not None
                    else TagCursor()
                )

    def _work_center_id(self, session: Session, machine_path: str) -> int | None:
        if machine_path not in self.work_centers:
            try:
                wc: WorkCenter | None = work_center_by_path(session, machine_path)
            except ServiceError:
                wc = None
                log.warning("no work center for %s: its messages are skipped (import master data)", machine_path)
            self.work_centers[machine_path] = wc.id if wc else None
        return self.work_centers[machine_path]

    def write(self, messages: Iterable[TagMessage]) -> None:
        touched: dict[str, TagCursor] = {}
        self._contexts: dict[int, CountContext] = {}
        with self.sessions() as session:
            for message in messages:
                translator = self.translators.get(message.machine_path)
                if translator is None:
                    continue
                wc_id = self._work_center_id(session, message.machine_path)
                if wc_id is None:
                    self.stats["unknown_machine"] += 1
                    continue
                for event in translator.apply(message):
                    self._apply(session, wc_id, event)
                cursor = translator.cursors.get(message.tag_path)
                if cursor is not None:
                    touched[message.tag_path] = cursor
            for tag_path, cursor in touched.items():
                session.merge(
                    IngestCursor(
                        tag_path=tag_path,
                        last_ts_ns=cursor.last_ts_ns,
                        last_counter=float(cursor.last_counter) if cursor.last_counter is not None else None,
                    )
                )
            session.commit()

    def _apply(self, session: Session, wc_id: int, event: object) -> None:
        if isinstance(event, StateEvent):
            session.flush()
            change = self.recorder.record_state(session, wc_id, event.state, event.ts_ns)
            self.stats["late_state" if change.late else ("state" if change.changed else "state_repeat")] += 1
        elif isinstance(event, CountEvent):
            context = self._contexts.get(wc_id)
            if context is None:
                machine_cycle_s = self.cycle_times.get(event.machine_path)
                context = self._contexts[wc_id] = count_context(self.recorder, session, wc_id, machine_cycle_s)
            add_ingest_count(
                self.recorder, session, context, event.ts_ns, event.produced_qty, event.reject_qty, event.source_key
            )
            self.stats["count"] += 1
        elif isinstance(event, CycleTimeEvent):
            self.cycle_times[event.machine_path] = event.ideal_cycle_time_s
            self._contexts.pop(wc_id, None)
            self.stats["cycle_time"] += 1
        elif isinstance(event, Anomaly):
            self.stats[event.kind] += 1
            if event.kind in ("reset", "glitch", "rollover"):
                log.info("counter %s at %d: %s (%s)", event.tag_path, event.ts_ns, event.kind, event.detail)
