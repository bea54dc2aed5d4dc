"""Live tag values for the machine pages, straight from the gateway's MQTT topics.

The ingest keeps only OEE-role tags (state, counters), and it runs in another process, so the web
service holds its own small subscriber: one paho client per app, connected on the first machine
page view, subscribed to `<machine topic>/+` (uns-json) and the machine's `_batch` topic
(uns-batch) of each machine someone looks at, keeping the last value of every tag in memory.
Retained values arrive at once; otherwise a value shows with the gateway's next publish.
The broker is `EDGEFAB_MES_MQTT_URL`, else the mqtt sink of `EDGEFAB_MES_EDGE_CONFIG`.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

log = logging.getLogger(__name__)

DEFAULT_TOPIC_TEMPLATE = "{enterprise}/{site}/{area}/{line}/{machine}/{tag}"
BATCH_TAG = "_batch"


@dataclass(frozen=True)
class TagValue:
    value: object
    ts_ns: int
    quality: str
    unit: str | None


def apply_payload(store: dict[str, TagValue], tag: str, payload: bytes) -> None:
    """Fold one uns-json (one tag) or uns-batch (many tags) payload into `store`, newest value wins."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return
    if not isinstance(document, dict):
        return
    entries = document.get("samples", []) if tag == BATCH_TAG else [dict(document, tag=tag)]
    for entry in entries:
        if not isinstance(entry, dict) or "value" not in entry or not isinstance(entry.get("tag"), str):
            continue
        ts_ns = entry.get("ts_ns") if isinstance(entry.get("ts_ns"), int) else 0
        old = store.get(entry["tag"])
        if old is not None and old.ts_ns > ts_ns:
            continue
        unit = entry.get("unit") or (old.unit if old else None)
        store[entry["tag"]] = TagValue(entry["value"], ts_ns, str(entry.get("quality", "good")), unit)


class LiveTags:
    """Last value of each tag of the machines being watched (thread-safe: paho calls back on its thread)."""

    def __init__(self, mqtt_url: str, enterprise_by_site: dict[str, str], topic_template: str) -> None:
        self.mqtt_url = mqtt_url
        self.enterprise_by_site = enterprise_by_site
        self.topic_template = topic_template
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, TagValue]] = {}
        self._topics: dict[str, tuple[str, str]] = {}  # topic -> (machine path, tag or _batch)
        self._client = None
        self.connected = threading.Event()

    def _topic(self, machine_path: str, tag: str) -> str:
        site, area, line, machine = machine_path.split("/")
        fields = {"enterprise": self.enterprise_by_site.get(site, ""), "site": site, "area": area, "line": line}
        return self.topic_template.format(**fields, machine=machine, tag=tag)

    def _start(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        url = urlparse(self.mqtt_url)
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, clean_session=True)
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.scheme == "mqtts":
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = lambda *_: self.connected.clear()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.connect_async(url.hostname or "127.0.0.1", url.port or (8883 if url.scheme == "mqtts" else 1883))
        client.loop_start()
        self._client = client

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.warning("live tags: broker refused the connection: %s", reason_code)
            return
        with self._lock:
            topics = list(self._topics)
        if topics:
            client.subscribe([(topic, 0) for topic in topics])
        self.connected.set()

    def _on_message(self, _client, _userdata, message) -> None:  # type: ignore[no-untyped-def]
        topic = message.topic
        with self._lock:
            target = self._topics.get(topic)
            if target is None:  # a `+` subscription: the tag is the last level
                prefix, _, tag = topic.rpartition("/")
                target = self._topics.get(f"{prefix}/+")
                if target is None:
                    return
                target = (target[0], tag)
            machine, tag = target
            apply_payload(self._values.setdefault(machine, {}), tag, message.payload)

    def watch(self, machine_path: str) -> None:
        """Subscribe to a machine's tags (once); the first call starts the client."""
        with self._lock:
            wildcard = self._topic(machine_path, "+")
            if wildcard in self._topics:
                return
            batch = self._topic(machine_path, BATCH_TAG)
            self._topics[wildcard] = (machine_path, "+")
            self._topics[batch] = (machine_path, BATCH_TAG)
            client = self._client
        if client is None:
            self._start()
        elif self.connected.is_set():
            client.subscribe([(wildcard, 0), (batch, 0)])

    def values(self, machine_path: str) -> dict[str, TagValue]:
        with self._lock:
            return dict(self._values.get(machine_path, {}))

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()


def live_tags_for(app_state: object, session_factory) -> LiveTags | None:  # type: ignore[no-untyped-def]
    """The app's LiveTags, created on first use; None when no broker is configured."""
    existing = getattr(app_state, "live_tags", None)
    if existing is not None:
        return existing
    settings = app_state.settings  # type: ignore[attr-defined]
    url, template = settings.mqtt_url, DEFAULT_TOPIC_TEMPLATE
    if settings.edge_config:
        try:
            from edge_config.loader import load_config

            sink = load_config(settings.edge_config).sinks.mqtt
            if sink is not None:
                url = url or sink.url
                template = sink.topic_template or template
        except Exception as e:  # a broken edge config must not break the page
            log.warning("live tags: cannot read the edge config %s: %s", settings.edge_config, e)
    if not url:
        return None
    from sqlalchemy import select

    from mes_lite.models import Site

    with session_factory() as session:
        enterprises = dict(session.execute(select(Site.code, Site.enterprise)).all())
    live = LiveTags(url, enterprises, template)
    app_state.live_tags = live  # type: ignore[attr-defined]
    return live
