"""The 1-RTT receive fast path hands NEW_CONNECTION_ID frames to their owner without the frame routing
table (issue 13: a client sends several right after the handshake): what the peer's CIDs become, the
errors and the ACK owed must be those of the general path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rudp.codec import frames as f
from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import encode_frames
from rudp.quic.receiving import Receiver
from rudp.testing.certs import TestPki
from tests.support.stages import stage


def _cid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _token(n: int) -> bytes:
    return n.to_bytes(16, "big")


CASES: dict[str, list[list[f.Frame]]] = {
    "new ids, retiring the older": [
        [
            f.NewConnectionId(100, 100, _cid(100), _token(100)),
            f.NewConnectionId(101, 0, _cid(101), _token(101)),
        ],
        [f.Ping(), f.NewConnectionId(102, 101, _cid(102), _token(102)), f.Padding(20)],
    ],
    "repeated (same id), then with an ACK-free padding": [
        [f.NewConnectionId(100, 100, _cid(100), _token(100))],
        [f.NewConnectionId(100, 100, _cid(100), _token(100)), f.Padding(5)],
    ],
    "sequence reused with another id": [
        [f.NewConnectionId(100, 100, _cid(100), _token(100))],
        [f.NewConnectionId(100, 100, _cid(999), _token(999))],
    ],
    "over the limit": [[f.NewConnectionId(100 + i, 100, _cid(100 + i), _token(100 + i)) for i in range(12)]],
    "then a frame routed the general way": [
        [f.NewConnectionId(100, 100, _cid(100), _token(100)), f.MaxData(1 << 30)],
    ],
}


def _run(pki: TestPki, tmp_path: Path, packets: list[list[f.Frame]]) -> tuple[object, ...]:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)
    staged.output()
    for frames in packets:
        staged.inject(encode_frames(frames))
    cause = staged.target.close_cause
    acked = [frame for _, frame in staged.sent_frames() if isinstance(frame, f.Ack)] if cause is None else []
    largest = [frame.ranges[0][1] - staged.next_pn for frame in acked]
    return (
        None if cause is None else (cause.code, cause.frame_type),
        tuple(sorted(staged.target.peer_reset_tokens())),
        largest,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_connection_ids_on_the_fast_path_as_on_the_general_path(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    fast = _run(pki, tmp_path, CASES[case])
    monkeypatch.setattr(Receiver, "_receive_short", lambda *_args, **_kwargs: 0)  # (_NOT_TAKEN)
    general = _run(pki, tmp_path, CASES[case])
    assert fast == general
    if case == "over the limit":
        assert fast[0] is not None and fast[0][1] == 0x18
    if case == "new ids, retiring the older":
        assert _token(101) in fast[1] and fast[0] is None and fast[2] == [-1]  # the last packet acknowledged


def test_batch_masks_are_each_packets_own_mask() -> None:
    """KeyPhase.batch_masks (one call for a receive batch) gives each datagram the mask its own sample
    gives (RFC 9001 §5.4.1), and nothing without read keys or when a datagram is too short to sample."""
    import random

    from rudp.crypto.protection import PacketProtection
    from rudp.crypto.suites import CipherSuite
    from rudp.quic.keys import KeyPhase

    rng = random.Random(5)
    phase = KeyPhase()
    datagrams: list[bytes | memoryview] = [rng.randbytes(rng.randrange(30, 80)) for _ in range(5)]
    assert phase.batch_masks(datagrams, 13) is None
    for suite in (CipherSuite.AES_128_GCM_SHA256, CipherSuite.CHACHA20_POLY1305_SHA256):
        phase.install(PacketProtection(suite, rng.randbytes(32), 1), read=True)
        masks = phase.batch_masks([*datagrams[:4], memoryview(datagrams[4])], 13)
        assert masks is not None and len(masks) == 16 * len(datagrams)
        for i, datagram in enumerate(datagrams):
            assert phase.read is not None
            assert masks[16 * i : 16 * i + 5] == phase.read.header_mask(bytes(datagram[13:29]))
        assert phase.batch_masks([*datagrams, rng.randbytes(28)], 13) is None  # one too short


def _general_route_frames(
    self: Receiver, header: object, level: object, packet: object, path: object, now: float
) -> object:
    """Receiver._route_frames as it was: every frame through ROUTES (the reference)."""
    from rudp.codec.frame_codec import parse_frames
    from rudp.quic.inbound import Inbound
    from rudp.quic.spaces import SPACE_OF_LEVEL, TYPE_OF_LEVEL

    inbound = Inbound(header, level, SPACE_OF_LEVEL[level], path, now)  # type: ignore[arg-type,index]
    for _, frame in packet.frames or parse_frames(packet.payload, TYPE_OF_LEVEL[level]):  # type: ignore[attr-defined,index]
        self._route(frame, inbound)
        if inbound.closed:
            break
    return inbound


LONG_CASES: dict[str, list[f.Frame]] = {
    "padding only": [f.Padding(30)],
    "ping and padding": [f.Ping(), f.Padding(30)],
    "ack and padding": [f.Ack(((0, 0),), 0), f.Padding(30)],
    "ack of a packet never sent": [f.Ack(((5000, 5000),), 0)],
    "crypto garbage": [f.Crypto(0, b"\x99\x00\x00\x01\x00"), f.Padding(10)],
    "ack then close": [f.Ack(((0, 0),), 0), f.ConnectionClose(0x0A, b"bye"), f.Ping()],
}


@pytest.mark.parametrize("packet_type", [PacketType.INITIAL, PacketType.HANDSHAKE])
@pytest.mark.parametrize("client_target", [False, True])
@pytest.mark.parametrize("case", sorted(LONG_CASES))
def test_long_header_frames_handled_directly_as_through_their_routes(
    pki: TestPki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packet_type: PacketType,
    client_target: bool,
    case: str,
) -> None:
    """PADDING, ACK and CRYPTO frames of Initial and Handshake packets, handled without the routing
    table, leave the connection as the table's routes do (the ACK owed, errors, closes, events)."""

    def run() -> tuple[object, ...]:
        staged = stage(pki, tmp_path, packet_type, client_target=client_target)
        staged.output()
        staged.events.clear()
        staged.inject(encode_frames(LONG_CASES[case]))
        cause = staged.target.close_cause
        sent = [] if cause is None else [type(frame).__name__ for _, frame in staged.sent_frames()]
        acked = (
            [type(frame).__name__ for _, frame in staged.sent_frames() if isinstance(frame, f.Ack)]
            if cause is None
            else []
        )
        return (
            None if cause is None else (cause.code, cause.frame_type, cause.by_peer),
            sent,
            acked,
            [type(event).__name__ for event in staged.events],
        )

    direct = run()
    monkeypatch.setattr(Receiver, "_route_frames", _general_route_frames)
    general = run()
    assert direct == general



CLOSE_CASES: dict[str, list[f.Frame]] = {
    "application close": [f.ConnectionClose(0x5, b"bye", application=True)],
    "transport close": [f.ConnectionClose(0x0A, b"", frame_type=0x08)],
    "after a ping and other frames": [
        f.Ping(),
        f.MaxData(1 << 30),
        f.ConnectionClose(0x7, b"x", application=True),
    ],
    "frames after it are not handled": [
        f.ConnectionClose(0x0, b"done", application=True),
        f.Stream(1, 0, b"late", fin=True),
        f.NewConnectionId(100, 0, _cid(100), _token(100)),
    ],
    "invalid utf-8 reason": [f.ConnectionClose(0x1, b"\xff\xfe", application=True)],
}


@pytest.mark.parametrize("client_target", [False, True])
@pytest.mark.parametrize("case", sorted(CLOSE_CASES))
def test_connection_close_on_the_fast_path_as_through_its_route(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client_target: bool, case: str
) -> None:
    """CONNECTION_CLOSE in a 1-RTT packet, handled by the fast path without the routing table, ends the
    connection as the general path does: the same cause, state, events, nothing sent, and no frame
    after it handled."""

    def run() -> tuple[object, ...]:
        staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=client_target)
        staged.output()
        staged.events.clear()
        staged.inject(encode_frames(CLOSE_CASES[case]))
        target = staged.target
        cause = target.close_cause
        assert cause is not None
        return (
            (cause.code, cause.reason, cause.by_peer, cause.application, cause.frame_type),
            target._lifecycle.state,
            [repr(event) for event in staged.events],
            [type(frame).__name__ for _, frame in staged.sent_frames()],
            len(target.peer_reset_tokens()),  # (a NEW_CONNECTION_ID after the close is not handled)
        )

    fast = run()
    monkeypatch.setattr(Receiver, "_receive_short", lambda *_args, **_kwargs: 0)  # (_NOT_TAKEN)
    general = run()
    assert fast == general
    assert fast[1].name == "DRAINING"
