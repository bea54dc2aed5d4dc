"""The replay rate limit: a token bucket, worked through with a fake clock."""

from __future__ import annotations

import pytest

from gateway.forwarder import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_sends_a_burst_of_one_second_without_waiting() -> None:
    clock = Clock()
    bucket = TokenBucket(100, clock=clock)
    assert bucket.take(60) == 0.0
    assert bucket.take(40) == 0.0


def test_beyond_the_burst_each_message_waits_its_share_of_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(100, clock=clock)
    bucket.take(100)
    assert bucket.take(50) == pytest.approx(0.5), "50 messages at 100/s"
    clock.now += 0.5
    assert bucket.take(10) == pytest.approx(0.1)


def test_tokens_refill_with_time_but_never_above_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(100, burst=20, clock=clock)
    bucket.take(20)
    clock.now += 10.0  # a long idle time saves up at most the burst
    assert bucket.take(20) == 0.0
    assert bucket.take(10) == pytest.approx(0.1)


def test_over_a_long_replay_the_average_rate_is_the_limit() -> None:
    clock = Clock()
    bucket = TokenBucket(200, clock=clock)
    sent = 0
    while clock.now < 60.0:
        clock.now += bucket.take(50)  # the forwarder sleeps as told, then sends 50 messages
        sent += 50
    assert sent == pytest.approx(200 * 60 + 200, rel=0.01), "the rate, plus one initial burst"
