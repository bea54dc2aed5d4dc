"""`edgefab demo`: the README's one command, wiring the whole kit together on loopback.

    simulated factory (Modbus TCP + OPC UA)  ->  gateway (buffer in a temp dir)  ->  MQTT broker
                                                                                      |-> live printer (this terminal)
                                                                                      |-> DEMO_SERVICES (e.g. the MES)

The broker is the one `MQTT_URL` names when it answers; otherwise an embedded amqtt
broker on 127.0.0.1 (port 1883 when free). Everything else takes free loopback ports,
so the demo runs next to a real `edgefab simulate` or Mosquitto without clashing.

To add a service (the MES ingest and web pages, say), append a factory to
`DEMO_SERVICES`: it receives the `DemoContext` (loaded site config, broker URL, data
folder) and returns a `DemoService` whose `start`/`stop` the demo calls in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge_config.schema import SiteConfig

log = logging.getLogger("edgefab.demo")

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "edge_config" / "examples" / "demo-factory.yaml"
DEFAULT_MQTT_PORT = 1883
DEFAULT_HEALTH_PORT = 9108


@dataclass
class DemoContext:
    config: SiteConfig
    mqtt_url: str
    data_dir: Path
    env: dict[str, str]
    """The environment the demo config was loaded with (ports of the simulated PLCs, MQTT_URL, ...)."""
    config_path: Path = DEMO_CONFIG
    speed: float = 1.0
    """Simulated seconds per wall-clock second (the simulator serves cycle times divided by it)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Command-line options meant for the services (e.g. `mes_port`)."""


@dataclass
class DemoService:
    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    description: str = ""


def _mes(context: DemoContext) -> DemoService:
    from mes_lite.demo_service import demo_mes_service  # imported only when the demo runs (it is heavy)

    return demo_mes_service(context)


DEMO_SERVICES: list[Callable[[DemoContext], DemoService]] = [_mes]
"""Extra services started before the gateway (they see its first values), stopped after it (in reverse order)."""


# ---------------------------------------------------------------- ports and the embedded broker


def free_port(preferred: int = 0) -> int:
    """`preferred` when it is free on 127.0.0.1, otherwise any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


def broker_reachable(url: str, timeout_s: float = 0.5) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout=timeout_s):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """amqtt on 127.0.0.1, anonymous, no $SYS chatter: enough for a demo, not for production."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from amqtt.broker import Broker

        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}", "max_connections": 50}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
        )
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._broker.shutdown(), 5.0)


# ---------------------------------------------------------------- live values in the terminal

SHOWN_TAGS = ("total_count", "reject_count", "parts_per_min", "oil_temp", "barrel_temp", "spindle_temp", "power")


@dataclass
class LivePrinter:
    """Subscribes to the site's UNS topics and prints one compact line per machine."""

    mqtt_url: str
    topic: str
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: int = 0
    _client: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        import json

        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        def on_message(_c: object, _u: object, msg: Any) -> None:
            machine_path, _, tag = msg.topic.rpartition("/")
            try:
                doc = json.loads(msg.payload)
            except ValueError:
                return
            with self._lock:
                self.messages += 1
                if tag == "_batch":
                    for s in doc.get("samples", []):
                        self.latest.setdefault(machine_path, {})[s["tag"]] = s.get("value")
                elif isinstance(doc, dict) and "value" in doc:
                    self.latest.setdefault(machine_path, {})[tag] = doc["value"]

        parts = urlsplit(self.mqtt_url)
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"edgefab-demo-{os.getpid()}")
        client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=0)
        client.on_message = on_message
        client.connect_async(parts.hostname or "127.0.0.1", parts.port or 1883)
        client.loop_start()
        self._client = client

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def lines(self) -> list[str]:
        with self._lock:
            snapshot = {machine: dict(tags) for machine, tags in sorted(self.latest.items())}
        out = []
        for machine_path, tags in snapshot.items():
            if any(part.startswith("_") for part in machine_path.split("/")):  # _gateway status, _cmd, _alarms
                continue
            fields = [f"{tag}={_short(tags[tag])}" for tag in SHOWN_TAGS if tag in tags]
            out.append(f"{machine_path.rsplit('/', 1)[-1]:<9} {_short(tags.get('state', '?')):<13} {'  '.join(fields)}")
        return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


# ---------------------------------------------------------------- the demo


async def run_demo(
    *,
    duration_s: float | None = None,
    speed: float = 1.0,
    mqtt_port: int = 0,
    print_every_s: float = 3.0,
    health_port: int | None = None,
    service_options: dict[str, Any] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM or `duration_s`."""
    from edge_config.loader import load_config
    from gateway.runtime import Gateway
    from simulators.factory import SimulatedFactory

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in ("SIGINT", "SIGTERM"):
        import signal

        loop.add_signal_handler(getattr(signal, sig), stop.set)
    if duration_s is not None:
        loop.call_later(duration_s, stop.set)

    async with contextlib.AsyncExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edgefab-demo-")))
        modbus_port, opcua_port = free_port(), free_port()
        factory = SimulatedFactory(seed=1, speed=speed, modbus_port=modbus_port, opcua_port=opcua_port)
        await factory.start()
        stack.push_async_callback(factory.stop)
        print(f"simulated factory: Modbus TCP 127.0.0.1:{modbus_port}, OPC UA opc.tcp://127.0.0.1:{opcua_port}")

        env = dict(os.environ)
        env.update(
            DEMO_PLC_HOST="127.0.0.1",
            DEMO_MODBUS_PORT=str(modbus_port),
            DEMO_OPCUA_PORT=str(opcua_port),
            EDGEFAB_BUFFER=str(data_dir / "buffer.db"),
        )
        config = load_config(DEMO_CONFIG, env=env)
        mqtt_url = config.sinks.mqtt.url if config.sinks.mqtt else "mqtt://127.0.0.1:1883"
        if broker_reachable(mqtt_url):
            print(f"MQTT broker: {mqtt_url} (already running)")
        else:
            broker = EmbeddedBroker(mqtt_port or free_port(DEFAULT_MQTT_PORT))
            await broker.start()
            stack.push_async_callback(broker.stop)
            mqtt_url = env["MQTT_URL"] = broker.url
            config = load_config(DEMO_CONFIG, env=env)
            print(
                f"MQTT broker: embedded amqtt on {mqtt_url} (subscribe with: mosquitto_sub -p {broker.port} -t '#' -v)"
            )

        # Services and the printer subscribe before the gateway publishes, so they see every tag's first
        # value (an unchanged value is not published again: a late subscriber would miss a steady state).
        context = DemoContext(config=config, mqtt_url=mqtt_url, data_dir=data_dir, env=env, speed=speed,
                              options=dict(service_options or {}))  # fmt: skip
        services: list[DemoService] = []
        for make_service in DEMO_SERVICES:
            service = make_service(context)
            await service.start()
            stack.push_async_callback(service.stop)
            services.append(service)
            print(f"{service.name}: {service.description}")

        printer = LivePrinter(mqtt_url, f"{config.site.enterprise}/{config.site.site}/#")
        printer.start()
        stack.callback(printer.stop)

        gateway = Gateway(config, health_port=free_port(DEFAULT_HEALTH_PORT) if health_port is None else health_port)
        ready = asyncio.Event()
        gateway_task = asyncio.create_task(gateway.run(install_signal_handlers=False, ready=ready))

        async def stop_gateway() -> None:
            gateway.request_stop()
            await gateway_task

        stack.push_async_callback(stop_gateway)
        await asyncio.wait([asyncio.create_task(ready.wait()), gateway_task], return_when=asyncio.FIRST_COMPLETED)
        if gateway_task.done():
            gateway_task.result()  # raises what stopped it
        print(f"gateway: health http://127.0.0.1:{gateway.health_port}/healthz, metrics /metrics")

        print("live values (Ctrl-C to stop):")
        started = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), print_every_s)
            if stop.is_set():
                break
            if gateway_task.done():
                gateway_task.result()
                break
            links = "".join(f" | {s.name}: {s.description}" for s in services)
            print(f"--- t={time.monotonic() - started:5.0f} s, {printer.messages} MQTT messages{links}")
            for line in printer.lines():
                print("  " + line)
        print("stopping ...")
