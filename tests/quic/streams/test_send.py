from __future__ import annotations

import random

import pytest

from rudp.codec.frame_codec import frame_size
from rudp.errors import StreamStateError
from rudp.quic.streams.send import SendBuffer, SendState, SendStream


def test_buffer_accepts_up_to_budget_and_ack_frees() -> None:
    buffer = SendBuffer(100)
    assert buffer.write(b"a" * 70) == 70
    assert buffer.write(b"b" * 70) == 30
    assert buffer.free == 0
    buffer.mark_sent(100)
    buffer.on_acked(50, 100)  # above a hole: remembered, not freed
    assert buffer.free == 0
    buffer.on_acked(0, 50)
    assert buffer.free == 100
    assert buffer.buffered_bytes == 0
    assert buffer.write(b"c" * 10) == 10
    assert buffer.peek(100, 110) == b"c" * 10


def test_loss_requeues_exact_unacked_ranges() -> None:
    buffer = SendBuffer(1000)
    buffer.write(bytes(range(256)) * 3)
    buffer.mark_sent(600)
    buffer.on_acked(100, 200)
    buffer.on_acked(300, 350)
    buffer.on_lost(50, 400)
    ranges = []
    while (lost := buffer.first_lost()) is not None:
        ranges.append(lost)
        buffer.mark_resent(*lost)
    assert ranges == [(50, 100), (200, 300), (350, 400)]


def test_ack_after_loss_cancels_resend() -> None:
    buffer = SendBuffer(1000)
    buffer.write(b"x" * 500)
    buffer.mark_sent(500)
    buffer.on_lost(0, 500)
    buffer.on_acked(100, 300)  # a late ack of an earlier copy
    assert list(_drain(buffer)) == [(0, 100), (300, 500)]


def _drain(buffer: SendBuffer) -> list[tuple[int, int]]:
    out = []
    while (lost := buffer.first_lost()) is not None:
        out.append(lost)
        buffer.mark_resent(*lost)
    return out


def _frames(stream: SendStream, size: int = 200, credit: int = 1 << 30) -> list:  # type: ignore[type-arg]
    out = []
    while (built := stream.next_frame(size, credit)) is not None:
        out.append(built[0])
    return out


def test_stream_never_resends_acked_bytes() -> None:
    stream = SendStream(0, credit=1 << 20, buffer_bytes=10_000)
    data = bytes(range(256)) * 10
    assert stream.write(data, fin=True) == len(data)
    frames = _frames(stream)
    assert b"".join(f.data for f in frames) == data
    assert frames[-1].fin and not any(f.fin for f in frames[:-1])
    assert all(frame_size(f) <= 200 for f in frames)
    assert stream.state is SendState.DATA_SENT
    # ack the odd frames, lose the even ones
    for index, frame in enumerate(frames):
        end = frame.offset + len(frame.data)
        if index % 2:
            stream.on_frame_acked(frame.offset, end, frame.fin)
        else:
            stream.on_frame_lost(frame.offset, end, frame.fin)
    resent = _frames(stream)
    expected = [(f.offset, f.offset + len(f.data)) for i, f in enumerate(frames) if i % 2 == 0]
    assert [(f.offset, f.offset + len(f.data)) for f in resent] == expected
    last_was_lost = (len(frames) - 1) % 2 == 0
    assert any(f.fin for f in resent) == last_was_lost
    for frame in resent:
        stream.on_frame_acked(frame.offset, frame.offset + len(frame.data), frame.fin)
    assert stream.state is SendState.DATA_RECVD
    assert stream.buffer.buffered_bytes == 0
    assert _frames(stream) == []


def test_lost_fin_is_resent_alone() -> None:
    stream = SendStream(4, credit=100, buffer_bytes=100)
    stream.write(b"abc", fin=False)
    (_first,) = _frames(stream)
    stream.write(b"", fin=True)
    (fin_frame,) = _frames(stream)
    assert fin_frame.data == b"" and fin_frame.fin and fin_frame.offset == 3
    stream.on_frame_acked(0, 3, False)
    stream.on_frame_lost(3, 3, True)
    (again,) = _frames(stream)
    assert again.fin and again.offset == 3 and again.data == b""
    stream.on_frame_acked(3, 3, True)
    assert stream.is_done


def test_stream_credit_limits_new_data() -> None:
    stream = SendStream(0, credit=10, buffer_bytes=100)
    stream.write(b"x" * 50, fin=False)
    frames = _frames(stream)
    assert sum(len(f.data) for f in frames) == 10
    assert stream.note_credit_blocked()
    assert stream.credit.take_blocked() == 10
    stream.credit.raise_limit(30)
    assert sum(len(f.data) for f in _frames(stream)) == 20
    # connection credit limits too
    stream.credit.raise_limit(100)
    built = stream.next_frame(200, 5)
    assert built is not None and len(built[0].data) == 5 and built[1] == 5
    assert stream.next_frame(200, 0) is None


def test_write_after_fin_or_reset_raises() -> None:
    stream = SendStream(0, credit=10, buffer_bytes=100)
    stream.write(b"x", fin=True)
    with pytest.raises(StreamStateError):
        stream.write(b"y", fin=False)
    other = SendStream(4, credit=10, buffer_bytes=100)
    other.write(b"x" * 20, fin=False)
    _frames(other)
    assert other.reset(7)
    assert other.final_size == 10  # highest offset sent, not bytes written (RFC 9000 §4.5)
    assert other.buffer.buffered_bytes == 0
    with pytest.raises(StreamStateError):
        other.write(b"y", fin=False)
    assert _frames(other) == []


def test_reset_resent_until_acked() -> None:
    stream = SendStream(0, credit=10, buffer_bytes=100)
    stream.reset(3)
    assert stream.reset_pending and stream.state is SendState.RESET_SENT
    stream.reset_pending = False
    stream.on_reset_lost()
    assert stream.reset_pending
    stream.reset_pending = False
    stream.on_reset_acked()
    assert stream.state is SendState.RESET_RECVD
    stream.on_reset_lost()
    assert not stream.reset_pending
    assert not stream.reset(4)


def test_frames_fit_tiny_packets() -> None:
    stream = SendStream(1 << 40, credit=1 << 20, buffer_bytes=1 << 16)
    stream.write(b"z" * 5000, fin=True)
    for size in (12, 13, 20, 57):
        built = stream.next_frame(size, 1 << 20)
        assert built is not None
        assert frame_size(built[0]) <= size
    assert stream.next_frame(3, 1 << 20) is None


def test_writable_after_half_budget_freed() -> None:
    stream = SendStream(0, credit=1 << 20, buffer_bytes=100)
    assert stream.write(b"x" * 150, fin=False) == 100
    assert stream.write_blocked
    frames = _frames(stream, size=30)
    assert not stream.on_frame_acked(0, 20, False)  # 20 of 100 free: not yet
    assert not stream.take_writable()
    # The acknowledgment that frees half the budget answers True, once (as take_writable).
    assert stream.on_frame_acked(20, frames[2].offset + len(frames[2].data), False)
    assert not stream.take_writable()
    assert not stream.on_frame_acked(frames[2].offset + len(frames[2].data), frames[3].offset, False)


def test_requeue_for_probe_resends_oldest_unacked_bytes_and_fin() -> None:
    from rudp.quic.streams.send import SendStream

    send = SendStream(0, credit=1 << 20, buffer_bytes=1 << 20)
    send.write(b"a" * 3000, fin=True)
    first = send.next_frame(1200, 1 << 20)
    second = send.next_frame(1200, 1 << 20)
    third = send.next_frame(1200, 1 << 20)
    assert first and second and third and third[0].fin
    send.on_frame_acked(0, len(first[0].data), False)  # only the first frame arrived
    assert not send.wants_to_send(1 << 20)  # everything was sent once: nothing new
    assert send.requeue_for_probe(500)
    frame, new_bytes = send.next_frame(1200, 1 << 20) or (None, 0)
    assert frame is not None and new_bytes == 0
    assert frame.offset == len(first[0].data) and len(frame.data) == 500 and not frame.fin
    # With everything but the tail acknowledged, the re-sent tail carries the FIN again.
    send.on_frame_acked(0, 3000 - 10, False)
    assert send.requeue_for_probe(500)
    tail, _ = send.next_frame(1200, 1 << 20) or (None, 0)
    assert tail is not None and tail.offset == 2990 and tail.fin


def test_acks_in_any_order_match_a_model() -> None:
    # In-order acknowledgments take SendBuffer.on_acked's fast path (no range set); out-of-order ones
    # the general one. Either way: the acknowledged front, the bytes still held, what is re-sent
    # after losses, and what the front frees must be what a plain set of acknowledged bytes says.
    for seed in range(40):
        rng = random.Random(seed)
        size = 4000
        data = rng.randbytes(size)
        buffer = SendBuffer(size)
        assert buffer.write(data) == size
        assert buffer.take_new(0, size) == data
        acked: set[int] = set()
        lost: set[int] = set()
        chunks = [(start, min(start + 100, size)) for start in range(0, size, 100)]
        order = sorted(chunks, key=lambda _: rng.random()) if seed % 2 else chunks
        for start, stop in order:
            if rng.random() < 0.2:
                buffer.on_lost(start, stop)
                lost |= set(range(start, stop)) - acked
            buffer.on_acked(start, stop)
            acked |= set(range(start, stop))
            lost -= acked
            front = next((offset for offset in range(size) if offset not in acked), size)
            assert buffer.acked_offset == front
            assert buffer.buffered_bytes == size - front
            assert buffer.has_lost == bool(lost)
            if front < size:
                assert buffer.peek(front, front + 1) == data[front : front + 1]
        assert buffer.acked_offset == size and not buffer.has_lost


def test_chunked_buffer_gives_back_what_was_written() -> None:
    # Writes of every size (small ones merged into one chunk, large ones kept apart), frames that
    # cross chunk boundaries, re-sends after losses and acknowledgments in order and out of it: every
    # frame's bytes are those written at its offsets, and the budget frees as the front is acknowledged.
    for seed in range(30):
        rng = random.Random(seed)
        written = bytearray()
        buffer = SendBuffer(50_000)
        offset = 0
        frames: list[tuple[int, int]] = []
        for _ in range(60):
            size = rng.choice([1, 7, 100, 1500, 9000, 20_000])
            data = rng.randbytes(size)
            accepted = buffer.write(memoryview(data))
            written += data[:accepted]
            while buffer.next_offset < buffer.end:
                start = buffer.next_offset
                stop = min(buffer.end, start + rng.choice([1, 50, 1400, 3000]))
                assert buffer.take_new(start, stop) == bytes(written[start:stop])
                frames.append((start, stop))
            rng.shuffle(frames)
            for start, stop in frames[: rng.randrange(len(frames) + 1)]:
                if rng.random() < 0.3:
                    buffer.on_lost(start, stop)
                    lost = buffer.first_lost()
                    if lost is not None:
                        assert buffer.peek(*lost) == bytes(written[lost[0] : lost[1]])
                else:
                    buffer.on_acked(start, stop)
                    frames.remove((start, stop))
            offset = buffer.acked_offset
            assert buffer.free == 50_000 - (buffer.end - offset)
            if offset < buffer.end:
                assert buffer.peek(offset, buffer.end) == bytes(written[offset:])
        assert buffer.end == len(written)


def test_next_chunk_cut_means_more_to_send() -> None:
    """``cut`` (the frame was cut to fit) promises wants_to_send for the credit left, which a packet
    train relies on instead of asking; a frame not cut leaves the stream's last byte, credit or
    lost range sent. Random writes, losses, stream and connection credit."""
    rng = random.Random(13)
    cuts = whole = 0
    for _ in range(200):
        stream = SendStream(4, credit=rng.randrange(1, 6000), buffer_bytes=8000)
        stream.write(bytes(rng.randrange(1, 8000)), fin=rng.random() < 0.5)
        connection = rng.randrange(0, 9000)
        sent: list[tuple[int, int]] = []
        for _ in range(30):
            size = rng.randrange(1, 1500)
            wanted = stream.wants_to_send(connection)
            built = stream.next_chunk(size, connection)
            if built is None:
                # None: nothing to send, or not even a minimal frame fits (then a larger packet does).
                assert not wanted or stream.next_chunk(1 << 16, connection) is not None
                break
            assert wanted
            start, data, _, new_bytes, cut = built
            connection -= new_bytes
            sent.append((start, start + len(data)))
            if cut:
                cuts += 1
                assert stream.wants_to_send(connection)
            else:
                whole += 1
            if sent and rng.random() < 0.2:
                stream.on_frame_lost(*sent.pop(rng.randrange(len(sent))), False)
    assert cuts > 100 and whole > 100  # both kinds happened


def test_buffer_copies_mutable_writes_and_keeps_bytes_as_written() -> None:
    buffer = SendBuffer(1000)
    mutable = bytearray(b"abcd")
    view_source = bytearray(b"wxyz")
    assert buffer.write(mutable) == 4
    assert buffer.write(memoryview(view_source)) == 4
    data = b"k" * 20_000  # more than one merged chunk: kept as the object written
    assert buffer.write(data) == 992
    mutable[:] = b"----"
    view_source[:] = b"----"
    assert buffer.peek(0, 8) == b"abcdwxyz"
    assert buffer.peek(8, 1000) == b"k" * 992
    whole = b"z" * 10
    other = SendBuffer(20_000)
    other.write(b"q" * 16_384)  # a full chunk: the next write starts its own
    other.write(whole)
    assert other.take_new(16_384, 16_394) is whole


def test_range_sets_work_after_reset_clear() -> None:
    buffer = SendBuffer(1000)
    buffer.write(b"x" * 300)
    buffer.mark_sent(300)
    buffer.on_lost(0, 100)
    buffer.on_acked(200, 300)
    buffer.clear()
    assert buffer.first_lost() is None
    assert buffer.first_unacked() is None
    buffer.write(b"y" * 100)
    buffer.mark_sent(400)
    buffer.on_acked(350, 400)  # above the front again: a new range set
    buffer.on_lost(300, 400)
    assert _drain(buffer) == [(300, 350)]
