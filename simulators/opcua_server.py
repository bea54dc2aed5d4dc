"""A small OPC UA server (asyncua) that the simulated machines and the tests publish values through.

Variables are declared by path (`Press/Counters/Total`): each path segment becomes a folder and the
variable gets the string node id `ns=<idx>;s=<path>`, so a config can name it without browsing.
The declared variables and their last values are kept here, outside asyncua, so `stop()` followed
by `start()` on the same port brings back the same address space: that is how the tests play a
PLC that restarts.

Security for the demo: the server generates its own certificate into `cert_dir` and TRUSTS EVERY
CLIENT CERTIFICATE (no trust list). A real PLC keeps a trust list that an operator curates; never
copy this behaviour into anything facing a real network.
"""

from __future__ import annotations

import datetime
import logging
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer

from connectors.opcua.certificate import ensure_application_certificate

log = logging.getLogger(__name__)

SECURITY_POLICIES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256-Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256-SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}
DEFAULT_CERT_DIR = Path(tempfile.gettempdir()) / "edgefab-opcua-simulator-pki"
SERVER_URI = "urn:edgefab:simulator:server"


@dataclass(frozen=True)
class ClientWrite:
    """One value a client wrote, kept so write-back tests can check what reached the 'PLC'."""

    path: str
    value: Any
    status: str
    """StatusCode name of the write's result, e.g. "Good" or "BadNotWritable"."""
    user: str | None
    ts_ns: int


@dataclass
class _Variable:
    path: str
    value: Any
    variant_type: ua.VariantType
    writable: bool
    status: str = "Good"


class _UserTable:
    """asyncua user manager: accepts the configured username/password pairs, and anonymous when allowed."""

    def __init__(self, users: dict[str, str], allow_anonymous: bool) -> None:
        self.users = users
        self.allow_anonymous = allow_anonymous

    def get_user(
        self, iserver: InternalServer, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self.allow_anonymous else None
        if self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class OpcUaSimServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        namespace_uri: str = "urn:edgefab:simulator",
        users: dict[str, str] | None = None,
        allow_anonymous: bool = True,
        security: Sequence[str] = ("None", "Basic256Sha256-Sign", "Basic256Sha256-SignAndEncrypt"),
        cert_dir: Path | None = None,
    ) -> None:
        unknown = [name for name in security if name not in SECURITY_POLICIES]
        if unknown:
            raise ValueError(f"unknown security {unknown}: use {', '.join(SECURITY_POLICIES)}")
        self.host = host
        self.port = port
        self.namespace_uri = namespace_uri
        self.users = dict(users or {})
        self.allow_anonymous = allow_anonymous
        self.security = tuple(security)
        self.cert_dir = cert_dir or DEFAULT_CERT_DIR
        self.write_log: list[ClientWrite] = []
        self._variables: dict[str, _Variable] = {}
        self._server: Server | None = None
        self._namespace_index = 2

    @property
    def url(self) -> str:
        """Where a client on this machine connects (a server bound to every interface is reached on loopback)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"opc.tcp://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def node_id(self, path: str) -> str:
        return f"ns={self._namespace_index};s={path}"

    async def start(self) -> None:
        """Listen on host:port with every variable declared so far, at its last value."""
        if self._server is not None:
            return
        server = Server(user_manager=_UserTable(self.users, self.allow_anonymous))
        await server.init()  # about 2 s: asyncua builds the whole standard address space
        server.disable_clock()  # the clock task makes stop() wait up to 1 s; no client here needs CurrentTime
        server.set_endpoint(f"opc.tcp://{self.host or '0.0.0.0'}:{self.port}")
        server.set_server_name("edgefab simulated PLC")
        await server.set_application_uri(SERVER_URI)
        server.set_security_policy([SECURITY_POLICIES[name] for name in self.security])
        tokens: list[type] = [ua.UserNameIdentityToken] if self.users else []
        if self.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if any(name != "None" for name in self.security):
            hostnames = (self.host, "localhost", socket.gethostname())
            pki = ensure_application_certificate(
                self.cert_dir, SERVER_URI, hostnames=hostnames, common_name="edgefab simulator", server=True
            )
            await server.load_certificate(str(pki.certificate_path))
            await server.load_private_key(str(pki.private_key_path))
        self._namespace_index = await server.register_namespace(self.namespace_uri)
        self._server = server
        self._folders: dict[str, Any] = {}
        for variable in self._variables.values():
            await self._create_node(variable)
        server.subscribe_server_callback(CallbackType.PostWrite, self._record_client_writes)
        await server.start()
        log.info("OPC UA simulator listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening; the variables keep their values (including client writes) for the next start."""
        server, self._server = self._server, None
        if server is None:
            return
        for variable in self._variables.values():
            if variable.writable:  # only clients change a variable behind our back
                variable.value = self._current_value(server, variable)
        await server.stop()

    async def add_variable(
        self, path: str, value: Any, *, variant_type: str | None = None, writable: bool = False
    ) -> str:
        """Declare a variable under folders named after the path's segments; returns its node id."""
        if not path or path.startswith("/") or path.endswith("/") or "//" in path:
            raise ValueError(f"bad variable path {path!r}: use segments separated by '/', e.g. 'Press/State'")
        if path in self._variables:
            raise ValueError(f"variable {path!r} already exists")
        kind = ua.VariantType[variant_type] if variant_type else _infer_variant_type(value)
        variable = _Variable(path, value, kind, writable)
        self._variables[path] = variable
        if self._server is not None:
            await self._create_node(variable)
        return self.node_id(path)

    async def write(self, path: str, value: Any) -> None:
        """Change a variable's value as the PLC program would (status Good, source time now)."""
        variable = self._variable(path)
        variable.value = value
        variable.status = "Good"
        await self._publish(variable)

    async def set_status(self, path: str, status_code_name: str) -> None:
        """Give the variable a StatusCode such as 'BadCommunicationError' or 'UncertainLastUsableValue'."""
        if not hasattr(ua.StatusCodes, status_code_name):
            raise ValueError(f"unknown OPC UA status code {status_code_name!r}")
        variable = self._variable(path)
        variable.status = status_code_name
        await self._publish(variable)

    async def read(self, path: str) -> Any:
        variable = self._variable(path)
        if self._server is not None:
            variable.value = self._current_value(self._server, variable)
        return variable.value

    def _current_value(self, server: Server, variable: _Variable) -> Any:
        data_value = server.read_attribute_value(ua.NodeId.from_string(self.node_id(variable.path)))
        value = data_value.Value.Value if data_value.Value is not None else None
        return variable.value if value is None else value

    def _variable(self, path: str) -> _Variable:
        try:
            return self._variables[path]
        except KeyError:
            raise KeyError(f"no variable {path!r} on the simulator") from None

    async def _publish(self, variable: _Variable) -> None:
        if self._server is None:
            return
        now = datetime.datetime.now(datetime.UTC)
        data_value = ua.DataValue(
            ua.Variant(variable.value, variable.variant_type),
            StatusCode=ua.StatusCode(getattr(ua.StatusCodes, variable.status)),
            SourceTimestamp=now,
            ServerTimestamp=now,
        )
        result = await self._server.write_attribute_value(
            ua.NodeId.from_string(self.node_id(variable.path)), data_value
        )
        if isinstance(result, ua.StatusCode) and not result.is_good():
            raise ValueError(f"cannot write {variable.value!r} to {variable.path!r}: {result.name}")

    async def _create_node(self, variable: _Variable) -> None:
        assert self._server is not None
        parent = self._server.nodes.objects
        segments = variable.path.split("/")
        for depth in range(1, len(segments)):
            folder_path = "/".join(segments[:depth])
            if folder_path not in self._folders:
                self._folders[folder_path] = await parent.add_folder(
                    ua.NodeId(folder_path, self._namespace_index),
                    ua.QualifiedName(segments[depth - 1], self._namespace_index),
                )
            parent = self._folders[folder_path]
        node = await parent.add_variable(
            ua.NodeId(variable.path, self._namespace_index),
            ua.QualifiedName(segments[-1], self._namespace_index),
            ua.Variant(variable.value, variable.variant_type),
        )
        if variable.writable:
            await node.set_writable()
        if variable.status != "Good":
            await self._publish(variable)

    def _record_client_writes(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        if not event.is_external:
            return
        prefix = f"ns={self._namespace_index};s="
        for write_value, status in zip(event.request_params.NodesToWrite, event.response_params, strict=False):
            node_id = write_value.NodeId.to_string()
            if write_value.AttributeId != ua.AttributeIds.Value or not node_id.startswith(prefix):
                continue
            self.write_log.append(
                ClientWrite(
                    path=node_id.removeprefix(prefix),
                    value=write_value.Value.Value.Value,
                    status=status.name,
                    user=getattr(event.user, "name", None),
                    ts_ns=time.time_ns(),
                )
            )


def _infer_variant_type(value: Any) -> ua.VariantType:
    if isinstance(value, bool):
        return ua.VariantType.Boolean
    if isinstance(value, int):
        return ua.VariantType.Int64
    if isinstance(value, float):
        return ua.VariantType.Double
    if isinstance(value, str):
        return ua.VariantType.String
    raise ValueError(f"cannot infer an OPC UA type for {value!r}: pass variant_type, e.g. 'UInt32'")
