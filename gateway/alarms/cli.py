"""`edgefab alarms ...`: what an integrator needs while setting alarms up.

- `edgefab alarms list CONFIG`: every alarm the gateway will evaluate, per machine;
- `edgefab alarms test-notify CONFIG CHANNEL`: send a test alarm message to one channel now and
  print the service's verdict (the quickest way to check a WeCom / DingTalk / Feishu URL and secret);
- `edgefab alarms writes CONFIG`: the write-back audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    alarms = sub.add_parser("alarms", help="alarms, notifications and the write-back audit log")
    alarms_sub = alarms.add_subparsers(dest="alarms_command", metavar="COMMAND", required=True)

    listing = alarms_sub.add_parser("list", help="the alarms an edge config defines, per machine")
    listing.add_argument("config", help="edge YAML")
    listing.set_defaults(func=_list)

    test = alarms_sub.add_parser("test-notify", help="send a test alarm message to one channel now")
    test.add_argument("config", help="edge YAML")
    test.add_argument("channel", help="channel name under alarms.notify.channels")
    test.set_defaults(func=_test_notify)

    writes = alarms_sub.add_parser("writes", help="print the write-back audit log")
    writes.add_argument("config", help="edge YAML (the log sits next to its buffer file)")
    writes.add_argument("--limit", type=int, default=50, help="newest N entries (default 50)")
    writes.set_defaults(func=_writes)


def _load(path: str):  # type: ignore[no-untyped-def]
    from edge_config.loader import load_config
    from edge_config.problems import ConfigError

    try:
        return load_config(path)
    except FileNotFoundError:
        print(f"edgefab alarms: {path} does not exist", file=sys.stderr)
    except ConfigError:
        print(f"edgefab alarms: {path} has errors: run `edgefab config check {path}`", file=sys.stderr)
    return None


def _list(args: argparse.Namespace) -> int:
    from gateway.alarms.engine import AlarmEngine

    config = _load(args.config)
    if config is None:
        return 1
    if config.alarms is None or not config.alarms.definitions:
        print("no alarms defined")
        return 0
    engine = AlarmEngine(config, config.alarms, time.time_ns())
    for alarm in engine.alarms.values():
        limit = f" limit {alarm.limit:g}" if alarm.limit is not None else ""
        print(f"{alarm.key}  {alarm.definition.kind.value} on {alarm.tag}{limit}  priority {alarm.priority.value}")
    print(f"{len(engine.alarms)} alarms")
    return 0


def _test_notify(args: argparse.Namespace) -> int:
    from gateway.notify.channels import ChannelSink
    from gateway.sinks.base import SinkUnavailable
    from gateway.sinks.uns import iso_utc_ms

    config = _load(args.config)
    if config is None:
        return 1
    channels = config.alarms.notify.channels if config.alarms else {}
    if args.channel not in channels:
        known = ", ".join(sorted(channels)) or "none"
        print(f"edgefab alarms: no channel {args.channel!r} (channels: {known})", file=sys.stderr)
        return 1
    device = config.devices[0]
    now = time.time_ns()
    event = {
        "alarm": "edgefab_test",
        "key": f"{config.tag_path(device, 'edgefab_test')}",
        "path": config.tag_path(device, "x").rsplit("/", 1)[0],
        "machine": device.name,
        "area": device.area,
        "line": device.line,
        "priority": "low",
        "transition": "raised",
        "state": "active_unacked",
        "value": None,
        "limit": None,
        "message": {"en": "edgefab test message: notifications work", "zh-CN": "edgefab 测试消息：通知已接通"},
        "ts": iso_utc_ms(now),
        "ts_ns": now,
    }

    async def send() -> int:
        sink = ChannelSink(args.channel, channels[args.channel])
        await sink.start()
        try:
            await sink._send(event, "raised")
        except SinkUnavailable as e:
            print(f"edgefab alarms: not delivered (would be retried): {e}", file=sys.stderr)
            return 1
        finally:
            await sink.stop()
        if sink.sent:
            print(f"sent to {args.channel}")
            return 0
        print(f"edgefab alarms: {args.channel} refused the message (see the log line above)", file=sys.stderr)
        return 1

    return asyncio.run(send())


def _writes(args: argparse.Namespace) -> int:
    from gateway.alarms.service import side_files
    from gateway.writeback import AuditLog

    config = _load(args.config)
    if config is None:
        return 1
    path = side_files(Path(config.buffer.path))["audit"]  # relative to the working directory, as in `edgefab run`
    if not path.exists():
        print(f"no write-back audit log yet ({path})")
        return 0
    log = AuditLog(path)
    entries = log.entries()[-args.limit :]
    log.close()
    for e in entries:
        reason = f"  ({e.reason})" if e.reason else ""
        print(f"{iso(e.ts_ns)}  {e.user or '?'}  {e.tag_path}  {e.old_value!r} -> {e.requested!r}  {e.result}{reason}")
    return 0


def iso(ts_ns: int) -> str:
    from gateway.sinks.uns import iso_utc_ms

    return iso_utc_ms(ts_ns)
