"""/healthz, /metrics and `edgefab status` render one snapshot of the gateway."""

from __future__ import annotations

import pytest

from gateway.health import (
    AlarmsSnapshot,
    ChannelSnapshot,
    ConnectorSnapshot,
    GatewaySnapshot,
    SinkSnapshot,
    metrics_text,
    status_table,
)
from gateway.run_cli import JsonLogFormatter


@pytest.fixture
def snapshot() -> GatewaySnapshot:
    return GatewaySnapshot(
        gateway="edge1",
        status="running",
        uptime_s=120.0,
        samples_read_per_s=250.0,
        connectors=[
            ConnectorSnapshot("press01", "modbus", "connected", samples_read=3000, reconnects=1),
            ConnectorSnapshot("cnc01", "opcua", "disconnected", last_error="connection refused", paused=False),
        ],
        sinks=[
            SinkSnapshot(
                "mqtt",
                False,
                "backing_off",
                1200,
                42.5,
                7,
                5000,
                3,
                0.0,
                "connection refused",
                counters={"messages_sent": 90, "samples_redelivered": 12},
            ),
        ],
        buffer_bytes=3 * 1024 * 1024,
        buffer_max_bytes=1 << 30,
        buffer_when_full="drop_oldest",
        buffer_refused_appends=0,
        buffer_refused_samples=0,
    )


def test_the_health_document_is_keyed_by_device_and_sink(snapshot: GatewaySnapshot) -> None:
    doc = snapshot.document()
    assert doc["status"] == "running"
    assert doc["connectors"]["cnc01"]["last_error"] == "connection refused"
    assert doc["sinks"]["mqtt"]["depth"] == 1200


def test_metrics_carry_queue_depth_age_drops_and_connector_states(snapshot: GatewaySnapshot) -> None:
    text = metrics_text(snapshot).decode()
    for line in (
        'edgefab_sink_queue_depth{sink="mqtt"} 1200.0',
        'edgefab_sink_oldest_unacked_age_seconds{sink="mqtt"} 42.5',
        'edgefab_dropped_samples_total{sink="mqtt"} 7.0',
        'edgefab_samples_read_total{device="press01"} 3000.0',
        'edgefab_connector_reconnects_total{device="press01"} 1.0',
        'edgefab_connector_up{device="cnc01"} 0.0',
        'edgefab_connector_state{device="cnc01",state="disconnected"} 1.0',
        'edgefab_sink_samples_redelivered_total{sink="mqtt"} 12.0',
        "edgefab_samples_read_per_second 250.0",
    ):
        assert line in text, line


def test_the_status_table_shows_each_device_and_sink_on_one_line(snapshot: GatewaySnapshot) -> None:
    table = status_table(snapshot.document())
    lines = table.splitlines()
    assert "edge1: running" in lines[0] and "3.0 MiB of 1.0 GiB" in lines[0]
    assert any(line.startswith("press01") and "connected" in line for line in lines)
    assert any(line.startswith("cnc01") and "connection refused" in line for line in lines)
    assert any(line.startswith("mqtt") and "1200" in line and "42.5s" in line for line in lines)


@pytest.fixture
def with_alarms(snapshot: GatewaySnapshot) -> GatewaySnapshot:
    snapshot.alarms = AlarmsSnapshot(
        alarms=22,
        by_state={"normal": 17, "active_unacked": 3, "active_acked": 1, "cleared_unacked": 1},
        shelved=2,
        transitions={"raised": 9, "cleared": 5, "acknowledged": 4},
        events_unpublished=6,
        notifications={"wecom": ChannelSnapshot(sent=11, refused=1, delivery_failures=4, queued=2, dropped=0)},
    )
    return snapshot


def test_metrics_show_alarms_by_state_their_events_and_each_notification_channel(with_alarms: GatewaySnapshot) -> None:
    text = metrics_text(with_alarms).decode()
    for line in (
        'edgefab_alarms{state="active_unacked"} 3.0',
        'edgefab_alarms{state="normal"} 17.0',
        "edgefab_alarms_shelved 2.0",
        'edgefab_alarm_events_total{transition="raised"} 9.0',
        "edgefab_alarm_events_unpublished 6.0",
        'edgefab_notifications_sent_total{channel="wecom"} 11.0',
        'edgefab_notifications_refused_total{channel="wecom"} 1.0',
        'edgefab_notification_delivery_failures_total{channel="wecom"} 4.0',
        'edgefab_notifications_queued{channel="wecom"} 2.0',
    ):
        assert line in text, line


def test_a_gateway_without_alarms_has_no_alarm_metrics(snapshot: GatewaySnapshot) -> None:
    assert "edgefab_alarm" not in metrics_text(snapshot).decode()
    assert "alarms" not in status_table(snapshot.document())


def test_the_status_table_sums_up_alarms_and_notifications(with_alarms: GatewaySnapshot) -> None:
    table = status_table(with_alarms.document())
    assert "alarms: 22, active 4 (3 unacknowledged), shelved 2, events not yet published 6" in table
    assert "notify wecom: 11 sent, 2 queued, 1 refused, 4 failed attempts" in table


def test_json_logs_carry_the_event_field() -> None:
    import json
    import logging

    record = logging.LogRecord("edgefab.gateway", logging.INFO, "", 0, "device %s paused", ("press01",), None)
    record.event = "buffer_full"
    doc = json.loads(JsonLogFormatter().format(record))
    assert doc["msg"] == "device press01 paused" and doc["event"] == "buffer_full" and doc["level"] == "info"
