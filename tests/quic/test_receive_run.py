"""DataRun (rudp.quic.receive_run): which packets continue a run, what it hands over, and its bound."""

from __future__ import annotations

import random

from rudp.quic.receive_run import MAX_RUN_PACKETS, DataRun


def test_a_run_takes_only_the_next_packet_of_the_same_stream_and_data() -> None:
    run = DataRun()
    piece = memoryview(b"x" * 100)
    assert not run.extend(7, 4, 0, piece, 0x0E)  # empty: nothing to continue
    run.start(7, 4, 0, piece, 0x0E)
    assert not run.extend(9, 4, 100, piece, 0x0E)  # a packet number skipped
    assert not run.extend(8, 4, 150, piece, 0x0E)  # data not where the run's ends
    assert not run.extend(8, 8, 100, piece, 0x0E)  # another stream
    assert not run.extend(8, 4, 100, piece, 0x0C)  # another frame type
    assert run.extend(8, 4, 100, piece, 0x0E)
    taken = run.take()
    assert taken is not None
    first, last, stream_id, offset, end, pieces, kind = taken
    assert (first, last, stream_id, offset, end, kind, len(pieces)) == (7, 8, 4, 0, 200, 0x0E, 2)
    assert run.take() is None  # emptied
    assert not run.extend(9, 4, 200, piece, 0x0E)


def test_a_run_holds_at_most_max_run_packets() -> None:
    run = DataRun()
    piece = memoryview(b"y" * 10)
    run.start(0, 0, 0, piece, 0x0E)
    number = 1
    while run.extend(number, 0, 10 * number, piece, 0x0E):
        number += 1
    assert number == MAX_RUN_PACKETS
    taken = run.take()
    assert taken is not None and len(taken[5]) == MAX_RUN_PACKETS


def test_extend_filling_equals_extend_with_the_sliced_piece() -> None:
    """The fast path's extend_filling (the packet's payload and its STREAM fields) joins exactly the
    packets extend joins, with the data past the frame header as the piece."""
    rng = random.Random(5)
    for _ in range(500):
        runs = (DataRun(), DataRun())
        runs[0].start(10, 4, 0, b"a" * 50, 0x0E)
        runs[1].start(10, 4, 0, b"a" * 50, 0x0E)
        number, offset = 11, 50
        for _ in range(rng.randrange(1, 80)):
            packet_number = number + rng.choice((0, 0, 0, 1, -1))
            stream_id = rng.choice((4, 4, 4, 8))
            kind = rng.choice((0x0E, 0x0E, 0x0E, 0x0F, 0x0C))
            start = rng.randrange(2, 10)
            size = rng.randrange(1, 40)
            at = offset + rng.choice((0, 0, 0, 1, -size))
            payload = bytes(rng.randrange(256) for _ in range(start)) + rng.randbytes(size)
            joined = runs[0].extend(packet_number, stream_id, at, payload[start:], kind)
            assert runs[1].extend_filling(packet_number, (stream_id, at, start, kind), payload) == joined
            if joined:
                number, offset = number + 1, at + size
        assert runs[0].take() == runs[1].take()


def _stream_payload(rng: random.Random, stream_id: int, offset: int, kind: int, data: bytes) -> bytes:
    """A payload of one STREAM frame (RFC 9000 §19.8) with varints of random (valid) widths."""

    def varint(value: int) -> bytes:
        need = 0 if value < 0x40 else 1 if value < 0x4000 else 2 if value < 0x40000000 else 3
        width = rng.choice([w for w in range(need, 4)] + [need] * 4)
        return ((width << (8 * (1 << width) - 2)) | value).to_bytes(1 << width, "big")

    head = bytes((kind,)) + varint(stream_id) + (varint(offset) if kind & 0x04 else b"")
    return head + (varint(len(data)) if kind & 0x02 else b"") + data


def test_extend_packet_takes_exactly_what_pull_filling_stream_and_extend_filling_take() -> None:
    """The run's one-unpack check (extend_packet) joins a packet exactly when decoding its STREAM
    frame in full (pull_filling_stream) and extend_filling would, with the same run afterwards: over
    random runs and packets (every varint width, the next and other numbers, streams, offsets, near
    2^30 and 2^14 bounds, LEN or not, FIN, truncated frames, 64-packet runs). Fails if the check
    accepted a layout it does not decode (a 2-byte stream ID, an 8-byte offset, data past a LEN)."""
    from rudp.codec.frame_codec import pull_filling_stream
    from rudp.errors import DecodeError

    rng = random.Random(11)
    joins = 0
    for _ in range(3000):
        stream_id = rng.choice((0, 4, 0x3C, 0x40, 0x44, 0x104))
        kind = rng.choice((0x0C, 0x0E, 0x0E, 0x08, 0x0A))
        offset = rng.choice((0, 1000, 0x3FFFF000, 0x40000000 - 300, 0x40000010))
        runs = (DataRun(), DataRun())
        first = b"s" * rng.randrange(1, 400)
        for run in runs:
            run.start(5, stream_id, offset, first, kind)
        number, at = 6, offset + len(first)
        for _ in range(rng.randrange(1, 70)):
            size = rng.choice((1, 100, 1400, 0x3FF8, 0x4000))
            data = bytes(size)
            packet_kind = rng.choice((kind, kind, kind, kind | 0x01, kind ^ 0x02, 0x0C))
            packet = _stream_payload(
                rng, rng.choice((stream_id, stream_id, stream_id + 4)), rng.choice((at, at, at + 1)),
                packet_kind, data,
            )
            if rng.random() < 0.05:
                packet = packet[: rng.randrange(len(packet))]
            packet_number = rng.choice((number, number, number, number + 1))
            joined = runs[0].extend_packet(packet_number, packet)
            try:
                fields = pull_filling_stream(packet)
            except DecodeError:
                fields = None
            general = fields is not None and runs[1].extend_filling(packet_number, fields, packet)
            if joined:
                joins += 1
                assert general  # (the general path must take what the check took)
            else:
                if general:  # (a layout the check leaves to the full decode)
                    runs[0].extend_filling(packet_number, fields, packet)  # as the receiver falls back
            assert (runs[0].last, runs[0].end, len(runs[0].pieces)) == (
                runs[1].last, runs[1].end, len(runs[1].pieces)
            )
            if general:
                number, at = number + 1, runs[1].end
        assert runs[0].take() == runs[1].take()
    assert joins > 300  # (the usual layout, often enough to matter)


def test_extend_packet_reads_layouts_that_only_look_usual_as_the_full_decode() -> None:
    """Payloads whose first eight bytes read as the run's expected header, but whose STREAM frame
    decodes otherwise (RFC 9000 §16 varint widths): a 2-byte stream ID, an 8-byte offset (the run at
    2^30), a length of 2^15 (its 2-byte field reads as an 8-byte varint). The receiver's order
    (extend_packet, else the full decode and extend_filling) leaves the run as the full decode alone
    does: the same pieces, the same end."""
    from rudp.codec.frame_codec import pull_filling_stream

    def agrees(stream_id: int, kind: int, end: int, payload: bytes) -> bool:
        runs = (DataRun(), DataRun())
        for run in runs:
            run.start(1, stream_id, end - 1, b"x", kind)
        fields = pull_filling_stream(payload)
        if not runs[0].extend_packet(2, payload) and fields is not None:
            runs[0].extend_filling(2, fields, payload)
        if fields is not None:
            runs[1].extend_filling(2, fields, payload)
        return runs[0].take() == runs[1].take()

    end = 1000
    # Stream 0x44's byte, then (as the run reads it) the offset: really a 2-byte stream ID 0x4480.
    field = (0x80000000 | end).to_bytes(4, "big")
    length = (0x4000 | 100).to_bytes(2, "big")
    assert agrees(0x44, 0x0E, end, bytes((0x0E, 0x44)) + field + length + bytes(100))
    # The run at 2^30: its 4-byte field would be 0xC0000000, the start of an 8-byte varint (which,
    # decoded in full, does continue the run: the data starts 4 bytes later).
    end = 0x40000000
    eight_byte = (0xC000000000000000 | end).to_bytes(8, "big")
    assert agrees(4, 0x0C, end, bytes((0x0C, 4)) + eight_byte + bytes(100))
    # 2^15 bytes of data: 0x4000 | 0x8000 is 0xC000, an 8-byte varint's first two bytes.
    end = 1000
    big = bytes((0x0E, 4)) + (0x80000000 | end).to_bytes(4, "big") + (0xC000).to_bytes(2, "big")
    assert agrees(4, 0x0E, end, big + bytes(0x8000))
