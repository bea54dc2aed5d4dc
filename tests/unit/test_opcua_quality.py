"""OPC UA status codes -> Quality and a reason an operator can act on."""

from __future__ import annotations

import pytest
from asyncua import ua
from hypothesis import given
from hypothesis import strategies as st

from connectors.opcua.quality import quality_of_status
from gateway.sample import Quality


@pytest.mark.parametrize(
    ("status", "quality", "reason"),
    [
        ("Good", Quality.GOOD, ""),
        ("BadCommunicationError", Quality.BAD, "device not communicating (BadCommunicationError)"),
        ("BadSensorFailure", Quality.BAD, "sensor failure (BadSensorFailure)"),
        ("BadNodeIdUnknown", Quality.BAD, "node does not exist on the server (BadNodeIdUnknown)"),
        (
            "BadWaitingForInitialData",
            Quality.BAD,
            "the server is waiting for its first value from the device (BadWaitingForInitialData)",
        ),
        (
            "UncertainLastUsableValue",
            Quality.UNCERTAIN,
            "last usable value: the device stopped updating it (UncertainLastUsableValue)",
        ),
        ("UncertainSensorNotAccurate", Quality.UNCERTAIN, "sensor not accurate (UncertainSensorNotAccurate)"),
        ("GoodLocalOverride", Quality.GOOD, "value overridden locally at the device (GoodLocalOverride)"),
    ],
)
def test_known_status_codes_get_a_plain_reason(status: str, quality: Quality, reason: str) -> None:
    assert quality_of_status(getattr(ua.StatusCodes, status)) == (quality, reason)


def test_a_code_without_a_plain_reason_keeps_its_name_and_the_specifications_description() -> None:
    quality, reason = quality_of_status(ua.StatusCodes.BadEncodingLimitsExceeded)

    assert quality == Quality.BAD
    assert reason.startswith("BadEncodingLimitsExceeded: ")
    assert len(reason) > len("BadEncodingLimitsExceeded: ")


def test_info_bits_do_not_change_the_meaning() -> None:
    overflow_and_limit_bits = 0x0000_0480
    assert quality_of_status(ua.StatusCodes.UncertainLastUsableValue | overflow_and_limit_bits) == quality_of_status(
        ua.StatusCodes.UncertainLastUsableValue
    )
    assert quality_of_status(overflow_and_limit_bits) == (Quality.GOOD, "")


def test_an_unknown_bad_code_still_says_bad_with_its_number() -> None:
    assert quality_of_status(0x8FFF_0000) == (Quality.BAD, "status code 0x8FFF0000")


@given(st.integers(min_value=0, max_value=0xFFFF_FFFF))
def test_severity_bits_alone_decide_the_quality(code: int) -> None:
    quality, reason = quality_of_status(code)
    severity = code >> 30
    assert quality == {0: Quality.GOOD, 1: Quality.UNCERTAIN, 2: Quality.BAD, 3: Quality.BAD}[severity]
    if quality is not Quality.GOOD:
        assert reason, "anything but good must say why"
