"""The andon board's one query: every machine's state, stop duration and reason, order progress, OEE today."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from mes_lite.api.auth import current_user
from mes_lite.api.schemas import OeeOut, iso
from mes_lite.db import get_session
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


@router.get("")
def andon_board(
    request: Request,
    path: str = Query(description="site, site/area or site/area/line"),
    _: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
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
