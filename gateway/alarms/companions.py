"""What `edgefab run` attaches beside the data path: the alarm service and allow-listed write-back.

The runtime calls `companions_for(gateway)` once, `observe_all` with every device's samples
as read (before report-by-exception, so a limit is checked on every poll), and `start` /
`stop` on each companion. A failing companion is logged and never stalls data collection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gateway.sample import Sample

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("edgefab.gateway")


class Companion(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def observe(self, samples: list[Sample]) -> None: ...


def companions_for(gateway: Gateway) -> list[Companion]:
    from gateway.alarms.service import AlarmService, side_files

    config = gateway.config
    buffer_path = Path(gateway.buffer.buffer.path)
    companions: list[Companion] = []
    if config.alarms is not None and config.alarms.definitions:
        companions.append(AlarmService(config, config.alarms, buffer_path))
    writable = any(tag.writable for device in config.devices for tag in device.tags.values())
    if writable and config.sinks.mqtt is not None:
        from gateway.writeback import WriteBack

        writers = {name: run.connector for name, run in gateway.devices.items()}
        companions.append(WriteBack(config, writers, side_files(buffer_path)["audit"]))  # type: ignore[arg-type]
    return companions


async def observe_all(companions: Sequence[Companion], samples: list[Sample]) -> None:
    for companion in companions:
        try:
            await companion.observe(samples)
        except Exception:
            log.exception("%s failed on a batch of samples", type(companion).__name__)
