"""The hourly OEE cache filled in the background (`oee_cache.CacheWarmer`, called by the MES ingest
every 30 s): afterwards every settled hour since the first recorded state is cached, the cached sums
equal the raw rows', and a long OEE query reads the cache without filling anything."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_lite.models import MachineStateInterval, OeeHourCache, ProductionCount
from mes_lite.services import oee_cache, oee_query
from mes_lite.spans import NS_PER_S, Span
from tests.integration.test_inventory_api import plant

HOUR = oee_cache.HOUR_NS
MINUTE = 60 * NS_PER_S
THRESHOLD_S = 120.0


def three_days_of_states(session: Session, machines: list[int], first_hour_ns: int) -> None:
    """Each hour: 40 min production then 20 min fault (intervals never cross an hour), 100 parts."""
    for wc in machines:
        for h in range(72):
            t = first_hour_ns + h * HOUR
            session.add_all(
                [
                    MachineStateInterval(
                        work_center_id=wc, start_ns=t, end_ns=t + 40 * MINUTE, state="running",
                        category="production", episode_ns=40 * MINUTE,
                    ),
                    MachineStateInterval(
                        work_center_id=wc, start_ns=t + 40 * MINUTE, end_ns=t + HOUR, state="fault",
                        category="fault", episode_ns=20 * MINUTE,
                    ),
                    ProductionCount(work_center_id=wc, ts_ns=t + 30 * MINUTE, produced_qty=100.0, source="test"),
                ]
            )  # fmt: skip
    session.commit()


def test_the_warmer_fills_every_settled_hour_with_the_raw_rows_sums_and_queries_then_only_read(
    mes_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time_ns()
    first = oee_cache.hour_floor(now) - 5 * oee_cache.DAY_NS  # three days of data, ending two days ago
    warmer = oee_cache.CacheWarmer(THRESHOLD_S, budget_s=60.0)
    ids = plant(mes_session, ("press01", "press02"))
    assert warmer.step(mes_session, ids, now) == 0  # no state recorded yet: nothing to fill
    three_days_of_states(mes_session, ids, first)

    days = warmer.step(mes_session, ids, now)
    assert days >= 5  # the settled part of today, the two quiet days, the three with data
    assert warmer.step(mes_session, ids, now) == 0, "a second round finds nothing to do"

    settled = oee_cache.settled_until(now)
    cached = mes_session.scalar(
        select(func.count()).select_from(OeeHourCache).where(OeeHourCache.work_center_id.in_(ids))
    )
    assert cached == len(ids) * (settled - first) // HOUR  # every settled hour since the first state, zeros too

    def no_fill(*_args: object) -> None:
        raise AssertionError("the query filled the cache: the warmer left a gap")

    monkeypatch.setattr(oee_cache, "_fill", no_fill)
    window = Span(first, first + 72 * HOUR)
    from_cache = oee_cache.hourly_sums(mes_session, ids, window.start_ns, window.end_ns, THRESHOLD_S, now)
    raw_states = oee_query.state_sums(mes_session, ids, window, THRESHOLD_S, now)
    raw_counts = oee_query.count_sums(mes_session, ids, window)
    for wc in ids:
        assert from_cache[wc]["production"] == raw_states[wc]["production"] == 72 * 40 * 60
        assert from_cache[wc]["fault"] == raw_states[wc]["fault"] == 72 * 20 * 60
        assert from_cache[wc]["produced_qty"] == raw_counts[wc][0] == 7200
