"""The OPC UA connector: one device (one server), its tags subscribed or polled, emitted as Samples.

One connection per device. Each connection attempt builds everything from the configuration:
a fresh asyncua Client, one subscription per sampling interval for the `subscribe` tags (with an
absolute deadband filter where the tag has one) and one polling loop per interval for the `poll`
tags. When the session dies (the server closed the socket, or asyncua's watchdog read of
ServerStatus failed), every tag is marked bad once, the client is thrown away and the connector
reconnects with exponential backoff and jitter, rebuilding the subscriptions itself. Nothing of the
old session is reused, because a restarted PLC has forgotten it anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from connectors.backoff import Backoff
from connectors.base import ConnectorHealth, Emit, LinkState
from connectors.opcua.certificate import (
    CERTIFICATE_FILE,
    PRIVATE_KEY_FILE,
    application_uri_of,
    default_client_uri,
    ensure_application_certificate,
)
from connectors.opcua.errors import OpcUaError, describe_error, is_authentication_failure
from connectors.opcua.quality import quality_of_status, status_name
from connectors.opcua.values import sample_from_data_value, value_for_write
from connectors.writable import writable_tag
from edge_config.schema import Device, OpcUaConnection, OpcUaSecurity, OpcUaTag, SiteConfig
from gateway.sample import Quality, Sample, now_ns

log = logging.getLogger(__name__)


class _ExpectedPublishLoss(logging.Filter):
    """Drop asyncua's ERROR traceback for a publish request cut by a lost connection.

    The connector reports that loss itself, once, as one line; the traceback would read like a bug.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        expected = isinstance(error, ConnectionError | TimeoutError | OSError)
        return not (expected and record.getMessage().startswith("Publish iteration crashed"))


logging.getLogger("asyncua.client.ua_session.UaSession").addFilter(_ExpectedPublishLoss())

DEFAULT_PKI_DIR = Path("var/edgefab/pki/opcua-client")
"""Where `edgefab opcua cert` puts the gateway's certificate unless told otherwise (relative to the working dir)."""
WATCHDOG_INTERVAL_S = 2.0
"""How often the server's state is read to prove the session alive; also the reply timeout of that read,
so a server that stops answering is noticed within about two intervals, and a 2 s hiccup on Wi-Fi is not
yet an outage."""
SESSION_TIMEOUT_MS = 30_000
"""A server frees our session (and its subscriptions) this long after we vanish."""
READ_CHUNK = 500
"""Nodes per Read request: below every server's MaxNodesPerRead we have met."""
BATCH_WINDOW_S = 0.002
"""How long the subscription consumer waits for more notifications of the same publish response."""


@dataclass(frozen=True)
class TagBinding:
    name: str
    tag: OpcUaTag
    path: str
    """The Sample.tag: enterprise/site/area/line/machine/tag."""


class _SessionLost(OpcUaError):
    """The session ended; the message says why, for health and logs."""


class _EmitFailed(Exception):
    """The gateway's emit callback raised: a bug downstream, not a link problem; never retried."""


class OpcUaConnector:
    """Collects one OPC UA device's tags; `run(emit)` never returns on its own (see module doc)."""

    def __init__(
        self,
        config: SiteConfig,
        device: Device,
        *,
        watchdog_interval_s: float = WATCHDOG_INTERVAL_S,
        backoff: Backoff | None = None,
        pki_dir: Path | None = None,
    ) -> None:
        if not isinstance(device.connection, OpcUaConnection):
            raise ValueError(f"device {device.name!r} has no OPC UA connection (url: opc.tcp://...)")
        self.config = config
        self.device = device
        self.connection: OpcUaConnection = device.connection
        self.health = ConnectorHealth(device=device.name)
        self.bindings = [
            TagBinding(name, tag, config.tag_path(device, name))
            for name, tag in device.tags.items()
            if isinstance(tag, OpcUaTag)
        ]
        self._watchdog_interval_s = watchdog_interval_s
        self._backoff = backoff or Backoff(initial_s=0.5, max_s=30.0)
        self._pki_dir = pki_dir or DEFAULT_PKI_DIR
        self._marked_bad = False
        self._ever_connected = False
        self._client: Client | None = None
        self._namespaces: list[str] = []
        self._variant_types: dict[str, ua.VariantType] = {}

    async def run(self, emit: Emit) -> None:
        while True:
            try:
                await self._collect_one_session(emit)
                error: BaseException = _SessionLost("session ended")
            except _EmitFailed as failure:
                raise failure.__cause__ or failure from None
            except Exception as exc:
                error = exc
            message = describe_error(
                error, self.connection.url, username=self.connection.username, timeout_s=self.connection.timeout
            )
            self.health.state = LinkState.DISCONNECTED
            repeated = message == self.health.last_error  # a long outage logs its cause once, not every retry
            self.health.last_error = message
            log.log(logging.DEBUG if repeated else logging.WARNING, "OPC UA %s: %s", self.device.name, message)
            await self._mark_all_bad(emit, message)
            delay_s = self._backoff.next_delay_s()
            if is_authentication_failure(error):
                delay_s = max(delay_s, self._backoff.max_s)  # retrying a wrong password fast can lock the account
            await asyncio.sleep(delay_s)

    async def _collect_one_session(self, emit: Emit) -> None:
        self.health.state = LinkState.CONNECTING
        client = await self._new_client()
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def on_connection_lost(exc: Exception) -> None:
            if lost.done():
                return
            if isinstance(exc, TimeoutError):  # asyncua's watchdog read of the server state went unanswered
                watchdog_s = self._watchdog_interval_s
                lost.set_result(f"{self.connection.url} stopped answering (no reply to the {watchdog_s:g} s watchdog)")
            else:
                lost.set_result(describe_error(exc, self.connection.url, timeout_s=self.connection.timeout))

        client.connection_lost_callback = on_connection_lost
        tasks: list[asyncio.Task[None]] = []
        try:
            await client.connect()
            self._on_connected()
            namespaces = await client.get_namespace_array()
            self._client, self._namespaces = client, namespaces
            subscribed = [b for b in self.bindings if b.tag.mode == "subscribe"]
            polled = [b for b in self.bindings if b.tag.mode == "poll"]
            subscriptions = await self._subscribe(client, subscribed, namespaces, emit)
            tasks += [asyncio.create_task(self._forward(sub, handles, emit)) for sub, handles in subscriptions]
            unresolved: list[Sample] = []
            for interval_s, group in _group_by(polled, self._poll_interval_s).items():
                readable, nodes = [], []
                for binding in group:
                    try:
                        nodes.append(client.get_node(_node_id(binding.tag.node, namespaces)))
                        readable.append(binding)
                    except OpcUaError as error:
                        unresolved.append(_bad(binding, str(error)))
                if readable:
                    tasks.append(asyncio.create_task(self._poll(client, nodes, readable, interval_s, emit)))
            if unresolved:
                await self._emit(emit, unresolved)
            self.health.extra.update(
                subscriptions=len(subscriptions),
                monitored_items=sum(len(h) for _s, h in subscriptions),
                poll_groups=len(tasks) - len(subscriptions),
            )
            waiters: list[asyncio.Future[object]] = [*tasks, lost]
            done, _pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                if finished is not lost and finished.exception() is not None:
                    raise finished.exception()  # type: ignore[misc]
            raise _SessionLost(lost.result() if lost.done() else f"connection to {self.connection.url} lost")
        finally:
            self._client = None
            self._variant_types.clear()  # a restarted server may have changed its types
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _close_quietly(client)

    def _on_connected(self) -> None:
        if self._ever_connected:
            self.health.reconnects += 1
        self._ever_connected = True
        self._marked_bad = False
        self._backoff.reset()
        self.health.state = LinkState.CONNECTED
        self.health.last_error = ""
        log.info("OPC UA %s: connected to %s", self.device.name, self.connection.url)

    async def write(self, tag_name: str, value: bool | int | float | str) -> None:
        """Write an engineering value to a tag marked `writable` (enum map, scale and node type applied).

        Raises ValueError for an unknown, read-only or out-of-range tag or value (nothing is sent),
        OpcUaError when the device is not connected or the server refuses the write.
        """
        tag = writable_tag(self.device, tag_name, value, OpcUaTag, "OPC UA")
        client = self._client
        if client is None:
            raise OpcUaError(f"{self.device.name} is not connected to {self.connection.url}")
        node = client.get_node(_node_id(tag.node, self._namespaces))
        try:
            if tag_name not in self._variant_types:
                self._variant_types[tag_name] = await node.read_data_type_as_variant_type()
            variant_type = self._variant_types[tag_name]
            raw = value_for_write(value, tag, variant_type)
            await node.write_value(ua.DataValue(ua.Variant(raw, variant_type)))
        except ua.UaStatusCodeError as error:
            name = status_name(int(error.code))
            why = "the node is read-only for this user" if name in _READ_ONLY else quality_of_status(int(error.code))[1]
            raise OpcUaError(f"{self.device.name}/{tag_name}: the server refused the write: {why} ({name})") from None

    async def _new_client(self) -> Client:
        return await build_client(
            self.connection,
            name=f"edgefab {self.device.name}",
            pki_dir=self._pki_dir,
            watchdog_interval_s=self._watchdog_interval_s,
        )

    def _poll_interval_s(self, binding: TagBinding) -> float:
        return binding.tag.poll or self.device.poll

    def _sampling_interval_s(self, binding: TagBinding) -> float:
        tag = binding.tag
        return tag.sampling_interval if tag.sampling_interval is not None else tag.poll or self.device.poll

    async def _subscribe(
        self, client: Client, bindings: list[TagBinding], namespaces: list[str], emit: Emit
    ) -> list[tuple[Subscription, dict[int, TagBinding]]]:
        """One subscription per sampling interval; tags the server refuses get a bad sample saying why."""
        result = []
        refused: list[Sample] = []
        for interval_s, group in _group_by(bindings, self._sampling_interval_s).items():
            subscription = await client.create_subscription(interval_s * 1000, queue_maxsize=100_000)
            handles: dict[int, TagBinding] = {}
            requests = []
            for index, binding in enumerate(group, start=1):
                try:
                    node_id = _node_id(binding.tag.node, namespaces)
                except OpcUaError as error:
                    refused.append(_bad(binding, str(error)))
                    continue
                handles[index] = binding
                requests.append(_monitored_item(index, node_id, interval_s, binding.tag.deadband))
            outcomes = await subscription.create_monitored_items(requests) if requests else []
            retry = []
            for request, outcome in zip(requests, outcomes, strict=True):
                binding = handles[request.RequestedParameters.ClientHandle]
                if not isinstance(outcome, ua.StatusCode):
                    continue
                if request.RequestedParameters.Filter is not None and outcome.name in _FILTER_REFUSED:
                    log.warning(
                        "OPC UA %s: %s: server refuses a deadband, subscribing without", self.device.name, binding.name
                    )
                    request.RequestedParameters.Filter = None
                    retry.append(request)
                    continue
                del handles[request.RequestedParameters.ClientHandle]
                refused.append(_bad(binding, quality_of_status(outcome.value)[1]))
            for request, outcome in zip(
                retry, await subscription.create_monitored_items(retry) if retry else [], strict=True
            ):
                if isinstance(outcome, ua.StatusCode):
                    binding = handles.pop(request.RequestedParameters.ClientHandle)
                    refused.append(_bad(binding, quality_of_status(outcome.value)[1]))
            result.append((subscription, handles))
        if refused:
            await self._emit(emit, refused)
        return result

    async def _forward(self, subscription: Subscription, handles: dict[int, TagBinding], emit: Emit) -> None:
        """Turn each publish response's notifications into one batch of Samples."""
        while True:
            try:
                event = await subscription.next_event()
            except StopAsyncIteration:
                raise _SessionLost("the subscription was closed") from None
            events = [event]
            while (more := await subscription.next_event(BATCH_WINDOW_S)) is not None:
                events.append(more)
            received_ns = now_ns()
            samples = []
            for item in events:
                if isinstance(item, DataChangeEvent):
                    binding = handles.get(item.data.subscription_data.client_handle or 0)
                    if binding is not None:
                        data_value = item.data.monitored_item.Value
                        samples.append(sample_from_data_value(binding.path, binding.tag, data_value, received_ns))
                elif isinstance(item, StatusChangeEvent) and not item.notification.Status.is_good():
                    raise _SessionLost(f"subscription ended: {quality_of_status(item.notification.Status.value)[1]}")
            if samples:
                self.health.reads_ok += 1
                await self._emit(emit, samples)

    async def _poll(
        self, client: Client, nodes: list, bindings: list[TagBinding], interval_s: float, emit: Emit
    ) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                data_values: list[ua.DataValue] = []
                for start in range(0, len(nodes), READ_CHUNK):
                    data_values += await client.read_attributes(nodes[start : start + READ_CHUNK])
            except TimeoutError:
                self.health.reads_failed += 1
                reason = f"no answer from {self.connection.url} within {self.connection.timeout:g} s"
                await self._emit(emit, [_bad(b, reason) for b in bindings])
            else:
                self.health.reads_ok += 1
                received_ns = now_ns()
                samples = [
                    sample_from_data_value(b.path, b.tag, dv, received_ns)
                    for b, dv in zip(bindings, data_values, strict=True)
                ]
                await self._emit(emit, samples)
            next_at += interval_s
            if next_at < loop.time():  # fell behind (slow server): skip the missed ticks, keep the rhythm
                next_at = loop.time()
            await asyncio.sleep(next_at - loop.time())

    async def _mark_all_bad(self, emit: Emit, reason: str) -> None:
        if self._marked_bad or not self.bindings:
            return
        self._marked_bad = True
        self.health.reads_failed += 1
        await self._emit(emit, [_bad(b, reason) for b in self.bindings])

    async def _emit(self, emit: Emit, samples: list[Sample]) -> None:
        try:
            await emit(samples)
        except Exception as error:
            raise _EmitFailed() from error
        self.health.samples += len(samples)


async def build_client(
    connection: OpcUaConnection,
    *,
    name: str,
    pki_dir: Path = DEFAULT_PKI_DIR,
    watchdog_interval_s: float = WATCHDOG_INTERVAL_S,
) -> Client:
    """An unconnected asyncua Client with the connection's security, certificate and user set up.

    Secure modes need the server's certificate: unless `server_certificate` pins it, asyncua
    fetches it from the server's endpoint list, so this may already talk to the server.
    """
    client = Client(connection.url, timeout=connection.timeout, watchdog_intervall=watchdog_interval_s)
    client.name = client.description = name
    client.session_timeout = SESSION_TIMEOUT_MS
    if connection.username:
        client.set_user(connection.username)
        client.set_password(connection.password or "")
    certificate, private_key = client_certificate(connection, pki_dir)
    client.application_uri = (application_uri_of(certificate) if certificate else None) or default_client_uri()
    if connection.security != OpcUaSecurity.NONE:
        assert certificate is not None and private_key is not None
        mode = (
            ua.MessageSecurityMode.Sign
            if connection.security == OpcUaSecurity.SIGN
            else ua.MessageSecurityMode.SignAndEncrypt
        )
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            certificate=str(certificate),
            private_key=str(private_key),
            server_certificate=connection.server_certificate,
            mode=mode,
        )
    return client


def client_certificate(connection: OpcUaConnection, pki_dir: Path) -> tuple[Path | None, Path | None]:
    """The configured certificate, else the one `edgefab opcua cert` made, else a new one (secure modes only)."""
    if connection.certificate:
        if not connection.private_key:
            raise OpcUaError("connection.private_key is required with connection.certificate")
        return Path(connection.certificate), Path(connection.private_key)
    certificate, private_key = pki_dir / CERTIFICATE_FILE, pki_dir / PRIVATE_KEY_FILE
    if certificate.is_file() and private_key.is_file():
        return certificate, private_key
    if connection.security == OpcUaSecurity.NONE:
        return None, None
    created = ensure_application_certificate(pki_dir, default_client_uri())
    log.warning(
        "created OPC UA client certificate %s (ApplicationURI %s): trust it on the server",
        created.certificate_path,
        created.application_uri,
    )
    return created.certificate_path, created.private_key_path


_READ_ONLY = {"BadUserAccessDenied", "BadNotWritable", "BadWriteNotSupported"}
_FILTER_REFUSED = {"BadFilterNotAllowed", "BadMonitoredItemFilterUnsupported", "BadDeadbandFilterInvalid"}


def _bad(binding: TagBinding, reason: str) -> Sample:
    return Sample(binding.path, None, now_ns(), Quality.BAD, reason)


def _group_by(bindings: list[TagBinding], key: Callable[[TagBinding], float]) -> dict[float, list[TagBinding]]:
    groups: dict[float, list[TagBinding]] = defaultdict(list)
    for binding in bindings:
        groups[key(binding)].append(binding)
    return dict(groups)


def _node_id(text: str, namespaces: list[str]) -> ua.NodeId:
    """Parse a configured node id; `nsu=<uri>;...` is resolved against the server's namespace array."""
    if text.startswith("nsu="):
        uri, _, rest = text[4:].partition(";")
        if uri not in namespaces:
            raise OpcUaError(f"the server has no namespace {uri!r} (node {text})")
        text = f"ns={namespaces.index(uri)};{rest}"
    try:
        return ua.NodeId.from_string(text)
    except (ValueError, ua.UaError) as error:
        raise OpcUaError(f"{text!r} is not an OPC UA node id: {error}") from None


def _monitored_item(
    handle: int, node_id: ua.NodeId, sampling_interval_s: float, deadband: float | None
) -> ua.MonitoredItemCreateRequest:
    parameters = ua.MonitoringParameters()
    parameters.ClientHandle = handle
    parameters.SamplingInterval = sampling_interval_s * 1000
    parameters.QueueSize = 1
    parameters.DiscardOldest = True
    if deadband:
        data_filter = ua.DataChangeFilter()
        data_filter.Trigger = ua.DataChangeTrigger.StatusValue
        data_filter.DeadbandType = 1  # absolute
        data_filter.DeadbandValue = deadband
        parameters.Filter = data_filter
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value)
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = parameters
    return request


async def _close_quietly(client: Client) -> None:
    """Best effort: close the session politely if the server still listens, always drop the socket."""
    client.connection_lost_callback = None
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), timeout=2.0)
    with contextlib.suppress(Exception):
        client.disconnect_socket()
