"""Server's preferred address (RFC 9000 §9.6) on both sides, and disable_active_migration (§9, §18.2),
over the simulator: the server listens on two addresses, the client probes the preferred one from a
socket of its own and moves there once it validates."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration

from rudp.config import Config
from rudp.errors import ConfigError, MigrationDisabled
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.preferred import MigrationState
from rudp.testing import LinkConfig, VirtualClock
from rudp.testing.certs import TestPki
from tests.support.multihomed import MultihomedPair, MultihomedServer
from tests.support.peers import AioquicPeer, RudpPeer
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, START

PREFERRED = ("10.0.0.3", 4434)
PROBE_SOURCE = ("10.0.0.1", 5001)  # the client's new socket for the preferred address
Addr = tuple[str, int]


def make_pair(
    pki: TestPki,
    *,
    client: dict[str, object] | None = None,
    server: dict[str, object] | None = None,
    reachable: bool = True,
    addresses: tuple[Addr, Addr, Addr, Addr] = (CLIENT_ADDR, SERVER_ADDR, PREFERRED, PROBE_SOURCE),
) -> tuple[MultihomedPair, RudpPeer, MultihomedServer]:
    client_addr, server_addr, preferred, probe_source = addresses
    options: dict[str, object] = {"preferred_address": [f"{PREFERRED[0]}:{PREFERRED[1]}"], **(server or {})}
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **options)  # type: ignore[arg-type]
    client_config = Config(cafile=pki.ca_file, server_name="localhost", **(client or {}))  # type: ignore[arg-type]
    clock = VirtualClock(START)
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    conn = QuicConnection.client(client_config, server_address=server_addr, now=clock.now)
    client_peer, server_peer = RudpPeer(conn), MultihomedServer(endpoint, server_addr)
    pair = MultihomedPair(
        client_peer,
        server_peer,
        client_addr=client_addr,
        server_addr=server_addr,
        c2s=LinkConfig(delay=0.01),
        s2c=LinkConfig(delay=0.01, seed=2),
        clock=clock,
    )
    if reachable:
        pair.server_addresses.add(preferred)
    pair.client_sources[preferred] = probe_source
    return pair, client_peer, server_peer


def transfer(pair: MultihomedPair, client: RudpPeer, server: RudpPeer, size: int = 300_000) -> bytes:
    """Echo ``size`` random bytes through the connection; the digest must survive whatever moved."""
    server.echo = True
    data = os.urandom(size)
    stream_id = client.conn.open_stream()
    client.send(stream_id, data)
    assert pair.drive(until=lambda: stream_id in client.finished, max_time=60)
    assert hashlib.sha256(bytes(client.streams[stream_id])).digest() == hashlib.sha256(data).digest()
    return data


def handshake(pair: MultihomedPair, client: RudpPeer, server: RudpPeer) -> None:
    def done() -> bool:
        return client.handshake is not None and bool(server.connections) and server.handshake is not None

    assert pair.drive(until=done, max_time=10)


def test_server_advertises_a_routable_connection_id_with_sequence_number_1(pki: TestPki) -> None:
    pair, client, server = make_pair(pki, client={"use_preferred_address": False})
    handshake(pair, client, server)
    server_conn = server.conn
    advertised = client.conn._handshake.peer_params.preferred_address  # type: ignore[union-attr]
    assert advertised is not None
    assert (str(advertised.ipv4_address), advertised.ipv4_port) == PREFERRED
    assert advertised.ipv6_address is None and advertised.ipv6_port == 0
    issued = server_conn._local_cids.active[1]
    assert advertised.connection_id == issued.cid and advertised.stateless_reset_token == issued.reset_token
    assert server.endpoint._routes[issued.cid] is server_conn  # the endpoint routes it
    pair.run_for(0.5)
    # NEW_CONNECTION_ID frames continue at sequence 2 (seq 1 went in the handshake, RFC 9000 §5.1.1).
    assert sorted(server_conn._local_cids.active) == list(range(4))
    assert client.conn.migration.state is MigrationState.DECLINED


def test_client_moves_to_the_preferred_address_after_confirmation(pki: TestPki, tmp_path: Path) -> None:
    pair, client, server = make_pair(pki, server={"qlog_dir": tmp_path}, client={"qlog_dir": tmp_path})
    handshake(pair, client, server)
    assert client.conn.handshake_confirmed or pair.drive(until=lambda: client.conn.handshake_confirmed)
    preferred_cid = server.conn._local_cids.active[1].cid
    data = transfer(pair, client, server)
    conn, server_conn = client.conn, server.conn
    assert conn.migration.state is MigrationState.MIGRATED
    assert conn.peer_address == PREFERRED and conn.destination_cid == preferred_cid
    assert server_conn.peer_address == PROBE_SOURCE  # the server followed (RFC 9000 §9.6.2)
    assert server_conn.stats.path_changes == 1 and conn.stats.path_changes == 1
    sent_before = pair.sent_from.get(PREFERRED, 0)
    heard_before = server.heard.get(PREFERRED, 0)
    transfer(pair, client, server, len(data))
    # After the move, both directions use the preferred address only.
    assert pair.sent_from[PREFERRED] > sent_before and server.heard[PREFERRED] > heard_before
    pair.run_for(1.0)
    # The client retired the server's first CID; the server replaced it (RFC 9000 §5.1.1).
    assert 0 not in server_conn._local_cids.active and len(server_conn._local_cids.active) == 4
    server_events = qlog_events(tmp_path, "server")
    assert {"migration_started", "migration_complete"} <= {e["new"] for e in server_events}
    client_events = qlog_events(tmp_path, "client")
    states = [e["new"] for e in client_events]
    assert states[:3] == ["probing_started", "probing_successful", "migration_complete"]
    assert client_events[0]["tuple_remote"] == {"ip_v4": PREFERRED[0], "port_v4": PREFERRED[1]}


def qlog_events(directory: Path, role: str) -> list[dict[str, object]]:
    (path,) = directory.glob(f"*_{role}.sqlog")
    records = [json.loads(line.lstrip("\x1e")) for line in path.read_text().splitlines() if line.strip()]
    return [r["data"] for r in records if r.get("name") == "quic:migration_state_updated"]


def test_client_declines_when_configured(pki: TestPki) -> None:
    pair, client, server = make_pair(pki, client={"use_preferred_address": False})
    handshake(pair, client, server)
    transfer(pair, client, server)
    assert client.conn.migration.state is MigrationState.DECLINED
    assert client.conn.peer_address == SERVER_ADDR
    assert server.heard.get(PREFERRED, 0) == 0 and pair.sent_from.get(PREFERRED, 0) == 0


def test_client_stays_on_the_original_address_when_the_preferred_one_never_answers(pki: TestPki) -> None:
    pair, client, server = make_pair(pki, reachable=False)
    handshake(pair, client, server)
    preferred_cid = server.conn._local_cids.active[1].cid
    data = transfer(pair, client, server, 200_000)
    conn = client.conn
    assert pair.drive(until=lambda: conn.migration.state is MigrationState.FAILED, max_time=10)
    assert conn.peer_address == SERVER_ADDR and conn.path_validation_failures == 1
    transfer(pair, client, server, len(data))  # the connection carried on
    pair.run_for(1.0)
    # The CID used for the probe is retired (RFC 9000 §9.5: it was used on another path) and replaced
    # like any other (RFC 9000 §5.1.1); the endpoint no longer routes it.
    assert 1 not in server.conn._local_cids.active and len(server.conn._local_cids.active) == 4
    assert preferred_cid not in server.endpoint._routes
    assert server.conn.stats.path_changes == 0 and client.terminated is None


def test_disable_active_migration_refuses_migrate_but_not_the_preferred_address(pki: TestPki) -> None:
    pair, client, server = make_pair(pki, server={"disable_active_migration": True})
    handshake(pair, client, server)
    conn = client.conn
    assert conn._handshake.peer_params is not None and conn._handshake.peer_params.disable_active_migration
    assert pair.drive(until=lambda: conn.migration.state is MigrationState.PROBING, max_time=5)
    with pytest.raises(Exception, match="being validated"):
        conn.migrate(pair.now)
    transfer(pair, client, server)
    assert conn.migration.state is MigrationState.MIGRATED and conn.peer_address == PREFERRED
    conn.migrate(pair.now)  # RFC 9000 §9: allowed once the client acted on the preferred address


def test_disable_active_migration_refuses_migrate(pki: TestPki) -> None:
    pair, client, server = make_pair(
        pki, server={"disable_active_migration": True, "preferred_address": None}
    )
    handshake(pair, client, server)
    pair.run_for(0.2)
    with pytest.raises(MigrationDisabled):
        client.conn.migrate(pair.now)
    assert client.conn.migration.state is MigrationState.NONE


def test_server_with_disable_active_migration_still_follows_a_nat_rebinding(pki: TestPki) -> None:
    pair, client, server = make_pair(
        pki, server={"disable_active_migration": True}, client={"use_preferred_address": False}
    )
    handshake(pair, client, server)
    server.echo = True
    data = os.urandom(400_000)
    stream_id = client.conn.open_stream()
    client.send(stream_id, data)
    pair.run_for(0.05)
    pair.rebind_client(("10.0.0.9", 40000))  # a new IP address and port (RFC 9000 §9: not refused)
    assert pair.drive(until=lambda: stream_id in client.finished, max_time=60)
    assert bytes(client.streams[stream_id]) == data
    assert server.conn.peer_address == ("10.0.0.9", 40000) and server.conn.stats.path_changes == 1


def test_aioquic_client_moves_to_a_rudp_servers_preferred_address(pki: TestPki) -> None:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, alpn=["hq-interop"],
                           preferred_address=[f"{PREFERRED[0]}:{PREFERRED[1]}"])
    configuration = QuicConfiguration(is_client=True, alpn_protocols=["hq-interop"], server_name="localhost")
    configuration.load_verify_locations(str(pki.ca_file))
    clock = VirtualClock(START)
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    client = AioquicPeer(configuration)
    server = MultihomedServer(endpoint, SERVER_ADDR)
    server.echo = True
    pair = MultihomedPair(client, server, client_addr=CLIENT_ADDR, server_addr=SERVER_ADDR,
                          c2s=LinkConfig(delay=0.01), s2c=LinkConfig(delay=0.01, seed=2), clock=clock)
    pair.server_addresses.add(PREFERRED)
    client.connect(SERVER_ADDR, clock.now)
    assert pair.drive(until=lambda: client.handshake_done_at is not None, max_time=10)
    assert pair.drive(until=lambda: server.heard.get(PREFERRED, 0) > 0, max_time=5)
    data = os.urandom(300_000)
    assert client.conn is not None
    stream_id = client.conn.get_next_available_stream_id()
    client.send(stream_id, data)
    heard = server.heard[PREFERRED]
    assert pair.drive(until=lambda: stream_id in client.finished, max_time=60)
    assert bytes(client.streams[stream_id]) == data
    assert server.heard[PREFERRED] > heard + 50  # the transfer went to the preferred address
    assert pair.sent_from.get(PREFERRED, 0) > 50  # and the server answered from there


@pytest.mark.parametrize(
    "value",
    [["10.0.0.1"], ["10.0.0.1:0"], ["::1:443"], ["[10.0.0.1]:443"], ["0.0.0.0:443"],
     ["10.0.0.1:443", "10.0.0.2:443"], "10.0.0.1:443", [], ["host.example:443"]],
)
def test_preferred_address_is_validated(value: object) -> None:
    with pytest.raises(ConfigError, match="preferred_address"):
        Config(preferred_address=value)  # type: ignore[arg-type]


def test_preferred_address_accepts_one_address_per_family() -> None:
    config = Config(preferred_address=["192.0.2.1:443", "[2001:db8::1]:8443"])
    assert config.preferred_address == ["192.0.2.1:443", "[2001:db8::1]:8443"]
    with pytest.raises(ConfigError, match="connection_id_length"):
        Config(preferred_address=["192.0.2.1:443"], connection_id_length=0)


def test_client_picks_the_preferred_address_of_its_own_family(pki: TestPki) -> None:
    # RFC 9000 §9.6.3: a client that reached the server over IPv6 moves to its IPv6 preferred address.
    preferred_v6 = ("fd00::3", 4434)
    server = {"preferred_address": [f"{PREFERRED[0]}:{PREFERRED[1]}", "[fd00::3]:4434"]}
    addresses = (("fd00::1", 5000), ("fd00::2", 4433), preferred_v6, ("fd00::1", 5001))
    pair, client, server_peer = make_pair(pki, server=server, addresses=addresses)
    handshake(pair, client, server_peer)
    transfer(pair, client, server_peer)
    conn = client.conn
    assert conn.migration.target == preferred_v6 and conn.migration.state is MigrationState.MIGRATED
    assert conn.peer_address == preferred_v6 and server_peer.conn.peer_address == ("fd00::1", 5001)


def test_lost_probes_are_sent_again_until_the_preferred_address_answers(pki: TestPki) -> None:
    # The first PATH_CHALLENGEs to the preferred address are lost; the client sends them again every
    # PTO, backing off (RFC 9000 §8.2.1, §9.4), and moves once one gets through.
    pair, client, server = make_pair(pki, reachable=False)
    handshake(pair, client, server)
    assert pair.drive(until=lambda: client.conn.migration.state is MigrationState.PROBING, max_time=5)
    pair.run_for(0.3)
    assert server.heard.get(PREFERRED, 0) == 0
    pair.server_addresses.add(PREFERRED)
    transfer(pair, client, server)
    assert client.conn.migration.state is MigrationState.MIGRATED
    assert server.heard[PREFERRED] > 0 and client.conn.path_validation_failures == 0


def assert_one_path_per_cid(pair: MultihomedPair, peer: Addr, server_addresses: tuple[Addr, Addr]) -> None:
    """RFC 9000 §9.5: neither side sends a connection ID from (or to) more than one address. The CIDs
    seen on the wire per (source, destination) must be disjoint between the original and the preferred
    server address, in both directions, and both paths must have carried 1-RTT packets."""
    original, preferred = server_addresses
    for a, b in (((original, peer), (preferred, peer)), ((peer, original), (peer, preferred))):
        first, second = pair.short_dcids.get(a, set()), pair.short_dcids.get(b, set())
        assert first and second, (a, b)
        assert not first & second, f"{a} and {b} share {first & second}"


def test_server_answers_from_its_preferred_address_with_a_fresh_client_cid(pki: TestPki) -> None:
    # The client probes the preferred address from its usual socket: the same client address reaches
    # another server address, which is another path (RFC 9000 §9). The server must not send the
    # client CID it used from its original address from the preferred one (§9.5): it takes one of the
    # client's NEW_CONNECTION_IDs there, and validates the path from there (§9.6.2).
    pair, client, server = make_pair(pki)
    del pair.client_sources[PREFERRED]
    handshake(pair, client, server)
    transfer(pair, client, server)
    conn, server_conn = client.conn, server.conn
    assert conn.migration.state is MigrationState.MIGRATED and conn.peer_address == PREFERRED
    assert server_conn.peer_address == CLIENT_ADDR and server_conn.stats.path_changes == 1
    assert pair.sent_from.get(PREFERRED, 0) > 50
    assert_one_path_per_cid(pair, CLIENT_ADDR, (SERVER_ADDR, PREFERRED))
    # The CID the server uses from the preferred address is one the client issued after its first.
    (now_used,) = pair.short_dcids[(PREFERRED, CLIENT_ADDR)] - pair.short_dcids[(SERVER_ADDR, CLIENT_ADDR)]
    issued = {entry.cid: seq for seq, entry in conn._local_cids.active.items()}
    assert issued.get(now_used, 0) >= 1
    transfer(pair, client, server)  # and it keeps working there


def test_aioquic_client_sees_a_fresh_cid_from_the_preferred_address(pki: TestPki) -> None:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, alpn=["hq-interop"],
                           preferred_address=[f"{PREFERRED[0]}:{PREFERRED[1]}"])
    configuration = QuicConfiguration(is_client=True, alpn_protocols=["hq-interop"], server_name="localhost")
    configuration.load_verify_locations(str(pki.ca_file))
    clock = VirtualClock(START)
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    client = AioquicPeer(configuration)
    server = MultihomedServer(endpoint, SERVER_ADDR)
    server.echo = True
    pair = MultihomedPair(client, server, client_addr=CLIENT_ADDR, server_addr=SERVER_ADDR,
                          c2s=LinkConfig(delay=0.01), s2c=LinkConfig(delay=0.01, seed=2), clock=clock)
    pair.server_addresses.add(PREFERRED)
    client.connect(SERVER_ADDR, clock.now)
    assert pair.drive(until=lambda: client.handshake_done_at is not None, max_time=10)
    data = os.urandom(200_000)
    assert client.conn is not None
    stream_id = client.conn.get_next_available_stream_id()
    client.send(stream_id, data)
    assert pair.drive(until=lambda: stream_id in client.finished, max_time=60)
    assert bytes(client.streams[stream_id]) == data
    assert pair.sent_from.get(PREFERRED, 0) > 50
    assert_one_path_per_cid(pair, CLIENT_ADDR, (SERVER_ADDR, PREFERRED))
