"""`edgefab opcua browse` and `edgefab opcua cert` against the simulated PLC over real sockets.

The commands run through `gateway.cli.main` in a worker thread (they start their own event loop)
while the simulator serves from the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from cryptography import x509

from edge_config.schema import Device, OpcUaTag, SiteConfig
from gateway.cli import main
from simulators.opcua_server import OpcUaSimServer
from tests.servers import free_port

# one worker runs the whole module (make test uses --dist loadgroup), so its PLC starts once
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("opcua-cli")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OpcUaSimServer]:
    server = OpcUaSimServer(
        "127.0.0.1", free_port(), users={"operator": "s3cret"}, cert_dir=tmp_path_factory.mktemp("server-pki")
    )
    await server.add_variable("Cnc/Running", True)
    await server.add_variable("Cnc/PartCount", 7, variant_type="UInt32")
    await server.add_variable("Cnc/Spindle/Temp", 41.5)
    await server.add_variable("Cnc/Axis X/Temp", 30.0, writable=True)
    await server.add_variable("Cnc/Program Name", "O1000")
    await server.start()
    yield server
    await server.stop()


async def edgefab(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_browse_prints_device_yaml_that_the_config_schema_accepts(
    plc: OpcUaSimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await edgefab(capsys, "opcua", "browse", plc.url, "--device", "cnc02", "--area", "machining")

    assert status == 0, err
    devices = yaml.safe_load(out)
    device = Device.model_validate({**devices[0], "line": "line2"})
    assert device.name == "cnc02" and device.area == "machining"
    assert all(isinstance(tag, OpcUaTag) for tag in device.tags.values())
    assert {name: tag.node for name, tag in device.tags.items()} == {
        "axis_x_temp": plc.node_id("Cnc/Axis X/Temp"),
        "part_count": plc.node_id("Cnc/PartCount"),
        "program_name": plc.node_id("Cnc/Program Name"),
        "running": plc.node_id("Cnc/Running"),
        "spindle_temp": plc.node_id("Cnc/Spindle/Temp"),
    }
    assert device.tags["part_count"].description == "Cnc/PartCount (UInt32)"
    assert not any(tag.writable for tag in device.tags.values()), "write-back is never switched on by browsing"
    SiteConfig.model_validate({"site": {"enterprise": "acme", "site": "dongguan"}, "devices": devices})


async def test_browse_from_a_root_node_with_a_depth_limit(
    plc: OpcUaSimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await edgefab(capsys, "opcua", "browse", plc.url, "--root", plc.node_id("Cnc"), "--depth", "1")

    assert status == 0, err
    tags = yaml.safe_load(out)[0]["tags"]
    assert sorted(tags) == ["part_count", "program_name", "running"]  # Spindle/Temp is two levels down


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--root", "ns=2;x=1"], "edgefab opcua browse: 'ns=2;x=1' is not an OPC UA node id"),
        (
            ["--root", "ns=2;s=NoSuchFolder"],
            "edgefab opcua browse: node ns=2;s=NoSuchFolder does not exist on the server",
        ),
        (
            ["--username", "operator", "--password", "wrong"],
            "edgefab opcua browse: authentication failed: {url} rejected user 'operator': wrong user name or password",
        ),
    ],
    ids=["malformed-node-id", "unknown-root-node", "wrong-password"],
)
async def test_browse_failures_are_one_line_without_a_traceback(
    plc: OpcUaSimServer, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    status, out, err = await edgefab(capsys, "opcua", "browse", plc.url, *argv)

    assert status == 1
    assert out == ""
    assert err.startswith(expected.format(url=plc.url)), err
    assert err.count("\n") == 1 and "Traceback" not in err


async def test_browse_of_a_port_where_nothing_listens_says_connection_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    status, _out, err = await edgefab(capsys, "opcua", "browse", url)

    assert status == 1
    assert (
        err
        == f"edgefab opcua browse: cannot connect to {url}: connection refused (is the server running, is the port right?)\n"
    )


async def test_cert_creates_one_certificate_with_the_application_uri_and_reuses_it(
    plc: OpcUaSimServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pki = tmp_path / "pki"
    uri = "urn:press-hall-pi:edgefab:gateway"
    first_status, first, _ = await edgefab(
        capsys, "opcua", "cert", "--dir", str(pki), "--uri", uri, "--hostname", "pi4"
    )
    der = (pki / "cert.der").read_bytes()
    second_status, second, _ = await edgefab(capsys, "opcua", "cert", "--dir", str(pki))
    clash_status, _, clash = await edgefab(capsys, "opcua", "cert", "--dir", str(pki), "--uri", "urn:other")

    assert (first_status, second_status, clash_status) == (0, 0, 1)
    assert first.startswith("created OPC UA client certificate") and second.startswith("reusing")
    assert f"ApplicationURI:  {uri}" in first and f"ApplicationURI:  {uri}" in second
    assert (pki / "cert.der").read_bytes() == der, "the second run must not replace the trusted certificate"
    assert "already holds a certificate for" in clash and clash.count("\n") == 1
    san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]
    assert "pi4" in san.get_values_for_type(x509.DNSName)

    # the certificate is usable as is: an encrypted, authenticated browse with it succeeds
    status, out, err = await edgefab(
        capsys,
        "opcua",
        "browse",
        plc.url,
        "--security",
        "Basic256Sha256-SignAndEncrypt",
        "--cert-dir",
        str(pki),
        "--username",
        "operator",
        "--password",
        "s3cret",
    )
    assert status == 0, err
    assert "running" in yaml.safe_load(out)[0]["tags"]
