"""State a peer controls stays bounded (security issue, item 7): PATH_CHALLENGE floods, connection-ID
churn, scattered STREAM and CRYPTO data. Each test pushes past the bound through real, correctly
protected packets and asserts the bound holds and, where the RFC gives one, the error code on the wire.
"""

from __future__ import annotations

import itertools
import random
import time
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.codec import frames as f
from rudp.codec.codes import FrameType, PacketType
from rudp.codec.frame_codec import encode_frames
from rudp.errors import TransportErrorCode
from rudp.quic import crypto_streams
from rudp.quic.crypto_streams import MAX_CRYPTO_CHUNKS, CryptoReceiveBuffer
from rudp.quic.paths import MAX_PATH_RESPONSES, MAX_PATHS
from rudp.quic.state import State
from rudp.quic.streams.assembler import MAX_GAPS, Assembler
from rudp.testing.certs import TestPki
from tests.support.stages import Staged, owed_path_responses, stage

PV = TransportErrorCode.PROTOCOL_VIOLATION
CID_LIMIT = TransportErrorCode.CONNECTION_ID_LIMIT_ERROR
STREAM_OFF_LEN = 0x0E  # STREAM with the OFF and LEN bits (RFC 9000 §19.8)


def _wire_close(staged: Staged) -> f.ConnectionClose:
    closes = [frame for _, frame in staged.sent_frames() if isinstance(frame, f.ConnectionClose)]
    assert closes, "a CONNECTION_CLOSE is sent"
    return closes[0]


def _ack_everything_sent(staged: Staged) -> list[f.Frame]:
    """Frames the target sends now, after which each of its packets is acknowledged (as a peer would)."""
    sent = staged.sent_frames()
    numbers = sorted({number for number, _ in sent}, reverse=True)
    if numbers:
        staged.inject(encode_frames([f.Ack(((number, number),)) for number in numbers]))
    return [frame for _, frame in sent]


# -- PATH_CHALLENGE flood (RFC 9000 §8.2.2, §13.3) -------------------------------------------------


def test_path_challenge_flood_keeps_only_the_latest_responses(pki: TestPki, tmp_path: Path) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)
    target = staged.target
    challenges = [i.to_bytes(8, "big") for i in range(2_000)]
    for start in range(0, len(challenges), 100):  # 100 PATH_CHALLENGEs per packet, 20 packets
        staged.inject(encode_frames([f.PathChallenge(data) for data in challenges[start : start + 100]]))
        assert max(owed_path_responses(target)) <= MAX_PATH_RESPONSES
    responses = [frame.data for _, frame in staged.sent_frames() if isinstance(frame, f.PathResponse)]
    assert responses == challenges[-MAX_PATH_RESPONSES:]  # the latest ones, each answered once
    assert target.close_cause is None


# -- connection-ID churn (RFC 9000 §5.1.2, §19.15) ----------------------------------------------------


def _new_cid(sequence: int, retire_prior_to: int) -> f.NewConnectionId:
    return f.NewConnectionId(sequence, retire_prior_to, sequence.to_bytes(8, "big"), bytes(16))


def test_retire_prior_to_churn_without_acks_closes_with_connection_id_limit_error(
    pki: TestPki, tmp_path: Path
) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=True)
    target = staged.target
    peer_cids = target._peer_cids
    bound = peer_cids.max_retiring
    assert bound == 2 * target._handshake.local_params.active_connection_id_limit  # RFC 9000 §5.1.2
    for sequence in range(100, 100 + 20 * bound):
        # Each frame retires every earlier CID; the attacker never acknowledges a RETIRE_CONNECTION_ID.
        staged.inject(encode_frames([_new_cid(sequence, sequence)]))
        assert peer_cids.retiring <= bound
        assert len(peer_cids._to_retire) <= bound
        if target.close_cause is not None:
            break
    cause = target.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (CID_LIMIT, FrameType.NEW_CONNECTION_ID)
    close = _wire_close(staged)
    assert (close.error_code, close.frame_type) == (CID_LIMIT, FrameType.NEW_CONNECTION_ID)


def test_repeated_old_connection_ids_are_retired_once(pki: TestPki, tmp_path: Path) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=True)
    peer_cids = staged.target._peer_cids
    staged.inject(encode_frames([_new_cid(50, 50)]))
    owed = peer_cids.retiring
    for _ in range(50):  # the same stale NEW_CONNECTION_ID (below retire_prior_to), 20 per packet
        staged.inject(encode_frames([_new_cid(7, 0)] * 20))
    assert peer_cids.retiring == owed + 1 and len(peer_cids._to_retire) == owed + 1
    assert staged.target.close_cause is None


def test_churn_with_acknowledged_retirements_stays_open(pki: TestPki, tmp_path: Path) -> None:
    # A peer that lets us retire (acknowledges our RETIRE_CONNECTION_IDs) may rotate CIDs for ever.
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=True)
    peer_cids = staged.target._peer_cids
    retired: set[int] = set()
    for sequence in range(100, 400):
        staged.inject(encode_frames([_new_cid(sequence, sequence)]))
        sent = _ack_everything_sent(staged)
        retired |= {frame.sequence for frame in sent if isinstance(frame, f.RetireConnectionId)}
        assert peer_cids.retiring == 0
    assert staged.target.close_cause is None
    assert staged.target.destination_cid == (399).to_bytes(8, "big")
    assert set(range(100, 399)) <= retired


def test_more_active_peer_cids_than_our_limit_is_connection_id_limit_error(
    pki: TestPki, tmp_path: Path
) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)
    limit = staged.target._handshake.local_params.active_connection_id_limit
    # RFC 9000 §5.1.1: with retire_prior_to 0 nothing is retired; one more than the limit is an error.
    staged.inject(encode_frames([_new_cid(1000 + i, 0) for i in range(limit + 1)]))
    cause = staged.target.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (CID_LIMIT, FrameType.NEW_CONNECTION_ID)
    assert len(staged.target._peer_cids._spare) <= limit
    close = _wire_close(staged)
    assert close.error_code == CID_LIMIT


# -- scattered STREAM data (RFC 9000 §2.2, §21.7) ----------------------------------------------------


def test_scattered_stream_pieces_are_capped_per_stream(pki: TestPki, tmp_path: Path) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)
    target = staged.target
    offsets = list(range(2, 2 * (MAX_GAPS + 50), 2))  # 1-byte pieces, each after its own hole
    for start in range(0, len(offsets), 100):
        staged.inject(encode_frames([f.Stream(0, offset, b"x") for offset in offsets[start : start + 100]]))
        entry = target._streams._streams.get(0)
        if entry is not None and entry.recv is not None:
            assert entry.recv.assembler.gaps <= MAX_GAPS
        if target.close_cause is not None:
            break
    cause = target.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (PV, STREAM_OFF_LEN)
    close = _wire_close(staged)
    assert (close.error_code, close.frame_type) == (PV, STREAM_OFF_LEN)


def test_tiny_pieces_in_reverse_order_stay_one_run_and_arrive_whole(pki: TestPki, tmp_path: Path) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)
    data = random.Random(1).randbytes(3_000)

    def piece(i: int) -> f.Stream:
        return f.Stream(0, i, data[i : i + 1], fin=i == len(data) - 1)

    for start in range(len(data) - 100, 0, -100):  # 1-byte frames, last byte first, 100 per packet
        staged.inject(encode_frames([piece(i) for i in range(start + 99, start - 1, -1)]))
        assembler = staged.target._streams._streams[0].recv.assembler  # type: ignore[union-attr]
        assert assembler.gaps == 1 and assembler.readable_bytes == 0  # merged: one run after one hole
    staged.inject(encode_frames([piece(i) for i in range(100)]))
    assert staged.target.read_stream(0) == data
    assert staged.target.stream_at_eof(0) and staged.target.close_cause is None


def _reverse_fill_seconds(count: int) -> float:
    """CPU time to reassemble ``count`` 1-byte pieces sent last-first (the worst order for a sorted
    list of pieces), then the first byte; best of three."""
    best = float("inf")
    payloads = [bytes((i & 0xFF,)) for i in range(count)]
    for _ in range(3):
        assembler = Assembler()
        started = time.process_time()
        for offset in range(count - 1, 0, -1):
            assembler.insert(offset, payloads[offset])
        released = assembler.insert(0, payloads[0])
        best = min(best, time.process_time() - started)
        assert released == count and assembler.gaps == 0
    return best


def test_reassembly_scales_linearly_not_quadratically() -> None:
    # 4x the pieces: about 4x the work when linear (or n log n), about 16x when quadratic. The factor 7
    # leaves room for noise and caches; CPU time (not wall time) ignores other processes.
    small, large = 30_000, 120_000
    ratio = _reverse_fill_seconds(large) / max(_reverse_fill_seconds(small), 1e-6)
    assert ratio < 7, f"4x the pieces took {ratio:.1f}x the time"


def test_memory_follows_the_bytes_received_not_the_holes() -> None:
    # A peer may put one byte at the far end of its credit on every stream: nothing is reserved for
    # the holes before it (RFC 9000 §21.7), so state stays proportional to what was sent.
    assemblers = [Assembler() for _ in range(100)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for assembler in assemblers:
            for offset in range(1 << 20, (1 << 20) + 64 * 1024, 1024):  # 64 one-byte pieces each
                assembler.insert(offset, b"x")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(a.buffered_bytes == 64 and a.gaps == 64 for a in assemblers)
    assert grown < 100 * 64 * 400  # a few hundred bytes per piece, not a MiB per stream


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=460, max_size=460),  # covers every piece: offsets < 400, lengths <= 60
    pieces=st.lists(st.tuples(st.integers(0, 399), st.integers(1, 60), st.binary(min_size=60, max_size=60))),
)
def test_first_copy_of_each_byte_wins(data: bytes, pieces: list[tuple[int, int, bytes]]) -> None:
    # RFC 9000 §2.2: the data at an offset must not change; a later, different copy never replaces
    # what was received first, whatever the overlaps and holes.
    assembler = Assembler()
    expected: dict[int, int] = {}
    for offset, length, junk in pieces:
        chunk = junk[:length]
        for i, byte in enumerate(chunk):
            expected.setdefault(offset + i, byte)
        assembler.insert(offset, chunk)
        assert assembler.gaps <= MAX_GAPS
    for i, byte in enumerate(data):
        expected.setdefault(i, byte)
    assembler.insert(0, data)
    out = assembler.read()
    assert out == bytes(expected[i] for i in range(len(data)))
    assert assembler.buffered_bytes == 0


# -- scattered CRYPTO data (RFC 9000 §7.5) -----------------------------------------------------------


def test_scattered_crypto_pieces_in_a_spoofable_initial_are_capped(pki: TestPki, tmp_path: Path) -> None:
    # Initial keys are public: a bound here is a bound on what any off-path sender can make us hold.
    staged = stage(pki, tmp_path, PacketType.INITIAL, client_target=False)
    target = staged.target
    offsets = list(range(4_000, 4_000 + 2 * (MAX_CRYPTO_CHUNKS + 50), 2))
    for start in range(0, len(offsets), 100):
        staged.inject(encode_frames([f.Crypto(offset, b"x") for offset in offsets[start : start + 100]]))
        assert len(target._spaces[0].crypto_recv._chunks) <= MAX_CRYPTO_CHUNKS  # type: ignore[index]
        if target.close_cause is not None:
            break
    cause = target.close_cause
    code = TransportErrorCode.CRYPTO_BUFFER_EXCEEDED
    assert cause is not None and (cause.code, cause.frame_type) == (code, FrameType.CRYPTO)
    assert target.state is State.CLOSING
    close = _wire_close(staged)
    assert (close.error_code, close.frame_type) == (code, FrameType.CRYPTO)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    cuts=st.lists(st.integers(1, 2999), max_size=40),
    seed=st.integers(),
)
def test_crypto_reassembly_in_any_order(data: bytes, cuts: list[int], seed: int) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    frames = [f.Crypto(low, data[low:high]) for low, high in itertools.pairwise(bounds)]
    frames += frames[: len(frames) // 2]  # duplicates too
    random.Random(seed).shuffle(frames)
    buffer = CryptoReceiveBuffer()
    out = b"".join(buffer.receive(frame) for frame in frames)
    assert out == data and buffer.offset == len(data)
    assert not buffer._chunks and not buffer._starts and buffer._buffered == 0
    assert not crypto_streams._NO_CHUNKS and not crypto_streams._NO_STARTS


def test_crypto_buffers_share_only_empty_records() -> None:
    # Buffers start with shared empty records and take their own at the first out-of-order piece: a
    # piece held by one never reaches another (nor the records a new buffer starts with).
    data = bytes(range(256)) * 8
    held, in_order = CryptoReceiveBuffer(), CryptoReceiveBuffer()
    assert held._chunks is in_order._chunks and held._starts is in_order._starts
    assert held.receive(f.Crypto(1000, data[1000:1500])) == b""
    assert held.receive(f.Crypto(600, data[600:900])) == b""
    assert in_order.receive(f.Crypto(0, data[:700])) == data[:700]
    assert in_order.receive(f.Crypto(700, data[700:1600])) == data[700:1600]
    fresh = CryptoReceiveBuffer()
    assert not fresh._chunks and not fresh._starts and not crypto_streams._NO_CHUNKS
    assert held.receive(f.Crypto(0, data[:600])) == data[:900]
    assert held.receive(f.Crypto(900, data[900:1000])) == data[900:1500] and held.offset == 1500
    assert not held._chunks and held._buffered == 0 and in_order.offset == 1600


# -- new addresses (RFC 9000 §9.3): the path table ------------------------------------------------------


def test_packets_from_many_addresses_keep_the_path_table_bounded(pki: TestPki, tmp_path: Path) -> None:
    """A peer (or an on-path attacker replaying its packets) sending authenticated packets from 200 new
    addresses, some to other local addresses of ours, never makes the server hold more than MAX_PATHS
    paths; the connection stays open and answers on the newest path."""
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)
    target = staged.target
    locals_ = [None, ("10.0.0.2", 4433), ("10.0.0.3", 4433)]
    seen = []
    for n in range(200):
        staged.now += 0.001
        packet = staged.packet(encode_frames([f.Ping(), f.Padding(1200)]))
        addr = (f"10.{1 + n // 250}.{n % 250}.9", 30_000 + n)
        seen.append(addr)
        target.receive_datagram(packet, addr, staged.now, local=locals_[n % len(locals_)])
        staged.collect()
        assert len(list(target._paths)) <= MAX_PATHS
        target.datagrams_to_send(staged.now)
    assert target.close_cause is None and target.state is State.ESTABLISHED
    # it followed the peer (RFC 9000 §9.3); a path to another local address of ours needs a spare
    # client CID first (§9.5), so the newest address may not be the one answered
    assert target.peer_address in seen[-len(locals_) :]
