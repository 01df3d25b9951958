"""QuicEndpoint.receive_datagrams: the datagrams of one socket wake-up in one call (runs of one
connection handed over together), read in place from views into one receive buffer (a GRO batch),
with the same outcome as one receive_datagram per datagram: bytes intact under reordering and
duplication, forged or truncated datagrams dropped without harm, new connections reported."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable

import pytest

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.events import StreamReadable
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)
Item = tuple[bytes | memoryview, tuple[str, int], int]


class _Batcher:
    """Turns the clients' datagrams into socket-like batches: every datagram a view into one shared
    receive buffer (as the GRO split hands them over), wiped right after the call so that a view kept
    past it would corrupt what the server delivers."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.wiped = 0  # batches delivered (and wiped)

    def deliver(
        self, server: QuicEndpoint, items: list[tuple[bytes, tuple[str, int]]], now: float
    ) -> list[QuicConnection]:
        buffer = bytearray(b"".join(data for data, _ in items))
        view = memoryview(buffer)
        batch: list[Item] = []
        position = 0
        for data, addr in items:
            batch.append((view[position : position + len(data)], addr, 2))  # ECT(0) marked
            position += len(data)
        created = server.receive_datagrams(batch, now)
        buffer[:] = bytes(len(buffer))  # whatever was not copied during the call is gone now
        self.wiped += 1
        return created


def _config_pair(pki: TestPki) -> tuple[Config, Config]:
    common = {"max_datagram_size": 1452, "pmtu_discovery": False}
    server = Config(certfile=pki.cert_file, keyfile=pki.key_file, **common)  # type: ignore[arg-type]
    client = Config(cafile=pki.ca_file, server_name="localhost", **common)  # type: ignore[arg-type]
    return server, client


def _read_server(server: QuicEndpoint, received: dict[tuple[str, int], bytearray]) -> None:
    for conn in server.connections:
        while (event := conn.next_event()) is not None:
            if isinstance(event, StreamReadable):
                received.setdefault(conn.peer_address, bytearray()).extend(conn.read_stream(event.stream_id))


def _run(
    pki: TestPki,
    *,
    seed: int,
    shuffle: bool,
    duplicate: bool,
    hostile: bool = False,
) -> tuple[QuicEndpoint, dict[tuple[str, int], bytes], dict[tuple[str, int], bytearray], int]:
    server_config, client_config = _config_pair(pki)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    now = 100.0
    addrs = [("10.0.1.1", 5000), ("10.0.1.2", 5001)]
    clients = {addr: QuicConnection.client(client_config, server_address=SERVER, now=now) for addr in addrs}
    bodies = {addr: bytes(random.Random(i).randbytes(300_000)) for i, addr in enumerate(addrs)}
    pending = {addr: memoryview(body) for addr, body in bodies.items()}
    streams: dict[tuple[str, int], int] = {}
    batcher = _Batcher(seed)
    rng = batcher.rng
    received: dict[tuple[str, int], bytearray] = {}
    created = 0
    for _ in range(20_000):
        items: list[tuple[bytes, tuple[str, int]]] = []
        for addr, client in clients.items():
            if client.handshake_complete and addr not in streams:
                streams[addr] = client.open_stream()
            if addr in streams and len(pending[addr]):
                taken = client.send_stream(streams[addr], pending[addr], fin=True)
                pending[addr] = pending[addr][taken:]
            items += [(data, addr) for data, _ in client.datagrams_to_send(now)]
        if shuffle:
            # Reorder inside the batch (neighbours swapped) and interleave the two connections.
            for i in range(0, len(items) - 1, 2):
                if rng.random() < 0.5:
                    items[i], items[i + 1] = items[i + 1], items[i]
        if duplicate:
            items += [items[i] for i in range(len(items)) if rng.random() < 0.2]
            rng.shuffle(items)
        if hostile and items:
            data, addr = items[rng.randrange(len(items))]
            forged = bytearray(data)
            forged[len(forged) // 2] ^= 0x40  # one payload bit flipped: fails authentication
            items.insert(rng.randrange(len(items) + 1), (bytes(forged), addr))
            items.append((data[:18], addr))  # a short final segment, too short to sample
        if items:
            created += len(batcher.deliver(server, items, now))
        _read_server(server, received)
        for data, addr in server.datagrams_to_send(now):
            clients[addr].receive_datagram(data, SERVER, now)
        if all(received.get(addr, b"") == bodies[addr] for addr in addrs):
            break
        now += 0.002
        for endpoint in (server, *clients.values()):
            deadline = endpoint.next_timer()
            if deadline is not None and deadline <= now:
                endpoint.handle_timer(now)
    return server, bodies, received, created


def test_batches_of_views_deliver_every_byte_intact(pki: TestPki) -> None:
    server, bodies, received, created = _run(pki, seed=1, shuffle=False, duplicate=False)
    assert created == 2  # the Initials in the batches made the two connections, reported once each
    for addr, body in bodies.items():
        assert hashlib.sha256(received[addr]).digest() == hashlib.sha256(body).digest()
    assert all(not conn.is_closed for conn in server.connections)


def test_reordered_and_duplicated_batches_deliver_every_byte_once(pki: TestPki) -> None:
    server, bodies, received, created = _run(pki, seed=2, shuffle=True, duplicate=True)
    assert created == 2
    for addr, body in bodies.items():
        assert bytes(received[addr]) == body
    assert all(not conn.is_closed for conn in server.connections)


def test_forged_and_truncated_datagrams_in_a_batch_are_dropped(pki: TestPki) -> None:
    server, bodies, received, _ = _run(pki, seed=3, shuffle=True, duplicate=False, hostile=True)
    for addr, body in bodies.items():
        assert bytes(received[addr]) == body
    for conn in server.connections:
        assert not conn.is_closed
        assert conn.stats.packets_dropped > 0  # the forged copies failed authentication


def _upload(
    server: QuicEndpoint,
    peer: QuicConnection,
    body: bytes,
    deliver: Callable[[list[bytes], float], None],
    now: float,
) -> bytes:
    """``peer`` uploads ``body`` on one stream to ``server`` on a zero-delay link: each round the peer's
    datagrams go to ``deliver(datagrams, now)`` (which hands them to the server), the server's answers
    straight back, 2 ms of virtual time pass and due timers fire. Returns what the server read."""
    stream = None
    rest = memoryview(body)
    got = bytearray()
    t = now
    for _ in range(2000):
        if peer.handshake_complete and stream is None:
            stream = peer.open_stream()
        if stream is not None and len(rest):
            rest = rest[peer.send_stream(stream, rest, fin=True) :]
        out = [data for data, _ in peer.datagrams_to_send(t)]
        if out:
            deliver(out, t)
        for conn in server.connections:
            while (event := conn.next_event()) is not None:
                if isinstance(event, StreamReadable):
                    got += conn.read_stream(event.stream_id)
        for data, _ in server.datagrams_to_send(t):
            peer.receive_datagram(data, SERVER, t)
        if len(got) == len(body):
            break
        t += 0.002
        for endpoint in (server, peer):
            deadline = endpoint.next_timer()
            if deadline is not None and deadline <= t:
                endpoint.handle_timer(t)
    return bytes(got)


@pytest.mark.parametrize(("form", "key_updates"), [(memoryview, None), (bytes, None), (bytes, 10)])
def test_a_batch_equals_one_call_per_datagram(
    pki: TestPki, form: Callable[[bytes], bytes | memoryview], key_updates: int | None
) -> None:
    """The same datagrams through receive_datagrams and through receive_datagram one by one leave
    two servers in the same state (stream bytes, packets counted, dropped, key updates); batches of
    views (a GRO buffer split in place) or of bytes (what the socket layer hands over), also with the
    client updating its keys (RFC 9001 §6), so that a batch spans key phases (whose
    header-protection masks, computed once per batch, stay valid)."""
    server_config, client_config = _config_pair(pki)
    client_config = dataclasses.replace(client_config, key_update_interval=key_updates)
    servers = [
        QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False)) for _ in range(2)
    ]
    now = 100.0
    addr = ("10.0.1.1", 5000)
    # The keys differ per handshake, so the same datagrams cannot go to both: one client per server,
    # the same traffic, one server fed in batches (of views), the other one datagram per call.
    clients = [QuicConnection.client(client_config, server_address=SERVER, now=now) for _ in range(2)]
    results = []
    body = bytes(range(256)) * 400
    for index, (server, peer) in enumerate(zip(servers, clients, strict=True)):

        def deliver(
            out: list[bytes], t: float, server: QuicEndpoint = server, batched: bool = index == 0
        ) -> None:
            out = out + out[:1]  # a duplicate in every batch
            if batched:
                server.receive_datagrams([(form(d), addr, 0) for d in out], t)
            else:
                for d in out:
                    server.receive_datagram(d, addr, t)

        got = _upload(server, peer, body, deliver, now)
        conn = server.connections[0]
        stats = conn.stats
        results.append((got == body, stats.datagrams_received, stats.packets_dropped, stats.key_updates))
    assert results[0] == results[1]
    assert results[0][0]
    assert results[0][3] >= (1 if key_updates else 0)


def test_a_batch_counts_ecn_marks_and_traffic_as_one_call_per_datagram(pki: TestPki) -> None:
    """A batch records its datagrams' bytes (the connection's, and its path's for the
    anti-amplification limit), its packets' ECN marks (RFC 9000 §13.4.1: every processed packet,
    duplicates not) and the idle timer's restart once, at the end: the same totals as one
    receive_datagram per datagram, with every codepoint (Not-ECT, ECT(1), ECT(0), CE) mixed in each
    batch, and the same counts in the server's next ACK_ECN."""
    server_config, client_config = _config_pair(pki)
    now = 100.0
    addr = ("10.0.1.1", 5000)
    results = []
    for batched in (True, False):
        server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
        peer = QuicConnection.client(client_config, server_address=SERVER, now=now)
        marks = 0
        last = 0.0  # when the last datagram was delivered

        def deliver(
            out: list[bytes], t: float, server: QuicEndpoint = server, batched: bool = batched
        ) -> None:
            nonlocal marks, last
            out = out + out[-1:]  # a duplicate in every batch: not counted again
            items = [(d, addr, (marks + i) % 4) for i, d in enumerate(out)]
            marks += len(out)
            last = t
            if batched:
                server.receive_datagrams([(memoryview(d), a, e) for d, a, e in items], t)
            else:
                for d, a, e in items:
                    server.receive_datagram(d, a, t, e)

        got = len(_upload(server, peer, bytes(200_000), deliver, now))
        conn = server.connections[0]
        stats = conn.stats
        path_bytes = conn._paths.current.received_bytes  # RFC 9000 §8.1 (a run is counted at once)
        results.append(
            (got, stats.datagrams_received, stats.bytes_received, stats.ecn_received,
             conn._liveness.idle_deadline(30.0), peer.stats.ecn_peer_counts, path_bytes)
        )  # (the idle timer restarts with a batch as with its datagrams one by one)
        assert conn._liveness.idle_deadline(30.0) >= last + 30.0  # ... and with the last batch
        assert stats.datagrams_received == marks  # every datagram counted once
    assert results[0] == results[1]
    got, datagrams, received, ecn_received, _, _, path_bytes = results[0]
    assert got == 200_000 and path_bytes == received
    # Every codepoint was counted, fewer packets than datagrams (the duplicates, coalesced handshakes).
    assert all(count > 0 for count in ecn_received) and sum(ecn_received) < datagrams


def test_runs_are_grouped_exactly_as_one_route_lookup_per_datagram(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """receive_datagrams hands a datagram carrying the connection ID its run was routed by to that run
    without a lookup (bytes.startswith): over random batches (bytes and views, short and long headers,
    several IDs of one connection, unknown and truncated IDs, empty datagrams) the runs and the
    datagrams left to receive_datagram are exactly those of a route lookup per datagram. Fails if the
    shortcut joined a datagram the lookup would route elsewhere."""
    server_config, _ = _config_pair(pki)
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    length = server_config.connection_id_length
    rng = random.Random(9)
    cids = [rng.randbytes(length) for _ in range(4)]
    conns = [object(), object()]
    routes = {cids[0]: conns[0], cids[1]: conns[0], cids[2]: conns[1]}  # cids[3]: unknown
    monkeypatch.setattr(endpoint, "_routes", routes)
    seen: list[tuple[object, list[object]]] = []  # runs (their datagrams' numbers) or one datagram
    ids: dict[int, int] = {}
    monkeypatch.setattr(
        endpoint, "_receive_run", lambda conn, run, now, local: seen.append((conn, [ids[id(i)] for i in run]))
    )
    monkeypatch.setattr(
        endpoint, "receive_datagram", lambda data, addr, now, ecn, local=None: seen.append((None, [data]))
    )
    for _ in range(300):
        batch: list[Item] = []
        for n in range(rng.randrange(1, 30)):
            cid = rng.choice(cids)
            first = rng.choice((0x40, 0x41, 0x4F, 0xC0, 0x00))
            cid = rng.choice((cid, cid[: length // 2], cid[:-1] + b"\xff"))  # (whole, cut, one byte off)
            data = bytes((first,)) + cid + rng.randbytes(30)
            data = rng.choice((data, data, b"", data[:1]))
            item: Item = (memoryview(data) if rng.random() < 0.2 else data, ("10.0.1.1", 5000), 0)
            ids[id(item)] = n
            batch.append(item)
        expected: list[tuple[object, list[object]]] = []
        for n, (datagram, _, _) in enumerate(batch):
            short = len(datagram) and not datagram[0] & 0x80
            conn = routes.get(bytes(datagram[1 : 1 + length])) if short else None
            if conn is None:
                expected.append((None, [bytes(datagram)]))  # (the general path gets bytes)
            elif expected and expected[-1][0] is conn:
                expected[-1][1].append(n)
            else:
                expected.append((conn, [n]))
        seen.clear()
        endpoint.receive_datagrams(batch, 100.0)
        assert seen == expected


def _upload_switching_cid(pki: TestPki, batched: bool) -> tuple[bool, bool]:
    """An upload whose client moves to another CID of the server mid-way (see the test below): (the
    server's path saw the new CID right after the first datagrams carrying it, and at the end)."""
    server_config, client_config = _config_pair(pki)
    addr = ("10.0.1.1", 5000)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    peer = QuicConnection.client(client_config, server_address=SERVER, now=100.0)
    cids: list[bytes] = []
    held: list[bytes] = []
    calls = {"now": 0, "switch": 0}
    at_once: list[bool] = []

    def deliver(out: list[bytes], t: float) -> None:
        calls["now"] += 1
        if not cids and peer.stats.bytes_sent > 150_000:
            calls["switch"] = calls["now"]  # (this round's datagrams still carry the old CID)
            cids.append(peer.destination_cid)
            # Another CID of the server from the next datagram on, with nothing else new (RFC 9000
            # §5.1.1: any issued CID may be used; no RETIRE_CONNECTION_ID here), so that the first of
            # them continue the data run of the old CID's last ones.
            peer._peer_cids._switch()
            cids.append(peer.destination_cid)
            if batched:
                held.extend(out)  # delivered with the next round's, in one batch
                return
        if batched:
            server.receive_datagrams([(d, addr, 0) for d in held + out], t)
            held.clear()
        else:
            for d in out:
                server.receive_datagram(d, addr, t)
        if calls["switch"] and calls["now"] == calls["switch"] + 1:
            at_once.append(server.connections[0]._paths.current.seen_dcid == cids[1])

    assert _upload(server, peer, bytes(400_000), deliver, 100.0) == bytes(400_000)
    assert len(cids) == 2 and cids[0] != cids[1]
    return at_once == [True], server.connections[0]._paths.current.seen_dcid == cids[1]


def test_a_new_dcid_on_the_same_path_is_seen_in_a_batch_as_one_by_one(pki: TestPki) -> None:
    """A client that moves to another of the server's CIDs on the same address mid-upload (RFC 9000
    §5.1.1, §9.5): the server's path notes the CID it now sees (Paths.on_peer_cid) as soon as the
    datagrams carrying it are received, whether they come one by one or in one batch with the last
    datagrams of the old CID, whose data run they continue (the DCID compared in place there)."""
    assert _upload_switching_cid(pki, batched=True) == (True, True)
    assert _upload_switching_cid(pki, batched=False) == (True, True)
