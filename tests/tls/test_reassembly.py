"""Reassembly of CRYPTO bytes into handshake messages (RFC 9001 §4.1.3): a buffer holding exactly one
message (taken whole) and buffers holding more or less than one give the same messages."""

from __future__ import annotations

import pytest

from rudp.errors import TransportError
from rudp.tls.framing import MAX_MESSAGE_BYTES, HandshakeReassembler, RawMessage, frame

MESSAGES = [frame(1, b"hello" * 30), frame(2, b""), frame(8, bytes(range(256))), frame(20, b"f" * 32)]


def _drain(reassembler: HandshakeReassembler) -> list[RawMessage]:
    out = []
    while (message := reassembler.next_message()) is not None:
        out.append(message)
    return out


def _expected() -> list[RawMessage]:
    return [RawMessage(raw[0], raw[4:], raw) for raw in MESSAGES]


@pytest.mark.parametrize("chunk", [1, 3, 4, 5, 17, 300, 10_000])
def test_any_chunking_gives_the_same_messages(chunk: int) -> None:
    data = b"".join(MESSAGES)
    reassembler = HandshakeReassembler()
    got: list[RawMessage] = []
    for start in range(0, len(data), chunk):
        reassembler.feed(data[start : start + chunk])
        got += _drain(reassembler)
    assert got == _expected()
    assert len(reassembler) == 0


def test_one_message_at_a_time_leaves_an_empty_buffer() -> None:
    reassembler = HandshakeReassembler()
    for raw, expected in zip(MESSAGES, _expected(), strict=True):
        reassembler.feed(raw)  # (exactly one message: taken whole)
        assert _drain(reassembler) == [expected]
        assert len(reassembler) == 0
    reassembler.feed(MESSAGES[0] + MESSAGES[1][:2])  # (one and a part: cut)
    assert _drain(reassembler) == [_expected()[0]]
    assert len(reassembler) == 2


def test_an_oversized_announcement_is_refused() -> None:
    reassembler = HandshakeReassembler()
    reassembler.feed(bytes((1,)) + (MAX_MESSAGE_BYTES + 1).to_bytes(3, "big"))
    with pytest.raises(TransportError):
        reassembler.next_message()
