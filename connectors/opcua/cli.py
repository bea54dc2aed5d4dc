"""`edgefab opcua cert` and `edgefab opcua browse` (see gateway.cli for how commands are registered).

Errors are one line on stderr with exit status 1: an integrator at a PLC needs to read what to fix
(connection refused, wrong password, untrusted certificate), not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_config.schema import OpcUaConnection


def register(sub: argparse._SubParsersAction) -> None:
    opcua = sub.add_parser("opcua", help="OPC UA tools: client certificate, address-space browser")
    commands = opcua.add_subparsers(dest="opcua_command", metavar="SUBCOMMAND", required=True)

    cert = commands.add_parser(
        "cert",
        help="create (or show) the gateway's persistent OPC UA client certificate",
        description="Creates one client certificate + private key, reused on later runs. "
        "Servers trust the certificate, so keep the directory; trust cert.der on each PLC.",
    )
    cert.add_argument("--dir", type=Path, default=None, help="where to keep cert.der and key.pem")
    cert.add_argument("--uri", default=None, help="ApplicationURI (default urn:<hostname>:edgefab:gateway)")
    cert.add_argument("--hostname", default=None, help="host name written into the certificate (default: this host)")
    cert.set_defaults(func=cert_command)

    browse = commands.add_parser(
        "browse",
        help="walk a server's address space and print device YAML for its variables",
        description="Prints a device entry with one tag per variable found, ready to paste under `devices:`.",
    )
    browse.add_argument("url", help="server endpoint, e.g. opc.tcp://192.168.1.40:4840")
    browse.add_argument("--root", default="i=85", help="node to start from (default: the Objects folder, i=85)")
    browse.add_argument("--depth", type=int, default=6, help="how many levels below the root to walk (default 6)")
    browse.add_argument("--device", default="machine1", help="device name for the YAML (default machine1)")
    browse.add_argument("--area", default="CHANGE_ME", help="area name for the YAML")
    browse.add_argument("--line", default="CHANGE_ME", help="line name for the YAML")
    browse.add_argument(
        "--security",
        default="None",
        choices=["None", "Basic256Sha256-Sign", "Basic256Sha256-SignAndEncrypt"],
        help="security mode (secure modes use the certificate from `edgefab opcua cert`)",
    )
    browse.add_argument("--username", default=None)
    browse.add_argument("--password", default=None)
    browse.add_argument("--cert-dir", type=Path, default=None, help="client certificate directory for secure modes")
    browse.add_argument("--timeout", type=float, default=4.0, help="seconds to wait for each answer (default 4)")
    browse.set_defaults(func=browse_command)


def cert_command(args: argparse.Namespace) -> int:
    import socket

    from cryptography.hazmat.primitives import hashes

    from connectors.opcua.certificate import (
        CertificateError,
        application_uri_of,
        default_client_uri,
        ensure_application_certificate,
        load_certificate,
    )
    from connectors.opcua.client import DEFAULT_PKI_DIR

    directory: Path = args.dir or DEFAULT_PKI_DIR
    hostname = args.hostname or socket.gethostname()
    try:
        existing = directory / "cert.der"
        uri = args.uri or (application_uri_of(existing) if existing.is_file() else None) or default_client_uri(hostname)
        made = ensure_application_certificate(directory, uri, hostnames=(hostname,), common_name=f"edgefab {hostname}")
        thumbprint = load_certificate(made.certificate_path).fingerprint(hashes.SHA1()).hex()  # what UA tools show
    except (CertificateError, OSError) as error:
        return _fail("opcua cert", str(error) if isinstance(error, CertificateError) else f"{directory}: {error}")
    print(f"{'created' if made.created else 'reusing'} OPC UA client certificate")
    print(f"  certificate:     {made.certificate_path}")
    print(f"  private key:     {made.private_key_path}")
    print(f"  ApplicationURI:  {made.application_uri}")
    print(f"  SHA-1 thumbprint {thumbprint}")
    print("Trust cert.der on each OPC UA server (its trusted-certificates folder or the PLC's trust list), then:")
    print("  connection:")
    print("    security: Basic256Sha256-SignAndEncrypt")
    print(f"    certificate: {made.certificate_path}")
    print(f"    private_key: {made.private_key_path}")
    return 0


def browse_command(args: argparse.Namespace) -> int:
    import asyncio
    import re

    from pydantic import ValidationError

    from connectors.opcua.errors import describe_error
    from edge_config.schema import NAME_PATTERN

    for option in ("device", "area", "line"):
        if not re.match(NAME_PATTERN, getattr(args, option)):
            return _fail("opcua browse", f"--{option} {getattr(args, option)!r}: use letters, digits, _ . - only")
    if args.depth < 1:
        return _fail("opcua browse", "--depth must be at least 1")
    try:
        from edge_config.schema import OpcUaConnection

        connection = OpcUaConnection(
            url=args.url,
            security=args.security,
            username=args.username,
            password=args.password,
            timeout=args.timeout,
        )
    except ValidationError:
        return _fail("opcua browse", f"{args.url!r} is not an OPC UA endpoint URL: use opc.tcp://host:port")
    try:
        walk = browse_to_yaml(
            connection,
            root=args.root,
            depth=args.depth,
            device=args.device,
            area=args.area,
            line=args.line,
            pki_dir=args.cert_dir,
        )
        asyncua_log = logging.getLogger("asyncua")
        level = asyncua_log.level
        if not getattr(args, "verbose", False):
            asyncua_log.setLevel(logging.CRITICAL)  # its warnings would bury the one-line error
        try:
            text = asyncio.run(walk)
        finally:
            asyncua_log.setLevel(level)
    except Exception as error:
        return _fail("opcua browse", describe_error(error, args.url, username=args.username, timeout_s=args.timeout))
    sys.stdout.write(text)
    return 0


async def browse_to_yaml(
    connection: OpcUaConnection, *, root: str, depth: int, device: str, area: str, line: str, pki_dir: Path | None
) -> str:
    """Connect, walk from `root`, disconnect; returns the device YAML (the testable core of `browse`)."""
    from connectors.opcua.browse import device_yaml, walk
    from connectors.opcua.client import DEFAULT_PKI_DIR, build_client

    client = await build_client(connection, name="edgefab browse", pki_dir=pki_dir or DEFAULT_PKI_DIR)
    await client.connect()
    try:
        variables = await walk(client, root, depth)
    finally:
        try:
            await client.disconnect()
        except Exception:
            client.disconnect_socket()
    source = f"edgefab opcua browse {connection.url} --root {root} --depth {depth}"
    return device_yaml(variables, url=connection.url, device=device, area=area, line=line, source=source)


def _fail(command: str, message: str) -> int:
    print(f"edgefab {command}: {message}", file=sys.stderr)
    return 1
