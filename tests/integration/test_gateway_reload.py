"""SIGHUP, or an edit of the configuration's files, reloads it: a valid file restarts the gateway, a broken one is refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gateway.health import fetch_health
from simulators.modbus_server import ModbusSimServer, RegisterBank
from tests.integration.gateway_harness import wait_until
from tests.servers import Mosquitto, free_port

DEVICE = """  - {{name: {name}, area: press, line: line1, protocol: modbus, poll: 100ms,
     connection: {{host: 127.0.0.1, port: {port}, unit: 1}}, tags: {{t0: {{address: hr40001}}}}}}
"""
WATCH_INTERVAL = "0.1"  # s: a settled edit is seen within about 0.2 s


def devices_yaml(port: int, names: list[str]) -> str:
    return "devices:\n" + "".join(DEVICE.format(name=n, port=port) for n in names)


def site(port: int, names: list[str], buffer: Path) -> str:
    return f"site: {{enterprise: acme, site: test}}\n{devices_yaml(port, names)}buffer: {{path: '{buffer}'}}\n"


def touch_later(path: Path) -> None:
    """A save that leaves the bytes as they were: only the mtime moves (by 10 s, visible on any filesystem)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))


class RunningGateway:
    """`edgefab run` as a child process, seen through /healthz and its JSON log."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log
        self.state: dict[str, Any] = {}

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        docs = [json.loads(line) for line in lines if line.startswith("{")]
        return [d for d in docs if d.get("event") == name]

    async def devices(self) -> set[str]:
        """The devices whose samples the running gateway reads (a fresh gateway counts from zero)."""
        try:
            self.state = await asyncio.to_thread(fetch_health, self.url, 2.0)
        except OSError:
            return set()
        return {name for name, c in self.state["connectors"].items() if c["samples_read"] > 0}

    async def wait_for_devices(self, expected: set[str]) -> None:
        for _ in range(200):
            if await self.devices() == expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"devices {expected} not reading; log: {self.log.read_text()[-1500:]}")


@asynccontextmanager
async def edgefab_run(config: Path, *options: str) -> AsyncIterator[RunningGateway]:
    """Run the gateway on `config` with a JSON log; on exit stop it with SIGTERM and expect status 0."""
    health_port = free_port()
    log_path = config.parent / "gateway.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "run", str(config), "--health-port", str(health_port),
        "--log-format", "json", *options, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        yield RunningGateway(process, f"http://127.0.0.1:{health_port}", log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
        log.close()
    assert code == 0, log_path.read_text()[-1500:]


@asynccontextmanager
async def plc() -> AsyncIterator[ModbusSimServer]:
    server = ModbusSimServer("127.0.0.1", 0, {1: RegisterBank()})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_sighup_applies_a_valid_configuration_and_refuses_a_broken_one(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    async with plc() as press:
        config.write_text(site(press.port, ["press01"], tmp_path / "buffer.db"))
        async with edgefab_run(config, "--no-watch", "--watch-interval", WATCH_INTERVAL) as gateway:
            await gateway.wait_for_devices({"press01"})
            config.write_text(site(press.port, ["press01", "press02"], tmp_path / "buffer.db"))
            await asyncio.sleep(1.0)  # five times what a watcher at this interval would need
            assert await gateway.devices() == {"press01"}, "--no-watch: an edit waits for SIGHUP"
            assert gateway.events("reload") == [] and gateway.events("watching") == []

            gateway.process.send_signal(signal.SIGHUP)
            await gateway.wait_for_devices({"press01", "press02"})
            assert [e["trigger"] for e in gateway.events("reload")] == ["sighup"]

            config.write_text("site: {enterprise: acme\n")  # broken YAML
            gateway.process.send_signal(signal.SIGHUP)
            await wait_until(lambda: bool(gateway.events("reload_refused")), 10, "the refusal")
            assert await gateway.devices() == {"press01", "press02"} and gateway.state["status"] == "running"


async def test_an_edit_of_the_file_reloads_it_a_touch_does_not_and_a_broken_edit_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    async with plc() as press:
        config.write_text(site(press.port, ["press01"], tmp_path / "buffer.db"))
        async with edgefab_run(config, "--watch-interval", WATCH_INTERVAL) as gateway:
            await gateway.wait_for_devices({"press01"})
            [watching] = gateway.events("watching")
            assert watching["files"] == [str(config.resolve())]

            touch_later(config)
            await wait_until(lambda: bool(gateway.events("reload_unchanged")), 10, "the touch to be noticed")
            assert gateway.events("reload") == [] and len(gateway.events("started")) == 1, "no restart for a touch"

            config.write_text(site(press.port, ["press01", "press02"], tmp_path / "buffer.db"))
            await gateway.wait_for_devices({"press01", "press02"})  # no signal sent
            [reload] = gateway.events("reload")
            assert reload["trigger"] == "file_change" and reload["files"] == [str(config.resolve())]
            assert len(gateway.events("started")) == 2

            config.write_text("site: {enterprise: acme\n")  # broken YAML
            await wait_until(lambda: bool(gateway.events("reload_refused")), 10, "the refusal")
            assert (
                "reload refused, still running the previous configuration" in gateway.events("reload_refused")[0]["msg"]
            )
            assert await gateway.devices() == {"press01", "press02"} and gateway.state["status"] == "running"
            assert len(gateway.events("started")) == 2, "the previous configuration keeps running, not restarted"


async def test_an_edit_of_an_included_file_and_the_creation_of_a_missing_one_reload_the_configuration(
    tmp_path: Path,
) -> None:
    config, devices, more = tmp_path / "site.yaml", tmp_path / "devices.yaml", tmp_path / "more.yaml"
    rest = f"site: {{enterprise: acme, site: test}}\nbuffer: {{path: '{tmp_path / 'buffer.db'}'}}\n"
    async with plc() as press:
        devices.write_text(devices_yaml(press.port, ["press01"]))
        config.write_text("include: devices.yaml\n" + rest)
        async with edgefab_run(config, "--watch-interval", WATCH_INTERVAL) as gateway:
            await gateway.wait_for_devices({"press01"})
            devices.write_text(devices_yaml(press.port, ["press01", "press02"]))
            await gateway.wait_for_devices({"press01", "press02"})
            [reload] = gateway.events("reload")
            assert reload["files"] == [str(devices.resolve())]

            config.write_text("include: [devices.yaml, more.yaml]\n" + rest)  # more.yaml is not written yet
            await wait_until(lambda: bool(gateway.events("reload_refused")), 10, "the refusal")
            more.write_text(devices_yaml(press.port, ["press03"]))
            await gateway.wait_for_devices({"press01", "press02", "press03"})
            assert gateway.events("reload")[-1]["files"] == [str(more.resolve())]


async def test_an_edit_followed_by_sighup_reloads_once(tmp_path: Path) -> None:
    """As a deployment tool does it (write the file, then `systemctl reload`): SIGHUP loads the edit, the watcher not again."""
    config = tmp_path / "site.yaml"
    async with plc() as press:
        config.write_text(site(press.port, ["press01"], tmp_path / "buffer.db"))
        async with edgefab_run(config, "--watch-interval", "0.5") as gateway:
            await gateway.wait_for_devices({"press01"})
            config.write_text(site(press.port, ["press01", "press02"], tmp_path / "buffer.db"))
            gateway.process.send_signal(signal.SIGHUP)  # well before the watcher's second look, 0.5 to 1 s from now
            await gateway.wait_for_devices({"press01", "press02"})
            await asyncio.sleep(1.2)  # more than two polls
            assert [e["trigger"] for e in gateway.events("reload")] == ["sighup"]
            assert len(gateway.events("started")) == 2


async def test_sigterm_while_a_reload_restarts_the_gateway_stops_it_for_good_and_keeps_what_is_buffered(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The old gateway's stop for a reload can take a while: here the broker hangs (SIGSTOP), so the
    forwarder waits for PUBACKs until the 3 s flush timeout. A SIGTERM in that window ends the run: no
    restart with the reloaded file, exit 0, and what the broker did not confirm stays buffered."""
    config = tmp_path / "site.yaml"
    sink = f"sinks:\n  mqtt: {{url: '{mosquitto.url}', qos: 1}}\n"
    health_port = free_port()
    log_path = tmp_path / "gateway.log"
    assert mosquitto.proc is not None
    async with plc() as press:
        config.write_text(site(press.port, ["press01"], tmp_path / "buffer.db") + sink)
        with open(log_path, "wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "run", str(config), "--health-port", str(health_port),
                "--log-format", "json", "--no-watch", "--flush-timeout", "3", stdout=log, stderr=log,
            )  # fmt: skip
            try:
                gateway = RunningGateway(process, f"http://127.0.0.1:{health_port}", log_path)
                await gateway.wait_for_devices({"press01"})
                mosquitto.proc.send_signal(signal.SIGSTOP)  # the broker hangs: PUBACKs stop coming
                await asyncio.sleep(0.5)
                config.write_text(site(press.port, ["press01", "press02"], tmp_path / "buffer.db") + sink)
                process.send_signal(signal.SIGHUP)
                for _ in range(100):  # until the reload's stop has begun
                    await gateway.devices()
                    if gateway.state.get("status") == "stopping":
                        break
                    await asyncio.sleep(0.05)
                assert gateway.state.get("status") == "stopping", gateway.state
                process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(process.wait(), 20)
            finally:
                mosquitto.proc.send_signal(signal.SIGCONT)
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    assert code == 0, log_path.read_text()[-1500:]
    assert len(gateway.events("signal")) == 1 and len(gateway.events("reload")) == 1
    assert len(gateway.events("started")) == 1 and gateway.events("reloaded") == [], "not restarted"
    (stopped,) = gateway.events("stopped")
    assert stopped["buffered"]["mqtt"] > 0, "what the broker did not confirm stays buffered for the next start"
