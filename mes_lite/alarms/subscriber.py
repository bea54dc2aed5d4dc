"""`edgefab mes run`'s alarm side: store alarm events from the UNS, publish queued commands, store answers.

Subscriptions (QoS 1, persistent session so events published while the MES was down arrive
when it is back; the retained alarm topics also give every alarm's current state at once):

- `{enterprise}/{site}/+/+/+/_alarms/+`: alarm events -> `alarms` + `alarm_events`;
- `{enterprise}/{site}/+/+/+/_alarms/+/cmd/response` and `.../_cmd/+/response`: the gateway's
  answers to commands -> `mes_commands.answer`.

The outbox: every `POLL_S`, commands still `pending` are published at QoS 1 and marked
`published` once the broker confirmed them. A write to a tag the edge config does not mark
`writable: true` is not sent at all (status `skipped`, with the reason).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edge_config.schema import SiteConfig
from mes_lite.alarms.models import MesCommand
from mes_lite.alarms.service import now_ns, record_answer, record_event
from mes_lite.services.errors import InvalidInput

log = logging.getLogger(__name__)

POLL_S = 0.2


def write_refusal(config: SiteConfig | None, topic: str) -> str | None:
    """Why a write command must not be sent, judged from the edge config (None: send it)."""
    if config is None:
        return None
    parts = topic.split("/")
    if len(parts) != 7 or parts[5] != "_cmd":
        return f"{topic} is not a command topic"
    machine_path, tag_name = "/".join(parts[:5]), parts[6]
    for device in config.devices:
        if config.tag_path(device, tag_name).rsplit("/", 1)[0] == machine_path:
            tag = device.tags.get(tag_name)
            if tag is None or not tag.writable:
                return f"{device.name} has no writable tag {tag_name!r} in the edge config"
            return None
    return f"no machine {machine_path} in the edge config"


class AlarmSubscriber:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        mqtt_url: str,
        enterprise: str,
        site: str,
        *,
        config: SiteConfig | None = None,
        client_id: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.url = urlparse(mqtt_url)
        self.config = config
        base = f"{enterprise}/{site}/+/+/+"
        self.topics = [f"{base}/_alarms/+", f"{base}/_alarms/+/cmd/response", f"{base}/_cmd/+/response"]
        self.client_id = client_id or f"edgefab-mes-alarms-{enterprise}-{site}"
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._batch: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.events_stored = 0
        self.client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None

    # paho's thread ---------------------------------------------------------------------------
    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.warning("mqtt %s: connection refused: %s", self.client_id, reason_code)
            return
        client.subscribe([(topic, 1) for topic in self.topics])
        self.connected.set()

    def _on_disconnect(self, *_: object) -> None:
        self.connected.clear()

    def _on_message(self, _client, _userdata, message) -> None:  # type: ignore[no-untyped-def]
        if message.payload:  # an empty retained message clears a topic: nothing to store
            self.inbox.put((message.topic, message.payload))

    # lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False
        )
        sink = self.config.sinks.mqtt if self.config else None
        if sink and sink.username is not None:
            client.username_pw_set(sink.username, sink.password)
        if self.url.scheme == "mqtts":
            client.tls_set(ca_certs=sink.tls.ca if sink and sink.tls else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.connect_async(self.url.hostname or "127.0.0.1", self.url.port or 1883)
        client.loop_start()
        self.client = client
        self._worker = threading.Thread(target=self._work, name="mes-alarms", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._worker is not None:
            self._worker.join(10)
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    # worker thread ----------------------------------------------------------------------------
    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                self._drain()
                self.publish_pending()
            except Exception:
                log.exception("alarm subscriber step failed; retrying")
            self.stopping.wait(POLL_S)
        self._drain()

    def _drain(self) -> None:
        """Store what arrived; a batch whose commit failed (database busy) is kept and tried again."""
        while True:
            try:
                self._batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        if not self._batch:
            return
        with self.sessions() as session:
            stored = self.events_stored
            try:
                for topic, payload in self._batch:
                    self._handle(session, topic, payload)
                session.commit()
            except Exception:
                self.events_stored = stored
                raise
        self._batch.clear()

    def _handle(self, session: Session, topic: str, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            log.warning("ignored a message on %s: not JSON", topic)
            return
        if not isinstance(doc, dict):
            return
        if topic.endswith("/response"):
            if doc.get("request_id"):
                record_answer(session, str(doc["request_id"]), doc)
            return
        try:
            if record_event(session, doc):
                self.events_stored += 1
        except InvalidInput as e:
            log.warning("ignored a message on %s: %s", topic, e)

    def publish_pending(self) -> int:
        """Publish queued commands (QoS 1, confirmed); returns how many went out."""
        client = self.client
        if client is None or not self.connected.is_set():
            return 0
        sent = 0
        with self.sessions() as session:
            pending = session.scalars(
                select(MesCommand).where(MesCommand.status == "pending").order_by(MesCommand.id).limit(100)
            ).all()
            for command in pending:
                refusal = write_refusal(self.config, command.topic) if command.kind == "write" else None
                if refusal is not None:
                    command.status, command.answer = "skipped", json.dumps({"ok": False, "reason": refusal})
                    continue
                info = client.publish(command.topic, command.payload.encode(), qos=1)
                try:
                    info.wait_for_publish(5)
                except (RuntimeError, ValueError):
                    break
                if not info.is_published():
                    break
                command.status, command.published_ns = "published", now_ns()
                sent += 1
            session.commit()
        return sent

    def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.inbox.empty() and not self._batch:
                time.sleep(POLL_S * 2)
                if self.inbox.empty() and not self._batch:
                    return True
            time.sleep(0.05)
        return False
