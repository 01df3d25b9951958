"""Connection IDs per path (RFC 9000 §9.5): a server answers a client that moved and changed its CID
with a fresh CID of the client's on the new path, retires the old path's CID once that path is
abandoned, keeps its CID across a NAT rebinding that kept the client's, and with no spare CID does not
follow the client until one arrives. Every transfer is checked byte for byte (SHA-256)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rudp.codec.frames import NewConnectionId, Ping, RetireConnectionId
from rudp.crypto.suites import CipherSuite
from rudp.quic.sent import PacketSpace
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, Recorder, Sim, Sniffer, make_sim

Sent = list[tuple[bytes, tuple[str, int]]]
NEW_ADDR = ("10.0.0.5", 50000)


def _sim(pki: TestPki, tmp_path: Path) -> tuple[Sim, Recorder, Sniffer]:
    keylog = tmp_path / "keys.log"
    suite = CipherSuite.AES_128_GCM_SHA256
    client = {"secrets_log": keylog, "cipher_suites": [suite]}
    sim = make_sim(pki, link=LinkConfig(delay=0.01), client=client)
    sim.handshake()
    sim.pair.run_for(0.2)  # NEW_CONNECTION_ID frames arrive after the handshake is confirmed
    recorder = Recorder(sim)
    recorder.install()
    return sim, recorder, Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", suite)


def _dcids(sent: Sent, address: tuple[str, int]) -> set[bytes]:
    """The DCIDs of the server's 1-RTT packets to ``address`` (short header, 8-byte client CIDs)."""
    return {datagram[1:9] for datagram, dst in sent if dst == address and not datagram[0] & 0x80}


def _upload(sim: Sim, size: int, move: object) -> None:
    """Send ``size`` bytes to the server, calling ``move()`` once a tenth of the way through."""
    stream_id = sim.conn.open_stream()
    data = os.urandom(size)
    sim.client.send(stream_id, data)
    sim.pair.run_for(0.05)
    assert stream_id not in sim.server.finished
    move()  # type: ignore[operator]
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=60)
    got = bytes(sim.server.streams[stream_id])
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_after_a_migration_the_server_uses_a_new_cid_and_retires_the_old(
    pki: TestPki, tmp_path: Path
) -> None:
    sim, recorder, sniffer = _sim(pki, tmp_path)
    server_conn = sim.server.conn
    old_cid = server_conn.destination_cid

    def move() -> None:
        sim.conn.migrate(sim.clock.now)  # the client changes its CID (RFC 9000 §9.5)
        sim.pair.rebind_client(NEW_ADDR)

    _upload(sim, 500_000, move)
    sim.pair.run_for(0.5)
    old_path, new_path = _dcids(recorder.sent, CLIENT_ADDR), _dcids(recorder.sent, NEW_ADDR)
    assert old_path == {old_cid}
    assert new_path and not new_path & old_path  # never the old path's CID on the new one
    assert server_conn.peer_address == NEW_ADDR and server_conn.destination_cid in new_path
    frames = [fr for datagram, _ in recorder.sent for fr in sniffer.frames(datagram) or []]
    assert RetireConnectionId(0) in frames  # the old path is abandoned: its CID (sequence 0) retired
    assert sim.client.terminated is None and sim.server.terminated is None


def test_nat_rebinding_without_a_cid_change_keeps_the_cid(pki: TestPki, tmp_path: Path) -> None:
    sim, recorder, _ = _sim(pki, tmp_path)
    server_conn = sim.server.conn
    old_cid = server_conn.destination_cid
    _upload(sim, 500_000, lambda: sim.pair.rebind_client(("10.0.0.1", 40000)))
    # RFC 9000 §9.5: same DCID from a new address: the server MAY keep its CID, and does.
    assert _dcids(recorder.sent, ("10.0.0.1", 40000)) == {old_cid}
    assert server_conn.peer_address == ("10.0.0.1", 40000) and server_conn.destination_cid == old_cid
    assert sim.client.terminated is None and sim.server.terminated is None


def test_with_no_spare_cid_the_server_waits_for_one(pki: TestPki, tmp_path: Path) -> None:
    sim, recorder, _ = _sim(pki, tmp_path)
    server_conn = sim.server.conn
    peer_cids = server_conn._peer_cids
    taken = []
    while (spare := peer_cids.reserve_spare()) is not None:  # the server used up the client's CIDs
        taken.append(spare)
    assert taken
    returned = []

    def move() -> None:
        sim.conn.migrate(sim.clock.now)
        sim.pair.rebind_client(NEW_ADDR)
        # RFC 9000 §9.5: with no fresh CID the server cannot answer on the new path nor follow there.
        sim.pair.run_for(0.3)
        assert not [d for d, dst in recorder.sent if dst == NEW_ADDR]
        assert server_conn.peer_address != NEW_ADDR and server_conn.state.value == "established"
        # A fresh CID arrives (as a NEW_CONNECTION_ID would bring it): the server follows at once.
        spare = taken.pop()
        peer_cids.on_new_connection_id(NewConnectionId(spare.sequence, 0, spare.cid, spare.reset_token))
        returned.append(spare.cid)

    _upload(sim, 300_000, move)
    assert server_conn.peer_address == NEW_ADDR
    assert _dcids(recorder.sent, NEW_ADDR) == set(returned)
    assert sim.client.terminated is None and sim.server.terminated is None


def test_a_client_discards_packets_from_a_server_address_it_never_sent_to(
    pki: TestPki, tmp_path: Path
) -> None:
    sim, _, sniffer = _sim(pki, tmp_path)
    client = sim.conn
    tracker = client._spaces[PacketSpace.APPLICATION].ack
    number = sim.server.conn._spaces[PacketSpace.APPLICATION].next_pn
    packet = sniffer.forge(client.local_cids()[0], number, [Ping()])
    dropped = client.stats.packets_dropped
    # RFC 9000 §9.6: the server did not move (a server never migrates on its own): discarded.
    client.receive_datagram(packet, ("10.0.0.99", 4433), sim.clock.now)
    assert client.stats.packets_dropped == dropped + 1 and tracker.largest_received != number
    assert client.peer_address == SERVER_ADDR and client.stats.path_changes == 0
    # The same packet from the server's address is processed.
    client.receive_datagram(packet, SERVER_ADDR, sim.clock.now)
    assert tracker.largest_received == number
    _upload(sim, 200_000, lambda: None)
    assert sim.client.terminated is None and sim.server.terminated is None


def test_a_lone_ping_is_not_answered_with_a_ping(pki: TestPki, tmp_path: Path) -> None:
    # RFC 9000 §13.2.4: a receiver of data makes its ACK ack-eliciting when nothing of its own is in
    # flight (so its PTO stays armed, e.g. after a NAT rebinding), but a lone PING is not data: two
    # idle endpoints must not ping-pong.
    sim, recorder, _ = _sim(pki, tmp_path)
    sim.pair.run_for(1.0)
    before = len(recorder.sent)
    sim.conn.ping()
    sim.pair.run_for(2.0)
    assert len(recorder.sent) - before <= 2
    assert sim.client.terminated is None and sim.server.terminated is None
