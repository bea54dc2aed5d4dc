"""The notification outbox: alarm events -> routed, rate-limited notifications -> channels, durably.

Design (reusing the gateway's store-and-forward parts unchanged): the outbox is a
`gateway.buffer.Buffer` in its own SQLite file with one cursor per channel; each planned
notification is appended as one Sample (`tag` = the alarm key, `value` = the notification
JSON) before anything is sent, and one `Forwarder` per channel delivers them in order, at
least once, retrying with backoff. After a restart every unconfirmed notification is sent;
a notification confirmed by its service is never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from connectors.backoff import Backoff
from edge_config.alarms_schema import Notify
from gateway.buffer import AsyncBuffer, Buffer
from gateway.forwarder import Forwarder
from gateway.health import ChannelSnapshot
from gateway.notify.channels import ChannelSink
from gateway.notify.routing import Notification, RateLimiter, plan
from gateway.sample import Sample

OUTBOX_MAX_BYTES = 64 << 20


class Notifier:
    def __init__(
        self,
        notify: Notify,
        outbox_path: Path,
        *,
        clock_s: Callable[[], float] = time.monotonic,
        backoff: Callable[[], Backoff] = lambda: Backoff(initial_s=0.5, max_s=60.0),
    ) -> None:
        self.notify = notify
        self.limiter = RateLimiter(notify.rate_limit)
        self._clock_s = clock_s
        self.sinks = {name: ChannelSink(name, channel) for name, channel in notify.channels.items()}
        self.buffer = AsyncBuffer(Buffer(outbox_path, list(self.sinks), max_bytes=OUTBOX_MAX_BYTES))
        self.forwarders = [
            Forwarder(sink, self.buffer, batch_size=1, backoff=backoff()) for sink in self.sinks.values()
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for sink in self.sinks.values():
            await sink.start()
        self._tasks = [asyncio.create_task(f.run(), name=f"notify-{f.sink.name}") for f in self.forwarders]

    async def stop(self, flush_timeout_s: float = 2.0) -> None:
        for forwarder in self.forwarders:
            forwarder.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=flush_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                await sink.stop()
        await self.buffer.close()

    async def handle(self, events: list[dict]) -> list[Notification]:
        """Plan and durably queue the notifications for alarm event documents."""
        now_s = self._clock_s()
        notifications = [n for event in events for n in plan(self.notify, self.limiter, event, now_s)]
        await self.enqueue(notifications)
        return notifications

    async def enqueue(self, notifications: list[Notification]) -> None:
        if not notifications:
            return
        ts_ns = time.time_ns()
        samples = [
            Sample(str(n.event.get("key", n.channel)), json.dumps(n.document(), ensure_ascii=False), ts_ns)
            for n in notifications
        ]
        await self.buffer.append(samples)

    async def snapshot(self) -> dict[str, ChannelSnapshot]:
        """Per channel: sent, refused, failed attempts, and what waits in the outbox."""
        metrics = await self.buffer.metrics()
        return {
            f.sink.name: ChannelSnapshot(
                sent=self.sinks[f.sink.name].sent,
                refused=self.sinks[f.sink.name].refused,
                delivery_failures=f.stats.delivery_failures,
                queued=metrics.sinks[f.sink.name].depth,
                dropped=metrics.sinks[f.sink.name].dropped,
            )
            for f in self.forwarders
        }
