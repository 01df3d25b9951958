"""Unit tests of the connection core's objects (issue 12): the lifecycle, the packet number spaces with
their keys, the 1-RTT key phase, the paths with their own congestion state, recovery's PTO and path
switch, and the timer contract of the orchestrating connection."""

from __future__ import annotations

import random

import pytest

from rudp.codec.frames import ConnectionClose
from rudp.config import Config
from rudp.crypto.protection import PacketProtection, UnprotectedPacket
from rudp.crypto.suites import CipherSuite
from rudp.errors import ConnectionClosed, TransportError
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.events import ConnectionTerminated, Event
from rudp.quic.keys import KeyPhase
from rudp.quic.pacing import Pacer
from rudp.quic.packetizer import DatagramBuilder
from rudp.quic.paths import PathCongestion, Paths
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import PacketSpaces
from rudp.quic.state import Lifecycle, State
from rudp.tls.engine import EncryptionLevel

SUITE = CipherSuite.AES_128_GCM_SHA256
VERSION = 1


def _randbytes(n: int) -> bytes:
    return random.Random(7).randbytes(n)


# -- Lifecycle ------------------------------------------------------------------------------------------


def test_lifecycle_close_without_time_starts_its_period_at_the_next_timed_call() -> None:
    events: list[Event] = []
    lifecycle = Lifecycle(events.append, lambda: 0.5)
    lifecycle.establish()
    lifecycle.close(ConnectionClose(7, b"bye", 0, True), None)
    assert lifecycle.state is State.CLOSING and lifecycle.closing.until is None
    with pytest.raises(ConnectionClosed):
        lifecycle.check_open()
    lifecycle.tick(10.0)
    assert lifecycle.closing.until == pytest.approx(11.5)  # RFC 9000 §10.2: three PTOs
    lifecycle.tick(20.0)
    assert lifecycle.closing.until == pytest.approx(11.5)  # once started, the period stays
    assert [type(e) for e in events] == [ConnectionTerminated]


def test_lifecycle_reports_the_first_cause_only() -> None:
    events: list[Event] = []
    lifecycle = Lifecycle(events.append, lambda: 0.1)
    lifecycle.on_local_error(TransportError(0x0A, "bad"), 1.0)
    assert lifecycle.state is State.CLOSING and lifecycle.closing.until == pytest.approx(1.3)
    lifecycle.on_peer_close(ConnectionClose(0, b"", 0, False), 2.0)
    assert lifecycle.state is State.DRAINING
    assert len(events) == 1 and lifecycle.cause is events[0]
    assert lifecycle.closing.take_frame() is not None  # our CONNECTION_CLOSE is kept


# -- PacketSpaces and their keys -------------------------------------------------------------------------


def _spaces() -> PacketSpaces:
    return PacketSpaces(VERSION, _randbytes, max_ack_delay=0.025, ack_delay_exponent=3)


def test_discarding_a_level_drops_its_space_and_keys() -> None:
    spaces = _spaces()
    spaces.install_initial(b"\x01" * 8, is_client=True)
    spaces.install(EncryptionLevel.HANDSHAKE, read=True, suite=SUITE, secret=bytes(32))
    assert spaces.read_keys(EncryptionLevel.INITIAL) is not None
    assert spaces.write_keys(EncryptionLevel.INITIAL) is not None
    assert spaces.read_keys(EncryptionLevel.HANDSHAKE) is not None
    assert spaces.write_keys(EncryptionLevel.HANDSHAKE) is None
    assert spaces.discard(PacketSpace.INITIAL)
    assert not spaces.discard(PacketSpace.INITIAL)  # already gone
    assert spaces.get(PacketSpace.INITIAL) is None and PacketSpace.INITIAL not in spaces
    assert spaces.read_keys(EncryptionLevel.INITIAL) is None
    spaces.install_initial(b"\x02" * 8, is_client=True)  # a discarded level never comes back
    assert spaces.write_keys(EncryptionLevel.INITIAL) is None
    assert not spaces.discard(PacketSpace.APPLICATION)  # never discarded
    assert [space.id for space in spaces] == [PacketSpace.HANDSHAKE, PacketSpace.APPLICATION]


def test_one_rtt_only_once_the_handshake_spaces_are_gone() -> None:
    spaces = _spaces()
    spaces.install(EncryptionLevel.APPLICATION, read=False, suite=SUITE, secret=bytes(32))
    assert not spaces.one_rtt_only()
    spaces.discard(PacketSpace.INITIAL)
    spaces.discard(PacketSpace.HANDSHAKE)
    assert spaces.one_rtt_only()
    assert spaces.write_keys(EncryptionLevel.APPLICATION) is spaces.phase.write


# -- KeyPhase (RFC 9001 §6) ------------------------------------------------------------------------------


def _pair() -> tuple[KeyPhase, KeyPhase]:
    a, b = KeyPhase(), KeyPhase()
    one, two = b"\x01" * 32, b"\x02" * 32
    a.install(PacketProtection(SUITE, one, VERSION), read=False)
    a.install(PacketProtection(SUITE, two, VERSION), read=True)
    b.install(PacketProtection(SUITE, one, VERSION), read=True)
    b.install(PacketProtection(SUITE, two, VERSION), read=False)
    return a, b


def _short_packet(phase: KeyPhase, pn: int) -> bytes:
    write = phase.write
    assert write is not None
    dcid = b"\xaa" * 8
    header = bytes([0x40 | (phase.key_phase << 2) | 1]) + dcid + pn.to_bytes(2, "big")
    return write.protect(header, b"\x01" + bytes(30), pn, 1 + len(dcid), 2)


def test_key_phase_follows_the_peers_update_and_keeps_late_packets_readable() -> None:
    sender, receiver = _pair()
    late = _short_packet(sender, 1)
    assert sender.can_update()
    sender.update()
    assert sender.key_phase == 1 and sender.update_pending_ack and not sender.can_update()
    updated = _short_packet(sender, 2)
    result = receiver.unprotect(memoryview(updated), 9, 2, keep_previous_until=5.0)
    assert isinstance(result, UnprotectedPacket) and result.packet_number == 2
    assert receiver.key_phase == 1 and receiver.previous_read_until == 5.0 and receiver.key_updates == 1
    old = receiver.unprotect(memoryview(late), 9, 1, keep_previous_until=9.0)
    assert isinstance(old, UnprotectedPacket) and old.packet_number == 1
    receiver.discard_previous()
    assert receiver.previous_read is None and receiver.previous_read_until is None
    sender.on_packet_sent(2)
    sender.on_packet_acked(1, 3.0, 0.1)  # a packet of the old phase does not end the update
    assert sender.update_pending_ack
    sender.on_packet_acked(2, 3.0, 0.1)
    assert not sender.update_pending_ack and sender.can_update()


# -- Paths: per-path congestion state (RFC 9000 §9.4) and the current path's frames ---------------------


def _congestion() -> PathCongestion:
    return PathCongestion(NewReno(1200), RttEstimator(), Pacer(1200))


def _paths() -> Paths:
    return Paths(
        ("10.0.0.1", 4433),
        validated=True,
        base_size=1200,
        max_size=1500,
        pmtu_discovery=False,
        new_congestion=_congestion,
        randbytes=_randbytes,
    )


def test_a_port_only_change_keeps_the_congestion_state_and_a_new_address_starts_afresh() -> None:
    paths = _paths()
    first = paths.current
    rebound = paths.on_authenticated(("10.0.0.1", 5000), 1200)
    moved = paths.on_authenticated(("10.0.0.2", 4433), 1200)
    assert rebound.congestion is first.congestion and rebound.pmtud is first.pmtud
    assert moved.congestion is not first.congestion and moved.pmtud is not first.pmtud
    paths.on_peer_moved(moved, 1.0, 0.1)
    assert paths.current is moved and paths.previous is first and moved.validating
    assert paths.current.datagram_allowance() == 3 * 1200


def test_paths_write_the_current_paths_frames_and_ask_for_padding() -> None:
    paths = _paths()
    assert not paths.has_data()
    paths.current.owe_response(b"12345678")
    paths.current.start_validation(1.0, 0.1)
    assert paths.has_data()
    for number in range(2):  # a validation starts with two challenges, one per packet (RFC 9000 §8.2.1)
        builder = DatagramBuilder(1200, 1.0)
        builder.start_packet(
            space=PacketSpace.APPLICATION,
            protection=PacketProtection(SUITE, bytes(32), VERSION),
            first_byte=0x40,
            prefix=b"\xaa" * 8,
            is_long=False,
            packet_number=number,
            largest_acked=None,
        )
        paths.write_frames(builder)
        assert builder.padding_required
        assert paths.has_data() == (number == 0)
    assert len(paths.current.challenges) == 2
    assert paths.next_deadline() == pytest.approx(1.1)  # the challenge is sent again after a PTO


# -- LossRecovery: PTO and the path switch ------------------------------------------------------------------


def test_recovery_pto_counts_max_ack_delay_once_confirmed_and_follows_the_path() -> None:
    first = _congestion()
    recovery = LossRecovery(first.controller, first.rtt, max_ack_delay=0.025, is_client=True)
    base = first.rtt.pto_base()
    assert recovery.pto() == pytest.approx(base)
    recovery.set_handshake_confirmed()
    assert recovery.pto() == pytest.approx(base + 0.025) and recovery.handshake_confirmed
    second = _congestion()
    recovery.switch_path(second.controller, second.rtt)
    assert recovery.congestion is second.controller and recovery.rtt is second.rtt


# -- the connection's timers: no stored clock ---------------------------------------------------------------


def test_close_without_now_arms_the_close_timer_from_the_next_datagrams_to_send() -> None:
    from rudp.quic.connection import QuicConnection

    conn = QuicConnection.client(Config(verify=False), server_address=("127.0.0.1", 4433), now=100.0)
    conn.datagrams_to_send(100.0)
    conn.close(0, "done")
    assert conn.state is State.CLOSING
    assert conn.next_timer() is None  # the closing period has not started: no time was given
    sent = conn.datagrams_to_send(250.0)
    assert len(sent) == 1  # the CONNECTION_CLOSE
    deadline = conn.next_timer()
    assert deadline == pytest.approx(250.0 + 3 * conn._recovery.pto())  # RFC 9000 §10.2
    conn.handle_timer(deadline)
    assert conn.is_closed


def test_a_clients_own_move_gets_a_fresh_congestion_state() -> None:
    paths = _paths()
    before = paths.current.congestion
    paths.revalidate(1.0, 0.1)
    assert paths.current.congestion is not before  # RFC 9000 §9.4: a new network path
    assert paths.current.validating and paths.changes == 1


def test_the_after_send_hook_counts_close_datagrams_like_any_other() -> None:
    from rudp.quic.connection import QuicConnection

    conn = QuicConnection.client(Config(verify=False), server_address=("127.0.0.1", 4433), now=1.0)
    first = conn.datagrams_to_send(1.0)
    before = conn.stats
    assert before.datagrams_sent == len(first) and before.packets_sent >= 1
    conn.close(0, "bye", now=1.5)
    (close, _addr), *_ = conn.datagrams_to_send(1.5)
    after = conn.stats
    assert after.datagrams_sent == before.datagrams_sent + 1
    assert after.bytes_sent == before.bytes_sent + len(close)
    assert after.packets_sent == before.packets_sent + 1  # the Initial CONNECTION_CLOSE packet


def test_every_frame_type_has_one_owner_in_the_route_table() -> None:
    import typing

    from rudp.codec import frames as f
    from rudp.quic.receiving import ROUTES

    assert set(ROUTES) == set(typing.get_args(f.Frame))  # RFC 9000 §12.4: no frame left unrouted
