"""SIGHUP reloads the configuration: a valid file restarts the gateway with it, a broken one is refused."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from gateway.health import fetch_health
from simulators.modbus_server import ModbusSimServer, RegisterBank
from tests.integration.gateway_harness import wait_until
from tests.servers import free_port

DEVICE = """  - {{name: {name}, area: press, line: line1, protocol: modbus, poll: 100ms,
     connection: {{host: 127.0.0.1, port: {port}, unit: 1}}, tags: {{t0: {{address: hr40001}}}}}}
"""


def site(port: int, names: list[str], buffer: Path) -> str:
    devices = "".join(DEVICE.format(name=n, port=port) for n in names)
    return f"site: {{enterprise: acme, site: test}}\ndevices:\n{devices}buffer: {{path: '{buffer}'}}\n"


async def test_sighup_applies_a_valid_configuration_and_refuses_a_broken_one(tmp_path: Path) -> None:
    plc = ModbusSimServer("127.0.0.1", 0, {1: RegisterBank()})
    await plc.start()
    config = tmp_path / "site.yaml"
    config.write_text(site(plc.port, ["press01"], tmp_path / "buffer.db"))
    health_port = free_port()
    url = f"http://127.0.0.1:{health_port}"
    log = open(tmp_path / "gateway.log", "wb")  # noqa: SIM115 - handed to the child
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "run", str(config), "--health-port", str(health_port),
        stdout=log, stderr=log,
    )  # fmt: skip
    state: dict = {}

    async def devices() -> set[str]:
        try:
            state.update(await asyncio.to_thread(fetch_health, url, 2.0))
        except OSError:
            return set()
        return {name for name, c in state["connectors"].items() if c["samples_read"] > 0}

    async def wait_for_devices(expected: set[str]) -> None:
        for _ in range(200):
            if await devices() == expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"devices {expected} not reading; log: {(tmp_path / 'gateway.log').read_text()[-1500:]}")

    try:
        await wait_for_devices({"press01"})
        config.write_text(site(plc.port, ["press01", "press02"], tmp_path / "buffer.db"))
        gateway.send_signal(signal.SIGHUP)
        await wait_for_devices({"press01", "press02"})

        config.write_text("site: {enterprise: acme\n")  # broken YAML
        gateway.send_signal(signal.SIGHUP)
        await wait_until(lambda: "reload refused" in (tmp_path / "gateway.log").read_text(), 10, "the refusal")
        assert await devices() == {"press01", "press02"} and state["status"] == "running"
    finally:
        gateway.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(gateway.wait(), 20)
        await plc.stop()
    assert code == 0
