"""The andon board's one query: every machine's state, stop duration and reason, order progress, OEE today."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user
from mes_lite.api.schemas import OeeOut, iso
from mes_lite.db import get_session
from mes_lite.inventory.ledger import commit_with_retry
from mes_lite.models import User
from mes_lite.services.andon import board

router = APIRouter(prefix="/api/andon", tags=["andon"])


def _kpis(result) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "oee": result.oee,
        "availability": result.availability,
        "performance": result.effectiveness,
        "quality": result.quality_ratio,
        "performance_over_100": result.effectiveness_over_100,
    }


BOARD_CACHE_S = 1.0
"""A TV refreshing every few seconds needs no fresher data; 50 boards then cost one query set a second."""
_cache: dict[str, tuple[float, bytes]] = {}
_locks: dict[str, threading.Lock] = {}


@router.get("")
def andon_board(
    request: Request,
    path: str = Query(description="site, site/area or site/area/line"),
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> Response:
    """Per work center: state, since when, reason, running order and progress, OEE today (A, P, Q). Cached 1 s."""
    key = f"{id(request.app)}:{path}"
    cached = _cache.get(key)
    if not cached or time.monotonic() - cached[0] >= BOARD_CACHE_S:
        with _locks.setdefault(key, threading.Lock()):
            cached = _cache.get(key)
            if not cached or time.monotonic() - cached[0] >= BOARD_CACHE_S:
                # the OEE read fills the hourly cache: commit it, retrying a clash with the ingest on SQLite
                board_body = commit_with_retry(session, lambda: _board_body(request, path, session))
                body = json.dumps(jsonable_encoder(board_body)).encode()
                cached = _cache[key] = (time.monotonic(), body)
    return Response(content=cached[1], media_type="application/json")


def _board_body(request: Request, path: str, session: Session) -> dict[str, Any]:
    settings = request.app.state.settings
    b = board(session, path, settings.micro_stop_threshold_s, settings.timezone)
    return {
        "scope": b.scope,
        "generated": iso(b.generated_ns),
        "day_start": iso(b.day_start_ns),
        "total_today": _kpis(b.total_today),
        "work_centers": [
            {
                "id": t.work_center_id,
                "path": t.path,
                "state": t.state,
                "category": t.category,
                "since": iso(t.since_ns),
                "duration_s": t.duration_s,
                "interval_id": t.interval_id,
                "reason": t.reason,
                "order": vars(t.order) if t.order else None,
                "oee_today": _kpis(t.oee_today),
                "oee_today_detail": OeeOut.of(t.oee_today).model_dump(),
            }
            for t in b.tiles
        ],
    }
