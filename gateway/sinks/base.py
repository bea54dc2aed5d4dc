"""The contract between the durable buffer's forwarder and a destination.

The forwarder reads a batch after the sink's cursor, calls `deliver`, and moves the
cursor only when `deliver` returned: so `deliver` must return only after the
destination confirmed (MQTT PUBACK at QoS 1, HTTP 204 from InfluxDB), and must raise
`SinkUnavailable` when it did not. That is the whole at-least-once guarantee.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

from gateway.sample import Sample


class SinkUnavailable(Exception):
    """The destination did not confirm; the batch stays in the buffer and is retried."""


@dataclass
class SinkCounters:
    """What a sink did, for /metrics (`edgefab_sink_<field>_total{sink=name}`).

    `redelivered` counts samples sent again after a delivery that was not confirmed
    (broker gone, timeout): the at-least-once duplicates a consumer may see.
    `dropped` counts samples the destination refused for good (e.g. an InfluxDB field
    type conflict); the sink acknowledges them so they cannot block the queue.
    """

    messages_sent: int = 0
    messages_confirmed: int = 0
    messages_failed: int = 0
    samples_delivered: int = 0
    samples_redelivered: int = 0
    samples_dropped: int = 0
    connects: int = 0
    disconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Sink(Protocol):
    name: str
    """Unique per gateway; it names the sink's cursor in the buffer, so keep it stable."""

    async def start(self) -> None:
        """Connect (or start connecting in the background); must not block on an absent destination."""

    async def deliver(self, samples: list[Sample]) -> None:
        """Send `samples` in order; return once the destination confirmed all of them."""

    async def stop(self) -> None:
        """Flush what is in flight and disconnect."""

    @property
    def connected(self) -> bool: ...

    counters: SinkCounters
    """Running totals since start, read by the health endpoint."""
