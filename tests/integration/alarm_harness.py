"""Shared pieces of the alarm, notification and write-back integration tests."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class JsonRecorder:
    """A real MQTT subscriber (QoS 1) that keeps every JSON message per topic, in arrival order."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, clean_session=True)
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the recorder could not subscribe")

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            doc = {"raw": msg.payload.decode(errors="replace")}
        with self._lock:
            self.messages.append((msg.topic, doc))

    def on(self, topic_part: str) -> list[dict[str, Any]]:
        with self._lock:
            return [doc for topic, doc in self.messages if topic_part in topic]

    def transitions(self, alarm: str) -> list[tuple[str, str]]:
        """(transition, state) of every event of `alarm` received so far."""
        return [(d["transition"], d["state"]) for d in self.on(f"/_alarms/{alarm}") if "transition" in d]

    def publish(self, topic: str, doc: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(doc), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
