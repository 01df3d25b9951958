"""Connection migration over the simulator (RFC 9000 §9): NAT rebinding mid-transfer, and a client that
moves to a new address on purpose (fresh connection ID, path validation)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rudp.codec.frames import Ping
from rudp.crypto.suites import CipherSuite
from rudp.errors import RudpError
from rudp.quic.sent import PacketSpace
from rudp.testing import LinkConfig, TraceEvent
from rudp.testing.certs import TestPki
from tests.support.sim import CLIENT_ADDR, Sniffer, make_sim


def test_nat_rebinding_mid_transfer(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.01))
    sim.handshake()
    sim.server.echo = True
    stream_id = sim.conn.open_stream()
    data = os.urandom(2_000_000)
    sim.client.send(stream_id, data)
    sim.pair.run_for(0.1)
    assert stream_id not in sim.client.finished
    sim.pair.rebind_client(("10.0.0.1", 40000))  # a NAT gives the client a new port
    assert sim.pair.drive(until=lambda: stream_id in sim.client.finished, max_time=60)
    assert bytes(sim.client.streams[stream_id]) == data
    server_conn = sim.server.conn
    assert server_conn.peer_address == ("10.0.0.1", 40000)
    assert server_conn.stats.path_changes == 1
    assert sim.client.terminated is None and sim.server.terminated is None


def test_client_migration_uses_a_new_connection_id_and_validates_the_path(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.01))
    sim.handshake()
    sim.pair.run_for(0.2)  # NEW_CONNECTION_ID frames arrive after the handshake is confirmed
    old_dcid = sim.conn.destination_cid
    stream_id = sim.conn.open_stream()
    data = os.urandom(500_000)
    sim.client.send(stream_id, data)
    sim.pair.run_for(0.05)
    big_datagrams: list[TraceEvent] = []
    sim.trace(lambda e: big_datagrams.append(e) if e.kind == "sent" and e.size >= 1200 else None)
    sim.conn.migrate(sim.clock.now)
    sim.pair.rebind_client(("10.0.0.5", 50000))
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=60)
    assert bytes(sim.server.streams[stream_id]) == data
    assert sim.conn.destination_cid != old_dcid  # RFC 9000 §9.5: a fresh CID on the new path
    server_conn = sim.server.conn
    assert server_conn.peer_address == ("10.0.0.5", 50000)
    assert server_conn.stats.path_changes == 1 and sim.conn.stats.path_changes == 1
    assert any(e.direction == "s2c" for e in big_datagrams)  # the server's padded path challenge


def test_migration_before_confirmation_is_refused(pki: TestPki) -> None:
    sim = make_sim(pki)
    with pytest.raises(RudpError):
        sim.conn.migrate(sim.clock.now)


def test_unanswered_path_challenge_reverts_to_the_validated_path(pki: TestPki, tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    sim = make_sim(pki, client={"secrets_log": keylog, "cipher_suites": [CipherSuite.AES_128_GCM_SHA256]})
    sim.handshake()
    sim.pair.run_for(0.2)
    sniffer = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", CipherSuite.AES_128_GCM_SHA256)
    server_conn = sim.server.conn
    # An on-path attacker copies the client's next packet and delivers the copy first, from an address
    # of its choice (RFC 9000 §9.3.2, §9.3.3); the genuine packet, and the client's others for a while,
    # are lost (were they not, their higher packet numbers would move the server back at once).
    spoofed = ("10.9.9.9", 666)
    number = sim.conn._spaces[PacketSpace.APPLICATION].next_pn
    packet = sniffer.forge(server_conn.local_cids()[0], number, [Ping()])
    sim.pair.c2s.update(drop_filter=lambda data, index: True)
    sim.server.receive_datagram(packet, spoofed, sim.clock.now)
    sim.conn.ping()  # the genuine packet with that number
    assert server_conn.peer_address == spoofed
    sim.pair.run_for(3.0)  # the challenge sent to the spoofed address is never answered
    assert server_conn.peer_address == CLIENT_ADDR
    assert server_conn.path_validation_failures == 1
    sim.pair.c2s.update(drop_filter=None)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"still here")
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=5)
