"""Server-Sent Events: framing, heartbeats, and streams that end (the browser reconnects by itself).

A stream lives at most MAX_STREAM_S, so a server shutdown never waits on forgotten TVs, and a
comment line every HEARTBEAT_S keeps proxies from closing an idle connection.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

HEARTBEAT_S = 15.0
MAX_STREAM_S = 600.0
RETRY_MS = 2000


def frame(event: str, data: str) -> str:
    """One SSE message; every line of `data` gets its own `data:` field (the browser joins them with \\n)."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def event_stream(request: Request, events: AsyncIterator[tuple[str, str]]) -> StreamingResponse:
    """Stream `(event, data)` pairs; an empty event name means 'nothing new' (a heartbeat may go out)."""

    async def body() -> AsyncIterator[str]:
        started = last_sent = time.monotonic()
        yield f"retry: {RETRY_MS}\n\n"
        async for event, data in events:
            if await request.is_disconnected() or time.monotonic() - started > MAX_STREAM_S:
                break
            now = time.monotonic()
            if event:
                last_sent = now
                yield frame(event, data)
            elif now - last_sent > HEARTBEAT_S:
                last_sent = now
                yield ": heartbeat\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
