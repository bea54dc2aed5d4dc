"""Alarm statuses on disk (SQLite, WAL, synchronous=FULL), so a restart keeps what operators saw and did.

One row per alarm key, the `AlarmStatus` as JSON. Writes are rare (a transition, an
acknowledgement), so each one is its own durable transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from gateway.alarms.lifecycle import AlarmStatus


class AlarmStateStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS alarm_state (key TEXT PRIMARY KEY, status TEXT NOT NULL)")

    def load(self) -> dict[str, AlarmStatus]:
        with self._lock:
            rows = self._db.execute("SELECT key, status FROM alarm_state").fetchall()
        return {key: AlarmStatus.from_json(json.loads(doc)) for key, doc in rows}

    def save(self, statuses: dict[str, AlarmStatus]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO alarm_state (key, status) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status = excluded.status",
                [(key, json.dumps(status.to_json())) for key, status in statuses.items()],
            )
            self._db.execute("COMMIT")

    def delete(self, keys: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM alarm_state WHERE key = ?", [(k,) for k in keys])

    def close(self) -> None:
        with self._lock:
            self._db.close()
