"""The OPC UA connector against the simulated PLC (OpcUaSimServer) over real loopback sockets.

One PLC serves every test of this module: asyncua needs about 2 s to build a server's address
space, so even the restart test power-cycles this one (it comes back with the same variables).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from connectors.backoff import Backoff
from connectors.base import LinkState
from connectors.opcua.client import OpcUaConnector
from connectors.opcua.errors import OpcUaError
from edge_config.schema import SiteConfig
from gateway.sample import Quality, Sample
from simulators.opcua_server import OpcUaSimServer
from tests.servers import free_port, require_program, wait_for_port

# one worker runs the whole module (make test uses --dist loadgroup), so its PLC starts once
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("opcua-connector")]

USERS = {"operator": "s3cret"}
TIMEOUT_S = 8.0


class Collector:
    """The connector's emit target: keeps every sample and lets a test wait for one it expects."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._changed = asyncio.Event()

    async def __call__(self, samples: list[Sample]) -> None:
        self.samples.extend(samples)
        self._changed.set()

    def latest(self, tag_name: str) -> Sample | None:
        return next((s for s in reversed(self.samples) if s.tag_name == tag_name), None)

    async def wait_for(self, predicate: Callable[[Sample], bool], what: str, since: int = 0) -> Sample:
        """The first sample, from index `since` on, that satisfies `predicate`."""

        async def first_match() -> Sample:
            seen = since
            while True:
                for sample in self.samples[seen:]:
                    if predicate(sample):
                        return sample
                seen = len(self.samples)
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(first_match(), TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"no sample {what} within {TIMEOUT_S} s; got {self.samples[-8:]}") from None

    async def wait_for_value(self, tag_name: str, value: Any, quality: Quality = Quality.GOOD) -> Sample:
        return await self.wait_for(
            lambda s: s.tag_name == tag_name and s.value == value and s.quality == quality,
            f"{tag_name}={value!r} ({quality})",
        )


def device_config(url: str, tags: dict[str, dict[str, Any]], **connection: Any) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "dongguan"},
            "devices": [
                {
                    "name": "cnc02",
                    "area": "machining",
                    "line": "line2",
                    "protocol": "opcua",
                    "poll": "200ms",
                    "connection": {"url": url, "timeout": "2s", **connection},
                    "tags": tags,
                }
            ],
        }
    )


@contextlib.asynccontextmanager
async def running(
    config: SiteConfig, client_pki: Path, watchdog_interval_s: float = 2.0
) -> AsyncIterator[tuple[OpcUaConnector, Collector]]:
    """The connector with quick reconnects; the watchdog stays lenient because server and client share a loop."""
    connector = OpcUaConnector(
        config,
        config.devices[0],
        backoff=Backoff(initial_s=0.1, max_s=0.5),
        watchdog_interval_s=watchdog_interval_s,
        pki_dir=client_pki,
    )
    collector = Collector()
    task = asyncio.create_task(connector.run(collector))
    try:
        yield connector, collector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
def server_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("opcua-server-pki")


@pytest.fixture(scope="module")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("opcua-client-pki")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plc(server_pki: Path) -> AsyncIterator[OpcUaSimServer]:
    server = OpcUaSimServer("127.0.0.1", free_port(), users=USERS, cert_dir=server_pki)
    await server.add_variable("Cnc/Running", True)
    await server.add_variable("Cnc/PartCount", 1200, variant_type="UInt32")
    await server.add_variable("Cnc/SpindleTemp", 41.25, variant_type="Double")
    await server.add_variable("Cnc/Program", "O1000")
    await server.add_variable("Cnc/State", 1, variant_type="Int32")
    await server.add_variable("Cnc/OilPressureRaw", 2150, variant_type="Int16")
    await server.add_variable("Cnc/Feed", 100.0, variant_type="Double")
    await server.add_variable("Cnc/Quality", 7.0, variant_type="Double")
    await server.add_variable("Cnc/TargetQuantity", 0, variant_type="UInt32", writable=True)
    await server.add_variable("Cnc/Recipe", 3, variant_type="Int16", writable=True)
    await server.start()
    yield server
    await server.stop()


ALL_TYPES = {
    "running": {"node": "ns=2;s=Cnc/Running"},
    "part_count": {"node": "ns=2;s=Cnc/PartCount", "role": "total_count"},
    "spindle_temp": {"node": "ns=2;s=Cnc/SpindleTemp", "unit": "degC"},
    "program": {"node": "ns=2;s=Cnc/Program"},
    "state": {"node": "ns=2;s=Cnc/State", "role": "state", "map": {0: "stopped", 1: "running", 2: "fault"}},
    "oil_pressure": {"node": "ns=2;s=Cnc/OilPressureRaw", "scale": 0.01, "offset": -1.0, "unit": "bar"},
}


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_every_data_type_arrives_with_the_servers_value_and_then_its_changes(
    plc: OpcUaSimServer, client_pki: Path, mode: str
) -> None:
    tags = {name: {**tag, "mode": mode, "sampling_interval": "100ms"} for name, tag in ALL_TYPES.items()}
    config = device_config(plc.url, tags)
    async with running(config, client_pki) as (connector, collector):
        await collector.wait_for_value("running", True)
        await collector.wait_for_value("part_count", 1200)
        await collector.wait_for_value("spindle_temp", 41.25)
        await collector.wait_for_value("program", "O1000")
        await collector.wait_for_value("state", "running")
        pressure = await collector.wait_for(lambda s: s.tag_name == "oil_pressure", "oil_pressure")
        assert pressure.value == pytest.approx(2150 * 0.01 - 1.0)

        await plc.write("Cnc/State", 2)
        await plc.write("Cnc/PartCount", 1201)
        await plc.write("Cnc/Running", False)
        fault = await collector.wait_for_value("state", "fault")
        await collector.wait_for_value("part_count", 1201)
        await collector.wait_for_value("running", False)
        await plc.write("Cnc/State", 1)
        await plc.write("Cnc/PartCount", 1200)
        await plc.write("Cnc/Running", True)

    assert fault.tag == "acme/dongguan/machining/line2/cnc02/state"
    assert connector.health.state == LinkState.CONNECTED
    assert connector.health.samples == len(collector.samples)
    assert all(s.quality == Quality.GOOD for s in collector.samples)


async def test_sample_time_is_the_servers_source_timestamp(plc: OpcUaSimServer, client_pki: Path) -> None:
    config = device_config(plc.url, {"feed": {"node": "ns=2;s=Cnc/Feed", "sampling_interval": "200ms"}})
    async with running(config, client_pki) as (_connector, collector):
        await collector.wait_for_value("feed", 100.0)
        before_write_ns = time.time_ns()
        await plc.write("Cnc/Feed", 120.0)  # the simulator stamps SourceTimestamp as it writes
        after_write_ns = time.time_ns()
        changed = await collector.wait_for_value("feed", 120.0)
        arrived_ns = time.time_ns()
        await plc.write("Cnc/Feed", 100.0)

    # the sample carries the write's moment, not its arrival up to one publishing interval later
    assert before_write_ns - 1_000_000 <= changed.ts_ns <= after_write_ns + 1_000_000
    assert changed.ts_ns < arrived_ns


async def test_an_absolute_deadband_hides_small_changes_in_subscribe_mode(
    plc: OpcUaSimServer, client_pki: Path
) -> None:
    tags = {"quality": {"node": "ns=2;s=Cnc/Quality", "sampling_interval": "50ms", "deadband": 1.0}}
    async with running(device_config(plc.url, tags), client_pki) as (_connector, collector):
        await collector.wait_for_value("quality", 7.0)
        await plc.write("Cnc/Quality", 7.5)  # within the deadband: the server must not report it
        await asyncio.sleep(0.3)
        await plc.write("Cnc/Quality", 9.0)
        await collector.wait_for_value("quality", 9.0)
        await plc.write("Cnc/Quality", 7.0)

    assert 7.5 not in [s.value for s in collector.samples]


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_a_status_code_on_a_node_becomes_the_samples_quality_with_a_plain_reason(
    plc: OpcUaSimServer, client_pki: Path, mode: str
) -> None:
    tags = {"temp": {"node": "ns=2;s=Cnc/SpindleTemp", "mode": mode, "sampling_interval": "50ms"}}
    async with running(device_config(plc.url, tags), client_pki) as (_connector, collector):
        await collector.wait_for_value("temp", 41.25)
        await plc.set_status("Cnc/SpindleTemp", "UncertainLastUsableValue")
        uncertain = await collector.wait_for(lambda s: s.quality == Quality.UNCERTAIN, "uncertain")
        await plc.set_status("Cnc/SpindleTemp", "BadCommunicationError")
        bad = await collector.wait_for(lambda s: s.quality == Quality.BAD, "bad")
        await plc.write("Cnc/SpindleTemp", 41.25)
        await collector.wait_for(lambda s: s.quality == Quality.GOOD and s.ts_ns > bad.ts_ns, "good again")

    assert uncertain.value == 41.25
    assert uncertain.reason == "last usable value: the device stopped updating it (UncertainLastUsableValue)"
    assert bad.value is None
    assert bad.reason == "device not communicating (BadCommunicationError)"


async def test_a_node_the_server_does_not_have_is_bad_without_disturbing_the_other_tags(
    plc: OpcUaSimServer, client_pki: Path
) -> None:
    tags = {
        "ghost": {"node": "ns=2;s=Cnc/DoesNotExist", "sampling_interval": "100ms"},
        "ghost_polled": {"node": "ns=2;s=Cnc/AlsoMissing", "mode": "poll"},
        "foreign": {"node": "nsu=urn:nowhere;s=Cnc/Program", "mode": "poll"},
        "program": {"node": "ns=2;s=Cnc/Program", "sampling_interval": "100ms"},
        "program_by_uri": {"node": "nsu=urn:edgefab:simulator;s=Cnc/Program", "mode": "poll"},
    }
    async with running(device_config(plc.url, tags), client_pki) as (connector, collector):
        ghost = await collector.wait_for(lambda s: s.tag_name == "ghost", "ghost")
        polled = await collector.wait_for(lambda s: s.tag_name == "ghost_polled", "ghost_polled")
        foreign = await collector.wait_for(lambda s: s.tag_name == "foreign", "foreign")
        await collector.wait_for_value("program", "O1000")
        await collector.wait_for_value("program_by_uri", "O1000")

    assert (ghost.quality, ghost.reason) == (Quality.BAD, "node does not exist on the server (BadNodeIdUnknown)")
    assert (polled.quality, polled.reason) == (Quality.BAD, "node does not exist on the server (BadNodeIdUnknown)")
    assert (foreign.quality, foreign.reason) == (
        Quality.BAD,
        "the server has no namespace 'urn:nowhere' (node nsu=urn:nowhere;s=Cnc/Program)",
    )
    assert connector.health.state == LinkState.CONNECTED
    assert connector.health.reconnects == 0


@pytest.mark.parametrize(
    ("security", "pin_server_certificate"),
    [("Basic256Sha256-Sign", False), ("Basic256Sha256-SignAndEncrypt", False), ("Basic256Sha256-SignAndEncrypt", True)],
    ids=["sign", "sign-and-encrypt", "sign-and-encrypt-pinned-server-certificate"],
)
async def test_signed_and_encrypted_sessions_with_a_username_deliver_values(
    plc: OpcUaSimServer, client_pki: Path, server_pki: Path, security: str, pin_server_certificate: bool
) -> None:
    pinned = {"server_certificate": str(server_pki / "cert.der")} if pin_server_certificate else {}
    config = device_config(
        plc.url,
        {"program": {"node": "ns=2;s=Cnc/Program"}},
        security=security,
        username="operator",
        password="s3cret",
        **pinned,
    )
    async with running(config, client_pki) as (connector, collector):
        await collector.wait_for_value("program", "O1000")

    assert connector.health.state == LinkState.CONNECTED
    assert connector.health.last_error == ""
    assert (client_pki / "cert.der").is_file(), "the client certificate is created once and kept"


async def test_a_wrong_password_is_reported_as_an_authentication_failure(plc: OpcUaSimServer, client_pki: Path) -> None:
    config = device_config(
        plc.url,
        {"program": {"node": "ns=2;s=Cnc/Program"}},
        security="Basic256Sha256-SignAndEncrypt",
        username="operator",
        password="wrong",
    )
    async with running(config, client_pki) as (connector, collector):
        refused = await collector.wait_for(lambda s: s.quality == Quality.BAD, "bad")

    assert connector.health.state != LinkState.CONNECTED
    assert connector.health.last_error.startswith("authentication failed:")
    assert "rejected user 'operator': wrong user name or password" in connector.health.last_error
    assert refused.reason == connector.health.last_error
    assert refused.value is None


async def test_a_restarted_server_is_reconnected_to_and_subscriptions_deliver_again(
    plc: OpcUaSimServer, client_pki: Path
) -> None:
    await plc.add_variable("Press/Strokes", 10, variant_type="UInt32")
    await plc.add_variable("Press/Temp", 30.0)
    tags = {
        "strokes": {"node": "ns=2;s=Press/Strokes", "sampling_interval": "50ms"},
        "temp": {"node": "ns=2;s=Press/Temp", "mode": "poll", "poll": "100ms"},
    }
    async with running(device_config(plc.url, tags), client_pki) as (connector, collector):
        await collector.wait_for_value("strokes", 10)
        await collector.wait_for_value("temp", 30.0)

        await plc.stop()  # the same port, the same address space afterwards: a PLC power cycle
        lost = await collector.wait_for(lambda s: s.quality == Quality.BAD, "bad after the stop")
        assert connector.health.state != LinkState.CONNECTED

        await plc.start()
        await plc.write("Press/Strokes", 11)
        await plc.write("Press/Temp", 31.5)
        await collector.wait_for_value("strokes", 11)
        await collector.wait_for_value("temp", 31.5)
        await plc.write("Press/Strokes", 12)
        await collector.wait_for_value("strokes", 12)

    assert lost.value is None
    assert lost.reason == f"connection to {plc.url} lost (transport lost)"
    bad_after_stop = [s for s in collector.samples if s.quality == Quality.BAD]
    assert {s.tag_name for s in bad_after_stop} == {"strokes", "temp"}
    assert len(bad_after_stop) == 2, "every tag is marked bad once per outage, not once per retry"
    assert connector.health.state == LinkState.CONNECTED
    assert connector.health.reconnects == 1
    assert connector.health.last_error == ""


async def test_a_server_that_stops_answering_without_closing_the_socket_is_detected_by_the_watchdog(
    plc: OpcUaSimServer, client_pki: Path
) -> None:
    """A frozen PLC or a dead network path keeps the TCP connection open: only the watchdog notices."""
    socat = require_program("socat", "socat")
    proxy_port = free_port()
    proxy = subprocess.Popen(
        [socat, f"TCP-LISTEN:{proxy_port},bind=127.0.0.1,reuseaddr,fork", f"TCP:127.0.0.1:{plc.port}"],
        start_new_session=True,  # its forked children share the process group we freeze
    )
    try:
        wait_for_port(proxy_port)
        url = f"opc.tcp://127.0.0.1:{proxy_port}"
        tags = {"program": {"node": "ns=2;s=Cnc/Program", "sampling_interval": "100ms"}}
        async with running(device_config(url, tags), client_pki, watchdog_interval_s=1.0) as (connector, collector):
            await collector.wait_for_value("program", "O1000")
            os.killpg(proxy.pid, signal.SIGSTOP)
            frozen = await collector.wait_for(lambda s: s.quality == Quality.BAD, "bad while frozen")
            after_frozen = len(collector.samples)
            os.killpg(proxy.pid, signal.SIGCONT)
            await collector.wait_for(lambda s: s.quality == Quality.GOOD, "good after thawing", since=after_frozen)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proxy.pid, signal.SIGCONT)
            os.killpg(proxy.pid, signal.SIGKILL)
        proxy.wait(timeout=5)

    assert frozen.reason == f"{url} stopped answering (no reply to the 1 s watchdog)"
    assert connector.health.state == LinkState.CONNECTED
    assert connector.health.reconnects == 1


async def test_writes_reach_writable_nodes_in_the_nodes_own_type_and_everything_else_is_refused(
    plc: OpcUaSimServer, client_pki: Path
) -> None:
    tags = {
        "target_quantity": {"node": "ns=2;s=Cnc/TargetQuantity", "writable": True, "max": 100000},
        "recipe": {"node": "ns=2;s=Cnc/Recipe", "writable": True, "map": {3: "steel", 4: "aluminium"}},
        "program": {"node": "ns=2;s=Cnc/Program"},
        "part_count": {"node": "ns=2;s=Cnc/PartCount", "writable": True},  # allowed here, read-only on the PLC
    }
    async with running(device_config(plc.url, tags), client_pki) as (connector, collector):
        await collector.wait_for_value("recipe", "steel")
        await connector.write("target_quantity", 1234)
        await connector.write("recipe", "aluminium")
        await collector.wait_for_value("recipe", "aluminium")
        with pytest.raises(ValueError, match="cnc02/program is not writable"):
            await connector.write("program", "O2000")
        with pytest.raises(ValueError, match="above the maximum 100000"):
            await connector.write("target_quantity", 100001)
        with pytest.raises(ValueError, match="'brass' is not one of"):
            await connector.write("recipe", "brass")
        with pytest.raises(OpcUaError, match="refused the write: the node is read-only for this user"):
            await connector.write("part_count", 5)
        await connector.write("recipe", "steel")

    assert await plc.read("Cnc/TargetQuantity") == 1234
    assert await plc.read("Cnc/Program") == "O1000"
    assert await plc.read("Cnc/PartCount") == 1200
    writes = [(w.path, w.value, w.status) for w in plc.write_log]
    assert writes == [
        ("Cnc/TargetQuantity", 1234, "Good"),
        ("Cnc/Recipe", 4, "Good"),
        ("Cnc/PartCount", 5, "BadUserAccessDenied"),
        ("Cnc/Recipe", 3, "Good"),
    ]
