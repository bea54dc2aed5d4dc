"""The andon board `/board`: every machine as a tile, line totals, live over Server-Sent Events.

The ingest (`edgefab mes run`) writes states and counts to the database from another process, so
the board's event stream polls the database (`services.andon.board`, a handful of queries per
line) every BOARD_POLL_S and sends the re-rendered tiles only when they changed. Stop timers tick
in the browser from each tile's `data-since-ms`, so a running clock does not cost a push a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mes_lite.models import Area, DowntimeReason, Line, Site, WorkCenter
from mes_lite.oee import OeeResult
from mes_lite.services.andon import Tile, board
from mes_lite.web import alarms_view
from mes_lite.web.plant_labels import STATE_ICONS, reason_label, state_key, state_label
from mes_lite.web.session import page_user
from mes_lite.web.sse import event_stream
from mes_lite.web.templating import render, render_fragment, request_locale
from mes_lite.web.writes import read_committing

router = APIRouter(include_in_schema=False)

BOARD_POLL_S = 1.0


@dataclass(frozen=True)
class TileView:
    tile: Tile
    code: str
    line_path: str
    state_key: str
    state_label: str
    state_icon: str
    stopped: bool
    reason_label: str
    alarms: list[alarms_view.ActiveAlarm]


@dataclass(frozen=True)
class LineView:
    path: str
    code: str
    total: OeeResult
    good_qty: float
    running: int
    machines: int


def line_paths(session: Session, scope: str | None) -> list[str]:
    """`site/area/line` of every line with an active machine, under `scope` (a site or site/area) if given."""
    statement = (
        select(Site.code, Area.code, Line.code)
        .join(Area, Area.site_id == Site.id)
        .join(Line, Line.area_id == Area.id)
        .join(WorkCenter, WorkCenter.line_id == Line.id)
        .where(WorkCenter.active.is_(True))
        .distinct()
        .order_by(Site.code, Area.code, Line.code)
    )
    paths = ["/".join(row) for row in session.execute(statement)]
    if scope:
        prefix = scope.strip("/")
        paths = [p for p in paths if p == prefix or p.startswith(prefix + "/")]
    return paths


def active_machines(session: Session) -> list[dict[str, str]]:
    """Every active machine on a line, as `{path, code, line}`, sorted by line and code: the pick lists."""
    lines = set(line_paths(session, None))
    machines = []
    for wc in session.scalars(select(WorkCenter).where(WorkCenter.active.is_(True))):
        line = f"{wc.line.area.site.code}/{wc.line.area.code}/{wc.line.code}"
        if line in lines:
            machines.append({"path": f"{line}/{wc.code}", "code": wc.code, "line": line})
    machines.sort(key=lambda m: (m["line"], m["code"]))
    return machines


def board_context(request: Request, session: Session, scope: str | None) -> dict[str, object]:
    """Everything the tiles template needs: line totals and one view per machine, in the request's locale."""
    from mes_lite.web.i18n import translator

    t = translator(request_locale(request))
    settings = request.app.state.settings
    reasons = dict(session.execute(select(DowntimeReason.code, DowntimeReason.name)).all())
    alarms = alarms_view.active_alarms_by_work_center(session)
    lines: list[LineView] = []
    tiles: list[TileView] = []
    for path in line_paths(session, scope):
        result = board(session, path, settings.micro_stop_threshold_s, settings.timezone)
        running = 0
        for tile in result.tiles:
            key = state_key(tile.state)
            running += key == "running"
            tiles.append(
                TileView(
                    tile=tile,
                    code=tile.path.rsplit("/", 1)[1],
                    line_path=path,
                    state_key=key,
                    state_label=state_label(t, tile.state),
                    state_icon=STATE_ICONS[key],
                    stopped=tile.state is not None and key != "running",
                    reason_label=reason_label(t, tile.reason, reasons.get(tile.reason)),
                    alarms=alarms.get(tile.work_center_id, []),
                )
            )
        lines.append(
            LineView(
                path=path,
                code=path.rsplit("/", 1)[1],
                total=result.total_today,
                good_qty=sum(tv.tile.oee_today.inputs.good_qty for tv in tiles if tv.line_path == path),
                running=running,
                machines=len(result.tiles),
            )
        )
    return {"lines": lines, "tiles": tiles, "scope": scope or "", "generated_ms": int(time.time() * 1000)}


def _tiles_html(request: Request, scope: str | None) -> str:
    context = read_committing(request.app.state.session_factory, lambda s: board_context(request, s, scope))
    context.pop("generated_ms")  # not part of the content: only send when something else changed
    return render_fragment(request, "board/_tiles.html", context)


@router.get("/board")
def board_page(
    request: Request,
    scope: str | None = Query(None, description="site or site/area"),
    _user: object = Depends(page_user),
) -> Response:
    context = read_committing(request.app.state.session_factory, lambda s: board_context(request, s, scope))
    return render(request, "board/page.html", context)


@router.get("/board/events")
async def board_events(request: Request, scope: str | None = None) -> StreamingResponse:
    """`event: tiles` with the tiles' HTML whenever it changes (checked every BOARD_POLL_S)."""
    request_locale(request)

    async def changes() -> AsyncIterator[tuple[str, str]]:
        last = None
        while True:
            html = await run_in_threadpool(_tiles_html, request, scope)
            if html != last:
                last = html
                yield "tiles", html
            else:
                yield "", ""  # lets the stream send a heartbeat and notice a gone client
            await asyncio.sleep(BOARD_POLL_S)

    return event_stream(request, changes())
