"""Alarm notifications delivered to local receivers in each service's documented format.

The real 企业微信 (WeCom), 钉钉 (DingTalk) and 飞书 (Feishu) robots cannot be reached from
here (no Internet in the test environment, and their webhooks need real keys): a local HTTP
server on 127.0.0.1 stands in for them, and the tests assert the exact JSON bodies and the
signatures each service documents. E-mail goes to a minimal SMTP server on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import email
import hashlib
import hmac
import time
from email import policy
from pathlib import Path
from typing import Any

from edge_config.schema import SiteConfig
from gateway.alarms.engine import AlarmEngine
from gateway.alarms.service import AlarmService
from gateway.notify.notifier import Notifier
from gateway.sample import Sample
from tests.integration.alarm_harness import HttpReceiver, SmtpReceiver
from tests.integration.gateway_harness import wait_until

S = 1_000_000_000
DING_SECRET = "SEC0123456789abcdef"
FEISHU_SECRET = "feishu-key"


def site(tmp_path: Path, notify: dict[str, Any]) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"enterprise": "acme", "site": "dongguan"},
            "devices": [
                {
                    "name": "press01",
                    "area": "stamping",
                    "line": "line1",
                    "protocol": "modbus",
                    "connection": {"host": "127.0.0.1"},
                    "tags": {"oil_temp": {"address": "hr40001"}},
                }
            ],
            "alarms": {
                "definitions": {
                    "oil_temp": {
                        "kind": "limit",
                        "tag": "oil_temp",
                        "hi": 70,
                        "priority": "high",
                        "message": {"en": "{machine}: oil {value} degC", "zh-CN": "{machine}：油温 {value} ℃"},
                    }
                },
                "notify": notify,
            },
            "buffer": {"path": str(tmp_path / "buffer.db")},
        }
    )


def raised_event(config: SiteConfig) -> dict[str, Any]:
    engine = AlarmEngine(config, config.alarms, time.time_ns())  # type: ignore[arg-type]
    (event,) = engine.observe([Sample("acme/dongguan/stamping/line1/press01/oil_temp", 75, time.time_ns())])
    return event.document()


async def test_each_service_receives_the_body_and_signature_it_documents(tmp_path: Path) -> None:
    http, smtp = HttpReceiver(), SmtpReceiver()
    channels = {
        "wecom": {"type": "wecom", "url": http.url("/cgi-bin/webhook/send?key=K1")},
        "wecom-text": {"type": "wecom", "url": http.url("/wecom-text"), "format": "text", "mention_all": True},
        "ding": {"type": "dingtalk", "url": http.url("/robot/send?access_token=T1"), "secret": DING_SECRET},
        "feishu": {
            "type": "feishu",
            "url": http.url("/open-apis/bot/v2/hook/H1"),
            "secret": FEISHU_SECRET,
            "format": "text",
            "language": "zh-CN",
        },
        "hook": {"type": "webhook", "url": http.url("/hook"), "headers": {"Authorization": "Bearer t"}},
        "mail": {
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "sender": "edgefab@example.com",
            "to": ["maint@example.com"],
        },
    }
    config = site(tmp_path, {"channels": channels, "routes": [{"channels": list(channels)}]})
    notifier = Notifier(config.alarms.notify, tmp_path / "n.db")  # type: ignore[union-attr]
    await notifier.start()
    try:
        event = raised_event(config)
        sent = await notifier.handle([event])
        assert sorted(n.channel for n in sent) == sorted(channels)
        await wait_until(lambda: len(http.requests) == 5 and len(smtp.messages) == 1, 10, "every channel")
    finally:
        await notifier.stop()
        http.close()
        smtp.close()

    (wecom,) = http.on("/cgi-bin/webhook/send")
    assert wecom["query"] == {"key": "K1"}
    assert wecom["body"]["msgtype"] == "markdown" and set(wecom["body"]) == {"msgtype", "markdown"}
    content = wecom["body"]["markdown"]["content"]
    assert content.startswith("### 【报警】press01：油温 75 ℃ / [ALARM] press01: oil 75 degC\n")
    assert "> 优先级：高　位置：stamping/line1/press01" in content and "> Value: 75 (limit 70.0)" in content

    (wecom_text,) = http.on("/wecom-text")
    assert wecom_text["body"]["msgtype"] == "text"
    assert wecom_text["body"]["text"]["mentioned_mobile_list"] == ["@all"]

    (ding,) = http.on("/robot/send")
    timestamp = ding["query"]["timestamp"]
    assert abs(int(timestamp) - time.time() * 1000) < 60_000  # ms, within DingTalk's one-hour window
    # DingTalk: sign = urlencode(base64(HmacSHA256(key=secret, msg=f"{timestamp}\n{secret}")))
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert ding["query"]["sign"] == expected  # parse_qsl decoded the URL encoding
    assert ding["query"]["access_token"] == "T1"
    assert ding["body"]["msgtype"] == "markdown"
    assert set(ding["body"]["markdown"]) == {"title", "text"}
    assert ding["body"]["at"] == {"atMobiles": [], "isAtAll": False}

    (feishu,) = http.on("/open-apis/bot/v2/hook/H1")
    body = feishu["body"]
    # Feishu: timestamp in seconds (a string); sign = base64(HmacSHA256(key=f"{timestamp}\n{secret}", msg=""))
    key = f"{body['timestamp']}\n{FEISHU_SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "text" and body["content"]["text"].startswith("【报警】press01：油温 75 ℃\n")
    assert "ALARM" not in body["content"]["text"]  # language: zh-CN only

    (hook,) = http.on("/hook")
    assert hook["headers"]["Authorization"] == "Bearer t"
    assert {k: hook["body"][k] for k in ("alarm", "state", "priority", "value")} == {
        "alarm": "oil_temp.hi", "state": "active_unacked", "priority": "high", "value": 75,
    }  # fmt: skip
    assert hook["body"]["notification"] == {"reason": "raised", "channel": "hook"}

    (mail,) = smtp.messages
    message = email.message_from_bytes(mail["data"], policy=policy.default)
    assert mail["to"] == ["<maint@example.com>"]
    assert message["Subject"] == "【报警】press01：油温 75 ℃ / [ALARM] press01: oil 75 degC"
    assert "Value: 75 (limit 70.0)" in message.get_content()


async def test_a_failed_delivery_is_retried_and_a_restart_does_not_lose_or_repeat_it(tmp_path: Path) -> None:
    http = HttpReceiver([(503, {}), (200, {"errcode": 45009, "errmsg": "api freq out of limit"})])
    notify = {"channels": {"wecom": {"type": "wecom", "url": http.url("/w")}}, "routes": [{"channels": ["wecom"]}]}
    config = site(tmp_path, notify)
    outbox = tmp_path / "outbox.db"
    notifier = Notifier(config.alarms.notify, outbox)  # type: ignore[union-attr]
    await notifier.start()
    await notifier.handle([raised_event(config)])
    await wait_until(lambda: len(http.requests) >= 2, 5, "two failed attempts")  # 503, then WeCom throttling
    waiting = (await notifier.snapshot())["wecom"]  # what /metrics shows meanwhile
    assert (waiting.sent, waiting.queued, waiting.refused) == (0, 1, 0) and waiting.delivery_failures >= 1
    await notifier.stop(flush_timeout_s=0.1)
    assert [r["answer"].get("errcode") for r in http.requests[:2]] == [None, 45009]
    http.answers = [(200, {"errcode": 0, "errmsg": "ok"})]

    restarted = Notifier(config.alarms.notify, outbox)  # type: ignore[union-attr]
    await restarted.start()
    try:
        await wait_until(lambda: any(r["answer"].get("errcode") == 0 for r in http.requests), 10, "the retry")
        await asyncio.sleep(0.5)  # anything sent twice would arrive by now
        done = (await restarted.snapshot())["wecom"]
        assert (done.sent, done.queued) == (1, 0)
    finally:
        await restarted.stop()
        http.close()
    accepted = [r for r in http.requests if r["answer"].get("errcode") == 0]
    assert len(accepted) == 1 and accepted[0] is http.requests[-1]
    assert accepted[0]["body"] == http.requests[0]["body"]  # the same message, not a new one


async def test_escalation_goes_to_the_supervisor_only_while_the_alarm_is_unacknowledged(tmp_path: Path) -> None:
    http = HttpReceiver()
    notify = {
        "channels": {"line": {"type": "webhook", "url": http.url("/line")},
                     "boss": {"type": "webhook", "url": http.url("/boss")}},
        "routes": [{"channels": ["line"], "escalate_after": "10m", "escalate_to": ["boss"]}],
    }  # fmt: skip
    config = site(tmp_path, notify)
    now = [time.time_ns()]
    service = AlarmService(config, config.alarms, tmp_path / "buffer.db", clock_ns=lambda: now[0])  # type: ignore[arg-type]
    await service.start()
    try:
        tag = "acme/dongguan/stamping/line1/press01/oil_temp"
        await service.observe([Sample(tag, 75, now[0])])
        await service.tick(now[0] + 599 * S)
        await service.tick(now[0] + 600 * S)
        await service.tick(now[0] + 700 * S)  # escalated once per activation, not on every tick
        await wait_until(lambda: len(http.on("/line")) == 1 and len(http.on("/boss")) == 1, 5, "line + escalation")
        assert http.on("/boss")[0]["body"]["notification"]["reason"] == "escalated"
        # the next activation is acknowledged in time: no escalation
        key = "acme/dongguan/stamping/line1/press01/oil_temp.hi"
        await service.observe([Sample(tag, 50, now[0] + 701 * S)])
        assert (await service.command(key, {"action": "ack", "user": "op"}))["state"] == "normal"
        await service.observe([Sample(tag, 80, now[0] + 702 * S)])
        assert (await service.command(key, {"action": "ack", "user": "op"}))["state"] == "active_acked"
        now[0] += 2000 * S
        await service.tick(now[0])
        await asyncio.sleep(0.5)
        assert len(http.on("/boss")) == 1
    finally:
        await service.stop()
        http.close()
