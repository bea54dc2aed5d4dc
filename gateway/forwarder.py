"""Moves samples from the durable buffer to one sink, in order, at least once.

One forwarder per sink: read a batch after the sink's cursor, `deliver` it, and move
the cursor only when `deliver` returned (the destination confirmed). When the sink is
unavailable, back off and try again from the cursor, so the same samples go again, in
the same order. A token bucket limits messages per second, so the backlog after an
outage drains at a rate the broker can take instead of in one flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from connectors.backoff import Backoff
from gateway.buffer import AsyncBuffer, Batch
from gateway.sample import Sample
from gateway.sinks.base import Sink, SinkUnavailable

log = logging.getLogger(__name__)

RECONNECT_POLL_S = 0.05
"""While backing off from a disconnected sink, how often to check whether it reconnected."""

IDLE_WAIT_S = 1.0
"""A forwarder with nothing to send re-checks this often even without a wake-up (belt and braces)."""


async def _discard(task: asyncio.Task[Batch | None]) -> None:
    """Cancel a prefetch whose batch will not be used (the retry reads again from the cursor)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up; a take larger than what is saved waits."""

    def __init__(self, rate_per_s: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else rate_per_s
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self, n: float) -> float:
        """Spend `n` tokens; returns the seconds to wait before sending (0 when they were there)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s


class ForwarderState(StrEnum):
    IDLE = "idle"  # up to date
    DELIVERING = "delivering"
    BACKING_OFF = "backing_off"  # the sink did not confirm; retrying after a delay
    STOPPED = "stopped"


@dataclass
class ForwarderStats:
    state: ForwarderState = ForwarderState.IDLE
    batches_delivered: int = 0
    samples_delivered: int = 0
    delivery_failures: int = 0
    last_error: str = ""
    rate_limited_s: float = 0.0
    """Total time spent waiting for the token bucket (non-zero means a backlog was throttled)."""
    last_delivery_ns: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Forwarder:
    def __init__(
        self,
        sink: Sink,
        buffer: AsyncBuffer,
        *,
        batch_size: int = 1000,
        max_messages_per_s: float | None = None,
        messages_in: Callable[[list[Sample]], int] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.sink = sink
        self.buffer = buffer
        self.batch_size = batch_size
        self.bucket = TokenBucket(max_messages_per_s) if max_messages_per_s else None
        self.messages_in = messages_in
        self.backoff = backoff or Backoff(initial_s=0.2, max_s=5.0)
        self.stats = ForwarderStats()
        self._stopping = False
        self._owed_messages = 0

    # The rate limit needs each batch's message count. With `messages_in` (cheap when a message
    # is a sample, as in uns-json) it is charged before the batch is sent; without it, after,
    # from the sink's own `counters.messages_sent` (batch formats: a few messages per batch,
    # not worth a pass over every sample), so the *next* batch waits for it.

    async def run(self) -> None:
        """Deliver until cancelled, or until `stop()` was called and everything was delivered."""
        name = self.sink.name
        prefetch: asyncio.Task[Batch | None] | None = None
        batch: Batch | None = None
        have_next = False  # `batch` already holds the read that came with the last acknowledgement
        while True:
            if prefetch is not None:
                batch, prefetch = await prefetch, None
            elif not have_next:
                batch = await self.buffer.read_after(name, self.batch_size)
            have_next = False
            if batch is None:
                self.stats.state = ForwarderState.IDLE
                if self._stopping:
                    self.stats.state = ForwarderState.STOPPED
                    return
                await self.buffer.wait_for_data(name, IDLE_WAIT_S)
                continue
            if self.bucket is not None and self.messages_in is not None:
                self._owed_messages += self.messages_in(batch.samples)  # counted before sending
            if self.bucket is not None and self._owed_messages:
                wait_s = self.bucket.take(self._owed_messages)
                self._owed_messages = 0
                if wait_s > 0:
                    self.stats.rate_limited_s += wait_s
                    await asyncio.sleep(wait_s)
            self.stats.state = ForwarderState.DELIVERING
            sent_before = self._messages_sent()
            if len(batch.samples) >= self.batch_size:  # a backlog: read (and decode) the next batch on the
                # buffer's thread while this one is on the wire
                prefetch = asyncio.create_task(self.buffer.read_after(name, self.batch_size, after_seq=batch.last_seq))
            try:
                await self.sink.deliver(batch.samples)
            except BaseException as e:
                if prefetch is not None:
                    prefetch = await _discard(prefetch)
                if not isinstance(e, Exception):
                    raise
                if isinstance(e, SinkUnavailable):
                    if not await self._back_off(str(e)):
                        return
                    continue
                log.exception("sink %s failed unexpectedly", name)  # a sink's bug must not lose data: retry
                if not await self._back_off(f"{type(e).__name__}: {e}"):
                    return
                continue
            if self.bucket is not None and self.messages_in is None:
                # charged after the fact, from what the sink really sent: the next batch waits for it
                sent = self._messages_sent() - sent_before if sent_before is not None else None
                self._owed_messages = sent if sent is not None else len(batch.samples)
            self.backoff.reset()
            self.stats.batches_delivered += 1
            self.stats.samples_delivered += len(batch.samples)
            self.stats.last_delivery_ns = time.time_ns()
            self.stats.last_error = ""
            if prefetch is not None:
                await self.buffer.ack(name, batch.last_seq)
            else:  # keeping up: acknowledge and read what came meanwhile in one trip to the buffer's thread
                batch, have_next = await self.buffer.ack_and_read(name, batch.last_seq, self.batch_size), True

    def _messages_sent(self) -> int | None:
        """The sink's own count of messages sent (`SinkCounters.messages_sent`), when it keeps one."""
        counters = getattr(self.sink, "counters", None)
        sent = getattr(counters, "messages_sent", None)
        return sent if isinstance(sent, int) else None

    async def _back_off(self, error: str) -> bool:
        """Wait before retrying; False when shutting down (what is left stays in the buffer)."""
        self.stats.state = ForwarderState.BACKING_OFF
        self.stats.delivery_failures += 1
        if error != self.stats.last_error:
            log.warning("sink %s unavailable: %s (will retry; nothing is lost)", self.sink.name, error)
        self.stats.last_error = error
        if self._stopping:
            self.stats.state = ForwarderState.STOPPED
            return False
        was_connected = bool(self.sink.connected)
        deadline = asyncio.get_running_loop().time() + self.backoff.next_delay_s()
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(remaining, RECONNECT_POLL_S))
            if not was_connected and self.sink.connected:
                break  # the destination is back: replay now rather than at the end of the backoff
        return True

    def stop(self) -> None:
        """Finish: deliver what is buffered, then return from `run` (the caller bounds how long)."""
        self._stopping = True
