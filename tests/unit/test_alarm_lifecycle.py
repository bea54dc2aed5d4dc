"""The ISA-18.2 state machine: worked transitions and properties over random operator/process sequences."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.alarms.lifecycle import (
    AlarmCommandError,
    AlarmState,
    AlarmStatus,
    acknowledge,
    expire_shelve,
    on_condition,
    shelve,
    unshelve,
)


def test_the_four_states_and_their_transitions() -> None:
    s, t = on_condition(AlarmStatus(), True, 10)
    assert (s.state, t, s.active_since_ns, s.raise_count) == (AlarmState.ACTIVE_UNACKED, "raised", 10, 1)
    s, t = on_condition(s, False, 20)
    assert (s.state, t, s.cleared_ns) == (AlarmState.CLEARED_UNACKED, "cleared", 20)
    s, t = on_condition(s, True, 30)  # back before anyone acknowledged: raised again
    assert (s.state, s.raise_count, s.cleared_ns) == (AlarmState.ACTIVE_UNACKED, 2, None)
    s, t = acknowledge(s, "op", 40)
    assert (s.state, s.acked_by, s.acked_ns) == (AlarmState.ACTIVE_ACKED, "op", 40)
    s, t = on_condition(s, False, 50)
    assert s.state is AlarmState.NORMAL


def test_shelving_is_bounded_and_expires() -> None:
    with pytest.raises(AlarmCommandError, match="longer than the allowed"):
        shelve(AlarmStatus(), "op", 0, 7200, 3600)
    s, _ = shelve(AlarmStatus(), "op", 0, 60, 3600)
    assert expire_shelve(s, 59_999_999_999)[1] is None
    s, t = expire_shelve(s, 60_000_000_000)
    assert (t, s.shelved) == ("shelve_expired", False)
    with pytest.raises(AlarmCommandError, match="not shelved"):
        unshelve(s)


def test_a_status_survives_its_json_form() -> None:
    s, _ = on_condition(AlarmStatus(), True, 10, value=72.5)
    s, _ = shelve(s, "op", 11, 60, 3600)
    assert AlarmStatus.from_json(s.to_json()) == s


steps = st.lists(
    st.one_of(st.tuples(st.just("condition"), st.booleans()), st.tuples(st.just("ack"), st.just(True))), max_size=60
)


@given(steps)
def test_acknowledged_means_acked_and_active_follows_the_condition(sequence: list[tuple[str, bool]]) -> None:
    status, condition, raises = AlarmStatus(), False, 0
    for ts, (step, value) in enumerate(sequence):
        if step == "condition":
            before = status.state.active
            status, transition = on_condition(status, value, ts)
            condition = value
            raises += transition == "raised"
            assert (transition is not None) == (before != value)
        else:
            try:
                status, _ = acknowledge(status, "op", ts)
            except AlarmCommandError:
                assert status.state in (AlarmState.NORMAL, AlarmState.ACTIVE_ACKED)
            else:
                assert not status.state.unacked
        assert status.state.active == condition
        assert status.raise_count == raises
        if status.state is AlarmState.NORMAL:
            assert not condition
