"""${VAR} / ${VAR:-default} interpolation: worked examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_config.interpolation import MissingVariable, interpolate
from edge_config.problems import format_key_path

NAMES = st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True)
TEXT_WITHOUT_DOLLAR = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${HOST}", "10.0.0.1"),
        ("opc.tcp://${HOST}:${PORT:-4840}", "opc.tcp://10.0.0.1:4840"),
        ("${EMPTY:-fallback}", ""),  # set but empty: the value wins, like a shell's ${X-default}
        ("${UNSET:-}", ""),
        ("price $5", "price $5"),
        ("$${HOST}", "${HOST}"),
    ],
)
def test_worked_examples(text: str, expected: str):
    assert interpolate(text, {"HOST": "10.0.0.1", "EMPTY": ""}) == expected


def test_a_missing_variable_without_default_names_the_variable_and_how_to_default_it():
    with pytest.raises(MissingVariable, match=r"environment variable OPC_PASS is not set .*\$\{OPC_PASS:-value\}"):
        interpolate("${OPC_PASS}", {})


def test_a_malformed_placeholder_says_what_to_write():
    with pytest.raises(ValueError, match=r"malformed placeholder '\$\{1st\}'"):
        interpolate("${1st}", {})


@settings(max_examples=60, deadline=None)
@given(TEXT_WITHOUT_DOLLAR)
def test_text_without_a_dollar_is_unchanged(text: str):
    assert interpolate(text, {}) == text


@settings(max_examples=60, deadline=None)
@given(NAMES, TEXT_WITHOUT_DOLLAR, TEXT_WITHOUT_DOLLAR, st.text(max_size=20))
def test_a_set_variable_is_substituted_verbatim_wherever_it_appears(name, before, after, value):
    assert interpolate(f"{before}${{{name}}}{after}", {name: value}) == f"{before}{value}{after}"


@settings(max_examples=60, deadline=None)
@given(NAMES, st.text(alphabet=st.characters(blacklist_characters="$}"), max_size=20))
def test_the_default_applies_exactly_when_the_variable_is_unset(name, default):
    assert interpolate(f"${{{name}:-{default}}}", {}) == default
    assert interpolate(f"${{{name}:-{default}}}", {name: "set"}) == "set"


def test_key_paths_read_like_the_yaml():
    assert format_key_path(("devices", "press01", "tags", "temp", "address")) == "devices.press01.tags.temp.address"
    assert format_key_path(("include", 0)) == "include[0]"
