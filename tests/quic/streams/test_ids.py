from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.quic.streams.ids import (
    can_receive,
    can_send,
    is_bidirectional,
    is_client_initiated,
    is_local,
    make_stream_id,
    stream_index,
)


@pytest.mark.parametrize(
    ("stream_id", "client", "bidi"),
    [
        (0, True, True),
        (1, False, True),
        (2, True, False),
        (3, False, False),
        (4, True, True),
        (7, False, False),
    ],
)
def test_low_bits_encode_type(stream_id: int, client: bool, bidi: bool) -> None:
    # RFC 9000 §2.1 Table 1
    assert is_client_initiated(stream_id) is client
    assert is_bidirectional(stream_id) is bidi


def test_index_and_id() -> None:
    assert make_stream_id(0, client_initiated=True, bidirectional=True) == 0
    assert make_stream_id(1, client_initiated=False, bidirectional=True) == 5
    assert make_stream_id(2, client_initiated=True, bidirectional=False) == 10
    assert make_stream_id(3, client_initiated=False, bidirectional=False) == 15
    assert stream_index(15) == 3


@given(st.integers(0, (1 << 60) - 1), st.booleans(), st.booleans())
def test_round_trip(index: int, client: bool, bidi: bool) -> None:
    stream_id = make_stream_id(index, client_initiated=client, bidirectional=bidi)
    assert stream_index(stream_id) == index
    assert is_client_initiated(stream_id) is client
    assert is_bidirectional(stream_id) is bidi
    assert is_local(stream_id, client)
    assert not is_local(stream_id, not client)


def test_directions() -> None:
    # client's uni stream 2: client sends only, server receives only
    assert can_send(2, True) and not can_receive(2, True)
    assert can_receive(2, False) and not can_send(2, False)
    # bidi streams go both ways for both
    for is_client in (True, False):
        assert can_send(0, is_client) and can_receive(0, is_client)
        assert can_send(1, is_client) and can_receive(1, is_client)
