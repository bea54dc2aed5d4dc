"""Which asyncio event loop the gateway's processes run on: uvloop when installed, else asyncio's own.

The gateway is many small wake-ups (a Modbus answer, a commit done, a PUBACK), and for each
the event loop's own Python (selector, handles, timers, futures of `run_in_executor`) costs
about as much as edgefab's work. uvloop runs that part in C (libuv): on the issue-3 load it
measured about a tenth less CPU for the whole `edgefab run` process (docs/gateway.md,
"Performance"). It is a dependency on 64-bit Linux (x86_64, aarch64: the Pi 4/5 and industrial
PCs, where PyPI has wheels); elsewhere, or with `EDGEFAB_EVENT_LOOP=asyncio` (to rule it out
when chasing a problem), the standard loop runs the same code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

ENV_VAR = "EDGEFAB_EVENT_LOOP"
"""`asyncio` forces the standard loop; `uvloop` (the default) uses uvloop when it is installed."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None for asyncio's default loop."""
    choice = os.environ.get(ENV_VAR, "uvloop").strip().lower()
    if choice == "asyncio":
        return None
    if choice != "uvloop":
        raise ValueError(f"{ENV_VAR} must be 'uvloop' or 'asyncio', not {choice!r}")
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """`uvloop` or `asyncio`, for the start-up log line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
