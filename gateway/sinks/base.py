"""The contract between the durable buffer's forwarder and a destination.

The forwarder reads a batch after the sink's cursor, calls `deliver`, and moves the
cursor only when `deliver` returned: so `deliver` must return only after the
destination confirmed (MQTT PUBACK at QoS 1, HTTP 204 from InfluxDB), and must raise
`SinkUnavailable` when it did not. That is the whole at-least-once guarantee.
"""

from __future__ import annotations

from typing import Protocol

from gateway.sample import Sample


class SinkUnavailable(Exception):
    """The destination did not confirm; the batch stays in the buffer and is retried."""


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
