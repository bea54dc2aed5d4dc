"""The real data path for browser tests: simulated PLCs -> gateway -> private Mosquitto -> MES ingest.

`LiveFactory` runs `SimulatedFactory` and the gateway `Gateway` (demo-factory.yaml, uns-json) on
an asyncio loop in a background thread, and the MES `Ingestor` (paho threads) writing into the
test's database, so a state forced on a simulated machine reaches the web pages the way it does
in a plant.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_config.loader import load_config
from gateway.demo import DEMO_CONFIG
from gateway.runtime import Gateway
from mes_lite.ingest.runner import Ingestor
from mes_lite.settings import MesSettings
from simulators.factory import SimulatedFactory
from simulators.machine import MachineState
from tests import servers

START_TIMEOUT_S = 30


class LiveFactory:
    def __init__(self, loop: asyncio.AbstractEventLoop, factory: SimulatedFactory, mqtt_url: str) -> None:
        self.loop = loop
        self.factory = factory
        self.mqtt_url = mqtt_url

    def force_state(self, machine: str, state: str, wall_duration_s: float) -> None:
        future = asyncio.run_coroutine_threadsafe(
            self.factory.force_state(machine, MachineState(state), wall_duration_s), self.loop
        )
        future.result(timeout=10)


@contextmanager
def live_factory(settings: MesSettings, tmp_path: Path) -> Iterator[LiveFactory]:
    with servers.mosquitto_server(tmp_path) as mosquitto:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="live-factory", daemon=True)
        thread.start()
        factory = SimulatedFactory(seed=7, speed=1.0, modbus_port=servers.free_port(), opcua_port=servers.free_port())
        env = dict(os.environ)
        env.update(
            DEMO_PLC_HOST="127.0.0.1",
            DEMO_MODBUS_PORT=str(factory.modbus_port),
            DEMO_OPCUA_PORT=str(factory.opcua_port),
            EDGEFAB_BUFFER=str(tmp_path / "buffer.db"),
            MQTT_URL=mosquitto.url,
        )
        config = load_config(DEMO_CONFIG, env=env)
        gateway = Gateway(config, health_port=servers.free_port())
        ingestor = Ingestor(settings, config, mqtt_url=mosquitto.url, client_id="edgefab-mes-web-test")

        async def start() -> asyncio.Task[None]:
            await factory.start()
            ready = asyncio.Event()
            task = asyncio.create_task(gateway.run(install_signal_handlers=False, ready=ready))
            await asyncio.wait([asyncio.create_task(ready.wait()), task], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()
            return task

        gateway_task = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=START_TIMEOUT_S)
        ingestor.start()
        try:
            if not ingestor.connected.wait(10):
                raise RuntimeError("the MES ingest did not connect to Mosquitto")
            yield LiveFactory(loop, factory, mosquitto.url)
        finally:
            ingestor.stop()

            async def stop() -> None:
                gateway.request_stop()
                await gateway_task
                await factory.stop()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
