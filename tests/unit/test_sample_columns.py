"""A read's columns (`SampleBlock`) and a batch of parts (`SampleChain`) behave as the list of
`Sample`s they stand for: same length, items, slices, equality; only the CPU differs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.buffer import decode_segment, encode_segment
from gateway.sample import PerRead, Quality, Sample, SampleBlock, SampleChain, chain_samples, parts_of


def block(n: int, ts_ns: int = 7, first: int = 0) -> SampleBlock:
    return SampleBlock(tuple(f"e/s/a/l/m/t{i}" for i in range(first, first + n)), list(range(first, first + n)), ts_ns)


def test_a_block_is_the_good_samples_of_its_columns() -> None:
    b = block(3)
    assert len(b) == 3
    assert b[1] == Sample("e/s/a/l/m/t1", 1, 7)
    assert b[-1] == Sample("e/s/a/l/m/t2", 2, 7, Quality.GOOD, "")
    assert list(b) == [Sample(f"e/s/a/l/m/t{i}", i, 7) for i in range(3)]
    assert b == list(b) and list(b) == b
    assert b != [Sample("e/s/a/l/m/t0", 0, 7)]


def test_a_whole_slice_of_a_block_is_the_block_itself_and_a_part_is_a_smaller_block() -> None:
    b = block(4)
    assert b[0:] is b and b[:] is b and b[0:10] is b
    part = b[1:3]
    assert isinstance(part, SampleBlock) and part == [b[1], b[2]]


def test_a_block_refuses_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="2 tag paths for 1 values"):
        SampleBlock(("a", "b"), [1], 0)


parts_strategy = st.lists(
    st.one_of(
        st.integers(0, 5).map(lambda n: block(n, ts_ns=n)),
        st.lists(st.builds(Sample, st.just("e/s/a/l/m/x"), st.integers(), st.integers(0, 9)), max_size=3),
    ),
    max_size=5,
)


@given(parts_strategy, st.integers(-12, 12), st.integers(-12, 12))
def test_a_chain_indexes_and_slices_as_the_concatenated_list(parts: list, start: int, stop: int) -> None:
    chain = SampleChain(parts)
    flat = [s for p in parts for s in p]
    assert len(chain) == len(flat) and list(chain) == flat and chain == flat
    assert list(chain[start:stop]) == flat[start:stop]
    for i in range(-len(flat), len(flat)):
        assert chain[i] == flat[i]
    with pytest.raises(IndexError):
        chain[len(flat)]


def test_parts_are_kept_so_a_fast_path_finds_its_blocks() -> None:
    a, b = block(2), block(2, first=2)
    chain = SampleChain([a, [], b])
    assert parts_of(chain) == [a, b] and parts_of(chain)[0] is a
    assert parts_of(a) == [a]
    assert chain_samples([[], a]) is a, "one part is passed on as it is"


@given(parts_strategy)
def test_the_buffer_stores_blocks_and_chains_exactly_as_the_same_samples(parts: list) -> None:
    samples = SampleChain(parts)
    if not len(samples):
        return
    tag_ids = {tag: i for i, tag in enumerate(sorted({s.tag for s in samples}), start=1)}
    paths = {i: tag for tag, i in tag_ids.items()}
    assert encode_segment(samples, tag_ids) == encode_segment(list(samples), tag_ids)
    assert decode_segment(encode_segment(samples, tag_ids), paths) == list(samples)


def test_a_per_read_cache_builds_once_per_layout_remembers_none_and_stays_bounded() -> None:
    built: list[tuple[str, ...]] = []

    def build(paths: tuple[str, ...]) -> int | None:
        built.append(paths)
        return len(paths) if len(paths) > 1 else None

    layouts = PerRead(build, max_layouts=2)
    a, b, c = ("x",), ("x", "y"), ("x", "y", "z")
    assert [layouts(a), layouts(b), layouts(a), layouts(b)] == [None, 2, None, 2]
    assert built == [a, b], "built once per layout, a None (no fast path) included"
    assert layouts(c) == 3 and layouts(a) is None
    assert built == [a, b, c, a], "beyond max_layouts the cache started over"
