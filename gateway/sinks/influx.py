"""The InfluxDB sink: line protocol over the v2 write API (`/api/v2/write`).

The same endpoint serves InfluxDB 2.x, 3.x and 1.8+ (for 1.x: org `-`, bucket
`database/retention-policy`, token `user:password` or empty), and VictoriaMetrics.

`deliver` returns after every chunk of `batch_size` lines was answered 204. What does
not succeed, and how the sink answers it:

| answer                                   | meaning                        | sink                                           |
|------------------------------------------|--------------------------------|------------------------------------------------|
| 204                                      | written                        | confirmed                                      |
| network error, timeout, 429, 5xx         | InfluxDB away or overloaded    | `SinkUnavailable`: the buffer keeps and retries |
| 401, 403, 404                            | token or bucket wrong          | `SinkUnavailable` (fix the config; nothing lost) |
| 413                                      | request too large              | the chunk is split in halves and retried        |
| 400/422 with "field type conflict"       | a field changed type           | InfluxDB wrote the other points (partial write); the refused points are counted in `samples_dropped` and logged; the batch is confirmed |
| other 400/422                            | points InfluxDB will never take | dropped, counted, logged; the batch is confirmed |

Dropping is deliberate: a point that InfluxDB refuses by its content would be refused
forever, and keeping it would block every later sample of this sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from urllib.parse import urlsplit

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from edge_config.schema import InfluxSink as InfluxSinkConfig
from edge_config.schema import SiteConfig
from gateway.sample import Sample
from gateway.sinks.base import SinkCounters, SinkUnavailable
from gateway.sinks.influx_lines import LineEncoder, field_kinds

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 10.0
_DROPPED = re.compile(r"dropped=(\d+)")


class _Refused(Exception):
    """InfluxDB refused the content of a write (4xx other than auth/not found)."""

    def __init__(self, status: int, message: str, lines: int) -> None:
        super().__init__(message)
        self.status, self.message, self.lines = status, message, lines

    @property
    def dropped(self) -> int:
        """Points InfluxDB did not store: its own count on a partial write, else the whole chunk."""
        match = _DROPPED.search(self.message)
        return int(match.group(1)) if match else self.lines


class InfluxSink:
    """Delivers samples to InfluxDB (or anything that speaks its v2 write API)."""

    def __init__(self, config: InfluxSinkConfig, site: SiteConfig, *, name: str = "influxdb") -> None:
        self.name = name
        self.config = config
        self.counters = SinkCounters()
        self.encoder = LineEncoder(field_kinds(site))
        self.last_error = ""
        self._connected = False
        self._client: InfluxDBClient | None = None
        self._lock = asyncio.Lock()
        host = urlsplit(config.url)
        self._where = f"{host.hostname}:{host.port or ''} bucket {config.bucket!r}"

    @property
    def connected(self) -> bool:
        """True after the last write or ping succeeded."""
        return self._connected

    async def start(self) -> None:
        self._client = InfluxDBClient(
            url=self.config.url,
            token=self.config.token,
            org=self.config.org,
            timeout=int(WRITE_TIMEOUT_S * 1000),
            retries=False,  # the buffer retries, with its own backoff and without losing order
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        asyncio.get_running_loop().run_in_executor(None, self._ping)  # only sets `connected`; never blocks start

    def _ping(self) -> None:
        with contextlib.suppress(Exception):
            self._connected = bool(self._client and self._client.ping())

    async def stop(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            self._connected = False
            if client is not None:
                await asyncio.to_thread(client.close)

    async def deliver(self, samples: list[Sample]) -> None:
        if not samples:
            return
        async with self._lock:
            if self._client is None:
                raise SinkUnavailable(f"influxdb {self.name}: not started")
            lines, skipped = self.encoder.lines(samples)
            size = self.config.batch_size
            chunks = [lines[i : i + size] for i in range(0, len(lines), size)]
            while chunks:
                chunk = chunks.pop(0)
                try:
                    await asyncio.to_thread(self._write, chunk)
                except _Refused as refused:
                    if refused.status == 413 and len(chunk) > 1:
                        half = len(chunk) // 2
                        chunks[:0] = [chunk[:half], chunk[half:]]
                        continue
                    self.counters.samples_dropped += refused.dropped
                    log.error(
                        "influxdb %s: %d of %d points refused for good and dropped (HTTP %d): %s",
                        self.name,
                        refused.dropped,
                        len(chunk),
                        refused.status,
                        refused.message,
                    )
                self.counters.messages_confirmed += 1
            self.counters.samples_delivered += len(samples) - skipped

    def _write(self, lines: list[str]) -> None:
        """One HTTP request; runs in a worker thread."""
        assert self._client is not None
        self.counters.messages_sent += 1
        try:
            self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record="\n".join(lines).encode(),
                write_precision=WritePrecision.NS,
            )
        except ApiException as e:
            message = _error_message(e)
            if e.status in (400, 413, 422):
                self._connected = True
                raise _Refused(e.status, message, len(lines)) from None
            self._failed(f"HTTP {e.status}: {message}")
        except Exception as e:  # urllib3 connection errors, timeouts
            self._failed(_plain_error(e))
        self._connected = True
        self.last_error = ""

    def _failed(self, reason: str) -> None:
        self._connected = False
        self.last_error = reason
        self.counters.messages_failed += 1
        raise SinkUnavailable(f"influxdb {self.name} at {self._where}: {reason}")


def _error_message(e: ApiException) -> str:
    body = e.body.decode(errors="replace") if isinstance(e.body, bytes) else str(e.body or e.reason or "")
    message = getattr(e, "message", None) or body
    return " ".join(str(message).split())[:500]


def _plain_error(e: Exception) -> str:
    reason = getattr(e, "reason", None) or e
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return f"no answer within {WRITE_TIMEOUT_S:g} s"
    return " ".join(text.split())[:300]
