"""One MQTT connection at a time: a paho client whose socket the event loop watches.

Why a fresh paho client per connection instead of paho's own reconnect: paho keeps
unacknowledged QoS 1 messages and sends them again after reconnecting, while the
durable buffer also replays everything that was not confirmed. Two replays would double
the duplicates and break the order per tag. So a lost connection ends its client (its
in-flight messages are forgotten, `publish_confirmed` raises `SinkUnavailable`), and
the reconnect loop here opens a new one with backoff; the buffer replays, in order.

No network thread: paho's external-loop API (`loop_read`, `loop_write`, `loop_misc`) is
called by the event loop when the socket is readable, when paho queued a packet, and once a
second for the keepalive. The PUBLISH packets of one delivery are queued first and written
together with TCP_CORK set, so they leave in as few TCP segments as fit: one wake-up of the
broker per delivery instead of one per message (on loopback the broker's receive runs in the
sender's system call, so that is CPU of this process). With paho's own thread each packet was
a hand-over between threads and a segment of its own: 16 % more CPU for the whole gateway on
the issue-3 load (docs/gateway.md, "Performance"). Only the blocking TCP/TLS connect runs
in asyncio's default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from connectors.backoff import Backoff
from edge_config.schema import MqttSink as MqttSinkConfig
from gateway.sinks.base import SinkCounters, SinkUnavailable

log = logging.getLogger(__name__)

KEEPALIVE_S = 15
CONNECT_TIMEOUT_S = 10.0
MAX_INFLIGHT_MESSAGES = 0
"""0 = no paho-side window: paho scans its whole in-flight table on every PUBACK when a window is set
(O(window) per ack: 20,000 messages took 10 s with a window of 1000). The forwarder's batch size bounds
what is in flight instead."""


PUBLISH_SLICE = 200
"""Messages published between two yields to the event loop (paho's publish is synchronous, ~50 µs each)."""

MISC_INTERVAL_S = 1.0
"""How often paho's `loop_misc` runs (keepalive PINGREQ, and the check that the PINGRESP came)."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


OnConnected = Callable[["MqttConnection"], Awaitable[None]]
OnMessage = Callable[[str, bytes], None]
WillFactory = Callable[[], Message | None]


LOST_BY_NETWORK = "closed by the broker or the network"
NO_PING_ANSWER = "no answer to the keepalive ping: the broker or the network stopped responding"


class _Session:
    """One paho client, its socket watched by the event loop, and what the asyncio side needs to know.

    Every paho callback runs on the event loop's thread, inside `loop_read`, `loop_write` or
    `loop_misc` called from here (the connect in the executor sends CONNECT but calls back nothing).
    """

    def __init__(
        self, client: paho.Client, loop: asyncio.AbstractEventLoop, on_lost: Callable[[_Session], None]
    ) -> None:
        self.client = client
        self.loop = loop
        self._on_lost = on_lost
        self.connack: asyncio.Future[int] = loop.create_future()
        self.lost = asyncio.Event()
        self.acked = 0  # PUBACKs received
        self.wake_at = 0  # the publishing side wants to be woken once `acked` reaches this
        self.acks_changed = asyncio.Event()
        self.disconnect_reason = ""
        self._fd = -1  # the socket's descriptor while the loop watches it
        self._watching_writable = False
        self._flush: asyncio.Handle | None = None
        self._misc: asyncio.TimerHandle | None = None

    # the socket and the event loop ------------------------------------------
    def attach(self) -> None:
        """Start watching the connected socket (after `connect`, before the CONNACK can arrive)."""
        sock = self.client.socket()
        if sock is None:
            raise ConnectionError("paho has no socket after connecting")
        self.client.on_socket_register_write = self._packet_queued
        self.client.on_socket_close = self._socket_closing
        self._fd = sock.fileno()
        self.loop.add_reader(self._fd, self._readable)
        self._misc = self.loop.call_later(MISC_INTERVAL_S, self._keepalive)
        if self.client.want_write():  # CONNECT not fully written by `connect` (a full send buffer)
            self._packet_queued(self.client, None, sock)

    def detach(self) -> None:
        """Stop watching the socket (idempotent; also run by paho just before it closes the socket)."""
        if self._fd >= 0:
            self.loop.remove_reader(self._fd)
            if self._watching_writable:
                self.loop.remove_writer(self._fd)
            self._fd = -1
        self._watching_writable = False
        for handle in (self._flush, self._misc):
            if handle is not None:
                handle.cancel()
        self._flush = self._misc = None

    def _socket_closing(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self.detach()

    def _packet_queued(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """paho queued a packet: write once the running task yields, with whatever it queues until then."""
        if self._flush is None and self._fd >= 0:
            self._flush = self.loop.call_soon(self.write_queued)

    def write_queued(self) -> None:
        """Write paho's queued packets, corked: a delivery's messages go out together."""
        self._flush = None
        sock = self.client.socket()
        if sock is None:
            return
        _cork(sock, True)
        rc = self.client.loop_write()
        _cork(sock, False)  # sends what is held (a socket paho closed meanwhile is ignored)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.mark_lost(LOST_BY_NETWORK)
            return
        more = self.client.want_write() and self._fd >= 0  # the send buffer is full: go on when it drains
        if more != self._watching_writable:
            if more:
                self.loop.add_writer(self._fd, self.write_queued)
            else:
                self.loop.remove_writer(self._fd)
            self._watching_writable = more

    def _readable(self) -> None:
        rc = self.client.loop_read()
        sock = self.client.socket()
        # TLS: bytes already decrypted wait in the SSL object, where the loop cannot see them
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and sock is not None and _tls_pending(sock):
            rc = self.client.loop_read()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:  # paho closed the socket and called on_disconnect
            self.mark_lost(LOST_BY_NETWORK)

    def _keepalive(self) -> None:
        self._misc = None
        if self.client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.mark_lost(NO_PING_ANSWER)
        elif self._fd >= 0:
            self._misc = self.loop.call_later(MISC_INTERVAL_S, self._keepalive)

    # paho's callbacks -------------------------------------------------------
    def on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not self.connack.done():
            self.disconnect_reason = "" if not reason_code.is_failure else str(reason_code)
            self.connack.set_result(0 if not reason_code.is_failure else int(reason_code.value))

    def on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        # MQTT 3.1.1 has no reason codes: paho reports an unexpected end as "Unspecified error", except
        # its own keepalive timeout (a half-open connection: a cable or Wi-Fi gone, a hung broker)
        if not reason_code.is_failure:
            self.mark_lost(str(reason_code))
        else:
            self.mark_lost(NO_PING_ANSWER if reason_code == "Keep alive timeout" else LOST_BY_NETWORK)

    def on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self.acked += 1
        if self.acked >= self.wake_at > 0:
            self.wake_at = 0
            self.acks_changed.set()

    # both -------------------------------------------------------------------
    def mark_lost(self, reason: str) -> None:
        """The connection is over, whoever noticed first: paho's callback, a failed read or write, a
        publish on the closed socket or a PUBACK timeout. Idempotent; the first reason stays."""
        self.disconnect_reason = self.disconnect_reason or reason
        self.lost.set()
        self.acks_changed.set()
        if not self.connack.done():
            self.connack.set_result(-1)
        self._on_lost(self)


_CORK: int | None = getattr(socket, "TCP_CORK", None)


def _cork(sock: Any, on: bool) -> None:
    """TCP_CORK (Linux): hold written data until uncorked, then send it in full segments."""
    if _CORK is not None:
        with contextlib.suppress(OSError, ValueError):  # closed, or not a TCP socket
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, int(on))


def _tls_pending(sock: Any) -> int:
    pending = getattr(sock, "pending", None)
    return pending() if pending is not None else 0


class MqttConnection:
    """Keeps one MQTT connection up and publishes batches whose delivery it confirms."""

    def __init__(
        self,
        config: MqttSinkConfig,
        *,
        client_id: str,
        counters: SinkCounters,
        will: WillFactory,
        on_connected: OnConnected,
        on_message: OnMessage | None = None,
        subscriptions: tuple[str, ...] = (),
        ack_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        url = urlsplit(config.url)
        self.host = url.hostname or "localhost"
        self.use_tls = url.scheme == "mqtts" or config.tls is not None
        self.port = url.port or (8883 if url.scheme == "mqtts" else 1883)
        self.config = config
        self.client_id = client_id
        self.counters = counters
        self._will = will
        self._on_connected = on_connected
        self._on_message = on_message
        self._subscriptions = subscriptions
        self.ack_timeout_s = ack_timeout_s
        self._backoff = backoff or Backoff(initial_s=0.2, max_s=10.0)
        self._session: _Session | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.last_error = ""

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._ready.is_set() and self._session is not None and not self._session.lost.is_set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"mqtt-{self.client_id}")

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once a connection is up (birth published), False if none is within `timeout_s`.

        Loops because a connection can be lost between `_ready` firing and this coroutine resuming;
        `_ready` is cleared on the loss itself (`_session_lost`), so this never spins.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.connected:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), remaining)
        return True

    async def stop(self, goodbye: list[Message] | None = None) -> None:
        """Publish `goodbye` (confirmed, best effort), then disconnect cleanly."""
        self._stopping = True
        if goodbye and self.connected:
            with contextlib.suppress(SinkUnavailable):
                await self.publish_confirmed(goodbye, timeout_s=min(self.ack_timeout_s, 3.0))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_session()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._connect_once()
                self._backoff.reset()
                assert self._session is not None
                await self._session.lost.wait()
                self.counters.disconnects += 1
                self.last_error = f"connection lost: {self._session.disconnect_reason}"
                log.warning(
                    "mqtt %s: connection to %s:%s lost (%s)",
                    self.client_id,
                    self.host,
                    self.port,
                    self._session.disconnect_reason,
                )
            except asyncio.CancelledError:
                raise
            except Exception as e:  # every connect failure is retried; say why once per attempt
                self.last_error = _plain_error(e)
                log.warning(
                    "mqtt %s: cannot connect to %s:%s: %s", self.client_id, self.host, self.port, self.last_error
                )
            try:
                await self._close_session()
            except Exception:  # never ends the reconnect loop without a word
                log.exception("mqtt %s: closing the lost connection failed", self.client_id)
            if not self._stopping:
                await asyncio.sleep(self._backoff.next_delay_s())

    def _new_client(self) -> paho.Client:
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        client.max_queued_messages_set(0)
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.password)
        if self.use_tls:
            tls = self.config.tls
            client.tls_set(
                ca_certs=tls.ca if tls else None,
                certfile=tls.cert if tls else None,
                keyfile=tls.key if tls else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            if tls and tls.insecure:
                client.tls_insecure_set(True)
        will = self._will()
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        return client

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._new_client()
        session = _Session(client, loop, self._session_lost)
        client.on_connect = session.on_connect
        client.on_disconnect = session.on_disconnect
        client.on_publish = session.on_publish
        if self._on_message is not None:
            handler = self._on_message
            client.on_message = lambda _c, _u, msg: handler(msg.topic, msg.payload)
        self._session = session
        await asyncio.wait_for(
            loop.run_in_executor(None, lambda: client.connect(self.host, self.port, KEEPALIVE_S)), CONNECT_TIMEOUT_S
        )
        session.attach()
        code = await asyncio.wait_for(session.connack, CONNECT_TIMEOUT_S)
        if code != 0:
            raise ConnectionRefusedError(f"broker refused the connection: {session.disconnect_reason or code}")
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self.counters.connects += 1
        self.last_error = ""
        log.info("mqtt %s: connected to %s:%s", self.client_id, self.host, self.port)
        await self._on_connected(self)  # birth messages, before any delivery may use the connection
        if not session.lost.is_set():  # else `_run` is about to close it
            self._ready.set()

    def _session_lost(self, session: _Session) -> None:
        """Not ready from the moment the loss is known, not only once `_run` gets to close the session:
        a `wait_connected` in between would otherwise see the old connection's readiness."""
        if session is self._session:
            self._ready.clear()

    async def _close_session(self) -> None:
        self._ready.clear()
        session, self._session = self._session, None
        if session is None:
            return
        client = session.client
        if client.is_connected():
            client.disconnect()  # a clean DISCONNECT: the broker discards the will
            session.write_queued()  # now, not on the next loop round: paho closes the socket after it
        session.detach()
        sock = client.socket()
        if sock is not None:  # not closed by paho (no DISCONNECT written): close it here
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------ publishing

    async def publish_confirmed(self, messages: list[Message], *, timeout_s: float | None = None) -> None:
        """Publish in order; return when the broker acknowledged every QoS 1 message.

        Raises `SinkUnavailable` when not connected, when the connection drops before
        all PUBACKs arrived, or after `timeout_s` (then the connection is recycled, so a
        late PUBACK cannot be mistaken for one of the next batch).
        """
        session = self._session
        if session is None or session.lost.is_set():
            raise SinkUnavailable(f"mqtt not connected to {self.host}:{self.port}: {self.last_error or 'connecting'}")
        client = session.client
        infos: list[paho.MQTTMessageInfo] = []  # QoS 1 messages not yet known to be acknowledged
        sent = 0
        target = session.acked + sum(1 for m in messages if m.qos > 0)

        def fail(reason: str) -> SinkUnavailable:
            qos0_sent = sum(1 for m in messages[:sent] if m.qos == 0)
            acked_qos1 = (sent - qos0_sent) - sum(1 for i in infos if not i.is_published())
            self.counters.messages_sent += sent
            self.counters.messages_failed += len(messages) - acked_qos1 - qos0_sent
            return SinkUnavailable(reason)

        for message in messages:
            if sent and sent % PUBLISH_SLICE == 0:
                await asyncio.sleep(0)  # let the connectors run during a long batch
                if session.lost.is_set():
                    raise fail(f"mqtt connection lost after {sent} of {len(messages)} messages")
            info = client.publish(message.topic, message.payload, message.qos, message.retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # paho found the socket closed (or could not queue): the loss is known now, whether or not
                # on_disconnect said so yet (as after a PUBACK timeout, the connection is not used again)
                closed = info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
                session.mark_lost(LOST_BY_NETWORK if closed else f"publish failed: {paho.error_string(info.rc)}")
                raise fail(f"mqtt publish failed: {paho.error_string(info.rc)}")
            sent += 1
            if message.qos > 0:
                infos.append(info)
        loop = asyncio.get_running_loop()
        limit_s = timeout_s or self.ack_timeout_s
        deadline = loop.time() + limit_s
        while infos:
            if session.acked >= target:
                # every PUBACK counted; paho marks each info published just after the callback
                infos = [info for info in infos if not info.is_published()]
                if infos:
                    await asyncio.sleep(0.001)
                continue
            if session.lost.is_set():
                raise fail(f"mqtt connection lost with {target - session.acked} messages unacknowledged")
            remaining = deadline - loop.time()
            if remaining <= 0:
                session.mark_lost("PUBACK timeout")  # recycle the connection: late PUBACKs must not count later
                raise fail(f"mqtt: {target - session.acked} PUBACKs missing after {limit_s} s")
            session.acks_changed.clear()
            session.wake_at = target
            if session.acked >= target:  # the last PUBACK came before wake_at was set
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):  # not wait_for: no task per round
                    await session.acks_changed.wait()
        self.counters.messages_sent += sent
        self.counters.messages_confirmed += len(messages)


def _plain_error(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e.reason or e}"
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return str(e) if e.args and isinstance(e.args[0], str) else "connection refused"
    return str(e) or type(e).__name__


def default_client_id(gateway: str, sink_name: str) -> str:
    """Stable per gateway and sink (a broker disconnects the older of two clients with one id)."""
    return f"edgefab-{gateway}-{sink_name}"[:64] or f"edgefab-{uuid.uuid4().hex[:8]}"
