"""Connection-level fuzzing with real keys: random and mutated frames inside correctly protected
packets, to a client and to a server, at every encryption level the target holds keys for.

Whatever arrives, the connection must:

- never let an exception out of ``receive_datagram``, ``handle_timer``, ``datagrams_to_send``,
  ``next_timer`` or ``next_event``;
- either stay open or end cleanly: a local close carries a QUIC transport error code, is sent on the
  wire as a CONNECTION_CLOSE with that code, and the connection reaches CLOSED when its timers run; a
  CONNECTION_CLOSE from the (forged) peer drains;
- keep every queue and table the peer can feed under its bound, after every packet.

Two drivers: hypothesis (frame values from plausible and full ranges, packet numbers, byte mutations)
and seeded random mutation of encoded valid frames (bit flips, varint prefixes, truncation, splices).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudp.codec import frames as f
from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import encode_frames
from rudp.errors import TransportErrorCode
from rudp.quic.acks import MAX_TRACKED_RANGES
from rudp.quic.connection import QuicConnection
from rudp.quic.crypto_streams import MAX_CRYPTO_BUFFER, MAX_CRYPTO_CHUNKS
from rudp.quic.paths import MAX_PATH_RESPONSES
from rudp.quic.receiving import MAX_PENDING_PACKETS
from rudp.quic.state import State
from rudp.quic.streams.assembler import MAX_GAPS
from rudp.testing.certs import TestPki
from tests.strategies import frames_last, frames_with_length
from tests.support.stages import Staged, owed_path_responses, stage

KNOWN_CODES = {int(code) for code in TransportErrorCode} | set(range(0x100, 0x200))  # + CRYPTO_ERROR
STAGES = [
    pytest.param(packet_type, client, id=f"{packet_type.name}-{'client' if client else 'server'}")
    for client in (False, True)
    for packet_type in (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE, PacketType.ONE_RTT)
]
FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_bounded(conn: QuicConnection) -> None:
    """Every peer-fed queue or table of ``conn`` is under its bound."""
    config = conn._config
    assert conn._receiver.pending_packets <= MAX_PENDING_PACKETS
    assert max(owed_path_responses(conn)) <= MAX_PATH_RESPONSES
    assert len(conn._spaces.application.skipped) <= 16
    peer_cids = conn._peer_cids
    assert peer_cids.retiring <= peer_cids.max_retiring
    assert len(peer_cids._to_retire) <= peer_cids.max_retiring
    assert len(peer_cids._spare) <= config.active_connection_id_limit
    assert len(conn._local_cids.active) <= 8 and len(conn._local_cids.changes) <= 32
    for space in conn._spaces:
        assert len(space.ack._received) <= MAX_TRACKED_RANGES
    for buffer in [space.crypto_recv for space in conn._spaces]:
        assert len(buffer._chunks) <= MAX_CRYPTO_CHUNKS and buffer._buffered <= 2 * MAX_CRYPTO_BUFFER
    streams = conn._streams._streams
    assert len(streams) <= config.max_streams_bidi + config.max_streams_uni
    for entry in streams.values():
        if entry.recv is not None:
            assembler = entry.recv.assembler
            assert assembler.gaps <= MAX_GAPS
            assert assembler.buffered_bytes <= entry.recv.window.max_window
    assert not conn._events  # drained by the caller after every input, as the contract says


class Driver:
    """Feeds one staged target and checks it after every input."""

    def __init__(self, staged: Staged) -> None:
        self.staged = staged
        self.closes_sent: list[int] = []
        """Error codes of the CONNECTION_CLOSE frames the target sent (when its packets can be read)."""

    def send(self, payload: bytes, packet_number: int | None = None) -> None:
        self.staged.inject(payload, packet_number)
        self.check()

    def flush(self) -> None:
        """Everything the target sends now: it must not raise, and its closes are noted."""
        staged = self.staged
        if staged.reader is None:
            staged.output()
        else:
            sent = [frame for _, frame in staged.sent_frames()]
            self.closes_sent += [frame.error_code for frame in sent if isinstance(frame, f.ConnectionClose)]
        staged.target.next_timer()
        staged.collect()

    def check(self) -> None:
        conn = self.staged.target
        self.flush()
        assert_bounded(conn)
        cause = conn.close_cause
        if cause is None:
            assert conn.state in (State.HANDSHAKE, State.ESTABLISHED)
        elif cause.by_peer:
            assert conn.state in (State.DRAINING, State.CLOSED)
        else:
            assert cause.code in KNOWN_CODES and not cause.application, cause
            assert conn.state in (State.CLOSING, State.CLOSED)

    def run_timers(self) -> None:
        """Let time pass: timers fire, the target sends; a closing connection closes for good."""
        conn, staged = self.staged.target, self.staged
        cause = conn.close_cause  # what the input did (later, the idle timeout closes silently)
        for _ in range(300):
            deadline = conn.next_timer()
            if deadline is None or deadline > staged.now + 120:
                break
            staged.now = max(staged.now, deadline)
            conn.handle_timer(staged.now)
            self.check()
        if cause is None:
            return
        assert conn.state is State.CLOSED  # the closing or draining period ended
        if not cause.by_peer and self.staged.reader is not None:
            # Sent on the wire with its code (RFC 9000 §10.2), maybe after pacing let it go.
            assert cause.code in self.closes_sent, (cause, self.closes_sent)


# -- plausible frames: small values near the target's real state, to get past the first check --------


def _plausible() -> st.SearchStrategy[f.Frame]:
    sids = st.integers(0, 15)
    small = st.integers(0, 3000)
    data = st.binary(max_size=40)
    return st.one_of(
        st.builds(f.Stream, sids, small, data, st.booleans(), st.just(True)),
        st.builds(f.Ack, st.integers(0, 3).map(lambda n: ((0, n),)), st.integers(0, 100)),
        st.builds(f.Crypto, small, data),
        st.builds(f.ResetStream, sids, st.integers(0, 9), small),
        st.builds(f.StopSending, sids, st.integers(0, 9)),
        st.builds(f.MaxData, small),
        st.builds(f.MaxStreamData, sids, small),
        st.builds(f.MaxStreams, st.booleans(), st.integers(0, 200)),
        st.builds(f.StreamDataBlocked, sids, small),
        st.integers(0, 12).flatmap(
            lambda seq: st.builds(
                f.NewConnectionId, st.just(seq), st.integers(0, seq), st.binary(min_size=8, max_size=8),
                st.binary(min_size=16, max_size=16),
            )
        ),
        st.builds(f.RetireConnectionId, st.integers(0, 10)),
        st.builds(f.PathChallenge, st.binary(min_size=8, max_size=8)),
        st.builds(f.Datagram, data, st.just(True)),
        st.just(f.Ping()),
        st.just(f.HandshakeDone()),
    )


@st.composite
def _packets(draw: st.DrawFn) -> list[tuple[bytes, int | None]]:
    plausible = _plausible()
    frame = st.one_of(plausible, plausible, frames_with_length)  # 2/3 plausible values, 1/3 any
    packets = []
    for _ in range(draw(st.integers(1, 4))):
        frames = draw(st.lists(frame, min_size=1, max_size=8))
        if draw(st.booleans()):
            frames.append(draw(frames_last))
        payload = bytearray(encode_frames(frames))
        mutations = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=3)
        for position, value in draw(mutations):
            payload[position % len(payload)] = value  # mutations inside the protected payload
        number = draw(st.none() | st.integers(0, 1 << 20))
        packets.append((bytes(payload), None if number is None else 2_000 + number))
    return packets


@pytest.mark.parametrize(("packet_type", "client"), STAGES)
@FUZZ
@given(data=st.data())
def test_hypothesis_frames_in_protected_packets(
    pki: TestPki, tmp_path: Path, packet_type: PacketType, client: bool, data: st.DataObject
) -> None:
    driver = Driver(stage(pki, tmp_path, packet_type, client_target=client))
    for payload, number in data.draw(_packets()):
        driver.send(payload, number)
    driver.run_timers()


# -- seeded mutation of valid frames ------------------------------------------------------------------


def _valid_frames(rng: random.Random, staged: Staged) -> list[f.Frame]:
    peer_bidi = 1 if staged.is_client else 0
    choices: list[f.Frame] = [
        f.Ping(),
        f.Ack(((0, 0),), rng.randrange(50)),
        f.Crypto(rng.randrange(5000), rng.randbytes(rng.randrange(1, 30))),
        f.Stream(
            peer_bidi + 4 * rng.randrange(3), rng.randrange(2000), rng.randbytes(rng.randrange(30)),
            rng.random() < 0.3,
        ),
        f.MaxData(rng.randrange(1 << 24)),
        f.MaxStreamData(peer_bidi, rng.randrange(1 << 20)),
        f.MaxStreams(rng.random() < 0.5, rng.randrange(300)),
        f.NewConnectionId(5 + rng.randrange(5), rng.randrange(5), rng.randbytes(8), rng.randbytes(16)),
        f.RetireConnectionId(rng.randrange(4)),
        f.PathChallenge(rng.randbytes(8)),
        f.PathResponse(rng.randbytes(8)),
        f.ResetStream(peer_bidi, 3, rng.randrange(3000)),
        f.StopSending(peer_bidi, 3),
        f.Datagram(rng.randbytes(rng.randrange(20)), True),
        f.ConnectionClose(rng.randrange(20), b"fuzz", rng.randrange(0x20)),
    ]
    return [rng.choice(choices) for _ in range(rng.randrange(1, 8))]


def _mutate(rng: random.Random, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.randrange(1, 4)):
        operation = rng.randrange(6)
        position = rng.randrange(len(data)) if data else 0
        if operation == 0 and data:
            data[position] ^= 1 << rng.randrange(8)  # bit flip
        elif operation == 1 and data:
            data[position] = rng.choice((0x00, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF))  # varint edges
        elif operation == 2 and len(data) > 1:
            del data[rng.randrange(1, len(data)) :]  # truncation
        elif operation == 3:
            data[position:position] = rng.randbytes(rng.randrange(1, 9))  # insertion
        elif operation == 4 and data:
            end = min(len(data), position + rng.randrange(1, 16))
            data[position:position] = data[position:end]  # duplicated slice
        else:
            data[position:position] = bytes((rng.randrange(0x40),))  # a stray frame type
    return bytes(data) or b"\x01"


@pytest.mark.parametrize(("packet_type", "client"), STAGES)
def test_seeded_mutations_of_valid_frames(
    pki: TestPki, tmp_path: Path, packet_type: PacketType, client: bool
) -> None:
    for seed in range(40):
        rng = random.Random(seed)
        driver = Driver(stage(pki, tmp_path, packet_type, client_target=client, seed=seed))
        for _ in range(rng.randrange(1, 6)):
            frames = _valid_frames(rng, driver.staged)
            driver.send(_mutate(rng, encode_frames(frames)))
        driver.run_timers()
