from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.quic.streams.assembler import Assembler


def test_in_order_and_partial_read() -> None:
    assembler = Assembler()
    assert assembler.insert(0, b"hello") == 5
    assert assembler.read(2) == b"he"
    assert assembler.insert(5, b" world") == 6
    assert assembler.read() == b"llo world"
    assert assembler.read() == b""
    assert assembler.read_offset == 11


def test_gap_holds_data_until_filled() -> None:
    assembler = Assembler()
    assert assembler.insert(5, b"world") == 0
    assert assembler.readable_bytes == 0
    assert assembler.buffered_bytes == 5
    assert assembler.insert(0, b"hello") == 10
    assert assembler.read() == b"helloworld"
    assert assembler.buffered_bytes == 0


def test_overlaps_are_stored_once() -> None:
    assembler = Assembler()
    assembler.insert(10, b"K" * 10)  # [10, 20)
    assembler.insert(30, b"M" * 10)  # [30, 40)
    assembler.insert(5, b"x" * 40)  # [5, 45) overlaps both and the gaps
    assert assembler.buffered_bytes == 40  # [5, 45) held once, not 60
    assembler.insert(0, b"a" * 5)
    data = assembler.read()
    assert data == b"a" * 5 + b"x" * 5 + b"K" * 10 + b"x" * 10 + b"M" * 10 + b"x" * 5


def test_duplicate_below_read_offset_is_ignored() -> None:
    assembler = Assembler()
    assembler.insert(0, b"abcdef")
    assembler.read()
    assert assembler.insert(2, b"cd") == 0
    assert assembler.insert(4, b"efgh") == 2
    assert assembler.read() == b"gh"


def test_skip_and_clear() -> None:
    assembler = Assembler()
    assembler.insert(0, b"abc")
    assembler.insert(10, b"z")
    assert assembler.skip() == 3
    assert assembler.read_offset == 3
    assert assembler.buffered_bytes == 1
    assembler.clear()
    assert assembler.buffered_bytes == 0


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]]]:
    data = draw(st.binary(min_size=0, max_size=600))
    pieces = []
    for _ in range(draw(st.integers(1, 40))):
        start = draw(st.integers(0, len(data)))
        stop = draw(st.integers(start, min(len(data), start + 80)))
        pieces.append((start, stop))
    # make sure everything is covered at least once, in random order and with duplicates
    step = draw(st.integers(1, 64))
    pieces += [(offset, min(len(data), offset + step)) for offset in range(0, len(data), step)]
    return data, draw(st.permutations(pieces))


@settings(max_examples=300)
@given(chunked(), st.integers(1, 100))
def test_random_chunking_reordering_duplication(
    case: tuple[bytes, list[tuple[int, int]]], read_size: int
) -> None:
    data, pieces = case
    assembler = Assembler()
    out = bytearray()
    readable = 0
    highest = 0
    for start, stop in pieces:
        readable += assembler.insert(start, data[start:stop])
        highest = max(highest, stop)
        # memory never exceeds the span between what was read and the highest offset received
        assert assembler.buffered_bytes <= highest - assembler.read_offset
        chunk = assembler.read(read_size)
        out += chunk
    out += assembler.read()
    assert bytes(out) == data
    assert readable == len(data)
    assert assembler.buffered_bytes == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.lists(st.integers(0, 60), min_size=1, max_size=6)), max_size=12
    ),
    st.booleans(),
)
def test_insert_pieces_equals_one_insert_per_piece(
    runs: list[tuple[int, list[int]]], read_between: bool
) -> None:
    """A run of consecutive pieces lands exactly as the pieces one by one: same readable counts, same
    bytes in order, same holes (in order or not, overlapping or duplicated)."""
    data = bytes(range(256)) * 4
    batched, single = Assembler(), Assembler()
    for offset, sizes in runs:
        pieces, position = [], offset
        for size in sizes:
            pieces.append(memoryview(data)[position : position + size])
            position += size
        expected = 0
        for piece, start in zip(pieces, [offset + sum(sizes[:i]) for i in range(len(sizes))], strict=True):
            expected += single.insert(start, piece)
        assert batched.insert_pieces(offset, pieces) == expected
        assert (batched.contiguous_end, batched.gaps, batched.buffered_bytes) == (
            single.contiguous_end,
            single.gaps,
            single.buffered_bytes,
        )
        if read_between:
            assert batched.read() == single.read()
    assert batched.read() == single.read()
