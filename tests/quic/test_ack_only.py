"""ACK-only datagrams (issue 13): what the lean builder (:mod:`rudp.quic.ack_only`) sends must be exactly
what the general packet path sends.

Each scenario runs twice on the simulator with seeded randomness and the same link (so both runs see
the same times): once as shipped, once with the lean builder turned off (``AckOnlyDatagrams.build``
answering None). The client uploads; every 1-RTT datagram the server sends (mostly ACK-only ones) is
decrypted with the keys it logged, following its key updates (RFC 9001 §6), and compared: size, key
phase, packet number and frames (ACK ranges, delay and ECN counts, PINGs, window updates).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rudp.codec.buffer import Writer
from rudp.codec.frame_codec import parse_frames, write_frame
from rudp.codec.frames import Ack, Frame, MaxData, MaxStreamData, Ping
from rudp.crypto.protection import PacketProtection, UnprotectedPacket
from rudp.crypto.suites import AeadLimits, CipherSuite
from rudp.quic.ack_only import AckOnlyDatagrams
from rudp.quic.acks import AckTracker
from rudp.quic.sent import PacketSpace
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import Sniffer, make_sim

CID_LENGTH = 8
BODY = random.Random(11).randbytes(700_000)


class _Reader:
    """Decrypts the server's 1-RTT datagrams in order, moving to the next key phase when needed."""

    def __init__(self, keylog: Path) -> None:
        suite = CipherSuite.AES_128_GCM_SHA256
        self.keys: list[PacketProtection] = [Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", suite).protection]
        self.generation = 0
        self.largest = -1

    def read(self, datagram: bytes) -> tuple[int, int, int, list[Frame]]:
        """(size, key phase generation, packet number, frames) of one 1-RTT datagram."""
        for generation in (self.generation, self.generation + 1):
            while len(self.keys) <= generation:
                self.keys.append(self.keys[-1].next_generation())
            result = self.keys[generation].unprotect(datagram, 1 + CID_LENGTH, self.largest + 1)
            if isinstance(result, UnprotectedPacket):
                self.generation = generation
                self.largest = max(self.largest, result.packet_number)
                frames = [frame for _, frame in parse_frames(result.payload)]
                return len(datagram), generation, result.packet_number, frames
        raise AssertionError("a 1-RTT datagram the server's keys do not open")


@dataclass
class _Run:
    datagrams: list[tuple[int, int, int, list[Frame]]]
    lean: int
    """Datagrams the lean builder built."""
    received: bytes
    dcids: list[bytes]
    """The destination connection ID of each of the server's 1-RTT datagrams, in order."""

    def frames(self) -> list[Frame]:
        return [frame for *_, frames in self.datagrams for frame in frames]

    def acks(self) -> list[Ack]:
        return [frame for frame in self.frames() if isinstance(frame, Ack)]


def _upload(
    pki: TestPki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    lean: bool,
    link: LinkConfig | None = None,
    server: Mapping[str, object] | None = None,
    client: Mapping[str, object] | None = None,
    migrate: bool = False,
) -> _Run:
    with monkeypatch.context() as patch:
        built = [0]
        original = AckOnlyDatagrams.build

        def counted(self: AckOnlyDatagrams, now: float, path: Any, marked: bool) -> bytes | None:
            datagram = original(self, now, path, marked) if lean else None
            built[0] += datagram is not None
            return datagram

        patch.setattr(AckOnlyDatagrams, "build", counted)
        keylog = tmp_path / f"keys-{'lean' if lean else 'plain'}.log"
        common: dict[str, object] = {"max_datagram_size": 1452, "pmtu_discovery": False}
        seeded = random.Random(2).randbytes
        sim = make_sim(
            pki,
            link=link or LinkConfig(delay=0.01),
            client={**common, "randbytes": random.Random(1).randbytes, **(client or {})},
            server={**common, "secrets_log": keylog, "randbytes": seeded, **(server or {})},
        )
        sim.handshake()
        reader = _Reader(keylog)
        sent: list[tuple[int, int, int, list[Frame]]] = []
        dcids: list[bytes] = []
        to_send = sim.server.datagrams_to_send

        def recorded(now: float) -> list[tuple[bytes, Any]]:
            out = to_send(now)
            sent.extend(reader.read(datagram) for datagram, _ in out if not datagram[0] & 0x80)
            dcids.extend(datagram[1 : 1 + CID_LENGTH] for datagram, _ in out if not datagram[0] & 0x80)
            return out

        sim.server.datagrams_to_send = recorded  # type: ignore[method-assign]
        stream_id = sim.conn.open_stream()
        if migrate:  # (NEW_CONNECTION_ID frames arrive after the handshake's confirmation)
            sim.pair.run_for(0.2)
        sim.client.send(stream_id, BODY, fin=True)
        if migrate:  # RFC 9000 §9.5: the server answers the moved client with a fresh DCID
            sim.pair.run_for(0.05)
            sim.conn.migrate(sim.clock.now)
            sim.pair.rebind_client(("10.0.0.5", 50000))
        assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=120.0)
        return _Run(sent, built[0], bytes(sim.server.streams[stream_id]), dcids)


def _compare(plain: _Run, lean: _Run) -> None:
    assert plain.received == BODY and lean.received == BODY
    assert plain.lean == 0
    assert lean.lean > len(lean.datagrams) // 2  # most of what a receiver sends is ACK-only
    assert len(lean.datagrams) == len(plain.datagrams)
    for index, (ours, theirs) in enumerate(zip(lean.datagrams, plain.datagrams, strict=True)):
        assert ours == theirs, f"datagram {index} differs"


def test_ack_only_datagrams_match_the_general_path(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ECN on (the default): ACK_ECN counts; some packets marked CE on the way (RFC 9000 §13.4.1).
    link = LinkConfig(delay=0.01, ce_probability=0.02, seed=3)
    plain = _upload(pki, tmp_path, monkeypatch, lean=False, link=link)
    lean = _upload(pki, tmp_path, monkeypatch, lean=True, link=link)
    _compare(plain, lean)
    acks = lean.acks()
    assert all(ack.ecn is not None for ack in acks)
    assert acks[-1].ecn is not None and acks[-1].ecn[0] > 0 and acks[-1].ecn[2] > 0  # ECT(0) and CE
    assert any(ack.ack_delay > 0 for ack in acks)  # delayed ACKs report their delay (RFC 9000 §13.2.5)
    # The PING of RFC 9000 §13.2.4 and the window updates went too (the latter through the general path).
    frames = lean.frames()
    assert any(isinstance(frame, Ping) for frame in frames)
    assert any(isinstance(frame, (MaxData, MaxStreamData)) for frame in frames)


def test_ack_only_datagrams_with_loss_and_reordering(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gaps: ACK frames of several ranges, and ACKs sent at once for out-of-order packets (§13.2.1).
    link = LinkConfig(delay=0.01, loss=0.03, reorder=0.02, seed=4)
    options = {"ack_frequency": False}
    plain = _upload(pki, tmp_path, monkeypatch, lean=False, link=link, server=options, client=options)
    lean = _upload(pki, tmp_path, monkeypatch, lean=True, link=link, server=options, client=options)
    _compare(plain, lean)
    assert max(len(ack.ranges) for ack in lean.acks()) >= 3


def test_ack_only_datagrams_across_key_updates(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 9001 §6: a small confidentiality limit makes the server update its keys every ~90 packets;
    # the key phase bit and the keys of its ACK-only packets change at the same packet in both runs.
    options = {"ack_frequency": False, "ecn": False}  # nothing marked: ACK_ECN counts stay zero
    server = {**options, "aead_limits": AeadLimits(confidentiality=120, integrity=1000)}
    plain = _upload(pki, tmp_path, monkeypatch, lean=False, server=server, client=options)
    lean = _upload(pki, tmp_path, monkeypatch, lean=True, server=server, client=options)
    _compare(plain, lean)
    assert all(ack.ecn == (0, 0, 0) for ack in lean.acks())
    assert max(generation for _, generation, _, _ in lean.datagrams) >= 2


def test_ack_only_datagrams_after_a_migration(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lean builder's header template follows the server's new DCID (and packet number lengths).
    plain = _upload(pki, tmp_path, monkeypatch, lean=False, migrate=True)
    lean = _upload(pki, tmp_path, monkeypatch, lean=True, migrate=True)
    _compare(plain, lean)
    assert len(set(lean.dcids)) == 2 and lean.dcids == plain.dcids  # the same DCID in each datagram


def _general_encoding(tracker: AckTracker, now: float) -> bytes:
    ack = tracker.build_ack(now, tracker.ack_delay_exponent)
    assert ack is not None
    writer = Writer()
    write_frame(writer, ack)
    return bytes(writer.buffer)


@pytest.mark.parametrize("report_ecn", [False, True])
def test_encoded_ack_equals_the_ack_frame(report_ecn: bool) -> None:
    # take_encoded_ack writes build_ack's frame byte for byte: up to max_ack_ranges ranges, newest
    # first, gaps and lengths of every varint size, the delay in 2**exponent microseconds, ECN counts.
    rng = random.Random(5)
    tracker = AckTracker(PacketSpace.APPLICATION, report_ecn=report_ecn, ack_delay_exponent=3)
    number = 0
    for _ in range(100):  # 100 ranges of 1..20000 numbers, gaps of 1..20000: above max_ack_ranges
        for packet_number in range(number, number + rng.choice((1, 3, 70, 20_000))):
            tracker.on_packet_received(packet_number, ack_eliciting=True, now=1.0)
        number = packet_number + 1 + rng.choice((1, 2, 64, 20_000))
    tracker.report_ecn_counts((70_000, 3, 1_000_000_000))
    now = 1.0 + 0.0123
    expected = _general_encoding(tracker, now)
    taken = tracker.take_encoded_ack(now)
    assert taken is not None
    encoded, largest, handler = taken
    assert encoded == expected
    (_, frame), = parse_frames(encoded)
    assert isinstance(frame, Ack) and frame.largest == largest == packet_number
    assert len(frame.ranges) == tracker.max_ack_ranges  # bounded: the oldest ranges are left out
    assert frame.ack_delay == 12_300 >> 3
    assert frame.ecn == ((70_000, 3, 1_000_000_000) if report_ecn else None)
    # The ACK counts as sent: nothing is due until the next packet.
    assert not tracker.ack_needed(now) and not tracker.ack_pending
    # Its loss makes the next ACK due at once (RFC 9000 §13.2.1, as write_frames' handler does).
    handler(False)
    assert tracker.ack_needed(now)


def test_encoded_ack_of_one_packet_and_of_nothing() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION)
    assert tracker.take_encoded_ack(1.0) is None  # nothing received: nothing changes
    tracker.on_packet_received(0, ack_eliciting=True, now=1.0)
    expected = _general_encoding(tracker, 1.0)
    taken = tracker.take_encoded_ack(1.0)
    assert taken is not None and taken[0] == expected == bytes((0x02, 0, 0, 0, 0))

