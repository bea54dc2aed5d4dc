"""OPC UA DataValue -> Sample: value conversion, scaling, enum maps, timestamps, quality."""

from __future__ import annotations

import datetime

import pytest
from asyncua import ua

from connectors.opcua.values import (
    plain_value,
    sample_from_data_value,
    source_time_ns,
    timestamp_ns,
    value_for_write,
)
from edge_config.schema import OpcUaTag
from gateway.sample import Quality

PATH = "acme/dongguan/machining/line2/cnc02/temp"
RECEIVED_NS = 1_800_000_000_000_000_000
SOURCE = datetime.datetime(2026, 11, 26, 8, 30, 0, 250_000, tzinfo=datetime.UTC)
SERVER = datetime.datetime(2026, 11, 26, 8, 30, 1, tzinfo=datetime.UTC)


def tag(**settings: object) -> OpcUaTag:
    return OpcUaTag.model_validate({"node": "ns=2;s=Cnc/Temp", **settings})


def data_value(
    value: object, variant: ua.VariantType | None = None, status: str = "Good", **stamps: object
) -> ua.DataValue:
    return ua.DataValue(
        ua.Variant(value, variant) if variant else ua.Variant(value),
        StatusCode=ua.StatusCode(getattr(ua.StatusCodes, status)),
        **stamps,
    )


def test_the_source_timestamp_wins_then_the_server_timestamp_then_arrival() -> None:
    both = data_value(1.0, SourceTimestamp=SOURCE, ServerTimestamp=SERVER)
    server_only = data_value(1.0, ServerTimestamp=SERVER)
    neither = data_value(1.0)

    assert source_time_ns(both, RECEIVED_NS) == 1_795_681_800_250_000_000
    assert source_time_ns(server_only, RECEIVED_NS) == 1_795_681_801_000_000_000
    assert source_time_ns(neither, RECEIVED_NS) == RECEIVED_NS


def test_naive_datetimes_from_asyncua_are_taken_as_utc() -> None:
    assert timestamp_ns(SOURCE.replace(tzinfo=None)) == timestamp_ns(SOURCE)


def test_the_opc_ua_null_timestamp_counts_as_missing() -> None:
    epoch_1601 = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)
    assert source_time_ns(data_value(1.0, SourceTimestamp=epoch_1601), RECEIVED_NS) == RECEIVED_NS


def test_scale_and_offset_turn_a_raw_integer_into_engineering_units() -> None:
    sample = sample_from_data_value(
        PATH, tag(scale=0.1, offset=-40), data_value(655, ua.VariantType.Int16), RECEIVED_NS
    )
    assert sample.value == pytest.approx(25.5)
    assert sample.quality == Quality.GOOD


def test_an_enum_map_names_the_state_and_an_unmapped_value_stays_visible() -> None:
    states = tag(map={0: "stopped", 1: "running", 2: "fault"})
    assert sample_from_data_value(PATH, states, data_value(2, ua.VariantType.Int32), RECEIVED_NS).value == "fault"
    assert sample_from_data_value(PATH, states, data_value(9, ua.VariantType.Int32), RECEIVED_NS).value == "9"


@pytest.mark.parametrize(
    ("value", "variant", "expected"),
    [
        (True, ua.VariantType.Boolean, True),
        (4_294_967_295, ua.VariantType.UInt32, 4_294_967_295),
        (-3, ua.VariantType.Int64, -3),
        (21.5, ua.VariantType.Double, 21.5),
        ("O1000", ua.VariantType.String, "O1000"),
    ],
)
def test_plain_types_pass_through_unchanged(value: object, variant: ua.VariantType, expected: object) -> None:
    sample = sample_from_data_value(PATH, tag(), data_value(value, variant), RECEIVED_NS)
    assert sample.value == expected and type(sample.value) is type(expected)


def test_richer_opc_ua_types_become_plain_values() -> None:
    assert plain_value(ua.LocalizedText("Läuft", "de")) == "Läuft"
    assert plain_value(ua.QualifiedName("Spindle", 2)) == "Spindle"
    assert plain_value(SOURCE) == "2026-11-26T08:30:00.250000+00:00"
    assert plain_value(b"\x01\x02") == "AQI="
    assert plain_value([1, 2, 3]) == "[1, 2, 3]"
    assert plain_value(ua.NodeId("Cnc/Temp", 2)) == "ns=2;s=Cnc/Temp"


def test_a_bad_status_gives_no_value_and_an_uncertain_one_keeps_it() -> None:
    bad = sample_from_data_value(PATH, tag(), data_value(21.5, status="BadSensorFailure"), RECEIVED_NS)
    uncertain = sample_from_data_value(
        PATH, tag(scale=2.0), data_value(21.5, status="UncertainSensorNotAccurate"), RECEIVED_NS
    )

    assert (bad.value, bad.quality, bad.reason) == (None, Quality.BAD, "sensor failure (BadSensorFailure)")
    assert (uncertain.value, uncertain.quality) == (43.0, Quality.UNCERTAIN)
    assert uncertain.tag == PATH


@pytest.mark.parametrize(
    ("value", "settings", "variant", "raw"),
    [
        (25.5, {"scale": 0.1, "offset": -40}, ua.VariantType.Int16, 655),
        ("fault", {"map": {0: "stopped", 2: "fault"}}, ua.VariantType.Int32, 2),
        (2, {"map": {0: "stopped", 2: "fault"}}, ua.VariantType.Int32, 2),
        (1, {}, ua.VariantType.Boolean, True),
        (7, {}, ua.VariantType.Double, 7.0),
        (4_294_967_295, {}, ua.VariantType.UInt32, 4_294_967_295),
        ("O2000", {}, ua.VariantType.String, "O2000"),
    ],
)
def test_a_written_engineering_value_becomes_the_nodes_raw_type(
    value: object, settings: dict[str, object], variant: ua.VariantType, raw: object
) -> None:
    written = value_for_write(value, tag(**settings), variant)  # type: ignore[arg-type]
    assert written == raw and type(written) is type(raw)


@pytest.mark.parametrize(
    ("value", "settings", "variant", "reason"),
    [
        ("brass", {"map": {0: "stopped"}}, ua.VariantType.Int32, "'brass' is not one of ['stopped']"),
        (70_000, {}, ua.VariantType.UInt16, "70000 does not fit the node's type UInt16 (0..65535)"),
        (-1, {}, ua.VariantType.UInt32, "-1 does not fit the node's type UInt32 (0..4294967295)"),
        ("12", {}, ua.VariantType.Int32, "'12' is not a number (node type Int32)"),
        (True, {}, ua.VariantType.Double, "True is not a number (node type Double)"),
        (2, {}, ua.VariantType.Boolean, "2 is not a boolean (node type Boolean)"),
        (5, {}, ua.VariantType.String, "5 is not text (node type String)"),
        (1.0, {"scale": 0.0}, ua.VariantType.Double, "a tag with scale 0 cannot be written"),
        (1, {}, ua.VariantType.DateTime, "writing DateTime nodes is not supported"),
    ],
)
def test_a_value_the_node_cannot_hold_is_refused_with_a_reason(
    value: object, settings: dict[str, object], variant: ua.VariantType, reason: str
) -> None:
    with pytest.raises(ValueError) as refused:
        value_for_write(value, tag(**settings), variant)  # type: ignore[arg-type]
    assert str(refused.value) == reason
