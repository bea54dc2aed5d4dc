"""The alarm service inside `edgefab run`: engine + state on disk + event outbox + notifications.

Data path: the runtime hands every device's samples (as read, before report-by-exception)
to `observe`; a clock task calls `tick` every `evaluate_every`. Each alarm event is

1. saved as the alarm's new status (`AlarmStateStore`, survives a restart),
2. appended to the alarm event outbox, a `gateway.buffer.Buffer` in its own file with one
   cursor (`mqtt-alarms`), which a `Forwarder` publishes retained at QoS 1 on
   `{machine path}/_alarms/{alarm}`, replaying in order after a broker outage or a restart,
3. handed to the `Notifier` (routing, rate limit, its own durable outbox).

Operator commands arrive on `{machine path}/_alarms/{alarm}/cmd` as JSON
`{"action": "ack" | "shelve" | "unshelve", "user": ..., "duration_s": ..., "request_id": ...}`;
the answer goes to `.../cmd/response`, and the resulting event to the alarm topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_config.alarms_schema import Alarms
from edge_config.schema import SiteConfig
from gateway.alarms.engine import AlarmEngine
from gateway.alarms.events import AlarmEvent, alarm_command_filter, alarm_topic, parse_alarm_command_topic
from gateway.alarms.lifecycle import AlarmCommandError, AlarmState, Transition
from gateway.alarms.mqtt_channel import MqttSideChannel
from gateway.alarms.store import AlarmStateStore
from gateway.buffer import AsyncBuffer, Buffer
from gateway.forwarder import Forwarder
from gateway.health import AlarmsSnapshot
from gateway.notify.notifier import Notifier
from gateway.notify.routing import Notification, escalations_due
from gateway.sample import Sample
from gateway.sinks.base import SinkCounters
from gateway.sinks.mqtt_connection import Message
from gateway.sinks.uns import iso_utc_ms

log = logging.getLogger("edgefab.alarms")

EVENT_SINK = "mqtt-alarms"
OUTBOX_MAX_BYTES = 64 << 20


def side_files(buffer_path: Path) -> dict[str, Path]:
    """The alarm side's SQLite files, next to the gateway's buffer file."""
    stem = buffer_path.with_suffix("")
    return {
        "state": Path(f"{stem}.alarm-state.db"),
        "events": Path(f"{stem}.alarm-events.db"),
        "notify": Path(f"{stem}.notify.db"),
        "audit": Path(f"{stem}.writes.db"),
    }


class AlarmEventSink:
    """Publishes alarm events (Samples whose value is the event JSON) retained on their topics."""

    def __init__(self, channel: MqttSideChannel) -> None:
        self.name = EVENT_SINK
        self.channel = channel
        self.counters: SinkCounters = channel.counters

    @property
    def connected(self) -> bool:
        return self.channel.connected

    async def start(self) -> None:
        await self.channel.start()

    async def stop(self) -> None:
        await self.channel.stop()

    async def deliver(self, samples: list[Sample]) -> None:
        await self.channel.publish([Message(s.tag, str(s.value).encode(), 1, True) for s in samples])
        self.counters.samples_delivered += len(samples)


class AlarmService:
    def __init__(
        self,
        config: SiteConfig,
        alarms: Alarms,
        buffer_path: Path,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.alarms = alarms
        self.clock_ns = clock_ns
        files = side_files(buffer_path)
        self.engine = AlarmEngine(config, alarms, clock_ns())
        self.store = AlarmStateStore(files["state"])
        saved = self.store.load()
        self.engine.restore(saved)
        self.removed = sorted(key for key in saved if key not in self.engine.alarms)
        """Alarms saved by an earlier run whose definition is gone: announced once as `removed`."""
        self.notifier = Notifier(alarms.notify, files["notify"]) if alarms.notify.channels else None
        self.channel: MqttSideChannel | None = None
        self.events_buffer: AsyncBuffer | None = None
        self.forwarder: Forwarder | None = None
        mqtt = config.sinks.mqtt
        if mqtt is not None:
            self.channel = MqttSideChannel(
                mqtt,
                config.gateway.name,
                "alarms",
                subscriptions=(alarm_command_filter(config.site.enterprise, config.site.site),),
                on_command=self.on_command,
            )
            self.events_buffer = AsyncBuffer(Buffer(files["events"], [EVENT_SINK], max_bytes=OUTBOX_MAX_BYTES))
            self.forwarder = Forwarder(AlarmEventSink(self.channel), self.events_buffer, batch_size=200)
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self.published: list[AlarmEvent] = []
        """Events of this run, newest last (bounded), for diagnostics and tests."""
        self.transitions: Counter[str] = Counter()
        """Events of this run by transition (also the removals announced at start), for /metrics."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.notifier is not None:
            await self.notifier.start()
        if self.forwarder is not None:
            await self.forwarder.sink.start()
            self._tasks.append(asyncio.create_task(self.forwarder.run(), name="alarm-events"))
        self._tasks.append(asyncio.create_task(self._clock(), name="alarm-clock"))
        await self._announce_removed()
        log.info(
            "alarms: %d alarms on %d machines",
            len(self.engine.alarms),
            len({a.device.name for a in self.engine.alarms.values()}),
        )

    async def stop(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        if self.forwarder is not None and self._tasks:
            self.forwarder.stop()  # deliver what is buffered for a moment; the rest waits for the next start
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._tasks[0], 3.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.forwarder is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.forwarder.sink.stop(), 5.0)
        if self.events_buffer is not None:
            await self.events_buffer.close()
        if self.notifier is not None:
            await self.notifier.stop()
        self.store.close()

    async def _announce_removed(self) -> None:
        """A removed alarm's retained topic and MES row would show its last state forever: end it as normal."""
        if not self.removed:
            return
        if self.events_buffer is not None:
            now = self.clock_ns()
            samples = []
            for key in self.removed:
                machine_path, alarm = key.rsplit("/", 1)
                area, line, machine = machine_path.split("/")[2:5]
                doc = {
                    "event_id": f"{key}@{now}/removed", "alarm": alarm, "key": key, "path": machine_path,
                    "machine": machine, "area": area, "line": line, "priority": "low", "transition": "removed",
                    "state": "normal", "active": False, "acked": True, "shelved": False, "value": None,
                    "message": {"en": "alarm removed from the configuration", "zh-CN": "报警已从配置中删除"},
                    "ts": iso_utc_ms(now), "ts_ns": now,
                }  # fmt: skip
                samples.append(Sample(alarm_topic(machine_path, alarm), json.dumps(doc, ensure_ascii=False), now))
            await self.events_buffer.append(samples)
        self.transitions["removed"] += len(self.removed)
        self.store.delete(self.removed)
        log.info("alarms no longer configured, announced as removed: %s", ", ".join(self.removed))
        self.removed = []

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.alarms.evaluate_every)
            try:
                await self.tick(self.clock_ns())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alarm clock tick failed")

    # ------------------------------------------------------------------ data path

    async def observe(self, samples: Sequence[Sample]) -> None:
        async with self._lock:
            await self._publish(self.engine.observe(samples))

    async def tick(self, now_ns: int) -> None:
        async with self._lock:
            await self._publish(self.engine.tick(now_ns))
            await self._escalate(now_ns)

    async def _publish(self, events: list[AlarmEvent]) -> None:
        if not events:
            return
        self.store.save({e.key: self.engine.alarms[e.key].status for e in events})
        for event in events:
            log.info(
                "alarm %s %s (%s)",
                event.key,
                event.transition.value,
                event.status.state.value,
                extra={"event": "alarm", "alarm": event.key, "transition": event.transition.value},
            )
        if self.events_buffer is not None:
            await self.events_buffer.append([Sample(e.topic, e.payload().decode(), e.ts_ns) for e in events])
        if self.notifier is not None:
            await self.notifier.handle([e.document() for e in events])
        self.published.extend(events)
        del self.published[:-1000]
        self.transitions.update(e.transition.value for e in events)

    async def snapshot(self) -> AlarmsSnapshot:
        """What /healthz and /metrics show of the alarms (docs/alarms.md, "Health")."""
        by_state = dict.fromkeys((state.value for state in AlarmState), 0)
        shelved = 0
        for alarm in self.engine.alarms.values():
            by_state[alarm.status.state.value] += 1
            shelved += bool(alarm.status.shelved)
        unpublished = 0
        if self.events_buffer is not None:
            unpublished = (await self.events_buffer.metrics()).sinks[EVENT_SINK].depth
        return AlarmsSnapshot(
            alarms=len(self.engine.alarms),
            by_state=by_state,
            shelved=shelved,
            transitions=dict(self.transitions),
            events_unpublished=unpublished,
            notifications=await self.notifier.snapshot() if self.notifier is not None else {},
        )

    async def _escalate(self, now_ns: int) -> None:
        if self.notifier is None:
            return
        notify = self.alarms.notify
        if not any(route.escalate_after for route in notify.routes):
            return
        for alarm in self.engine.alarms.values():
            status = alarm.status
            if status.state is not AlarmState.ACTIVE_UNACKED or status.shelved or status.active_since_ns is None:
                continue
            event = self.engine.event(alarm, Transition.RAISED, now_ns).document()
            for index, channels in escalations_due(notify, event, status.active_since_ns, status.escalated, now_ns):
                await self.notifier.enqueue([Notification(c, "escalated", event) for c in channels])
                self.engine.mark_escalated(alarm.key, index)
                self.store.save({alarm.key: self.engine.alarms[alarm.key].status})
                log.warning("alarm %s not acknowledged: escalated to %s", alarm.key, ", ".join(channels))

    # ------------------------------------------------------------------ commands

    async def on_command(self, topic: str, payload: bytes) -> None:
        key = parse_alarm_command_topic(topic)
        if key is None:
            return
        answer = await self.command(key, payload)
        if self.channel is not None:
            body = json.dumps(answer, ensure_ascii=False).encode()
            with contextlib.suppress(Exception):
                await self.channel.publish([Message(f"{topic}/response", body, 1, False)])

    async def command(self, key: str, payload: bytes | dict[str, Any]) -> dict[str, Any]:
        """Apply one operator command; the answer says `ok` or the plain reason it was refused."""
        try:
            doc = json.loads(payload) if isinstance(payload, bytes | str) else dict(payload)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            return {"ok": False, "reason": f"command is not a JSON object: {e}"}
        request_id = doc.get("request_id")
        duration = doc.get("duration_s")
        try:
            if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
                raise AlarmCommandError("duration_s must be a number of seconds")
            async with self._lock:
                event = self.engine.command(
                    key, str(doc.get("action", "")), str(doc.get("user") or ""), self.clock_ns(), duration
                )
                await self._publish([event])
        except AlarmCommandError as e:
            log.info("alarm command on %s refused: %s", key, e)
            return {"request_id": request_id, "ok": False, "alarm": key, "reason": str(e)}
        return {"request_id": request_id, "ok": True, "alarm": key, "state": event.status.state.value}
