"""`edgefab run CONFIG`, `edgefab demo` and `edgefab status` (see gateway.cli).

Handlers import the gateway lazily so `edgefab --help` stays fast on a Pi. Bad input
(a config that does not load, a derived tag over a missing tag, a port in use) is one
clear line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.config_watch import ConfigWatch

DEFAULT_STATUS_URL = "http://127.0.0.1:9108"

log = logging.getLogger("edgefab.gateway")

_STANDARD_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every `extra=` field (e.g. `event`)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def use_log_format(log_format: str) -> None:
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    logging.getLogger("asyncua").setLevel(logging.WARNING)  # asyncua logs every node at INFO
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)  # amqtt's session state machine


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="run the edge gateway: devices -> pipeline -> durable buffer -> MQTT / InfluxDB",
        description="Run the gateway for CONFIG until SIGTERM/SIGINT (then deliver what is buffered and stop). "
        "SIGHUP, or a change to CONFIG or to a file it includes (unless --no-watch), reloads the configuration: "
        "a valid one restarts the gateway with it, an invalid one is refused and the running one kept.",
    )
    run.add_argument("config", metavar="CONFIG", help="site configuration YAML")
    run.add_argument(
        "--health-host", default="127.0.0.1", help="address of /healthz and /metrics (default %(default)s)"
    )
    run.add_argument("--health-port", type=int, default=None, help="port (default: gateway.health_port; 0 = any free)")
    run.add_argument("--log-format", choices=["text", "json"], default="text", help="json: one object per line")
    run.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    run.add_argument("--flush-timeout", type=float, default=5.0, metavar="S", help="delivery time at shutdown")
    run.add_argument(
        "--watch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reload when CONFIG or a file it includes changes on disk, as on SIGHUP (default: on)",
    )
    run.add_argument(
        "--watch-interval", type=float, default=1.0, metavar="S", help="seconds between checks of the files (default 1)"
    )
    run.set_defaults(func=_run)

    demo = sub.add_parser(
        "demo",
        help="the demo: simulated factory + embedded MQTT broker + gateway, printing live values",
        description="Start the simulated factory, an embedded MQTT broker (unless MQTT_URL points at a reachable "
        "broker) and the gateway with edge_config/examples/demo-factory.yaml, and print live values.",
    )
    demo.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    demo.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    demo.add_argument("--mqtt-port", type=int, default=0, help="embedded broker port (default: 1883 if free, else any)")
    demo.add_argument("--print-every", type=float, default=3.0, metavar="S", help="seconds between live lines")
    demo.add_argument("--health-port", type=int, default=None, help="gateway health port (default: 9108 if free)")
    demo.add_argument(
        "--mes-port", type=int, default=None, help="MES web and API port (default: 8000 if free; 0 = any)"
    )
    demo.add_argument("--log-format", choices=["text", "json"], default="text")
    demo.set_defaults(func=_demo)

    status = sub.add_parser("status", help="show a running gateway's devices and sinks (from /healthz)")
    status.add_argument("--url", default=DEFAULT_STATUS_URL, help="the gateway's health URL (default %(default)s)")
    status.add_argument("--json", action="store_true", help="print the raw /healthz document")
    status.set_defaults(func=_status)


def _fail(message: str) -> int:
    print(f"edgefab: {message}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from edge_config.loader import load_config
    from edge_config.problems import ConfigError
    from gateway.event_loop import loop_factory, loop_name
    from gateway.pipeline import PipelineConfigError, build_pipelines
    from gateway.runtime import Gateway

    use_log_format(args.log_format)
    watch: ConfigWatch | None = None
    if args.watch:
        if args.watch_interval <= 0:
            return _fail(f"--watch-interval must be positive, got {args.watch_interval}")
        from edge_config.loader import config_files
        from gateway.config_watch import ConfigWatch

        watch = ConfigWatch(functools.partial(config_files, args.config), args.watch_interval)
        watch.rebase_now()  # before the load: an edit made while it runs is noticed
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 1
    except OSError as e:
        return _fail(f"cannot read {args.config}: {e.strerror or e}")

    try:
        factory = loop_factory()
    except ValueError as e:
        return _fail(str(e))
    # Threads here (event loop, buffer, MQTT network) pass the GIL around; the default 5 ms
    # switch interval would add up to 5 ms per hand-over to a sample's delivery delay.
    sys.setswitchinterval(0.001)

    async def main() -> None:
        """Run the gateway; on SIGHUP or a file change load the files again and, if valid, restart with them.

        The restart is a graceful stop (deliver, close the buffer) and a fresh start on the
        same buffer file, so nothing buffered is lost; polling pauses for about a second. A
        file that does not load is refused with its problems logged, and the gateway keeps
        running with the configuration it has. A reload that arrives while the gateway is
        shutting down (SIGTERM, --duration) is dropped, so the gateway stops as asked.
        """
        loop = asyncio.get_running_loop()
        current, reloaded = config, []
        finished = False
        gateway: Gateway | None = None
        pending: set[asyncio.Task[None]] = set()

        def finish() -> None:
            nonlocal finished
            finished = True
            if gateway is not None:
                gateway.request_stop()

        def shutting_down() -> bool:
            """Stopping, and not for a reload (a reload queues its configuration before it stops the gateway)."""
            return finished or (gateway is not None and gateway.status == "stopping" and not reloaded)

        async def try_reload(trigger: str, extra: dict[str, object]) -> None:
            log.info("%s: loading %s again", trigger, args.config, extra={"event": "reload", **extra})
            try:
                new = await asyncio.to_thread(load_config, args.config)
                build_pipelines(new)
            except (ConfigError, PipelineConfigError, OSError) as e:
                log.error(
                    "reload refused, still running the previous configuration: %s", e, extra={"event": "reload_refused"}
                )
                return
            if shutting_down():
                log.info("the gateway is shutting down: not restarting it", extra={"event": "reload_dropped"})
                return
            reloaded.append(new)
            if gateway is not None:
                gateway.request_stop()

        async def on_sighup() -> None:
            if watch is not None:
                await watch.rebase()  # this edit is being loaded now: the watcher need not reload it again
            await try_reload("SIGHUP", {"trigger": "sighup"})

        def on_hup() -> None:
            task = asyncio.create_task(on_sighup())
            pending.add(task)
            task.add_done_callback(pending.discard)

        async def on_files_changed(changed: list[Path]) -> None:
            folder = Path(args.config).resolve().parent
            names = ", ".join(os.path.relpath(p, folder) for p in changed)
            await try_reload(f"{names} changed", {"trigger": "file_change", "files": [str(p) for p in changed]})

        def on_stop_signal(sig: signal.Signals) -> None:
            """SIGTERM / SIGINT end the run, also while a reload is restarting the gateway (handled
            here, not by each Gateway, so a stop during a reload is not mistaken for the reload's stop)."""
            log.info("received %s: shutting down", sig.name, extra={"event": "signal"})
            finish()

        log.info("event loop: %s", loop_name(loop), extra={"event": "event_loop", "loop": loop_name(loop)})
        if args.duration is not None:
            loop.call_later(args.duration, finish)
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_stop_signal, sig)
        watching: asyncio.Task[None] | None = None
        if watch is not None:
            watching = asyncio.create_task(watch.run(on_files_changed), name="config-watch")
            log.info(
                "watching %d configuration file(s) for changes, every %g s",
                len(watch.files),
                watch.interval_s,
                extra={"event": "watching", "files": [str(p) for p in watch.files]},
            )
        try:
            while True:
                gateway = Gateway(current, health_host=args.health_host, health_port=args.health_port,
                                  flush_timeout_s=args.flush_timeout)  # fmt: skip
                if finished:  # stopped before this gateway was built
                    return
                await gateway.run(install_signal_handlers=False)
                if finished or not reloaded:
                    return
                current = reloaded.pop()
                reloaded.clear()
                log.info("restarting with the reloaded configuration", extra={"event": "reloaded"})
        finally:
            if watching is not None:
                watching.cancel()

    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
    except PipelineConfigError as e:
        return _fail(str(e))
    except OSError as e:  # typically the health port is taken, or the buffer's folder is not writable
        return _fail(str(e))
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from edge_config.problems import ConfigError
    from gateway.demo import run_demo
    from gateway.event_loop import loop_factory

    use_log_format(args.log_format)
    if args.speed <= 0:
        return _fail(f"--speed must be positive, got {args.speed}")
    try:
        factory = loop_factory()
    except ValueError as e:
        return _fail(str(e))
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(run_demo(duration_s=args.duration, speed=args.speed, mqtt_port=args.mqtt_port,
                             print_every_s=args.print_every, health_port=args.health_port,
                             service_options={"mes_port": args.mes_port}))  # fmt: skip
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 1
    except OSError as e:
        return _fail(str(e))
    return 0


def _status(args: argparse.Namespace) -> int:
    import urllib.error

    from gateway.health import fetch_health, status_table

    try:
        doc = fetch_health(args.url)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return _fail(f"no gateway answering at {args.url}/healthz ({reason}); is `edgefab run` running?")
    print(json.dumps(doc, indent=1) if args.json else status_table(doc))
    return 0 if doc.get("status") == "running" else 1
