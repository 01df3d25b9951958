"""CryptoSendBuffer.write_frames: what fits goes out whole, the rest in order, lost bytes again."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rudp.codec.frames import Crypto, Frame
from rudp.quic.crypto_streams import CryptoSendBuffer


class Sink:
    def __init__(self, room: int) -> None:
        self.remaining = room
        self.frames: list[Crypto] = []
        self.handlers: list[Callable[[bool], None]] = []

    def push_frame(self, frame: Frame, handler: Callable[[bool], None] | None = None) -> None:
        assert isinstance(frame, Crypto) and handler is not None
        self.remaining -= 1 + 1 + 2 + len(frame.data)  # (upper bound of the header for these offsets)
        self.frames.append(frame)
        self.handlers.append(handler)


def test_a_flight_that_fits_goes_in_one_frame_and_nothing_stays_pending() -> None:
    buffer = CryptoSendBuffer()
    buffer.write(b"a" * 500)
    buffer.write(b"b" * 300)
    sink = Sink(1000)
    buffer.write_frames(sink)
    assert [(f.offset, f.data) for f in sink.frames] == [(0, b"a" * 500 + b"b" * 300)]
    assert not buffer.has_data()


def test_a_flight_larger_than_the_packet_is_split_in_order() -> None:
    buffer = CryptoSendBuffer()
    data = bytes(range(256)) * 10
    buffer.write(data)
    pieces = []
    while buffer.has_data():
        sink = Sink(1000)
        buffer.write_frames(sink)
        assert len(sink.frames) == 1 and len(sink.frames[0].data) <= 1000
        pieces.append(sink.frames[0])
    assert b"".join(f.data for f in pieces) == data
    assert [f.offset for f in pieces] == [0, len(pieces[0].data), len(pieces[0].data) + len(pieces[1].data)]


def test_lost_bytes_are_sent_again_and_acked_ones_are_not() -> None:
    buffer = CryptoSendBuffer()
    buffer.write(b"x" * 100)
    buffer.write_frames(Sink(60))  # 0..~56 in a first frame
    first = Sink(1000)
    buffer.write_frames(first)  # the rest
    assert not buffer.has_data()
    first.handlers[0](False)  # the second frame was lost
    again = Sink(1000)
    buffer.write_frames(again)
    assert [(f.offset, f.data) for f in again.frames] == [(first.frames[0].offset, first.frames[0].data)]
    again.handlers[0](True)
    assert not buffer.has_data()


class ExactSink:
    """A sink that encodes each frame (so its room is exact) and refuses one that does not fit."""

    def __init__(self, room: int) -> None:
        self.remaining = room
        self.frames: list[Crypto] = []

    def push_frame(self, frame: Frame, handler: Callable[[bool], None] | None = None) -> None:
        from rudp.codec.frame_codec import encode_frames

        size = len(encode_frames([frame]))
        assert size <= self.remaining, "the frame overflows the packet"
        self.remaining -= size
        assert isinstance(frame, Crypto)
        self.frames.append(frame)


def _reference_split(offset: int, length: int, room: int) -> int | None:
    """The bytes the first frame of a range carries, by crypto_frame_overhead (the general rule)."""
    from rudp.codec.frame_codec import crypto_frame_overhead

    space = room - crypto_frame_overhead(offset, length)
    if space <= 0:
        return None
    return min(space, length)


def test_the_inline_header_size_is_crypto_frame_overhead_at_every_varint_boundary() -> None:
    # The usual offsets and lengths (below 2**14) have their header sized inline; larger ones go through
    # crypto_frame_overhead. Each case: what the first frame carries, against the general rule.
    boundaries = (0, 1, 62, 63, 64, 65, 16382, 16383, 16384, 16385, 70000)
    for offset in boundaries:
        for length in (1, 63, 64, 65, 1000, 16383, 16384, 20000):
            for room in (3, 4, 5, 6, 7, 70, 1200, 17000, 21000):
                buffer = _pending_from(offset, length)
                sink = ExactSink(room)
                buffer.write_frames(sink)
                expected = _reference_split(offset, length, room)
                if expected is None:
                    assert sink.frames == [], (offset, length, room)
                else:
                    assert sink.frames and sink.frames[0].offset == offset
                    assert len(sink.frames[0].data) == expected, (offset, length, room)


def _pending_from(offset: int, length: int) -> CryptoSendBuffer:
    """A buffer whose first ``offset`` bytes are sent and acknowledged and the next ``length`` pending."""
    buffer = CryptoSendBuffer()
    buffer.write(bytes(offset))
    sink = Sink(10**6)
    buffer.write_frames(sink)
    for handler in sink.handlers:
        handler(True)
    buffer.write(bytes(length))
    return buffer


def test_the_unsent_flag_is_the_pending_ranges_answer_after_every_change() -> None:
    # ``unsent`` (has_data's answer, read by the sender) is kept on every change of the pending ranges:
    # checked against the ranges themselves through random writes, sends, losses, acks and requeues.
    import random

    rng = random.Random(7)
    for _ in range(50):
        buffer = CryptoSendBuffer()
        handlers: list[Callable[[bool], None]] = []
        for _ in range(40):
            step = rng.randrange(5)
            if step == 0:
                buffer.write(bytes(rng.randrange(0, 300)))
            elif step == 1:
                sink = Sink(rng.randrange(0, 400))
                buffer.write_frames(sink)
                handlers.extend(sink.handlers)
            elif step in (2, 3) and handlers:
                handlers.pop(rng.randrange(len(handlers)))(step == 2)
            elif step == 4:
                buffer.requeue_unacked()
            assert buffer.unsent == bool(buffer._pending) == buffer.has_data()


def test_the_unsent_flag_stays_right_when_a_sink_refuses_a_frame() -> None:
    class Refusing(Sink):
        def push_frame(self, frame: Frame, handler: Callable[[bool], None] | None = None) -> None:
            raise ValueError("frame does not fit in the packet")

    buffer = CryptoSendBuffer()
    buffer.write(b"z" * 10)
    with pytest.raises(ValueError):
        buffer.write_frames(Refusing(100))
    assert buffer.unsent == bool(buffer._pending)
