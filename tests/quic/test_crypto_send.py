"""CryptoSendBuffer.write_frames: what fits goes out whole, the rest in order, lost bytes again."""

from __future__ import annotations

from collections.abc import Callable

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
