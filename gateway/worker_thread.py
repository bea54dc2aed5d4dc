"""One thread that runs blocking calls in order for the event loop (the buffer's SQLite thread).

Why not `loop.run_in_executor(ThreadPoolExecutor(1), ...)`: at the gateway's rate (a commit
and a forwarder read about twenty times a second each) the executor's own Python per call
(a `concurrent.futures.Future` with its Condition, the work item, chaining that future to an
asyncio one through two callbacks) cost as much as the SQLite work it wrapped. Here a call is
a tuple on a `queue.SimpleQueue` (C) and one `call_soon_threadsafe` back with the outcome:
5 – 8 % less CPU for the whole `edgefab run` process on the issue-3 load (docs/gateway.md,
"Performance"). The semantics callers rely on are the executor's: calls run
one at a time in the order made; a call whose caller was cancelled before it started is
skipped; one already running finishes (a thread cannot be interrupted) and its result is
dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WorkerThread:
    """Runs `call`s on its own thread, in order; `stop` lets it finish what was asked and ends it."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        # daemon: a gateway that dies without `stop` must not hang at exit in `get()`; SQLite's own
        # journal keeps the file sound if the process ends mid-commit
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def name(self) -> str:
        return self._thread.name

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on the thread; its result, or its exception raised here."""
        if self._stopped:
            raise RuntimeError(f"worker thread {self.name} is stopped")
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, outcome, fn, args, kwargs))
        return await outcome

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, outcome, fn, args, kwargs = item
            if outcome.cancelled():  # its caller gave up before it started (a plain read of its state)
                continue
            try:
                result, failed = fn(*args, **kwargs), False
            except StopIteration as e:  # a future cannot hold StopIteration (as in asyncio's own to_thread)
                result, failed = RuntimeError(f"{fn!r} raised StopIteration"), True
                result.__cause__ = e
            except BaseException as e:  # handed to the caller, whatever it is
                result, failed = e, True
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody to tell
                loop.call_soon_threadsafe(_settle, outcome, result, failed)

    def stop(self) -> None:
        """Run what was already asked, then end the thread and wait for it (blocking)."""
        if not self._stopped:
            self._stopped = True
            self._calls.put(None)
        self._thread.join()


def _settle(outcome: asyncio.Future[Any], result: Any, failed: bool) -> None:
    """On the event loop: hand the call's outcome to its caller (unless it was cancelled meanwhile)."""
    if outcome.cancelled():
        return
    if failed:
        outcome.set_exception(result)
    else:
        outcome.set_result(result)
