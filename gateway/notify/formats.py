"""Request bodies and signatures for each notification service, as each one documents them (pure).

- 企业微信 WeCom group robot: POST JSON to the webhook URL (`.../cgi-bin/webhook/send?key=...`):
  `{"msgtype": "markdown", "markdown": {"content": ...}}` or
  `{"msgtype": "text", "text": {"content": ..., "mentioned_mobile_list": [...]}}`; answer `{"errcode": 0}`.
- 钉钉 DingTalk custom robot: POST JSON to `.../robot/send?access_token=...`, signed with the
  robot's secret ("加签"): `timestamp` in ms and `sign = urlencode(base64(HmacSHA256(key=secret,
  msg=timestamp + "\n" + secret)))` appended to the URL; body `{"msgtype": "markdown",
  "markdown": {"title", "text"}, "at": {"atMobiles", "isAtAll"}}` or `msgtype` text; answer `{"errcode": 0}`.
- 飞书 Feishu / Lark custom bot: POST JSON to `.../open-apis/bot/v2/hook/...`; with a signature
  key, the body carries `timestamp` (seconds, a string) and `sign = base64(HmacSHA256(key=
  timestamp + "\n" + secret, msg=""))`; text is `{"msg_type": "text", "content": {"text"}}`,
  markdown an interactive card with a `markdown` element; answer `{"code": 0}`.
- Generic webhook: the alarm event document itself, plus `notification` (why it was sent).
- E-mail: a plain-text message with both languages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from email.message import EmailMessage
from typing import Any

from edge_config.alarms_schema import Channel

PRIORITY_TEXT = {
    "urgent": ("紧急", "URGENT"),
    "high": ("高", "HIGH"),
    "medium": ("中", "MEDIUM"),
    "low": ("低", "LOW"),
}
STATE_TEXT = {
    "raised": ("报警", "ALARM"),
    "cleared": ("已恢复", "CLEARED"),
    "escalated": ("升级：仍未确认", "ESCALATED: still not acknowledged"),
    "unshelved": ("取消搁置，仍在报警", "UNSHELVED, still active"),
    "shelve_expired": ("搁置到期，仍在报警", "SHELVE EXPIRED, still active"),
}
CARD_COLOURS = {"urgent": "red", "high": "orange", "medium": "yellow", "low": "blue"}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign` query parameter (already URL-encoded)."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return url
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's `sign` body field: HMAC-SHA256 keyed by `timestamp\\nsecret` over an empty message."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _texts(event: dict[str, Any], reason: str, language: str) -> tuple[str, list[str]]:
    """A title and body lines in the channel's language(s)."""
    zh_state, en_state = STATE_TEXT.get(reason, STATE_TEXT["raised"])
    zh_prio, en_prio = PRIORITY_TEXT.get(event.get("priority", ""), (event.get("priority", ""),) * 2)
    message = event.get("message") or {}
    where = f"{event.get('area')}/{event.get('line')}/{event.get('machine')}"
    zh = [f"【{zh_state}】{message.get('zh-CN', event.get('alarm'))}", f"优先级：{zh_prio}　位置：{where}"]
    en = [f"[{en_state}] {message.get('en', event.get('alarm'))}", f"Priority: {en_prio}  Where: {where}"]
    if event.get("value") is not None:
        zh.append(f"数值：{event['value']}" + (f"（限值 {event['limit']}）" if event.get("limit") is not None else ""))
        en.append(f"Value: {event['value']}" + (f" (limit {event['limit']})" if event.get("limit") is not None else ""))
    zh.append(f"时间：{event.get('ts')}　报警：{event.get('alarm')}")
    en.append(f"Time: {event.get('ts')}  Alarm: {event.get('alarm')}")
    if language == "zh-CN":
        return zh[0], zh[1:]
    if language == "en":
        return en[0], en[1:]
    return f"{zh[0]} / {en[0]}", [*zh[1:], "", *en[1:]]


def plain_text(event: dict[str, Any], reason: str, language: str) -> str:
    title, lines = _texts(event, reason, language)
    return "\n".join([title, *lines])


def markdown_text(event: dict[str, Any], reason: str, language: str) -> tuple[str, str]:
    title, lines = _texts(event, reason, language)
    body = "\n".join(f"> {line}" if line else ">" for line in lines)
    return title, f"### {title}\n{body}"


def wecom_body(channel: Channel, event: dict[str, Any], reason: str) -> dict[str, Any]:
    if channel.format == "markdown":
        _title, text = markdown_text(event, reason, channel.language)
        return {"msgtype": "markdown", "markdown": {"content": text}}
    text: dict[str, Any] = {"content": plain_text(event, reason, channel.language)}
    mentions = [*channel.mention_mobiles, *(["@all"] if channel.mention_all else [])]
    if mentions:
        text["mentioned_mobile_list"] = mentions
    return {"msgtype": "text", "text": text}


def dingtalk_body(channel: Channel, event: dict[str, Any], reason: str) -> dict[str, Any]:
    at = {"atMobiles": list(channel.mention_mobiles), "isAtAll": channel.mention_all}
    if channel.format == "markdown":
        title, text = markdown_text(event, reason, channel.language)
        if channel.mention_mobiles:  # DingTalk only notifies mobiles that also appear in the text
            text += "\n\n" + " ".join(f"@{m}" for m in channel.mention_mobiles)
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at}
    return {"msgtype": "text", "text": {"content": plain_text(event, reason, channel.language)}, "at": at}


def feishu_body(channel: Channel, event: dict[str, Any], reason: str, timestamp_s: int) -> dict[str, Any]:
    if channel.format == "markdown":
        title, lines = _texts(event, reason, channel.language)
        body: dict[str, Any] = {
            "msg_type": "interactive",
            "card": {
                "header": {
                    "title": {"tag": "plain_text", "content": title},
                    "template": CARD_COLOURS.get(event.get("priority", ""), "blue"),
                },
                "elements": [{"tag": "markdown", "content": "\n".join(lines)}],
            },
        }
    else:
        body = {"msg_type": "text", "content": {"text": plain_text(event, reason, channel.language)}}
    if channel.secret:
        body = {"timestamp": str(timestamp_s), "sign": feishu_sign(channel.secret, timestamp_s), **body}
    return body


def webhook_body(event: dict[str, Any], reason: str, channel_name: str) -> dict[str, Any]:
    return {**event, "notification": {"reason": reason, "channel": channel_name}}


def email_message(channel: Channel, event: dict[str, Any], reason: str) -> EmailMessage:
    title, lines = _texts(event, reason, channel.language)
    message = EmailMessage()
    message["Subject"] = title
    message["From"] = channel.sender or ""
    message["To"] = ", ".join(channel.to)
    message["X-Edgefab-Alarm"] = str(event.get("key", ""))
    message.set_content("\n".join([title, "", *lines]) + "\n")
    return message


def service_accepted(channel: Channel, status: int, answer: Any) -> tuple[bool, bool, str]:
    """(delivered, retry, reason) from the HTTP status and the service's JSON answer.

    The robots answer HTTP 200 with an error code in the body: WeCom/DingTalk `errcode`,
    Feishu `code` (older bots `StatusCode`). Throttling (WeCom 45009, DingTalk 130101,
    Feishu 9499/11232) and 5xx are retried; other refusals are permanent (a wrong key stays wrong).
    """
    if status >= 500 or status == 429:
        return False, True, f"HTTP {status}"
    if status >= 400:
        return False, False, f"HTTP {status}"
    if not isinstance(answer, dict):
        return True, False, ""
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code in (0, None):
        return True, False, ""
    message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
    return False, code in (45009, 130101, 9499, 11232), f"{channel.type.value} error {code}: {message}"
