"""Notification channels as sinks of the durable outbox: one HTTP POST or one e-mail per notification.

Each channel is a `Sink` with its own cursor in the outbox (`gateway.buffer.Buffer`), fed
by its own `Forwarder` with batches of one: `deliver` returns once the service accepted the
message, raises `SinkUnavailable` when it should be retried (network down, 5xx, throttled),
and drops (counted, logged) what the service refused for good, so one bad message cannot
block the queue. Every channel sees every outbox entry and sends only its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import ssl
import time
from typing import Any

import httpx

from edge_config.alarms_schema import Channel, ChannelType
from gateway.notify import formats
from gateway.sample import Sample
from gateway.sinks.base import SinkCounters, SinkUnavailable

log = logging.getLogger(__name__)


class ChannelSink:
    def __init__(self, name: str, channel: Channel) -> None:
        self.name = name
        self.channel = channel
        self.counters = SinkCounters()
        self.sent: int = 0
        self.refused: int = 0
        self._client: httpx.AsyncClient | None = None

    @property
    def connected(self) -> bool:
        return True  # no connection to keep: every delivery is its own request

    async def start(self) -> None:
        if self.channel.type is not ChannelType.EMAIL:
            self._client = httpx.AsyncClient(timeout=self.channel.timeout)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, samples: list[Sample]) -> None:
        for sample in samples:
            try:
                doc = json.loads(str(sample.value))
            except ValueError:
                continue
            if doc.get("channel") != self.name:
                continue
            await self._send(doc["event"], doc["reason"])
            self.counters.samples_delivered += 1

    async def _send(self, event: dict[str, Any], reason: str) -> None:
        if self.channel.type is ChannelType.EMAIL:
            message = formats.email_message(self.channel, event, reason)
            try:
                await asyncio.to_thread(self._send_mail, message)
            except (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as e:
                raise SinkUnavailable(f"{self.name}: SMTP {type(e).__name__}: {e}") from None
            except smtplib.SMTPResponseException as e:
                if 400 <= e.smtp_code < 500:
                    raise SinkUnavailable(f"{self.name}: SMTP {e.smtp_code} {e.smtp_error!r}") from None
                self._refused(f"SMTP {e.smtp_code} {e.smtp_error!r}")
                return
            except smtplib.SMTPException as e:
                self._refused(f"SMTP {e}")
                return
            self.sent += 1
            return
        url, body = self._request(event, reason)
        assert self._client is not None, "channel not started"
        try:
            response = await self._client.post(url, json=body, headers=self.channel.headers)
        except httpx.HTTPError as e:
            raise SinkUnavailable(f"{self.name}: {type(e).__name__}: {e}") from None
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        delivered, retry, why = formats.service_accepted(self.channel, response.status_code, answer)
        if delivered:
            self.sent += 1
        elif retry:
            raise SinkUnavailable(f"{self.name}: {why}")
        else:
            self._refused(why)

    def _request(self, event: dict[str, Any], reason: str) -> tuple[str, dict[str, Any]]:
        channel, url = self.channel, str(self.channel.url)
        now = time.time()
        if channel.type is ChannelType.WECOM:
            return url, formats.wecom_body(channel, event, reason)
        if channel.type is ChannelType.DINGTALK:
            return formats.dingtalk_url(url, channel.secret, int(now * 1000)), formats.dingtalk_body(
                channel, event, reason
            )
        if channel.type is ChannelType.FEISHU:
            return url, formats.feishu_body(channel, event, reason, int(now))
        return url, formats.webhook_body(event, reason, self.name)

    def _send_mail(self, message: Any) -> None:
        channel = self.channel
        host, port = str(channel.smtp_host), channel.smtp_port
        smtp: smtplib.SMTP
        if channel.ssl:
            smtp = smtplib.SMTP_SSL(host, port, timeout=channel.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=channel.timeout)
        with smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if channel.username:
                smtp.login(channel.username, channel.password or "")
            smtp.send_message(message)

    def _refused(self, why: str) -> None:
        self.refused += 1
        self.counters.samples_dropped += 1
        log.error("notification channel %s refused a message for good (not retried): %s", self.name, why)
