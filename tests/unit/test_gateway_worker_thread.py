"""The buffer's worker thread behaves as a one-thread executor: in order, off the loop, cancellable until started."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from gateway.worker_thread import WorkerThread


@pytest.fixture
def worker() -> Iterator[WorkerThread]:
    thread = WorkerThread("test-worker")
    yield thread
    thread.stop()


async def test_calls_run_one_at_a_time_in_the_order_made_on_the_worker_thread(worker: WorkerThread) -> None:
    ran: list[tuple[int, str]] = []

    def record(i: int) -> int:
        ran.append((i, threading.current_thread().name))
        return i * i

    results = await asyncio.gather(*(worker.call(record, i) for i in range(50)))
    assert results == [i * i for i in range(50)]
    assert ran == [(i, "test-worker") for i in range(50)]


async def test_keyword_arguments_reach_the_call(worker: WorkerThread) -> None:
    assert await worker.call(int, "ff", base=16) == 255


async def test_an_exception_in_the_call_is_raised_to_its_caller_and_the_thread_goes_on(worker: WorkerThread) -> None:
    def fail() -> None:
        raise KeyError("no such tag")

    with pytest.raises(KeyError, match="no such tag"):
        await worker.call(fail)
    assert await worker.call(sum, [1, 2]) == 3


async def test_stop_iteration_arrives_as_a_runtime_error(worker: WorkerThread) -> None:
    with pytest.raises(RuntimeError, match="StopIteration"):
        await worker.call(next, iter([]))


async def test_a_call_cancelled_before_it_started_is_skipped(worker: WorkerThread) -> None:
    release = threading.Event()
    ran: list[str] = []
    busy = asyncio.create_task(worker.call(release.wait, 5))
    waiting = asyncio.create_task(worker.call(ran.append, "cancelled call"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await busy is True
    assert await worker.call(ran.append, "next call") is None
    assert ran == ["next call"]
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_call_cancelled_while_running_finishes_and_the_next_one_still_works(worker: WorkerThread) -> None:
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def slow() -> str:
        started.set()
        release.wait(5)
        done.append("slow")
        return "ignored"

    running = asyncio.create_task(worker.call(slow))
    await asyncio.to_thread(started.wait, 5)
    running.cancel()
    release.set()
    assert await worker.call(done.append, "after") is None
    assert done == ["slow", "after"]
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_stop_runs_what_was_asked_then_refuses_new_calls() -> None:
    worker = WorkerThread("test-worker-stop")
    ran: list[int] = []
    pending = [asyncio.create_task(worker.call(ran.append, i)) for i in range(3)]
    await asyncio.sleep(0)  # the calls are queued
    await asyncio.to_thread(worker.stop)
    await asyncio.gather(*pending)
    assert ran == [0, 1, 2]
    with pytest.raises(RuntimeError, match="stopped"):
        await worker.call(ran.append, 3)
