"""Unified Namespace topics and JSON payloads, worked examples and properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sample import Quality, Sample, SampleBlock, SampleChain
from gateway.sinks.uns import (
    BatchEncoder,
    TopicMapper,
    batch_documents,
    encode_document,
    iso_utc_ms,
    path_fields,
    sample_document,
)

PATH = "acme/dongguan/stamping/line1/press01/spindle_temp"


def test_timestamps_are_iso_8601_utc_with_milliseconds_truncated_not_rounded():
    assert iso_utc_ms(1_764_157_080_123_999_999) == "2025-11-26T11:38:00.123Z"
    assert iso_utc_ms(0) == "1970-01-01T00:00:00.000Z"


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))
def test_the_iso_timestamp_parses_back_to_the_same_millisecond(ts_ns: int):
    parsed = datetime.strptime(iso_utc_ms(ts_ns), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert round(parsed.timestamp() * 1000) == ts_ns // 1_000_000


def test_the_default_template_reproduces_the_tag_path_and_a_custom_one_reorders_levels():
    assert TopicMapper("{enterprise}/{site}/{area}/{line}/{machine}/{tag}").tag_topic(PATH) == PATH
    assert TopicMapper("plant/{machine}/{tag}").tag_topic(PATH) == "plant/press01/spindle_temp"


def test_the_batch_topic_is_the_template_with_the_tag_level_set_to_batch():
    mapper = TopicMapper("{enterprise}/{site}/{area}/{line}/{machine}/{tag}")
    assert mapper.batch_topic("acme/dongguan/stamping/line1/press01") == "acme/dongguan/stamping/line1/press01/_batch"


def test_an_unknown_placeholder_is_refused_at_start_up_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown placeholder 'cell'.*\{enterprise\}, \{site\}"):
        TopicMapper("{enterprise}/{cell}/{tag}")


def test_a_path_that_is_not_six_levels_cannot_be_split_but_is_still_published_on_itself():
    with pytest.raises(ValueError, match="is not enterprise/site/area/line/machine/tag"):
        path_fields("acme/press01/temp")
    assert path_fields("a/b/c/d/e/f/g")["tag"] == "f/g"
    assert TopicMapper("{site}/{machine}/{tag}").tag_topic("acme/press01/temp") == "acme/press01/temp"


def test_a_uns_json_document_has_reason_and_unit_only_when_there_are_some():
    good = sample_document(Sample(PATH, 71.5, 1_000_000_000), unit="degC")
    assert good == {
        "value": 71.5,
        "ts": "1970-01-01T00:00:01.000Z",
        "ts_ns": 1_000_000_000,
        "quality": "good",
        "unit": "degC",
    }
    bad = sample_document(Sample(PATH, None, 0, Quality.BAD, "Modbus exception 2: illegal data address"))
    assert bad["quality"] == "bad" and bad["reason"] == "Modbus exception 2: illegal data address"
    assert "unit" not in bad


def test_batches_group_by_machine_and_keep_the_order_of_delivery():
    samples = [
        Sample("a/s/ar/l/m1/x", 1, 10),
        Sample("a/s/ar/l/m2/y", True, 11),
        Sample("a/s/ar/l/m1/x", 2, 12),
        Sample("a/s/ar/l/m1/z", None, 13, Quality.UNCERTAIN),
    ]
    assert batch_documents(samples) == {
        "a/s/ar/l/m1": {
            "machine": "a/s/ar/l/m1",
            "samples": [
                {"tag": "x", "value": 1, "ts_ns": 10},
                {"tag": "x", "value": 2, "ts_ns": 12},
                {"tag": "z", "value": None, "ts_ns": 13, "quality": "uncertain"},
            ],
        },
        "a/s/ar/l/m2": {"machine": "a/s/ar/l/m2", "samples": [{"tag": "y", "value": True, "ts_ns": 11}]},
    }


def test_nan_and_infinity_become_null_because_json_has_neither():
    encoded = encode_document({"value": float("nan"), "more": [float("inf"), 1.5]})
    assert json.loads(encoded) == {"value": None, "more": [None, 1.5]}


@given(st.lists(st.tuples(st.sampled_from(["m1", "m2", "m3"]), st.integers()), max_size=50))
def test_every_sample_is_in_exactly_one_batch(entries: list[tuple[str, int]]):
    samples = [Sample(f"e/s/a/l/{machine}/t", value, i) for i, (machine, value) in enumerate(entries)]
    batches = batch_documents(samples)
    flattened = sorted(entry["ts_ns"] for doc in batches.values() for entry in doc["samples"])
    assert flattened == list(range(len(samples)))


sample_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included: both encoders must write null
    st.text(max_size=8),
)
samples_strategy = st.lists(
    st.builds(
        Sample,
        tag=st.sampled_from(["a/s/ar/l/m1/x", "a/s/ar/l/m1/é", 'a/s/ar/l/m"2/y']),
        value=sample_values,
        ts_ns=st.integers(min_value=0, max_value=2**63 - 1),
        quality=st.sampled_from(list(Quality)),
        reason=st.sampled_from(["", "timeout", 'quote " and ü']),
    ),
    max_size=30,
)


@given(samples_strategy)
def test_the_fast_batch_encoder_writes_exactly_what_the_reference_json_encoding_writes(samples: list[Sample]):
    reference = {machine: encode_document(doc) for machine, doc in batch_documents(samples).items()}
    assert BatchEncoder().encode(samples) == reference


block_strategy = st.builds(
    lambda machine, tags, values, ts_ns: SampleBlock(
        tuple(f"a/s/ar/l/{machine}/{tag}" for tag in tags), values[: len(tags)], ts_ns
    ),
    machine=st.sampled_from(["m1", 'm"2']),
    tags=st.lists(st.sampled_from(["x", "é", "y", "p%s", "n\0"]), min_size=1, max_size=4),
    values=st.lists(sample_values, min_size=4, max_size=4),
    ts_ns=st.integers(min_value=0, max_value=2**63 - 1),
)
mixed_block_strategy = st.builds(  # one block spanning two machines: encoded sample by sample
    lambda values, ts_ns: SampleBlock(("a/s/ar/l/m1/x", "a/s/ar/l/m3/x"), values, ts_ns),
    values=st.lists(st.integers(), min_size=2, max_size=2),
    ts_ns=st.integers(min_value=0, max_value=2**63 - 1),
)


@given(st.lists(st.one_of(block_strategy, mixed_block_strategy, samples_strategy), max_size=6))
def test_read_blocks_in_a_chain_are_encoded_exactly_as_the_same_samples_one_by_one(parts: list):
    """The column fast path (a connector's `SampleBlock`s) changes the CPU, never the bytes."""
    chain = SampleChain(parts)
    reference = {machine: encode_document(doc) for machine, doc in batch_documents(list(chain)).items()}
    encoder = BatchEncoder()
    assert encoder.encode(chain) == reference
    assert encoder.encode(chain) == reference  # again, from the cached layouts
