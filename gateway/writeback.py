"""Allow-listed write-back: MQTT commands -> checks -> a write to the PLC -> audit log -> answer.

Command topic `{enterprise}/{site}/{area}/{line}/{machine}/_cmd/{tag}`, payload JSON
`{"value": ..., "request_id": "...", "user": "..."}`; the answer goes to the same topic plus
`/response`. With the Sparkplug B sink, a DCMD to `spBv1.0/{group}/DCMD/{node}/{device}`
whose metrics are named by tag name is executed the same way (user `sparkplug`, no answer
topic: the new value appears in DDATA).

A write happens ONLY when every check passes (pure, `check_write`): the machine and the tag
exist in the edge config, the tag is `writable: true`, the value has the tag's type
(bool / integer / number / text / one of the enum names), lies within `min` / `max` and
fits the register's data type after scale and offset, and the register is writable
(not an input register or discrete input). Everything else is refused with the reason, and
nothing is sent to the machine. Every command, written or not, gets one audit row (SQLite,
synchronous=FULL): who, when, request id, tag, requested value, old value (the last value
the gateway read), new value, result and reason. A repeated request id (an MQTT redelivery)
gets the first answer again and is not written twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from connectors.base import LinkState
from connectors.modbus.address import Table
from edge_config.schema import DataType, Device, ModbusTag, SiteConfig
from gateway.sample import Quality, Sample, Value
from gateway.sinks.mqtt_connection import Message
from gateway.sinks.uns import iso_utc_ms

log = logging.getLogger("edgefab.writeback")

CMD_LEVEL = "_cmd"
LINK_WAIT_S = 5.0
"""How long a write waits for a device that is (re)connecting before it fails with the link's reason."""
RESPONSE_SUFFIX = "response"
INTEGER_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(1 << 15), (1 << 15) - 1),
    DataType.UINT16: (0, (1 << 16) - 1),
    DataType.INT32: (-(1 << 31), (1 << 31) - 1),
    DataType.UINT32: (0, (1 << 32) - 1),
    DataType.INT64: (-(1 << 63), (1 << 63) - 1),
    DataType.UINT64: (0, (1 << 64) - 1),
}


class WriteRefused(ValueError):
    """A command that must not reach the machine; the message says why, in plain words."""


class Writer(Protocol):
    async def write(self, tag_name: str, value: bool | int | float | str) -> None: ...


def command_filter(enterprise: str, site: str) -> str:
    return f"{enterprise}/{site}/+/+/+/{CMD_LEVEL}/+"


def parse_command_topic(topic: str) -> tuple[str, str] | None:
    """`ent/site/area/line/machine/_cmd/tag` -> (machine path, tag)."""
    parts = topic.split("/")
    if len(parts) != 7 or parts[5] != CMD_LEVEL:
        return None
    return "/".join(parts[:5]), parts[6]


# ---------------------------------------------------------------- the allow-list (pure)


def check_write(device: Device, tag_name: str, value: Any) -> bool | int | float | str:
    """The value to write, or WriteRefused with the reason. Nothing here touches the machine."""
    tag = device.tags.get(tag_name)
    if tag is None:
        if tag_name in device.derived:
            raise WriteRefused(
                f"{device.name}/{tag_name} is a derived tag, computed by the gateway: it cannot be written"
            )
        raise WriteRefused(f"{device.name} has no tag {tag_name!r}")
    if not tag.writable:
        raise WriteRefused(
            f"{device.name}/{tag_name} is not writable: only tags marked writable: true in the edge config can be written"
        )
    if isinstance(tag, ModbusTag) and tag.parsed_address.table in (Table.INPUT_REGISTER, Table.DISCRETE_INPUT):
        raise WriteRefused(f"{device.name}/{tag_name} is at {tag.address}, a read-only Modbus table")
    if value is None or isinstance(value, list | dict):
        raise WriteRefused(f"value must be a bool, a number or a text (got {json.dumps(value)})")
    if tag.map:
        names = sorted(set(tag.map.values()))
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in tag.map:
            return value
        raise WriteRefused(f"{value!r} is not one of {', '.join(names)} (the states of {tag_name})")
    data_type = tag.type if isinstance(tag, ModbusTag) else None
    if data_type is DataType.BOOL or (data_type is None and isinstance(value, bool)):
        if isinstance(value, bool):
            return value
        raise WriteRefused(f"{tag_name} is a bool: send true or false (got {json.dumps(value)})")
    if data_type is DataType.STRING:
        if not isinstance(value, str):
            raise WriteRefused(f"{tag_name} is a text: send a string (got {json.dumps(value)})")
        if isinstance(tag, ModbusTag) and len(value.encode()) > 2 * tag.register_count:
            raise WriteRefused(f"{value!r} is longer than the {2 * tag.register_count} bytes of {tag_name}")
        return value
    if data_type is None and isinstance(value, str):
        return value  # an OPC UA text node: the server checks its type
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WriteRefused(f"{tag_name} is a number: send a number (got {json.dumps(value)})")
    if not math.isfinite(value):
        raise WriteRefused(f"{value} is not a finite number")
    if tag.min is not None and value < tag.min:
        raise WriteRefused(f"{value:g} is below the minimum {tag.min:g} of {tag_name}")
    if tag.max is not None and value > tag.max:
        raise WriteRefused(f"{value:g} is above the maximum {tag.max:g} of {tag_name}")
    if data_type in INTEGER_RANGES:
        raw = (value - tag.offset) / tag.scale
        if tag.scale == 1 and tag.offset == 0 and not float(value).is_integer():
            raise WriteRefused(f"{tag_name} is an integer ({data_type.value}): {value} has a fraction")
        low, high = INTEGER_RANGES[data_type]
        if not low <= round(raw) <= high:
            raise WriteRefused(f"{value:g} does not fit {tag_name} ({data_type.value}, raw {round(raw)})")
        return int(value) if float(value).is_integer() else value
    return value


# ---------------------------------------------------------------- the audit log


@dataclass(frozen=True)
class AuditEntry:
    ts_ns: int
    user: str
    request_id: str
    source: str
    tag_path: str
    requested: Any
    old_value: Any
    new_value: Any
    result: str
    """written | refused | failed"""
    reason: str


class AuditLog:
    """Append-only SQLite table of every write command (synchronous=FULL: a write is rare and must not vanish)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS write_audit (id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, user TEXT NOT NULL, "
            "request_id TEXT NOT NULL, source TEXT NOT NULL, tag_path TEXT NOT NULL, requested TEXT, old_value TEXT, "
            "new_value TEXT, result TEXT NOT NULL, reason TEXT NOT NULL, response TEXT NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS write_audit_request ON write_audit (request_id)")

    def record(self, entry: AuditEntry, response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO write_audit (ts_ns, user, request_id, source, tag_path, requested, old_value, new_value, "
                "result, reason, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.ts_ns, entry.user, entry.request_id, entry.source, entry.tag_path,
                    json.dumps(entry.requested), json.dumps(entry.old_value), json.dumps(entry.new_value),
                    entry.result, entry.reason, json.dumps(response, ensure_ascii=False),
                ),
            )  # fmt: skip

    def response_for(self, request_id: str, tag_path: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM write_audit WHERE request_id = ? AND tag_path = ? ORDER BY id LIMIT 1",
                (request_id, tag_path),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def entries(self) -> list[AuditEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT ts_ns, user, request_id, source, tag_path, requested, old_value, new_value, result, reason "
                "FROM write_audit ORDER BY id"
            ).fetchall()
        return [
            AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), json.loads(r[7]), r[8], r[9])
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---------------------------------------------------------------- the service


class WriteBack:
    """Executes write commands against the gateway's own connectors (one connection per device)."""

    def __init__(self, config: SiteConfig, writers: dict[str, Writer], audit_path: Path) -> None:
        self.config = config
        self.writers = writers
        self.audit = AuditLog(audit_path)
        self._devices = {config.tag_path(d, "x").rsplit("/", 1)[0]: d for d in config.devices}
        self._latest: dict[str, Value] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.channel: Any = None
        self._sparkplug_group = config.site.site
        mqtt = config.sinks.mqtt
        if mqtt is not None:
            from gateway.alarms.mqtt_channel import MqttSideChannel

            subscriptions = [command_filter(config.site.enterprise, config.site.site)]
            if mqtt.format == "sparkplug-b":
                subscriptions.append(f"spBv1.0/{config.site.site}/DCMD/{config.gateway.name}/+")
            self.channel = MqttSideChannel(
                mqtt, config.gateway.name, "commands", subscriptions=tuple(subscriptions), on_command=self.on_message
            )

    async def start(self) -> None:
        if self.channel is not None:
            await self.channel.start()

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.stop()
        self.audit.close()

    async def observe(self, samples: list[Sample]) -> None:
        """The last good value read of every tag: the `old_value` of the next write."""
        for sample in samples:
            if sample.quality is Quality.GOOD:
                self._latest[sample.tag] = sample.value

    # -- MQTT

    async def on_message(self, topic: str, payload: bytes) -> None:
        if topic.startswith("spBv1.0/"):
            await self._sparkplug_command(topic, payload)
            return
        parsed = parse_command_topic(topic)
        if parsed is None:
            return
        response = await self.execute(parsed[0], parsed[1], payload)
        if self.channel is not None:
            body = json.dumps(response, ensure_ascii=False).encode()
            try:
                await self.channel.publish([Message(f"{topic}/{RESPONSE_SUFFIX}", body, 1, False)])
            except Exception as e:  # the audit log has it; the caller may ask again with the same request id
                log.warning("write response for %s not published: %s", topic, e)

    async def _sparkplug_command(self, topic: str, payload: bytes) -> None:
        from gateway.sinks.sparkplug_proto import Payload

        device_name = topic.rsplit("/", 1)[-1]
        device = next((d for d in self.config.devices if d.name == device_name), None)
        try:
            command = Payload.FromString(payload)
        except Exception:
            log.warning("DCMD on %s is not a Sparkplug B payload", topic)
            return
        machine_path = self.config.tag_path(device, "x").rsplit("/", 1)[0] if device else f"?/{device_name}"
        for metric in command.metrics:
            kind = metric.WhichOneof("value")
            value = getattr(metric, kind) if kind else None
            doc = {
                "value": value,
                "user": "sparkplug",
                "request_id": f"dcmd-{command.seq}-{metric.name or metric.alias}",
            }
            await self.execute(
                machine_path, metric.name or f"alias:{metric.alias}", json.dumps(doc).encode(), "sparkplug"
            )

    # -- one command

    async def execute(self, machine_path: str, tag_name: str, payload: bytes, source: str = "mqtt") -> dict[str, Any]:
        ts_ns = time.time_ns()
        tag_path = f"{machine_path}/{tag_name}"
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return self._answer(ts_ns, "", "", source, tag_path, None, "refused", "the command is not a JSON object")
        request_id, user = str(doc.get("request_id") or ""), str(doc.get("user") or "")
        requested = doc.get("value")
        if request_id:
            earlier = self.audit.response_for(request_id, tag_path)
            if earlier is not None:
                return {**earlier, "repeated": True}
        device = self._devices.get(machine_path)
        try:
            if not user:
                raise WriteRefused("a write command needs the user who gives it")
            if not request_id:
                raise WriteRefused("a write command needs a request_id")
            if "value" not in doc:
                raise WriteRefused("a write command needs a value")
            if device is None:
                raise WriteRefused(f"no machine {machine_path} on this gateway")
            value = check_write(device, tag_name, requested)
            writer = self.writers.get(device.name)
            if writer is None or not hasattr(writer, "write"):
                raise WriteRefused(f"{device.name}'s connector cannot write")
        except WriteRefused as e:
            return self._answer(ts_ns, user, request_id, source, tag_path, requested, "refused", str(e))
        lock = self._locks.setdefault(tag_path, asyncio.Lock())
        async with lock:
            await self._wait_for_link(writer)
            old_value = self._latest.get(tag_path)
            try:
                await writer.write(tag_name, value)
            except (ValueError, TypeError) as e:
                return self._answer(ts_ns, user, request_id, source, tag_path, requested, "refused", str(e), old_value)
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                return self._answer(ts_ns, user, request_id, source, tag_path, requested, "failed", reason, old_value)
        return self._answer(ts_ns, user, request_id, source, tag_path, requested, "written", "", old_value, value)

    async def _wait_for_link(self, writer: Writer) -> None:
        """A command that arrives during a (re)connect waits a moment for the link instead of failing at once."""
        health = getattr(writer, "health", None)
        if health is None:
            return
        deadline = asyncio.get_running_loop().time() + LINK_WAIT_S
        while str(health.state) != LinkState.CONNECTED.value and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    def _answer(
        self,
        ts_ns: int,
        user: str,
        request_id: str,
        source: str,
        tag_path: str,
        requested: Any,
        result: str,
        reason: str,
        old_value: Any = None,
        new_value: Any = None,
    ) -> dict[str, Any]:
        response = {
            "request_id": request_id,
            "ok": result == "written",
            "result": result,
            "tag": tag_path,
            "value": requested,
            "old_value": old_value,
            "new_value": new_value,
            "reason": reason,
            "user": user,
            "ts": iso_utc_ms(ts_ns),
        }
        entry = AuditEntry(ts_ns, user, request_id, source, tag_path, requested, old_value, new_value, result, reason)
        self.audit.record(entry, response)
        level = logging.INFO if result == "written" else logging.WARNING
        log.log(level, "write %s = %r by %s: %s %s", tag_path, requested, user or "?", result, reason,
                extra={"event": "write", "result": result})  # fmt: skip
        return response
