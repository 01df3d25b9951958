"""AEAD usage limits (RFC 9001 §6.6) and automatic key updates (RFC 9001 §6), with real keys on the
simulated link: updates every ``Config.key_update_interval`` packets during a transfer, an update that
waits for the previous one to be acknowledged, the confidentiality limit closing a connection that
cannot update, forged packets counted up to the integrity limit and AEAD_LIMIT_REACHED on the wire."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import random
from pathlib import Path
from typing import Any

import pytest

from rudp.codec.frames import ConnectionClose, Frame, HandshakeDone, Ping
from rudp.codec.packet import iter_packets
from rudp.config import Config
from rudp.crypto.suites import AEAD_LIMITS, AeadLimits, CipherSuite
from rudp.errors import ConfigError, TransportError, TransportErrorCode
from rudp.quic.connection import QuicConnection
from rudp.quic.key_limits import KeyUsage
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from rudp.tls.engine import EncryptionLevel
from tests.quic.test_qlog_qvis import read_records
from tests.support.sim import Sniffer, make_sim

AEAD_LIMIT_REACHED = TransportErrorCode.AEAD_LIMIT_REACHED
LINK = LinkConfig(delay=0.005, seed=3, bandwidth=20e6)  # ~1850 full datagrams/s: a transfer lasts


def _digest(data: bytes | bytearray) -> bytes:
    return hashlib.sha256(data).digest()


def _usage(conn: QuicConnection) -> KeyUsage:
    return conn._spaces.usage


def _key_segments(path: Path) -> list[tuple[str | None, int]]:
    """From a qlog: each 1-RTT key phase as (trigger of the update that started it, 1-RTT packets
    sent in it); the first phase has trigger None."""
    segments: list[tuple[str | None, int]] = [(None, 0)]
    for event in read_records(path)[1:]:
        data = event["data"]
        if event["name"] == "security:key_updated" and data["key_type"] == "client_1rtt_secret":
            assert data["key_phase"] == len(segments)
            segments.append((data["trigger"], 0))
        elif event["name"] == "transport:packet_sent" and data["header"]["packet_type"] == "1RTT":
            trigger, count = segments[-1]
            segments[-1] = (trigger, count + 1)
    return segments


# -- the usage object alone -------------------------------------------------------------------------


def test_thresholds_follow_the_suite_interval_and_override() -> None:
    usage = KeyUsage()
    usage.set_suite(CipherSuite.AES_128_GCM_SHA256)
    assert usage.limits == AeadLimits(confidentiality=1 << 23, integrity=1 << 52)
    # An update starts at 3/4 of the confidentiality limit; with none possible, the connection closes
    # at 15/16 of it, leaving room for its CONNECTION_CLOSE packets.
    assert (usage.update_at, usage.close_at) == (3 << 21, 15 << 19)
    usage.set_suite(CipherSuite.CHACHA20_POLY1305_SHA256)
    assert usage.limits == AeadLimits(confidentiality=1 << 62, integrity=1 << 36)
    assert usage.update_at == 3 << 60
    usage = KeyUsage(interval=1000)
    usage.set_suite(CipherSuite.AES_256_GCM_SHA384)
    assert (usage.update_at, usage.limits.confidentiality) == (1000, 1 << 23)
    override = KeyUsage(interval=50, limits=AeadLimits(confidentiality=40, integrity=3))
    override.set_suite(CipherSuite.CHACHA20_POLY1305_SHA256)  # an override wins over the suite
    assert (override.limits.integrity, override.update_at, override.close_at) == (3, 30, 38)


def test_packets_before_due_counts_the_packets_maintain_leaves_alone() -> None:
    """A packet train calls ``maintain`` only once ``packets_before_due`` packets are protected: for
    exactly that many, maintain does nothing; at the next it updates the keys (or, when it may not,
    is due before every packet: 0)."""
    from rudp.quic.qlog import NullQlog

    class Write:
        packets_protected = 0

    class Keys:
        def __init__(self) -> None:
            self.write = Write()
            self.updates = 0
            self.allowed = True

        def can_update(self) -> bool:
            return self.allowed

        def update(self, trigger: str = "") -> None:
            self.updates += 1
            self.write = Write()

    usage = KeyUsage(interval=20, limits=AeadLimits(confidentiality=1000, integrity=10))
    keys = Keys()
    keys.write.packets_protected = 5
    qlog = NullQlog()
    quiet = usage.packets_before_due(keys)  # type: ignore[arg-type]
    assert quiet == 15
    for _ in range(quiet):
        usage.maintain(keys, 1.0, confirmed=True, qlog=qlog)  # type: ignore[arg-type]
        assert keys.updates == 0
        keys.write.packets_protected += 1
    usage.maintain(keys, 1.0, confirmed=True, qlog=qlog)  # type: ignore[arg-type]
    assert keys.updates == 1
    assert usage.packets_before_due(keys) == 20  # type: ignore[arg-type]  # a fresh key's interval
    # A phase change waiting to be logged (the peer's update, seen on receipt): due at once.
    usage.on_phase_changed("remote_update", 2)
    assert usage.packets_before_due(keys) == 0  # type: ignore[arg-type]
    usage.maintain(keys, 1.0, confirmed=True, qlog=qlog)  # type: ignore[arg-type]
    assert usage.packets_before_due(keys) == 20  # type: ignore[arg-type]
    keys.write.packets_protected = 25  # past the interval, no update allowed: due before every packet
    keys.allowed = False
    assert usage.packets_before_due(keys) == 0  # type: ignore[arg-type]


def test_integrity_limit_counts_every_level_and_closes_one_past_it() -> None:
    usage = KeyUsage(limits=AeadLimits(confidentiality=100, integrity=3))
    usage.on_forged(EncryptionLevel.INITIAL)
    usage.on_forged(EncryptionLevel.APPLICATION)
    usage.on_forged(EncryptionLevel.APPLICATION)  # the limit itself is still allowed
    with pytest.raises(TransportError) as caught:
        usage.on_forged(EncryptionLevel.HANDSHAKE)
    assert caught.value.code == AEAD_LIMIT_REACHED
    assert usage.forged == 4
    assert usage.forged_by_level == {
        EncryptionLevel.INITIAL: 1,
        EncryptionLevel.APPLICATION: 2,
        EncryptionLevel.HANDSHAKE: 1,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key_update_interval": 0}, "Config.key_update_interval must be >= 1"),
        ({"key_update_interval": 2.5}, "Config.key_update_interval must be an integer"),
        ({"key_update_interval": True}, "Config.key_update_interval must be an integer"),
        ({"aead_limits": (1 << 23, 1 << 52)}, "Config.aead_limits must be None or an AeadLimits"),
        ({"aead_limits": AeadLimits(confidentiality=0, integrity=5)}, "Config.aead_limits must be"),
    ],
)
def test_config_rejects_bad_key_limits(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**options)


# -- automatic key updates ---------------------------------------------------------------------------


def test_automatic_key_updates_every_n_packets_during_a_transfer(pki: TestPki, tmp_path: Path) -> None:
    interval = 200
    options = {"key_update_interval": interval, "qlog_dir": tmp_path}
    # Seeded endpoints (connection IDs, skipped packet numbers): how many updates fit in the transfer
    # depends on when each one is acknowledged; unseeded, ~1 run in 10 fitted 2 instead of 3.
    sim = make_sim(
        pki,
        link=LINK,
        client={**options, "randbytes": random.Random("client").randbytes},
        server={**options, "randbytes": random.Random("server").randbytes},
    )
    sim.server.echo = True
    sim.handshake()
    data = os.urandom(2_000_000)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, data)
    assert sim.pair.drive(until=lambda: stream_id in sim.client.finished, max_time=60)
    sim.pair.run_for(0.5)  # the last ACKs of the last key phase arrive
    server = sim.server.conn
    # An update may start as the last datagrams are built, after which nothing more needs sending:
    # a PING carries the current phase to the peer, so both sides can be compared.
    sim.conn.ping()
    server.ping()
    assert sim.pair.drive(until=lambda: sim.conn.stats.key_updates == server.stats.key_updates, max_time=5)
    assert _digest(sim.server.streams[stream_id]) == _digest(data)
    assert _digest(sim.client.streams[stream_id]) == _digest(data)
    # Several updates, each followed by the other side: both are in the same key phase, and no packet
    # was lost to an update (late packets of the old phase still open with the old keys).
    client_stats, server_stats = sim.conn.stats, server.stats
    assert client_stats.key_updates == server_stats.key_updates >= 3
    assert client_stats.packets_dropped == server_stats.packets_dropped == 0
    assert client_stats.packets_lost == server_stats.packets_lost == 0
    assert client_stats.forged_packets == server_stats.forged_packets == 0
    # Packets under the current key (one side may have just moved to a new phase: then the other
    # has protected the PINGs' answers under its current key).
    assert max(client_stats.key_phase_packets, server_stats.key_phase_packets) > 0

    sim.conn.close()
    sim.pair.run_for(1.0)
    odcid = sim.conn.original_dcid.hex()
    # (the CONNECTION_CLOSE itself may go out under a further automatic update: count each side's
    # phases against its own final statistics)
    for role, final in (("client", sim.conn.stats), ("server", server.stats)):
        segments = _key_segments(tmp_path / f"{odcid}_{role}.sqlog")
        assert len(segments) == final.key_updates + 1
        # A phase this side ended with an update of its own protected at least the interval.
        ended_here = [
            count
            for (_, count), (trigger, _) in itertools.pairwise(segments)
            if trigger == "local_update"
        ]
        assert all(count >= interval for count in ended_here), segments
        assert {trigger for trigger, _ in segments[1:]} <= {"local_update", "remote_update"}
    client_segments = _key_segments(tmp_path / f"{odcid}_client.sqlog")
    # The first update needs no acknowledgment of an earlier one: it starts at the interval.
    assert interval <= client_segments[0][1] <= interval + 2
    server_segments = _key_segments(tmp_path / f"{odcid}_server.sqlog")
    phases = list(zip(client_segments[1:], server_segments[1:], strict=False))
    # Every phase was started by one side (both may start the same one at once, RFC 9001 §6.1 allows
    # it: each then reads the other's packets with the keys it moved to), and the client's updates
    # reached the server as remote updates.
    assert all("local_update" in (c, s) for (c, _), (s, _) in phases), phases
    assert any(c == "local_update" and s == "remote_update" for (c, _), (s, _) in phases), phases


def test_update_waits_for_the_previous_one_to_be_acknowledged(pki: TestPki) -> None:
    interval = 30
    window = 4 << 20
    windows = {"initial_max_data": window, "initial_max_stream_data": window, "max_connection_window": window}
    link = dataclasses.replace(LINK, queue_bytes=150_000)  # RTTs (and so PTOs) stay short
    sim = make_sim(pki, link=link, client={"key_update_interval": interval}, server=windows)
    sim.handshake()
    stream_id = sim.conn.open_stream()
    data = os.urandom(3_000_000)
    sim.client.send(stream_id, data)
    # The second update, once the congestion window has grown (the first comes within a round trip).
    assert sim.pair.drive(until=lambda: sim.conn.stats.key_updates == 2, max_time=10)
    # From the moment the server follows into the new key phase, everything it sends is lost: the ACKs
    # of the old phase's packets keep the client sending, but no ACK of a new-phase packet arrives.
    # The client must not start another update (RFC 9001 §6.1), however many packets its current key
    # protects; an explicit request is refused too.
    server = sim.server.conn
    sim.pair.s2c.update(drop_filter=lambda data, index: server.stats.key_updates >= 2)
    sim.pair.run_for(0.5)
    stats = sim.conn.stats
    assert server.stats.key_updates == 2
    assert stats.key_updates == 2 and stats.key_phase_packets > 2 * interval
    assert not sim.conn.request_key_update()
    # The ACKs come through again: the update is retried (after the three PTOs of RFC 9001 §6.5) and
    # the transfer completes under the new keys.
    sim.pair.s2c.update(drop_filter=None)
    assert sim.pair.drive(until=lambda: sim.conn.stats.key_updates == 3, max_time=3)
    assert stream_id not in sim.server.finished
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=60)
    assert _digest(sim.server.streams[stream_id]) == _digest(data)
    sim.pair.run_for(0.5)
    assert sim.server.conn.stats.key_updates >= 3 and sim.client.terminated is None


def _one_rtt_frames(sniffer: Sniffer, datagram: bytes) -> list[Frame]:
    """The frames of the 1-RTT packet of a (possibly coalesced) datagram that ``sniffer`` opens."""
    for header in iter_packets(datagram, short_dcid_length=sniffer.dcid_length):
        if not header.is_long:
            return sniffer.frames(datagram[header.start :]) or []
    return []


def test_confidentiality_limit_closes_when_no_update_can_start(pki: TestPki, tmp_path: Path) -> None:
    """The client never gets HANDSHAKE_DONE, so it may not update its keys (RFC 9001 §6): once its
    1-RTT key nears the (injected) confidentiality limit it closes with AEAD_LIMIT_REACHED."""
    keylog = tmp_path / "keys.log"
    suite = CipherSuite.AES_128_GCM_SHA256
    limits = AeadLimits(confidentiality=100, integrity=1000)  # update at 75 packets, give up at 94
    sim = make_sim(
        pki,
        link=LINK,
        client={"aead_limits": limits, "secrets_log": keylog, "cipher_suites": [suite]},
    )
    reader: list[Sniffer] = []

    def drop_handshake_done(datagram: bytes, index: int) -> bool:
        if not reader and keylog.exists() and "SERVER_TRAFFIC_SECRET_0" in keylog.read_text():
            reader.append(Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", suite))
        frames = _one_rtt_frames(reader[0], datagram) if reader else []
        return any(isinstance(frame, HandshakeDone) for frame in frames)

    sim.pair.s2c.update(drop_filter=drop_handshake_done)
    assert sim.pair.drive(until=lambda: sim.client.handshake is not None, max_time=5)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, os.urandom(1_000_000))
    assert sim.pair.drive(until=lambda: sim.client.terminated is not None, max_time=10)
    terminated = sim.client.terminated
    assert terminated.code == AEAD_LIMIT_REACHED and not terminated.by_peer
    stats = sim.conn.stats
    assert stats.key_updates == 0
    assert limits.confidentiality * 15 // 16 <= stats.key_phase_packets <= limits.confidentiality
    # The CONNECTION_CLOSE reaches the server with the code.
    assert sim.pair.drive(until=lambda: sim.server.terminated is not None, max_time=5)
    assert sim.server.terminated.code == AEAD_LIMIT_REACHED and sim.server.terminated.by_peer


def test_confidentiality_limit_update_does_not_wait_three_ptos(pki: TestPki) -> None:
    """Updates for the limit start as soon as the current phase is acknowledged (one round trip, ~120
    packets here), not three PTOs later (~500 packets): with a limit of 1000 packets (update at 750,
    give up at 938) a bulk transfer goes through key phase after key phase and never closes."""
    limits = AeadLimits(confidentiality=1000, integrity=1000)
    sim = make_sim(pki, link=LINK, client={"aead_limits": limits}, server={"aead_limits": limits})
    sim.server.echo = True
    sim.handshake()
    data = os.urandom(3_000_000)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, data)
    assert sim.pair.drive(
        until=lambda: stream_id in sim.client.finished or sim.client.terminated is not None, max_time=60
    )
    assert sim.client.terminated is None and sim.server.terminated is None
    assert _digest(sim.client.streams[stream_id]) == _digest(data)
    assert sim.conn.stats.key_updates >= 4


# -- the integrity limit -----------------------------------------------------------------------------


def test_forged_packets_are_counted_and_close_past_the_integrity_limit(pki: TestPki, tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    suite = CipherSuite.AES_128_GCM_SHA256
    limits = AeadLimits(confidentiality=1 << 23, integrity=5)
    sim = make_sim(
        pki,
        link=LinkConfig(delay=0.01),
        client={"secrets_log": keylog, "cipher_suites": [suite]},
        server={"aead_limits": limits},
    )
    sim.handshake()
    sim.pair.run_for(0.2)
    reader = Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", suite)
    forger = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", suite)
    closes: list[ConnectionClose] = []

    def watch_s2c(datagram: bytes, index: int) -> bool:
        closes.extend(f for f in reader.frames(datagram) or [] if isinstance(f, ConnectionClose))
        return False

    sim.pair.s2c.update(drop_filter=watch_s2c)
    server = sim.server.conn
    dcid = sim.conn._peer_cids.current.cid

    def send_forged(packet_number: int) -> None:
        packet = bytearray(forger.forge(dcid, packet_number, [Ping(), *[Ping()] * 40]))
        packet[-1] ^= 0x01  # a valid header (and header protection), a wrong AEAD tag
        sim.pair.c2s.send(bytes(packet), sim.pair.client_addr, sim.pair.server_addr, sim.clock.now)

    for number in range(limits.integrity):
        send_forged(10_000 + number)
    sim.pair.run_for(0.1)
    stats = server.stats
    assert stats.forged_packets == limits.integrity and stats.packets_dropped == limits.integrity
    assert sim.server.terminated is None and sim.client.terminated is None
    # The connection still works: a genuine packet is processed.
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"still fine")
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=2)

    send_forged(20_000)  # one past the integrity limit
    assert sim.pair.drive(until=lambda: sim.client.terminated is not None, max_time=2)
    assert sim.server.terminated is not None
    assert sim.server.terminated.code == AEAD_LIMIT_REACHED and not sim.server.terminated.by_peer
    assert sim.client.terminated.code == AEAD_LIMIT_REACHED and sim.client.terminated.by_peer
    assert closes and closes[0].error_code == AEAD_LIMIT_REACHED and not closes[0].application
    assert server.stats.forged_packets == limits.integrity + 1


# -- the suite's limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda s: s.name)
def test_limits_of_the_negotiated_suite(pki: TestPki, suite: CipherSuite) -> None:
    sim = make_sim(pki, client={"cipher_suites": [suite]})
    sim.handshake()
    for conn in (sim.conn, sim.server.conn):
        assert conn.cipher_suite == suite
        assert _usage(conn).limits == AEAD_LIMITS[suite]
    if suite == CipherSuite.CHACHA20_POLY1305_SHA256:
        assert _usage(sim.conn).limits == AeadLimits(confidentiality=1 << 62, integrity=1 << 36)
    else:
        assert _usage(sim.conn).limits == AeadLimits(confidentiality=1 << 23, integrity=1 << 52)


def test_aead_limits_override_applies_whatever_the_suite(pki: TestPki) -> None:
    limits = AeadLimits(confidentiality=1000, integrity=7)
    sim = make_sim(
        pki,
        client={"cipher_suites": [CipherSuite.CHACHA20_POLY1305_SHA256], "aead_limits": limits},
        server={"aead_limits": dataclasses.replace(limits, integrity=9)},
    )
    sim.handshake()
    assert _usage(sim.conn).limits == limits
    assert _usage(sim.server.conn).limits.integrity == 9
