"""DataRun (rudp.quic.receive_run): which packets continue a run, what it hands over, and its bound."""

from __future__ import annotations

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
    import random

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
