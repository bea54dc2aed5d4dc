"""`edgefab mes run`: the thin MQTT shell around the pure ingest core.

paho-mqtt's network thread only queues raw messages; one worker thread parses, reorders,
translates and writes them in batches. The MQTT session is persistent (clean_session=False,
QoS 1) so messages published while the MES was down are delivered when it comes back; the
tag cursors in the database make that replay (and any redelivery) count nothing twice.
Messages are acknowledged by paho on receipt: a crash can lose at most the reorder window of
state changes (counters are cumulative, so no parts are lost).
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_config.schema import SiteConfig
from mes_lite.db import make_engine, session_factory
from mes_lite.ingest.events import BATCH_TAG, PayloadError, ReorderBuffer, TagBinding, parse_message, translators_for
from mes_lite.ingest.plant_sync import bindings_from_config, ensure_work_centers
from mes_lite.ingest.writer import IngestWriter
from mes_lite.inventory import auto_backflush
from mes_lite.services import oee_cache
from mes_lite.settings import MesSettings

log = logging.getLogger(__name__)

BATCH_MAX_MESSAGES = 2000
POLL_S = 0.2
ROLL_INTERVAL_S = 30.0
ROLL_LAG_NS = 10 * 1_000_000_000
"""Roll at edges at least this old, so a state change still in the reorder window lands after them."""


class IngestConfigError(Exception):
    """The ingest cannot start: no edge config, no broker URL, no tags with OEE roles."""


@dataclass(frozen=True)
class Subscription:
    topic_to_path: dict[str, str]  # MQTT topic -> tag path (or machine path + /_batch)


def subscriptions(bindings: Iterable[TagBinding], topic_template: str) -> Subscription:
    from gateway.sinks.uns import TopicMapper

    mapper = TopicMapper(topic_template)
    topics: dict[str, str] = {}
    for binding in bindings:
        topics[mapper.tag_topic(binding.tag_path)] = binding.tag_path
        machine = binding.tag_path.rsplit("/", 1)[0]
        topics[mapper.batch_topic(machine)] = f"{machine}/{BATCH_TAG}"
    return Subscription(topics)


class Ingestor:
    def __init__(
        self,
        settings: MesSettings,
        config: SiteConfig,
        mqtt_url: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        sink = config.sinks.mqtt
        self.mqtt_url = mqtt_url or settings.mqtt_url or (sink.url if sink else None)
        if not self.mqtt_url:
            raise IngestConfigError("no MQTT broker: give --mqtt URL or an mqtt sink in the edge config")
        self.bindings = bindings_from_config(config)
        if not self.bindings:
            raise IngestConfigError("no tag in the edge config has an OEE role (state, total_count, ...)")
        template = sink.topic_template if sink else "{enterprise}/{site}/{area}/{line}/{machine}/{tag}"
        self.subscription = subscriptions(self.bindings, template)
        self.client_id = client_id or f"edgefab-mes-{config.site.enterprise}-{config.site.site}"
        self.engine = make_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        with self.sessions() as session:
            created = ensure_work_centers(session, config)
            session.commit()
        for path in created:
            log.info("registered work center %s from the edge config", path)
        self.writer = IngestWriter(
            self.sessions, translators_for(self.bindings, settings.counter_max_delta), settings.timezone
        )
        self.writer.load_cursors()
        self.reorder = ReorderBuffer(settings.reorder_window_s)
        self._cache_warmer = oee_cache.CacheWarmer(settings.micro_stop_threshold_s)
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.processed = 0
        self._cursors_stale = False
        self.client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None

    # -- MQTT (paho's thread) -------------------------------------------------------------------
    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.warning("mqtt %s: connection refused: %s", self.client_id, reason_code)
            return
        client.subscribe([(topic, 1) for topic in self.subscription.topic_to_path])
        log.info("mqtt %s: connected, %d topics", self.client_id, len(self.subscription.topic_to_path))
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:  # type: ignore[no-untyped-def]
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("mqtt %s: disconnected (%s); paho reconnects", self.client_id, reason_code)

    def _on_message(self, _client, _userdata, message) -> None:  # type: ignore[no-untyped-def]
        self.inbox.put((message.topic, message.payload))

    def start(self) -> None:
        url = urlparse(self.mqtt_url)
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False
        )
        sink = self.config.sinks.mqtt
        if sink and sink.username is not None:
            client.username_pw_set(sink.username, sink.password)
        if url.scheme == "mqtts":
            client.tls_set(ca_certs=sink.tls.ca if sink and sink.tls else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.connect_async(url.hostname or "127.0.0.1", url.port or (8883 if url.scheme == "mqtts" else 1883))
        client.loop_start()
        self.client = client
        self._worker = threading.Thread(target=self._work, name="mes-ingest", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._worker:
            self._worker.join(timeout=10)
        if self.client:
            self.client.disconnect()
            self.client.loop_stop()
        self.engine.dispose()

    # -- the worker -----------------------------------------------------------------------------
    def _drain(self) -> None:
        try:
            topic, payload = self.inbox.get(timeout=POLL_S)
        except queue.Empty:
            return
        batch = [(topic, payload)]
        while len(batch) < BATCH_MAX_MESSAGES:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        for topic, payload in batch:
            path = self.subscription.topic_to_path.get(topic)
            if path is None:
                continue
            try:
                for message in parse_message(path, payload):
                    self.reorder.push(message)
            except PayloadError as e:
                self.writer.stats["bad_payload"] += 1
                log.warning("skipped a message: %s", e)

    def _work(self) -> None:
        last_report = last_roll = time.monotonic()
        last_backflush = -math.inf  # a first round at start: counts that came while the MES was down
        while not self.stopping.is_set():
            self._drain()
            self._flush(everything=False)
            if time.monotonic() - last_roll > ROLL_INTERVAL_S:
                last_roll = time.monotonic()
                self._roll_open_intervals()
                self._warm_oee_cache()
            if time.monotonic() - last_backflush > auto_backflush.INTERVAL_S:
                last_backflush = time.monotonic()
                self._backflush()
            if time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                log.info("ingest: %d messages processed; %s", self.processed, dict(self.writer.stats))
        while not self.inbox.empty():
            self._drain()
        self._flush(everything=True)

    def _flush(self, everything: bool) -> None:
        ready = self.reorder.release(everything=everything)
        if not ready:
            return
        try:
            if self._cursors_stale:  # a failed batch was rolled back: the cursors must forget it too
                self.writer.load_cursors()
                self._cursors_stale = False
            self.writer.write(ready)
            self.processed += len(ready)
        except Exception:  # a database outage must not kill the ingest: retry the batch later
            log.exception("ingest: writing %d messages failed; retrying in 1 s", len(ready))
            self._cursors_stale = True
            for message in ready:
                self.reorder._pending.append((message.ts_ns, message.tag_path, 0.0, message))
            time.sleep(1)

    def _roll_open_intervals(self) -> None:
        """Split long-running states at shift, break and hour edges so they are counted (and cached) correctly."""
        try:
            with self.sessions() as session:
                for wc_id in filter(None, self.writer.work_centers.values()):
                    self.writer.recorder.roll_open_interval(session, wc_id, time.time_ns() - ROLL_LAG_NS)
                session.commit()
        except Exception:
            log.exception("ingest: splitting open intervals failed; retried later")

    def _warm_oee_cache(self) -> None:
        """Fill a little more of the hourly OEE cache (at most 1 s), so long OEE queries find it filled."""
        try:
            with self.sessions() as session:
                ids = [wc for wc in self.writer.work_centers.values() if wc]
                self._cache_warmer.step(session, ids, time.time_ns())
        except Exception:
            log.exception("ingest: filling the OEE cache failed; retried later")

    def _backflush(self) -> None:
        """Backflush what the counts added (mes_lite/inventory/auto_backflush.py); a failure waits for the next round."""
        try:
            done = auto_backflush.run_round(self.sessions)
        except Exception:
            log.exception("ingest: automatic backflush failed; retried in %.0f s", auto_backflush.INTERVAL_S)
            return
        if done.moves:
            log.info("automatic backflush: %s", ", ".join(f"{wo} ({n} moves)" for wo, n in done.moves.items()))

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is queued or held (tests and benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.inbox.empty() and not len(self.reorder):
                return True
            time.sleep(0.05)
        return False


def load_edge_config(path: str) -> SiteConfig:
    from pathlib import Path

    from edge_config.loader import load_config

    if not Path(path).is_file():
        raise IngestConfigError(f"edge config {path} does not exist")
    try:
        return load_config(path)
    except FileNotFoundError:
        raise IngestConfigError(f"edge config {path} does not exist") from None
    except Exception as e:  # the loader reports problems its own way; one line here
        raise IngestConfigError(
            f"edge config {path} is not valid ({e.__class__.__name__}): run `edgefab config check {path}`"
        ) from None


def run_ingest(settings: MesSettings) -> None:
    """Run until SIGTERM or SIGINT."""
    if not settings.edge_config:
        raise IngestConfigError("no edge config: give --config FILE or set EDGEFAB_MES_EDGE_CONFIG")
    ingestor = Ingestor(settings, load_edge_config(settings.edge_config))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ingestor.start()
    from mes_lite.alarms.subscriber import AlarmSubscriber  # alarm events and commands (docs/alarms.md)

    site = ingestor.config.site
    alarm_side = AlarmSubscriber(
        ingestor.sessions, ingestor.mqtt_url, site.enterprise, site.site, config=ingestor.config
    )
    alarm_side.start()
    log.info("ingest running: %s -> %s", ingestor.mqtt_url, settings.database_url)
    try:
        stop.wait()
    finally:
        alarm_side.stop()
        ingestor.stop()
