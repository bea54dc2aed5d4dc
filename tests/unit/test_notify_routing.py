"""Routing, rate limiting and escalation of alarm notifications: worked examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_config.alarms_schema import Notify, RateLimit
from gateway.notify.formats import dingtalk_url, feishu_sign, service_accepted
from gateway.notify.routing import RateLimiter, channels_for, escalations_due, is_announced, plan

NOTIFY = Notify.model_validate(
    {
        "channels": {
            "press-wecom": {"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
            "boss": {"type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t"},
            "mail": {"type": "email", "smtp_host": "mail", "sender": "a@b", "to": ["c@d"]},
        },
        "routes": [
            {"areas": ["stamping"], "min_priority": "high", "channels": ["press-wecom"], "escalate_after": "10m",
             "escalate_to": ["boss"]},
            {"min_priority": "urgent", "channels": ["mail", "press-wecom"], "notify_cleared": False},
        ],
        "rate_limit": {"burst": 2, "per_hour": 60},
    }
)  # fmt: skip


def event(**overrides: object) -> dict:
    doc = {"key": "a/b/stamping/l1/p1/t.hi", "area": "stamping", "machine": "p1", "priority": "high",
           "transition": "raised", "active": True, "acked": False, "shelved": False}  # fmt: skip
    return {**doc, **overrides}


def test_routes_match_area_and_minimum_priority_and_each_channel_is_named_once() -> None:
    assert channels_for(NOTIFY.routes, event()) == ["press-wecom"]
    assert channels_for(NOTIFY.routes, event(priority="medium")) == []
    assert channels_for(NOTIFY.routes, event(area="moulding")) == []
    assert channels_for(NOTIFY.routes, event(priority="urgent")) == ["press-wecom", "mail"]
    assert channels_for(NOTIFY.routes, event(priority="urgent", area="moulding")) == ["mail", "press-wecom"]
    assert channels_for(NOTIFY.routes, event(priority="urgent", transition="cleared")) == ["press-wecom"]


def test_only_news_is_announced() -> None:
    assert is_announced(event())
    assert not is_announced(event(transition="acknowledged"))
    assert not is_announced(event(transition="shelved"))
    assert not is_announced(event(shelved=True))
    assert is_announced(event(transition="shelve_expired"))
    assert not is_announced(event(transition="shelve_expired", acked=True))


def test_a_chattering_alarm_sends_its_burst_then_one_per_refill() -> None:
    limiter = RateLimiter(NOTIFY.rate_limit)  # burst 2, 60 per hour = one a minute
    sent = [bool(plan(NOTIFY, limiter, event(), now_s=t)) for t in (0, 1, 2, 3, 61, 62, 122)]
    assert sent == [True, True, False, False, True, False, True]
    assert limiter.suppressed == 3
    assert plan(NOTIFY, limiter, event(key="another"), now_s=3) != []  # per alarm: others are not held back


@given(st.lists(st.floats(min_value=0, max_value=36_000), max_size=200), st.integers(1, 5), st.floats(1, 120))
def test_the_rate_limit_never_lets_more_through_than_burst_plus_refill(
    times: list[float], burst: int, per_hour: float
) -> None:
    limiter = RateLimiter(RateLimit(burst=burst, per_hour=per_hour))
    times = sorted(times)
    allowed = sum(limiter.allow("k", "c", t) for t in times)
    span_h = (times[-1] - times[0]) / 3600 if times else 0
    assert allowed <= burst + span_h * per_hour + 1e-9


def test_escalation_is_due_once_per_route_after_its_delay() -> None:
    minute = 60 * 1_000_000_000
    assert escalations_due(NOTIFY, event(), 0, (), 9 * minute) == []
    assert escalations_due(NOTIFY, event(), 0, (), 10 * minute) == [(0, ["boss"])]
    assert escalations_due(NOTIFY, event(), 0, (0,), 20 * minute) == []
    assert escalations_due(NOTIFY, event(area="moulding"), 0, (), 20 * minute) == []


def test_dingtalk_signature_parameters_are_appended_to_the_robot_url() -> None:
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=t", "SECabc", 1700000000000)
    assert url.startswith("https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000000&sign=")
    assert "+" not in url.split("sign=")[1] and "/" not in url.split("sign=")[1]  # URL-encoded base64
    assert dingtalk_url("https://x/robot/send", None, 1) == "https://x/robot/send"


def test_feishu_signature_is_keyed_by_timestamp_and_secret() -> None:
    assert feishu_sign("s", 1599360473) != feishu_sign("s", 1599360474)
    assert len(feishu_sign("s", 1599360473)) == 44  # base64 of 32 bytes


def test_robot_answers_decide_between_delivered_retry_and_refused() -> None:
    channel = NOTIFY.channels["press-wecom"]
    assert service_accepted(channel, 200, {"errcode": 0, "errmsg": "ok"}) == (True, False, "")
    assert service_accepted(channel, 200, {"errcode": 45009, "errmsg": "freq"})[:2] == (False, True)
    assert service_accepted(channel, 200, {"errcode": 93000, "errmsg": "invalid webhook url"}) == (
        False, False, "wecom error 93000: invalid webhook url",
    )  # fmt: skip
    assert service_accepted(channel, 502, None)[:2] == (False, True)
    assert service_accepted(channel, 404, None)[:2] == (False, False)
    assert service_accepted(channel, 200, {"code": 0, "msg": "success"})[0]  # Feishu
