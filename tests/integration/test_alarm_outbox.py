"""Alarm events survive a broker outage and a gateway restart: raised while Mosquitto is down, the
event waits in the alarm outbox on disk, and a restarted gateway publishes it once the broker is
back, without raising the alarm a second time."""

from __future__ import annotations

import time
from pathlib import Path

from edge_config.schema import SiteConfig
from gateway.alarms.service import AlarmService
from gateway.sample import Sample
from tests.integration.alarm_harness import JsonRecorder
from tests.integration.gateway_harness import wait_until

TAG = "acme/outage/stamping/line1/press01/oil_temp"


def site(tmp_path: Path, mqtt_url: str) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "outage"},
            "gateway": {"name": "gw-outbox"},
            "devices": [
                {"name": "press01", "area": "stamping", "line": "line1", "protocol": "modbus",
                 "connection": {"host": "127.0.0.1"}, "tags": {"oil_temp": {"address": "ir30001", "type": "float32"}}}
            ],
            "alarms": {"definitions": {"oil_temp": {"kind": "limit", "tag": "oil_temp", "hi": 70}}},
            "sinks": {"mqtt": {"url": mqtt_url}},
            "buffer": {"path": str(tmp_path / "buffer.db")},
        }
    )  # fmt: skip


async def test_an_alarm_raised_during_an_outage_is_published_after_a_restart(mosquitto, tmp_path: Path) -> None:
    config = site(tmp_path, mosquitto.url)
    mosquitto.stop()
    first = AlarmService(config, config.alarms, tmp_path / "buffer.db")  # type: ignore[arg-type]
    await first.start()
    await first.observe([Sample(TAG, 75.0, time.time_ns())])
    assert [e.transition.value for e in first.published] == ["raised"]
    await first.stop()  # the broker never came back while this gateway ran

    mosquitto.start()
    second = AlarmService(config, config.alarms, tmp_path / "buffer.db")  # type: ignore[arg-type]
    await second.start()
    recorder = JsonRecorder(mosquitto.port, ["acme/outage/+/+/+/_alarms/#"])
    try:
        await wait_until(lambda: recorder.transitions("oil_temp.hi") != [], 10, "the replayed alarm event")
        await second.observe([Sample(TAG, 76.0, time.time_ns())])  # still high: restored as active, not raised again
        await second.observe([Sample(TAG, 60.0, time.time_ns())])
        await wait_until(lambda: len(recorder.transitions("oil_temp.hi")) >= 2, 10, "the clear")
    finally:
        await second.stop()
        recorder.close()
    events = {d["event_id"]: (d["transition"], d["state"]) for d in recorder.on("/_alarms/oil_temp.hi")}
    # a subscriber that connects while the event is published may get it twice (retained + live): same event_id
    assert list(events.values()) == [("raised", "active_unacked"), ("cleared", "cleared_unacked")]
    assert [e.transition.value for e in second.published] == ["cleared"]


async def test_an_alarm_removed_from_the_config_is_ended_on_its_retained_topic(mosquitto, tmp_path: Path) -> None:
    config = site(tmp_path, mosquitto.url)
    first = AlarmService(config, config.alarms, tmp_path / "buffer.db")  # type: ignore[arg-type]
    await first.start()
    await first.observe([Sample(TAG, 75.0, time.time_ns())])
    await first.stop()

    renamed = config.model_copy(
        update={"alarms": config.alarms.model_copy(update={"definitions": {}})}  # type: ignore[union-attr]
    )
    second = AlarmService(renamed, renamed.alarms, tmp_path / "buffer.db")  # type: ignore[arg-type]
    assert second.removed == ["acme/outage/stamping/line1/press01/oil_temp.hi"]
    await second.start()
    recorder = JsonRecorder(mosquitto.port, ["acme/outage/+/+/+/_alarms/#"])
    try:
        await wait_until(lambda: ("removed", "normal") in recorder.transitions("oil_temp.hi"), 10, "the removal")
    finally:
        await second.stop()
        recorder.close()
    third = AlarmService(renamed, renamed.alarms, tmp_path / "buffer.db")  # type: ignore[arg-type]
    assert third.removed == []  # announced once
    await third.stop()
