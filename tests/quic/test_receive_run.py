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
