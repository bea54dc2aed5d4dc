"""The write-back allow-list (`check_write`): what may reach a machine, and the reason when not."""

from __future__ import annotations

import pytest

from edge_config.schema import Device
from gateway.writeback import WriteRefused, check_write, parse_command_topic

DEVICE = Device.model_validate(
    {
        "name": "press01",
        "area": "stamping",
        "line": "line1",
        "protocol": "modbus",
        "connection": {"host": "127.0.0.1"},
        "tags": {
            "target_quantity": {"address": "hr40020", "type": "uint32", "writable": True, "min": 0, "max": 1_000_000},
            "speed": {"address": "hr40030", "type": "int16", "scale": 0.1, "writable": True},
            "mode": {"address": "hr40031", "writable": True, "map": {0: "auto", 1: "manual"}},
            "enable": {"address": "co00010", "writable": True},
            "recipe": {"address": "hr40040", "type": "string", "length": 4, "writable": True},
            "total_count": {"address": "hr40004", "type": "uint32"},
            "oil_temp": {"address": "ir30001", "type": "float32", "writable": True},
        },
        "derived": {"rate": {"rate_of": "total_count"}},
    }
)


@pytest.mark.parametrize(
    ("tag", "value", "expected"),
    [
        ("target_quantity", 1200, 1200),
        ("target_quantity", 1200.0, 1200),
        ("speed", 12.5, 12.5),
        ("mode", "manual", "manual"),
        ("mode", 0, 0),
        ("enable", True, True),
        ("recipe", "AB12", "AB12"),
    ],
)
def test_allowed_writes_pass_with_the_value_to_send(tag: str, value: object, expected: object) -> None:
    assert check_write(DEVICE, tag, value) == expected


@pytest.mark.parametrize(
    ("tag", "value", "reason"),
    [
        ("total_count", 5, "press01/total_count is not writable: only tags marked writable: true"),
        ("nope", 1, "press01 has no tag 'nope'"),
        ("rate", 1, "is a derived tag, computed by the gateway"),
        ("oil_temp", 1.0, "is at ir30001, a read-only Modbus table"),
        ("target_quantity", -1, "-1 is below the minimum 0 of target_quantity"),
        ("target_quantity", 1_000_001, "above the maximum 1e+06"),
        ("target_quantity", 12.5, "is an integer (uint32): 12.5 has a fraction"),
        ("target_quantity", True, "is a number: send a number (got true)"),
        ("target_quantity", "12", 'is a number: send a number (got "12")'),
        ("target_quantity", None, "value must be a bool, a number or a text (got null)"),
        ("target_quantity", float("nan"), "is not a finite number"),
        ("speed", 4000.0, "does not fit speed (int16, raw 40000)"),
        ("mode", "turbo", "'turbo' is not one of auto, manual"),
        ("enable", 1, "enable is a bool: send true or false (got 1)"),
        ("recipe", "ABCDEFGHI", "longer than the 8 bytes of recipe"),
        ("recipe", 5, "recipe is a text: send a string (got 5)"),
    ],
)
def test_everything_else_is_refused_with_a_plain_reason(tag: str, value: object, reason: str) -> None:
    with pytest.raises(WriteRefused) as refused:
        check_write(DEVICE, tag, value)
    assert reason in str(refused.value)


def test_command_topics_name_the_machine_and_the_tag() -> None:
    assert parse_command_topic("acme/dg/stamping/line1/press01/_cmd/target_quantity") == (
        "acme/dg/stamping/line1/press01", "target_quantity",
    )  # fmt: skip
    assert parse_command_topic("acme/dg/stamping/line1/press01/_cmd/target_quantity/response") is None
    assert parse_command_topic("acme/dg/stamping/line1/press01/target_quantity") is None
