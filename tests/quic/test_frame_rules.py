"""Every frame type in every packet type, on both roles, with real keys (RFC 9000 §12.4, §12.5, §17.2).

Each case stops a client/server pair at the stage where the target connection holds the keys of the
packet type, forges one packet of that type carrying one frame (protected as the peer would protect it),
and checks the outcome against the rules written out here from the RFC (not from the codec's table):

- allowed: the packet is processed (it will be acknowledged), the connection stays open, and the frame
  has its effect where one is observable (stream opened, datagram delivered, peer close...);
- forbidden: the connection closes with PROTOCOL_VIOLATION naming the frame type, nothing in the packet
  reaches the application, and a CONNECTION_CLOSE is ready to send;
- a 0-RTT packet to a client: dropped without effect (only clients send 0-RTT, RFC 9000 §17.2.3).

The attack regressions at the end replay the exact forgeries of the security issue: Initial keys are
derived from the client's first DCID, which anyone on the path sees.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rudp.codec import frames as f
from rudp.codec.codes import FrameType, PacketType
from rudp.codec.frame_codec import ALLOWED_PACKET_TYPES, encode_frames
from rudp.codec.packet import parse_header
from rudp.config import Config
from rudp.errors import StreamStateError, TransportErrorCode
from rudp.quic import events as ev
from rudp.quic.connection import QuicConnection
from rudp.quic.state import State
from rudp.testing.certs import TestPki
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, START, Sniffer, pad_front
from tests.support.stages import PACKET_TYPES, Staged, stage

PV = TransportErrorCode.PROTOCOL_VIOLATION

# RFC 9000 §12.4 Table 3, "Pkts" column (I = Initial, H = Handshake, 0 = 0-RTT, 1 = 1-RTT), with the
# 0-RTT exclusions of RFC 9000 §12.5 (ACK, CRYPTO, HANDSHAKE_DONE, NEW_TOKEN, PATH_RESPONSE and
# RETIRE_CONNECTION_ID) and RFC 9221 §4 for DATAGRAM.
RULES: dict[int, str] = {
    0x00: "IH01", 0x01: "IH01", 0x02: "IH_1", 0x03: "IH_1", 0x04: "__01", 0x05: "__01",
    0x06: "IH_1", 0x07: "___1", **dict.fromkeys(range(0x08, 0x10), "__01"),
    **dict.fromkeys(range(0x10, 0x19), "__01"), 0x19: "___1", 0x1A: "__01", 0x1B: "___1",
    0x1C: "IH01", 0x1D: "__01", 0x1E: "___1", 0x30: "__01", 0x31: "__01",
    # draft-ietf-quic-ack-frequency §4, §5: IMMEDIATE_ACK and ACK_FREQUENCY in application data packets.
    0x1F: "__01", 0xAF: "__01",
}
_LETTER = {
    PacketType.INITIAL: "I", PacketType.HANDSHAKE: "H", PacketType.ZERO_RTT: "0", PacketType.ONE_RTT: "1"
}
# RFC 9000 §19.7, §19.20: only a server sends NEW_TOKEN and HANDSHAKE_DONE.
SERVER_ONLY = {FrameType.NEW_TOKEN, FrameType.HANDSHAKE_DONE}


def _peer_bidi(staged: Staged) -> int:
    return 1 if staged.is_client else 0  # the lowest stream the peer opens (RFC 9000 §2.1)


def _retirable(staged: Staged) -> int:
    # Sequence 1 is issued once the handshake is confirmed (1-RTT stages, whose packets carry sequence
    # 0); before that only sequence 0 exists, and 0-RTT packets carry the client's first DCID instead.
    return 0 if staged.packet_type is PacketType.ZERO_RTT else 1


def _stream(frame_type: int) -> Callable[[Staged], f.Frame]:
    def build(staged: Staged) -> f.Frame:
        offset = 5 if frame_type & 0x04 else 0
        fin, explicit_length = bool(frame_type & 0x01), bool(frame_type & 0x02)
        return f.Stream(_peer_bidi(staged), offset, b"hello", fin, explicit_length)

    return build


FRAMES: dict[int, Callable[[Staged], f.Frame]] = {
    0x00: lambda s: f.Padding(1),
    0x01: lambda s: f.Ping(),
    0x02: lambda s: f.Ack(((0, 0),)),  # every stage's target has sent packet 0 in the packet's space
    0x03: lambda s: f.Ack(((0, 0),), 0, (0, 0, 0)),
    0x04: lambda s: f.ResetStream(_peer_bidi(s), 7, 0),
    0x05: lambda s: f.StopSending(_peer_bidi(s), 7),
    0x06: lambda s: f.Crypto(4000, b"\x00"),  # beyond what TLS has read: held, not parsed
    0x07: lambda s: f.NewToken(b"token"),
    **{t: _stream(t) for t in range(0x08, 0x10)},
    0x10: lambda s: f.MaxData(1 << 24),
    0x11: lambda s: f.MaxStreamData(_peer_bidi(s), 1 << 24),
    0x12: lambda s: f.MaxStreams(True, 500),
    0x13: lambda s: f.MaxStreams(False, 500),
    0x14: lambda s: f.DataBlocked(0),
    0x15: lambda s: f.StreamDataBlocked(_peer_bidi(s), 0),
    0x16: lambda s: f.StreamsBlocked(True, 0),
    0x17: lambda s: f.StreamsBlocked(False, 0),
    # retire_prior_to = sequence: room under any active_connection_id_limit, whatever was issued.
    0x18: lambda s: f.NewConnectionId(1000, 1000, bytes(range(1, 9)), bytes(range(16))),
    0x19: lambda s: f.RetireConnectionId(_retirable(s)),
    0x1A: lambda s: f.PathChallenge(b"chalenge"),
    0x1B: lambda s: f.PathResponse(b"response"),
    0x1C: lambda s: f.ConnectionClose(0x0C, b"bye", 0),
    0x1D: lambda s: f.ConnectionClose(42, b"app bye", 0, True),
    0x1E: lambda s: f.HandshakeDone(),
    0x30: lambda s: f.Datagram(b"unreliable", False),
    0x31: lambda s: f.Datagram(b"unreliable", True),
    0x1F: lambda s: f.ImmediateAck(),
    0xAF: lambda s: f.AckFrequency(1, 3, 25_000, 1),  # within both roles' min/max ack delay
}


def _outcome(frame_type: int, packet_type: PacketType, *, client: bool) -> str:
    if client and packet_type is PacketType.ZERO_RTT:
        return "dropped"
    if _LETTER[packet_type] not in RULES[frame_type]:
        return "violation"
    if client is False and frame_type in SERVER_ONLY:
        return "violation"
    return "processed"


def test_the_cases_cover_every_frame_type() -> None:
    assert set(FRAMES) == set(RULES) == set(ALLOWED_PACKET_TYPES)


@pytest.mark.parametrize("frame_type", sorted(FRAMES), ids=lambda t: f"{t:#04x}")
def test_each_builder_makes_its_frame_type(pki: TestPki, frame_type: int) -> None:
    # The frame values below are checked to encode as the type they stand for (e.g. each STREAM bit).
    class _Role:
        is_client = False
        packet_type = PacketType.ONE_RTT

    encoded = encode_frames([FRAMES[frame_type](_Role())])  # type: ignore[arg-type]
    if frame_type > 0x3F:  # a 2-byte varint frame type (RFC 9000 §16)
        assert encoded[:2] == (0x4000 | frame_type).to_bytes(2, "big")
        return
    assert encoded[0] == frame_type or (frame_type == 0x00 and encoded == b"\x00")


def _app_events(staged: Staged) -> list[ev.Event]:
    return [e for e in staged.events if not isinstance(e, ev.ConnectionTerminated)]


def _check_effect(staged: Staged, frame_type: int, frame: f.Frame) -> None:
    target = staged.target
    if frame_type in (FrameType.CONNECTION_CLOSE, FrameType.CONNECTION_CLOSE_APP):
        cause = target.close_cause
        assert cause is not None and cause.by_peer and target.state is State.DRAINING
        assert isinstance(frame, f.ConnectionClose) and cause.code == frame.error_code
        return
    assert target.close_cause is None, target.close_cause
    assert target.state in (State.HANDSHAKE, State.ESTABLISHED)
    if FrameType.STREAM <= frame_type <= FrameType.STREAM_MAX:
        sid = _peer_bidi(staged)
        assert ev.StreamOpened(sid) in staged.events
        if not frame_type & 0x04:  # at offset 0: readable at once
            assert ev.StreamReadable(sid) in staged.events
            assert target.read_stream(sid) == b"hello"
    elif frame_type in (FrameType.DATAGRAM, FrameType.DATAGRAM_LEN):
        assert ev.DatagramReceived(b"unreliable") in staged.events
    elif frame_type == FrameType.RESET_STREAM:
        assert ev.StreamReset(_peer_bidi(staged), 7) in staged.events
    elif frame_type == FrameType.STOP_SENDING:
        assert ev.StopSendingReceived(_peer_bidi(staged), 7) in staged.events
    elif frame_type == FrameType.NEW_TOKEN:
        assert target.new_token == b"token"
    elif frame_type == FrameType.HANDSHAKE_DONE:
        assert target.handshake_confirmed
    elif frame_type == FrameType.NEW_CONNECTION_ID:
        assert target.destination_cid == bytes(range(1, 9))  # everything below 1000 was retired
    elif frame_type == FrameType.ACK_FREQUENCY:
        tracker = target._spaces.application.ack
        assert (tracker.ack_eliciting_threshold, tracker.max_ack_delay) == (3, 0.025)
    elif frame_type == FrameType.IMMEDIATE_ACK:
        assert target._spaces.application.ack.ack_needed(staged.now)  # acknowledged without delay


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("packet_type", PACKET_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("frame_type", sorted(FRAMES), ids=lambda t: f"{t:#04x}")
def test_frame_in_packet_type(
    pki: TestPki, tmp_path: Path, frame_type: int, packet_type: PacketType, client: bool
) -> None:
    staged = stage(pki, tmp_path, packet_type, client_target=client)
    target = staged.target
    frame = FRAMES[frame_type](staged)
    packet_number = staged.next_pn
    staged.inject(encode_frames([frame]))
    outcome = _outcome(frame_type, packet_type, client=client)
    space = {PacketType.INITIAL: 0, PacketType.HANDSHAKE: 1}.get(packet_type, 2)
    tracker = target._spaces[space].ack  # type: ignore[index]
    if outcome == "dropped":
        assert target.close_cause is None and not staged.events
        assert not tracker.is_duplicate(packet_number)  # never processed...
        assert not target._receiver.pending_packets  # ...nor kept for later
        return
    if outcome == "violation":
        cause = target.close_cause
        assert cause is not None, f"frame {frame_type:#x} accepted in {packet_type.name}"
        assert (cause.code, cause.frame_type, cause.by_peer) == (PV, frame_type, False)
        assert target.state is State.CLOSING
        assert _app_events(staged) == []  # nothing of the packet reached the application
        assert staged.output(), "the CONNECTION_CLOSE is sent"
        return
    assert tracker.is_duplicate(packet_number), "the packet was processed (and will be acknowledged)"
    _check_effect(staged, frame_type, frame)


# -- the attacks of the security issue ------------------------------------------------------------

STREAM_LEN_FIN = 0x0B  # a STREAM frame with the LEN and FIN bits (RFC 9000 §19.8)


def _client_config(pki: TestPki) -> Config:
    return Config(cafile=pki.ca_file, server_name="localhost")


def _close_frames(
    datagrams: list[bytes], sniffer: Sniffer, packet_type: PacketType
) -> list[f.ConnectionClose]:
    frames = [frame for data in datagrams for frame in sniffer.long_frames(data, packet_type)]
    return [frame for frame in frames if isinstance(frame, f.ConnectionClose)]


def test_spoofed_client_initial_with_stream_data_reaches_no_application(pki: TestPki, tmp_path: Path) -> None:
    """One 1200-byte datagram, built by someone who holds no key at all: a ClientHello-looking Initial
    whose payload is a STREAM frame. The server must not open a stream or emit any event for it."""
    staged = stage(pki, tmp_path, PacketType.INITIAL, client_target=False)  # a real server connection
    server = staged.target
    attacker = Sniffer.initial(staged.dcid, client=True)  # the DCID is on the wire in clear
    packet = attacker.protect_long(
        PacketType.INITIAL, staged.dcid, staged.scid, 7,
        pad_front(encode_frames([f.Stream(0, 0, b"GET /secret\r\n", True)]), 1100),
    )
    server.receive_datagram(packet, CLIENT_ADDR, staged.now + 0.01)
    staged.collect()
    assert _app_events(staged) == []
    with pytest.raises(StreamStateError):  # no such stream was ever opened
        server.read_stream(0)
    cause = server.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (PV, STREAM_LEN_FIN)
    # On the wire: an Initial CONNECTION_CLOSE with PROTOCOL_VIOLATION and the STREAM frame type.
    closes = _close_frames(staged.output(), Sniffer.initial(staged.dcid, client=False), PacketType.INITIAL)
    assert [(c.error_code, c.frame_type, c.application) for c in closes] == [(PV, STREAM_LEN_FIN, False)]


def test_spoofed_server_initial_cannot_deliver_data_or_confirm_the_handshake(
    pki: TestPki, tmp_path: Path
) -> None:
    """A forged server Initial (keys from the client's DCID) with STREAM and HANDSHAKE_DONE."""
    client = QuicConnection.client(_client_config(pki), server_address=SERVER_ADDR, now=START)
    first = client.datagrams_to_send(START)[0][0]
    dcid = parse_header(first).dcid  # what an on-path attacker reads from the client's first datagram
    attacker = Sniffer.initial(dcid, client=False)
    payload = pad_front(encode_frames([f.Stream(1, 0, b"evil", True), f.HandshakeDone()]))
    forged_scid = b"\x01" * 8
    packet = attacker.protect_long(PacketType.INITIAL, client.local_cids()[0], forged_scid, 0, payload)
    client.receive_datagram(packet, SERVER_ADDR, START + 0.01)
    events: list[ev.Event] = []
    while (event := client.next_event()) is not None:
        events.append(event)
    assert not client.handshake_confirmed and not client.handshake_complete
    assert [e for e in events if not isinstance(e, ev.ConnectionTerminated)] == []
    cause = client.close_cause
    assert cause is not None and (cause.code, cause.frame_type, cause.by_peer) == (PV, STREAM_LEN_FIN, False)
    # Each frame alone, in a fresh connection: HANDSHAKE_DONE in an Initial is refused too.
    client = QuicConnection.client(_client_config(pki), server_address=SERVER_ADDR, now=START)
    dcid = parse_header(client.datagrams_to_send(START)[0][0]).dcid
    payload = pad_front(encode_frames([f.HandshakeDone()]))
    packet = Sniffer.initial(dcid, client=False).protect_long(
        PacketType.INITIAL, client.local_cids()[0], forged_scid, 0, payload
    )
    client.receive_datagram(packet, SERVER_ADDR, START + 0.01)
    assert not client.handshake_confirmed
    cause = client.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (PV, 0x1E)


def test_forged_handshake_done_in_handshake_packet_is_refused(pki: TestPki, tmp_path: Path) -> None:
    # Even with the (secret) Handshake keys, only a 1-RTT packet may confirm the handshake.
    staged = stage(pki, tmp_path, PacketType.HANDSHAKE, client_target=True)
    assert staged.target.handshake_complete and not staged.target.handshake_confirmed
    staged.inject(encode_frames([f.HandshakeDone()]))
    assert not staged.target.handshake_confirmed
    cause = staged.target.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (PV, 0x1E)


def test_reflected_zero_rtt_packet_is_dropped_by_a_client(pki: TestPki, tmp_path: Path) -> None:
    # RFC 9000 §17.2.3: 0-RTT carries early data from client to server; a client never reads one, even
    # protected with its own early keys, and does not keep it waiting for keys that never come.
    staged = stage(pki, tmp_path, PacketType.ZERO_RTT, client_target=True)
    for number in range(40):
        staged.inject(encode_frames([f.Stream(1, 0, b"x", True)]), 5_000 + number)
    assert staged.events == [] and staged.target.close_cause is None
    assert staged.target._receiver.pending_packets == 0

