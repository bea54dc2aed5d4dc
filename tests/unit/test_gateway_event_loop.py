"""`edgefab run` and `edgefab demo` run on uvloop where it is installed, on asyncio's loop when asked."""

from __future__ import annotations

import asyncio
import platform
import sys

import pytest

from gateway.event_loop import ENV_VAR, loop_factory, loop_name


def run_on(factory: object) -> str:
    with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
        return runner.run(_name_of_running_loop())


async def _name_of_running_loop() -> str:
    return loop_name(asyncio.get_running_loop())


@pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"),
    reason="uvloop is a dependency on 64-bit Linux (x86_64, aarch64) only",
)
def test_uvloop_is_the_default_on_64_bit_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert run_on(loop_factory()) == "uvloop"


def test_asyncio_loop_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "asyncio")
    assert loop_factory() is None
    assert run_on(None) == "asyncio"


def test_asyncio_loop_when_uvloop_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert loop_factory() is None


def test_an_unknown_choice_is_refused_with_what_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "trio")
    with pytest.raises(ValueError, match=f"{ENV_VAR} must be 'uvloop' or 'asyncio', not 'trio'"):
        loop_factory()
