"""The receive fast path for a 1-RTT packet that is one STREAM frame filling the payload (RFC 9000
§19.8): data lands in order, out of order, duplicated and with FIN exactly as through the general
frame loop, and every malformed or forbidden frame still closes the connection with its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from rudp.codec.codes import PacketType
from rudp.errors import TransportErrorCode
from rudp.quic import events as ev
from rudp.testing.certs import TestPki
from tests.support.stages import Staged, stage

STREAM = 0  # the client's first bidirectional stream: the server receives on it


def _varint(value: int) -> bytes:
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    return (value | 0x8000_0000).to_bytes(4, "big")


def _stream(
    data: bytes, offset: int = 0, *, stream_id: int = STREAM, fin: bool = False, length: int | None = None
) -> bytes:
    """A STREAM frame with the OFF bit, the FIN bit if ``fin``, a Length field if ``length``."""
    kind = 0x08 | 0x04 | (0x01 if fin else 0) | (0x02 if length is not None else 0)
    fields = _varint(stream_id) + _varint(offset) + (_varint(length) if length is not None else b"")
    return bytes([kind]) + fields + data


@pytest.fixture
def staged(pki: TestPki, tmp_path: Path) -> Staged:
    return stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)


def _read(staged: Staged) -> bytes:
    return staged.target.read_stream(STREAM)


def _closed_with(staged: Staged, code: int) -> None:
    cause = staged.target.close_cause
    assert cause is not None and cause.code == code and not cause.by_peer


def test_one_frame_packets_in_order_out_of_order_duplicated(staged: Staged) -> None:
    chunks = [bytes([i]) * 300 for i in range(5)]
    offsets = [300 * i for i in range(5)]
    staged.inject(_stream(chunks[0], offsets[0]))
    assert ev.StreamReadable(STREAM) in staged.events
    assert _read(staged) == chunks[0]
    staged.inject(_stream(chunks[2], offsets[2]))  # a hole before it: kept, not readable
    assert _read(staged) == b""
    staged.inject(_stream(chunks[0], offsets[0]))  # a duplicate of data already read
    staged.inject(_stream(chunks[1], offsets[1], length=300))  # the Length field ends the packet
    assert _read(staged) == chunks[1] + chunks[2]
    staged.inject(_stream(chunks[4], offsets[4], fin=True))
    staged.inject(_stream(chunks[3], offsets[3]))
    assert _read(staged) == chunks[3] + chunks[4]
    assert staged.target.stream_at_eof(STREAM)
    assert staged.target.close_cause is None


def test_a_frame_not_filling_the_packet_goes_through_the_frame_loop(staged: Staged) -> None:
    packet_number = staged.next_pn
    staged.inject(_stream(b"abc", 0, length=3) + b"\x01")  # then a PING: acknowledged at once
    assert _read(staged) == b"abc"
    tracker = staged.target._spaces.application.ack
    assert tracker.is_duplicate(packet_number) and tracker.ack_needed(staged.now)


def test_stream_on_a_send_only_stream_is_a_state_error(staged: Staged) -> None:
    staged.inject(_stream(b"x" * 40, stream_id=3))  # server-initiated unidirectional: we only send
    _closed_with(staged, TransportErrorCode.STREAM_STATE_ERROR)


def test_length_beyond_the_packet_is_an_encoding_error(staged: Staged) -> None:
    staged.inject(_stream(b"x" * 40, length=41))
    _closed_with(staged, TransportErrorCode.FRAME_ENCODING_ERROR)
    assert ev.StreamReadable(STREAM) not in staged.events


def test_data_beyond_the_stream_window_is_a_flow_control_error(staged: Staged) -> None:
    staged.inject(_stream(b"x" * 40, 1 << 29))
    _closed_with(staged, TransportErrorCode.FLOW_CONTROL_ERROR)


def _batch(staged: Staged, packets: list[tuple[bytes, int]]) -> None:
    """Hand the target every ``(payload, packet number)`` as one datagram, all in one call."""
    staged.now += 0.001
    items = [(staged.packet(payload, number), staged.source, 0) for payload, number in packets]
    staged.target.receive_datagrams(items, staged.now)
    staged.collect()


def test_runs_of_packets_in_one_batch_land_as_one_by_one(staged: Staged) -> None:
    """Consecutive one-frame packets of a batch are handed over as runs (rudp.quic.receive_run): a
    duplicate inside a run, a gap, the late packet that fills it, a frame type change and a FIN all
    give the bytes, events and acknowledgments of the packets one by one."""
    chunks = [bytes([i]) * 300 for i in range(7)]
    first = staged.next_pn
    _batch(
        staged,
        [
            (_stream(chunks[0], 0), first),
            (_stream(chunks[1], 300), first + 1),
            (_stream(chunks[2], 600, length=300), first + 2),  # another frame type: a new run
            (_stream(chunks[1], 300), first + 1),  # a duplicate packet of the run: dropped
            (_stream(chunks[4], 1200), first + 4),  # after a gap: held until the hole fills
            (_stream(chunks[5], 1500), first + 5),
            (_stream(chunks[3], 900), first + 3),  # the late one, below the largest received
            (_stream(chunks[6], 1800, fin=True), first + 6),
        ],
    )
    assert staged.target.close_cause is None
    assert staged.events.count(ev.StreamReadable(STREAM)) == 1
    assert _read(staged) == b"".join(chunks)
    assert staged.target.stream_at_eof(STREAM)
    tracker = staged.target._spaces.application.ack
    assert all(tracker.is_duplicate(number) for number in range(first, first + 7))
    assert not tracker.is_duplicate(first + 7)
    assert tracker.ack_needed(staged.now)  # RFC 9000 §13.2.1, §13.2.2: out of order, and many


def test_a_run_past_the_stream_window_closes_at_the_offending_packet(staged: Staged) -> None:
    """A run whose data passes the stream limit closes the connection with FLOW_CONTROL_ERROR for that
    STREAM frame type (RFC 9000 §4.1), as the packets one by one would."""
    first = staged.next_pn
    limit = 1 << 29  # far beyond any initial stream window
    _batch(staged, [(_stream(b"x" * 300, limit - 600 + 300 * i), first + i) for i in range(4)])
    cause = staged.target.close_cause
    assert cause is not None and cause.code == TransportErrorCode.FLOW_CONTROL_ERROR and not cause.by_peer
    assert cause.frame_type == 0x08 | 0x04
