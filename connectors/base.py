"""The contract every connector fulfils, so the gateway can run any of them alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from gateway.sample import Sample

Emit = Callable[[Sequence[Sample]], Awaitable[None]]
"""Called by a connector with the samples of one read cycle (or one subscription batch); the
sequence may be a `SampleBlock` or `SampleChain` (gateway/sample.py): treat it as read-only."""


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass
class ConnectorHealth:
    """What /metrics and `edgefab status` show about one device link."""

    device: str
    state: LinkState = LinkState.CONNECTING
    last_error: str = ""
    reconnects: int = 0
    reads_ok: int = 0
    reads_failed: int = 0
    samples: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Connector(Protocol):
    """A device link. `run` never returns on its own: it reconnects with backoff until cancelled."""

    health: ConnectorHealth

    async def run(self, emit: Emit) -> None: ...
