"""An MQTT connection for the gateway's side channels (alarm events, commands, write-back answers).

It reuses `MqttConnection` (same broker settings, TLS and reconnect as the data sink) with
its own client id, and hands incoming command messages (received inside paho's read, on the
event loop) to an async handler, one task per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from edge_config.schema import MqttSink as MqttSinkConfig
from gateway.sinks.base import SinkCounters
from gateway.sinks.mqtt_connection import Message, MqttConnection, default_client_id

log = logging.getLogger(__name__)

CommandHandler = Callable[[str, bytes], Awaitable[None]]


class MqttSideChannel:
    def __init__(
        self,
        config: MqttSinkConfig,
        gateway_name: str,
        role: str,
        *,
        subscriptions: tuple[str, ...] = (),
        on_command: CommandHandler | None = None,
    ) -> None:
        self.counters = SinkCounters()
        self._on_command = on_command
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connection = MqttConnection(
            config,
            client_id=default_client_id(gateway_name, role),
            counters=self.counters,
            will=lambda: None,
            on_connected=self._connected,
            on_message=self._on_message if on_command else None,
            subscriptions=subscriptions,
        )

    @property
    def connected(self) -> bool:
        return self.connection.connected

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.connection.start()

    async def stop(self) -> None:
        await self.connection.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return await self.connection.wait_connected(timeout_s)

    async def publish(self, messages: list[Message]) -> None:
        """Publish and wait for the broker's PUBACKs; raises SinkUnavailable when it cannot."""
        await self.connection.publish_confirmed(messages)

    async def _connected(self, _connection: MqttConnection) -> None:
        return None

    def _on_message(self, topic: str, payload: bytes) -> None:
        """Called inside paho's read: the handler starts once paho has finished the packet."""
        if self._loop is not None and self._on_command is not None:
            self._loop.call_soon(self._spawn, topic, payload)

    def _spawn(self, topic: str, payload: bytes) -> None:
        assert self._on_command is not None
        task = asyncio.create_task(self._guarded(topic, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, topic: str, payload: bytes) -> None:
        assert self._on_command is not None
        try:
            await self._on_command(topic, payload)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bad command must never take the gateway down
            log.exception("command on %s failed", topic)
