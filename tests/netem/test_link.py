"""End-to-end tests of the namespace emulator: real kernel UDP/TCP through the forwarder (root only)."""

from __future__ import annotations

import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rudp.netem import Impairments, NatConfig, Network, NetworkConfig, StepMarker, TaskFailed, namespaces
from rudp.netem.pcap import read_pcap
from rudp.netem.traffic import CrossTraffic, tcp_bulk, udp_blast

pytestmark = [pytest.mark.usefixtures("netem"), pytest.mark.timeout(60)]
PORT = 9000


@pytest.fixture
def net() -> Iterator[Network]:
    with Network() as network:
        yield network


_OPEN_SOCKETS: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    """Close the sockets of udp_pair() after each test (no ResourceWarning later in the run)."""
    yield
    while _OPEN_SOCKETS:
        _OPEN_SOCKETS.pop().close()


def udp_pair(net: Network, family: int = socket.AF_INET) -> tuple[socket.socket, socket.socket, tuple]:
    """A bound server socket and a client socket, each in its namespace (closed after the test)."""
    v6 = family == socket.AF_INET6
    server_addr = (net.server.address6 if v6 else net.server.address, PORT)
    srv = net.server.socket(family)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    srv.bind(server_addr)
    srv.settimeout(5)
    cli = net.client.socket(family)
    cli.settimeout(5)
    _OPEN_SOCKETS.extend((srv, cli))
    return srv, cli, server_addr


def receive_forwarded(
    net: Network, sock: socket.socket, sent: int, direction: str = "c2s", seen: int = 0
) -> list[bytes]:
    """Read datagrams until everything the forwarder passed on has arrived.

    `sent` is the total number of packets sent in `direction` so far, `seen` the number of forwarded
    packets already accounted for by earlier calls.
    """
    got: list[bytes] = []
    sock.settimeout(0.1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(65536))
            continue
        except TimeoutError:
            pass
        stats = net.stats()[direction]
        if stats.received_packets >= sent and seen + len(got) >= stats.forwarded_packets:
            return got
    raise AssertionError(f"only {len(got)} datagrams arrived")


def ping(cli: socket.socket, srv: socket.socket, server_addr: tuple) -> float:
    start = time.monotonic()
    cli.sendto(b"ping", server_addr)
    data, peer = srv.recvfrom(100)
    srv.sendto(data, peer)
    cli.recvfrom(100)
    return time.monotonic() - start


def test_delay_matches_configuration() -> None:
    imp = Impairments(delay=0.02)
    with Network(NetworkConfig(c2s=imp, s2c=imp)) as net:
        srv, cli, addr = udp_pair(net)
        rtts = [ping(cli, srv, addr) for _ in range(20)]
    assert min(rtts) >= 0.0398  # the batching slack may deliver 0.1 ms early per hop
    assert statistics.median(rtts) < 0.042


def test_jitter_spreads_without_reordering() -> None:
    imp = Impairments(delay=0.01, jitter=0.004)
    with Network(NetworkConfig(c2s=imp)) as net:
        srv, cli, addr = udp_pair(net)
        for i in range(200):
            cli.sendto(i.to_bytes(4, "big"), addr)
        got = [int.from_bytes(d, "big") for d in receive_forwarded(net, srv, 200)]
    assert got == list(range(200))


def test_ipv6_is_forwarded_with_impairments() -> None:
    imp = Impairments(delay=0.005)
    with Network(NetworkConfig(c2s=imp, s2c=imp)) as net:
        srv, cli, addr = udp_pair(net, socket.AF_INET6)
        rtts = [ping(cli, srv, addr) for _ in range(5)]
        stats = net.stats()
    # Each ping is at least the configured delay; the median (not one ping, which a busy machine can
    # hold up past the bound) shows the delay is the configured one, not a multiple of it.
    assert min(rtts) >= 0.0098
    assert statistics.median(rtts) < 0.02
    assert stats.c2s.forwarded_packets >= 1 and stats.s2c.forwarded_packets >= 1


def test_loss_rate_within_binomial_bounds() -> None:
    n, p = 3000, 0.1
    with Network(NetworkConfig(c2s=Impairments(loss=p), seed=7)) as net:
        srv, cli, addr = udp_pair(net)
        for i in range(n):
            cli.sendto(i.to_bytes(4, "big"), addr)
        got = receive_forwarded(net, srv, n)
        stats = net.stats().c2s
    lost = n - len(got)
    assert abs(lost - n * p) < 4 * math.sqrt(n * p * (1 - p))
    assert stats.dropped == {"loss": lost}
    assert stats.tun_tx_dropped == 0


def test_runtime_blackhole_drop_list_duplicate_corrupt(net: Network) -> None:
    srv, cli, addr = udp_pair(net)
    net.set_impairments("c2s", blackhole=True)
    cli.sendto(b"lost", addr)
    net.set_impairments("c2s", blackhole=False, drop_list=[2])
    for msg in (b"one", b"two", b"three"):
        cli.sendto(msg, addr)
    assert receive_forwarded(net, srv, 4) == [b"one", b"three"]
    net.set_impairments("c2s", Impairments(duplicate=1.0))
    cli.sendto(b"twice", addr)
    assert receive_forwarded(net, srv, 5, seen=2) == [b"twice", b"twice"]
    net.set_impairments("c2s", Impairments(corrupt=1.0, corrupt_bytes=3))
    cli.sendto(bytes(100), addr)
    damaged = receive_forwarded(net, srv, 6, seen=4)
    assert len(damaged) == 1 and damaged[0] != bytes(100)
    net.set_impairments("c2s", Impairments(corrupt=1.0, corrupt_fix_checksum=False))
    cli.sendto(bytes(100), addr)
    # Forwarded, then discarded by the server's kernel for its bad checksum: count it as seen.
    assert receive_forwarded(net, srv, 7, seen=6) == []
    stats = net.stats().c2s
    assert stats.dropped == {"blackhole": 1, "drop_list": 1}
    assert stats.duplicated == 1 and stats.corrupted == 2


def test_tcp_bulk_works_and_slows_under_loss() -> None:
    imp = Impairments(delay=0.005)
    with Network(NetworkConfig(c2s=imp, s2c=imp, seed=3)) as net:
        clean = tcp_bulk(net.client, net.server, 1.5, congestion="cubic")
        net.set_impairments("c2s", loss=0.02)
        lossy = tcp_bulk(net.client, net.server, 1.5, congestion="cubic", port=5202)
        stats = net.stats().c2s
    assert clean.congestion == lossy.congestion == "cubic"
    assert clean.mbit_s > 20
    assert lossy.mbit_s < 0.5 * clean.mbit_s
    assert stats.dropped["loss"] > 0


def test_rate_limit_caps_udp_blast_with_queue_drops() -> None:
    imp = Impairments(rate_bps=20e6, queue_bytes=30_000)
    with Network(NetworkConfig(c2s=imp)) as net:
        sent, received = udp_blast(net.client, net.server, 1.5, rate_bps=60e6)
        stats = net.stats().c2s
    assert sent.packets > 6000
    assert received.mbit_s == pytest.approx(20.0 * 1472 / 1500, rel=0.1)  # the link counts IP bytes
    assert stats.dropped["queue"] == stats.received_packets - stats.forwarded_packets
    assert stats.dropped["queue"] > 0.4 * sent.packets
    assert stats.queue_peak_bytes <= 30_000


def test_crosstraffic_shares_the_bottleneck() -> None:
    imp = Impairments(rate_bps=20e6, queue_bytes=100_000, delay=0.002)
    with Network(NetworkConfig(c2s=imp, s2c=Impairments(delay=0.002))) as net:
        flow = CrossTraffic(net.client, net.server, seconds=1.5).start()
        result = flow.wait(timeout=30)
    assert result.congestion == "cubic"
    assert 8 < result.mbit_s < 21


def test_nat_rebinding_udp_continues_tcp_breaks() -> None:
    with Network(NetworkConfig(nat=NatConfig(port=True, address=True))) as net:
        srv, cli, addr = udp_pair(net)
        cli.sendto(b"before", addr)
        _, first_peer = srv.recvfrom(100)
        lsock = net.server.socket(type=socket.SOCK_STREAM)
        lsock.bind((net.server.address, PORT + 1))
        lsock.listen()
        tcp = net.client.socket(type=socket.SOCK_STREAM)
        tcp.settimeout(5)
        tcp.connect((net.server.address, PORT + 1))
        conn, _ = lsock.accept()
        _OPEN_SOCKETS.extend((lsock, tcp, conn))
        conn.settimeout(1.0)
        tcp.sendall(b"hello")
        assert conn.recv(100) == b"hello"

        assert net.rebind() == "10.77.1.2"
        cli.sendto(b"after", addr)
        data, new_peer = srv.recvfrom(100)
        assert data == b"after" and new_peer[0] == "10.77.1.2" and new_peer[1] != first_peer[1]
        srv.sendto(b"reply", new_peer)
        assert cli.recvfrom(100) == (b"reply", addr)  # translated back: the client sees no change
        srv.sendto(b"to the old binding", first_peer)

        tcp.sendall(b"after rebinding")
        try:
            assert conn.recv(100) == b""  # never the data
            outcome = "closed"
        except TimeoutError:
            outcome = "stalled"
        try:
            tcp.settimeout(2.0)
            tcp.recv(100)
        except ConnectionResetError:
            outcome = "reset"
        except TimeoutError:
            pass
        stats = net.stats()
    assert outcome in ("reset", "stalled")
    assert stats.s2c.dropped.get("nat", 0) >= 1
    assert stats.c2s.nat_rewritten >= 2


def test_pcap_has_every_packet_per_side(tmp_path: Path) -> None:
    config = NetworkConfig(c2s=Impairments(drop_list=frozenset({3, 4})), pcap_dir=str(tmp_path))
    with Network(config) as net:
        srv, cli, addr = udp_pair(net)
        for i in range(10):
            cli.sendto(b"packet %d" % i, addr)
        assert len(receive_forwarded(net, srv, 10)) == 8
        paths = net.pcap_paths
    counts = {}
    for side, path in paths.items():
        packets = [p for _, p in read_pcap(path) if p[0] >> 4 == 4 and p[9] == 17 and p[22:24] == b"\x23\x28"]
        counts[side] = len(packets)
    assert counts == {"client": 10, "server": 8}
    tshark = shutil.which("tshark")
    if tshark is None:
        if os.environ.get("RUDP_REQUIRE_NETEM") == "1":  # CI installs tshark: its absence is a failure
            pytest.fail("tshark not installed (CI's .ci/run installs it)", pytrace=False)
        pytest.skip("tshark not installed: pcap checked by the built-in reader only")
    for side, expected in counts.items():
        out = subprocess.run(
            [tshark, "-r", paths[side], "-Y", f"udp.dstport == {PORT}", "-T", "fields", "-e", "frame.number"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert len(out.stdout.split()) == expected


def test_teardown_leaves_nothing_behind() -> None:
    with pytest.raises(KeyboardInterrupt), Network() as net:
        names = [net.client.name, net.server.name]
        assert all(namespaces.exists(n) for n in names)
        pid = net.forwarder_pid or -1
        raise KeyboardInterrupt
    assert not any(namespaces.exists(n) for n in names)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(n in listed for n in names)
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "netem0" not in links
    assert not net.running


def test_run_commands_and_callables_inside_hosts(net: Network) -> None:
    out = net.client.run(["ip", "-o", "-4", "addr", "show", "dev", "netem0"], check=True).stdout
    assert net.client.address in out
    assert net.server.call(socket.gethostbyname, net.server.address) == net.server.address
    assert net.server.call(bind_and_report, net.server.address) == net.server.address
    with pytest.raises(TaskFailed, match=r"[Cc]annot assign"):
        net.client.call(bind_and_report, net.server.address)


def bind_and_report(address: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return str(s.getsockname()[0])


def test_scheduled_rebinding_applies_from_its_time() -> None:
    config = NetworkConfig(nat=NatConfig(rebind_at=(0.0,), port=True))
    with Network(config) as net:
        srv, cli, addr = udp_pair(net)
        cli.bind((net.client.address, 40000))
        cli.sendto(b"x", addr)
        _, peer = srv.recvfrom(100)
        srv.sendto(b"y", peer)
        assert cli.recvfrom(100) == (b"y", addr)
    assert peer[0] == net.client.address and peer[1] != 40000


def receive_ecn(net: Network, sock: socket.socket, sent: int, family: int, seen: int = 0) -> list[int]:
    """The ECN codepoint of each datagram received (IP_RECVTOS / IPV6_RECVTCLASS control data), until
    everything the forwarder passed on c2s has arrived."""
    v6 = family == socket.AF_INET6
    level, kind = (socket.IPPROTO_IPV6, socket.IPV6_TCLASS) if v6 else (socket.IPPROTO_IP, socket.IP_TOS)
    got: list[int] = []
    sock.settimeout(0.1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _, ancdata, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(4))
        except TimeoutError:
            stats = net.stats().c2s
            if stats.received_packets >= sent and seen + len(got) >= stats.forwarded_packets:
                return got
            continue
        tos = [
            data[0] if not v6 else int.from_bytes(data[:4], sys.byteorder)
            for lv, ty, data in ancdata
            if (lv, ty) == (level, kind)
        ]
        assert len(tos) == 1, ancdata
        got.append(tos[0] & 0x03)
    raise AssertionError(f"only {len(got)} datagrams arrived")


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_ecn_step_marker_sets_ce_seen_by_the_receiver(family: int) -> None:
    # 5 Mbit/s: a 1028-byte IPv4 packet takes 1.6 ms, so a burst builds a queue of many milliseconds.
    imp = Impairments(rate_bps=5e6, queue_bytes=1_000_000, aqm=StepMarker(threshold=0.002))
    with Network(NetworkConfig(c2s=imp)) as net:
        srv, cli, addr = udp_pair(net, family)
        v6 = family == socket.AF_INET6
        if v6:
            srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
            cli.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x02)  # ECT(0)
        else:
            srv.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
            cli.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x02)  # ECT(0)
        n = 150
        for i in range(n):
            cli.sendto(i.to_bytes(4, "big") + bytes(996), addr)
        marks = receive_ecn(net, srv, n, family)
        stats = net.stats().c2s
        assert len(marks) == n and stats.dropped == {}
        assert set(marks) == {0b10, 0b11}  # ECT(0) until the queue passes 2 ms, CE after
        assert marks.count(0b11) == stats.ce_marked >= n - 5
        assert marks[:2] == [0b10, 0b10]  # the first packets found (almost) no queue
        assert stats.queue_delay_percentile(99) > 0.1

        # The same burst without ECN: the marker drops what it would have marked.
        plain = net.client.socket(family)
        _OPEN_SOCKETS.append(plain)
        for i in range(n):
            plain.sendto(i.to_bytes(4, "big") + bytes(996), addr)
        rest = receive_ecn(net, srv, 2 * n, family, seen=n)
        stats = net.stats().c2s
        assert set(rest) == {0}
        assert stats.dropped["aqm"] == n - len(rest) >= n - 5
        assert stats.ce_marked == marks.count(0b11)
        assert stats.tun_tx_dropped == 0
