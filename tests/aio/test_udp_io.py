"""The socket layer (rudp.aio.udp_io) over real loopback sockets: GSO sends, GRO receives, the
fallbacks, draining, queued sends, ECN marks, and a QUIC connection marking ECT(0) end to end.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import rudp
from rudp.aio import udp_io
from rudp.aio.endpoint import UdpEndpoint
from rudp.aio.udp_io import (
    CE,
    ECT_0,
    GSO_MAX_BYTES,
    GSO_MAX_SEGMENTS,
    NOT_ECT,
    DatagramSocket,
    Received,
    TransportDatagramSocket,
    gso_groups,
    open_datagram_socket,
)
from tests.aio.conftest import HOSTS, _has_ipv6_loopback

WAIT = 5.0


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _kernel_gso() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return udp_io.detect_gso(sock)


def _kernel_gro() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return udp_io.enable_gro(sock)


needs_gso = pytest.mark.skipif(not _kernel_gso(), reason="no UDP GSO (Linux >= 4.18)")
needs_gro = pytest.mark.skipif(not _kernel_gro(), reason="no UDP GRO (Linux >= 5.0)")


def _udp(host: str = "127.0.0.1", sock_type: type[socket.socket] = socket.socket) -> socket.socket:
    sock = sock_type(_family(host), socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def _payloads(count: int, size: int, last: int | None = None) -> list[bytes]:
    sizes = [size] * count
    if last is not None:
        sizes[-1] = last
    return [os.urandom(n) for n in sizes]


def _digests(datagrams: list[bytes]) -> list[str]:
    return [hashlib.sha256(d).hexdigest() for d in datagrams]


class Collector:
    """The callbacks of a DatagramSocket: every batch, every error; ``wait(n)`` for n datagrams."""

    def __init__(self) -> None:
        self.batches: list[list[Received]] = []
        self.errors: list[OSError] = []
        self.closed = asyncio.Event()
        self._want = 0
        self._enough = asyncio.Event()

    @property
    def received(self) -> list[Received]:
        return [item for batch in self.batches for item in batch]

    def on_datagrams(self, batch: list[Received]) -> None:
        self.batches.append(batch)
        if len(self.received) >= self._want:
            self._enough.set()

    def on_error(self, exc: OSError) -> None:
        self.errors.append(exc)

    def on_closed(self) -> None:
        self.closed.set()

    async def wait(self, count: int) -> list[Received]:
        self._want = count
        if len(self.received) < count:
            self._enough.clear()
            await asyncio.wait_for(self._enough.wait(), WAIT)
        return self.received


@pytest.fixture
async def open_io() -> AsyncIterator[Callable[..., Any]]:
    """``await open_io(sock, **options) -> (DatagramSocket, Collector)``; closed at the end."""
    opened: list[tuple[DatagramSocket | TransportDatagramSocket, Collector]] = []

    async def make(sock: socket.socket, **options: Any) -> tuple[Any, Collector]:
        collector = Collector()
        io = await open_datagram_socket(
            sock, collector.on_datagrams, collector.on_error, collector.on_closed, **options
        )
        opened.append((io, collector))
        return io, collector

    yield make
    for io, collector in opened:
        io.close()
        await asyncio.wait_for(collector.closed.wait(), WAIT)


def _read_all(sock: socket.socket, count: int) -> list[bytes]:
    sock.settimeout(WAIT)  # loopback delivers within the send call: never waits in practice
    return [sock.recv(65535) for _ in range(count)]


# ---------------------------------------------------------------------- grouping


def test_groups_same_destination_same_size_with_a_shorter_last() -> None:
    a, b = ("127.0.0.1", 1), ("127.0.0.1", 2)
    datagrams = [(b"x" * 1200, a)] * 3 + [
        (b"x" * 500, a),
        (b"x" * 1200, a),
        (b"x" * 1200, b),
        (b"x" * 1300, b),
    ]
    ends = []
    start = 0
    while start < len(datagrams):
        start = gso_groups(datagrams, start, connected=False)
        ends.append(start)
    # [1200 1200 1200 500] | [1200] (next address differs) | [1200] (next one larger) | [1300]
    assert ends == [4, 5, 6, 7]
    # a connected socket ignores the (absent) addresses
    assert gso_groups([(b"x" * 10, None)] * 5, 0, connected=True) == 5


def test_groups_respect_segment_and_byte_limits() -> None:
    addr = ("127.0.0.1", 1)
    small = [(b"x" * 100, addr)] * (GSO_MAX_SEGMENTS + 10)
    assert gso_groups(small, 0, connected=False) == GSO_MAX_SEGMENTS
    big = [(b"x" * 1452, addr)] * 60
    end = gso_groups(big, 0, connected=False)
    assert end * 1452 <= GSO_MAX_BYTES < (end + 1) * 1452


# ---------------------------------------------------------------------- GSO send


@needs_gso
@pytest.mark.parametrize("host", HOSTS)
async def test_gso_send_arrives_as_separate_intact_datagrams(host: str, open_io: Callable[..., Any]) -> None:
    receiver = _udp(host)
    with receiver:
        sender, _ = await open_io(_udp(host))
        assert sender.gso
        payloads = _payloads(20, 1200, last=333)
        sender.send([(p, receiver.getsockname()) for p in payloads])
        assert (sender.stats.gso_calls, sender.stats.send_calls, sender.stats.datagrams_sent) == (1, 1, 20)
        assert _digests(_read_all(receiver, 20)) == _digests(payloads)


@needs_gso
async def test_connected_socket_batches_without_addresses(open_io: Callable[..., Any]) -> None:
    receiver = _udp()
    with receiver:
        sock = _udp()
        sock.connect(receiver.getsockname())
        sender, _ = await open_io(sock)
        payloads = _payloads(GSO_MAX_SEGMENTS + 6, 900, last=17)
        sender.send([(p, None) for p in payloads])
        assert sender.stats.send_calls == 2  # 64 in one GSO call, then the remaining 6
        assert _digests(_read_all(receiver, len(payloads))) == _digests(payloads)


async def test_forced_fallback_sends_one_datagram_per_call(open_io: Callable[..., Any]) -> None:
    receiver = _udp()
    with receiver:
        sender, _ = await open_io(_udp(), gso=False)
        assert not sender.gso
        payloads = _payloads(10, 1200, last=40)
        sender.send([(p, receiver.getsockname()) for p in payloads])
        assert (sender.stats.gso_calls, sender.stats.send_calls) == (0, 10)
        assert _digests(_read_all(receiver, 10)) == _digests(payloads)


async def test_closing_attribute_is_is_closing_on_both_socket_layers() -> None:
    """The endpoint reads ``closing`` (an attribute on :class:`DatagramSocket`) on every flush: the
    same answer as ``is_closing()`` before and after close, on both layers."""
    collector = Collector()
    loop = asyncio.get_running_loop()
    layers: list[DatagramSocket | TransportDatagramSocket] = [
        DatagramSocket(loop, _udp(), collector.on_datagrams, collector.on_error, collector.on_closed),
        TransportDatagramSocket(_udp(), collector.on_datagrams, collector.on_error, collector.on_closed),
    ]
    fallback = layers[1]
    assert isinstance(fallback, TransportDatagramSocket)
    assert fallback.closing is fallback.is_closing() is True  # (no transport yet)
    await fallback.start(loop)
    for io in layers:
        assert io.closing is io.is_closing() is False
        io.close()
        assert io.closing is io.is_closing() is True
    await asyncio.sleep(0)


class _GsoRefused(socket.socket):
    """A real socket whose kernel 'lacks checksum offload': every sendmsg fails with EIO."""

    calls = 0

    def sendmsg(self, *args: Any, **kwargs: Any) -> int:
        type(self).calls += 1
        raise OSError(errno.EIO, "Input/output error")


@needs_gso
async def test_gso_failure_falls_back_for_good_and_resends_individually(open_io: Callable[..., Any]) -> None:
    receiver = _udp()
    with receiver:
        sender, collector = await open_io(_udp(sock_type=_GsoRefused))
        assert sender.gso
        first, second = _payloads(8, 1000, last=10), _payloads(8, 1000)
        sender.send([(p, receiver.getsockname()) for p in first])
        assert not sender.gso and _GsoRefused.calls == 1
        sender.send([(p, receiver.getsockname()) for p in second])
        assert _GsoRefused.calls == 1  # never tried again on this socket
        assert sender.stats.send_calls == 16 and not collector.errors
        assert _digests(_read_all(receiver, 16)) == _digests(first + second)


class _DeviceMtu1500(socket.socket):
    """A real socket behind a 1500-byte MTU, as the kernel answers it: GSO segments above 1472 bytes
    and single datagrams above it fail with EMSGSIZE."""

    def sendmsg(self, buffers: Any, control: Any = (), *args: Any) -> int:
        if control and int.from_bytes(control[0][2], sys.byteorder) > 1472:
            raise OSError(errno.EMSGSIZE, "Message too long")
        return super().sendmsg(buffers, control, *args)

    def sendto(self, data: Any, *args: Any) -> int:
        if len(data) > 1472:
            raise OSError(errno.EMSGSIZE, "Message too long")
        return super().sendto(data, *args)


@needs_gso
async def test_oversized_probe_loses_only_itself_and_keeps_gso(open_io: Callable[..., Any]) -> None:
    receiver = _udp()
    with receiver:
        sender, collector = await open_io(_udp(sock_type=_DeviceMtu1500))
        probe, after = os.urandom(2000), _payloads(3, 1200)
        sender.send([(p, receiver.getsockname()) for p in [probe, *after]])
        assert [exc.errno for exc in collector.errors] == [errno.EMSGSIZE]
        assert sender.gso
        more = _payloads(5, 1200)
        sender.send([(p, receiver.getsockname()) for p in more])
        assert sender.stats.gso_calls == 2  # the two 1200s after [probe, 1200], then the five
        assert _digests(_read_all(receiver, 8)) == _digests(after + more)


class _FullOnce(socket.socket):
    """A real socket whose send buffer is 'full' for its first two sends."""

    refusals = 2

    def sendmsg(self, *args: Any, **kwargs: Any) -> int:
        if self.refusals:
            self.refusals -= 1
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return super().sendmsg(*args, **kwargs)

    def sendto(self, *args: Any, **kwargs: Any) -> int:
        if self.refusals:
            self.refusals -= 1
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return super().sendto(*args, **kwargs)


async def test_full_send_buffer_queues_in_order_until_writable(open_io: Callable[..., Any]) -> None:
    receiver = _udp()
    with receiver:
        sender, _ = await open_io(_udp(sock_type=_FullOnce))
        first, second = _payloads(5, 700, last=70), _payloads(3, 300)
        sender.send([(p, receiver.getsockname()) for p in first])
        sender.send([(p, receiver.getsockname()) for p in second])  # behind the queued ones
        assert sender.stats.datagrams_sent == 0
        received = await asyncio.get_running_loop().run_in_executor(None, _read_all, receiver, 8)
        assert _digests(received) == _digests(first + second)


# ---------------------------------------------------------------------- GRO / draining


@needs_gso
@needs_gro
@pytest.mark.parametrize("host", HOSTS)
async def test_gro_receive_splits_a_coalesced_batch(host: str, open_io: Callable[..., Any]) -> None:
    receiver, collector = await open_io(_udp(host))
    sender, _ = await open_io(_udp(host))
    assert receiver.gro
    payloads = _payloads(30, 1350, last=77)
    sender.send([(p, receiver.socket.getsockname()) for p in payloads])
    assert sender.stats.gso_calls == 1
    received = await collector.wait(30)
    assert _digests([data for data, _, _ in received]) == _digests(payloads)
    assert receiver.stats.gro_buffers >= 1  # the kernel handed over coalesced buffers, split here
    assert receiver.stats.receive_calls < 30
    assert {addr[:2] for _, addr, _ in received} == {sender.socket.getsockname()[:2]}


@needs_gso
async def test_without_gro_the_kernel_segments_and_each_datagram_is_read(open_io: Callable[..., Any]) -> None:
    receiver, collector = await open_io(_udp(), gro=False)
    sender, _ = await open_io(_udp())
    assert not receiver.gro
    payloads = _payloads(12, 1000, last=1)
    sender.send([(p, receiver.socket.getsockname()) for p in payloads])
    received = await collector.wait(12)
    assert _digests([data for data, _, _ in received]) == _digests(payloads)
    assert receiver.stats.receive_calls >= 12 and receiver.stats.gro_buffers == 0


async def test_one_wakeup_drains_everything_queued(open_io: Callable[..., Any]) -> None:
    receiver, collector = await open_io(_udp(), gro=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        payloads = [i.to_bytes(2, "big") * 50 for i in range(100)]
        for p in payloads:  # all queued before the loop looks at the receiver
            plain.sendto(p, receiver.socket.getsockname())
        received = await collector.wait(100)
    assert len(collector.batches) == 1  # one readiness event, one batch (RECEIVE_BATCH >= 100)
    assert [data for data, _, _ in received] == payloads


class _CountedReads(socket.socket):
    """Counts every recvmsg, the ones that find the socket empty too."""

    reads = 0

    def recvmsg(self, *args: Any) -> Any:
        self.reads += 1
        return super().recvmsg(*args)


async def test_sparse_reads_skip_the_empty_read_and_a_burst_still_drains(open_io: Callable[..., Any]) -> None:
    sock = _udp(sock_type=_CountedReads)
    receiver, collector = await open_io(sock, gro=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        for i in range(11):  # one datagram per wake-up
            plain.sendto(bytes([i]) * 20, receiver.socket.getsockname())
            await collector.wait(i + 1)
        # A full drain (one datagram, then the read that finds the socket empty) alternates with a
        # single read without that probe: 6 * 2 + 5 * 1 reads, where draining every time made 22.
        assert len(collector.batches) == 11
        assert isinstance(sock, _CountedReads) and sock.reads == 17
        # The 11th wake-up found one datagram and an empty socket: the next reads one datagram only,
        # and the one after it drains the rest of the burst at once.
        burst = [i.to_bytes(2, "big") * 50 for i in range(100)]
        for p in burst:
            plain.sendto(p, receiver.socket.getsockname())
        received = await collector.wait(111)
    assert [len(batch) for batch in collector.batches[11:]] == [1, 99]
    assert [data for data, _, _ in received] == [bytes([i]) * 20 for i in range(11)] + burst


# ---------------------------------------------------------------------- ECN


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("mark", [ECT_0, NOT_ECT, CE])
async def test_ecn_marks_are_read_back(host: str, mark: int, open_io: Callable[..., Any]) -> None:
    receiver, collector = await open_io(_udp(host))
    sender, _ = await open_io(_udp(host), gso=False)
    assert receiver.ecn_reports
    assert sender.set_ecn_marking(mark)
    sender.send([(b"marked %d" % i, receiver.socket.getsockname()) for i in range(3)])
    received = await collector.wait(3)
    assert [ecn for _, _, ecn in received] == [mark] * 3


@needs_gso
@needs_gro
async def test_ecn_mark_applies_to_every_datagram_of_a_coalesced_buffer(open_io: Callable[..., Any]) -> None:
    receiver, collector = await open_io(_udp())
    sender, _ = await open_io(_udp())
    assert sender.set_ecn_marking(ECT_0)
    payloads = _payloads(16, 1200, last=600)
    sender.send([(p, receiver.socket.getsockname()) for p in payloads])
    received = await collector.wait(16)
    assert receiver.stats.gro_buffers >= 1
    assert [ecn for _, _, ecn in received] == [ECT_0] * 16
    assert _digests([data for data, _, _ in received]) == _digests(payloads)


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_dual_stack_socket_reads_ipv4_marks(open_io: Callable[..., Any]) -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    receiver, collector = await open_io(sock)
    sender, _ = await open_io(_udp("127.0.0.1"))
    sender.set_ecn_marking(ECT_0)
    sender.send([(b"v4", ("127.0.0.1", receiver.socket.getsockname()[1]))])
    [(data, _, ecn)] = await collector.wait(1)
    assert (data, ecn) == (b"v4", ECT_0)


# ---------------------------------------------------------------------- fallback loop


async def test_loop_without_add_reader_uses_a_transport(
    open_io: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: Any) -> None:
        raise NotImplementedError

    monkeypatch.setattr(asyncio.get_running_loop(), "add_reader", unsupported)
    receiver, collector = await open_io(_udp())
    assert isinstance(receiver, TransportDatagramSocket)
    sender, _ = await open_io(_udp())
    assert isinstance(sender, TransportDatagramSocket)
    payloads = _payloads(4, 1000, last=3)
    sender.send([(p, receiver.socket.getsockname()) for p in payloads])
    received = await collector.wait(4)
    assert _digests([data for data, _, _ in received]) == _digests(payloads)


# ---------------------------------------------------------------------- over QUIC


@pytest.mark.parametrize("host", HOSTS)
async def test_quic_connection_marks_ect0_both_ways(
    host: str, server_config: Callable[..., rudp.Config], client_config: Callable[..., rudp.Config]
) -> None:
    accepted: list[rudp.Connection] = []
    server = await UdpEndpoint.create_server(
        server_config(), (host, 0), on_connection=accepted.append, ecn=True
    )
    client = await UdpEndpoint.create_client(client_config(), (host, server.port), ecn=True)
    try:
        conn = client.connect("localhost")
        await asyncio.wait_for(conn.wait_established(), WAIT)
        rtt = await asyncio.wait_for(conn.ping(), WAIT)
        assert rtt >= 0
        assert server.ecn_counts[ECT_0] > 0 and client.ecn_counts[ECT_0] > 0
        assert server.ecn_counts[NOT_ECT] == client.ecn_counts[NOT_ECT] == 0
    finally:
        client.close()
        server.close()
        await client.wait_closed()
        await server.wait_closed()


async def test_quic_endpoints_do_not_mark_with_ecn_off(
    server_config: Callable[..., rudp.Config], client_config: Callable[..., rudp.Config]
) -> None:
    # Config.ecn defaults to True (validation turns it off per path); ecn=False leaves packets unmarked.
    server = await UdpEndpoint.create_server(
        server_config(), ("127.0.0.1", 0), on_connection=lambda c: None, ecn=False
    )
    client = await UdpEndpoint.create_client(client_config(), ("127.0.0.1", server.port), ecn=False)
    try:
        conn = client.connect("localhost")
        await asyncio.wait_for(conn.wait_established(), WAIT)
        assert server.ecn_counts[NOT_ECT] > 0 and sum(server.ecn_counts[1:]) == 0
    finally:
        client.close()
        server.close()
        await client.wait_closed()
        await server.wait_closed()
