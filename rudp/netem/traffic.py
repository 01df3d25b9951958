"""Traffic generators that cross the emulated link: kernel TCP bulk flows and UDP blasts.

:class:`CrossTraffic` runs a kernel TCP bulk transfer (sink in one namespace, source in the other, each
a forked child) through the same bottleneck as the flow under test. :func:`tcp_bulk` and
:func:`udp_blast` measure one transfer and return a :class:`TransferResult`; the benchmarks and the
emulator's own capacity figures use them. The congestion controller of every TCP sender is set per
socket (the machine default here is BBR, which hardly reacts to random loss), and reported.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time
from dataclasses import dataclass
from typing import Final

from rudp.netem.hosts import Host, NamespaceTask
from rudp.netem.namespaces import NetemError

CHUNK: Final = 256 * 1024
BUFFER_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What a sink measured: bytes and packets received between the first and last arrival."""

    bytes: int
    seconds: float
    packets: int = 0
    congestion: str = ""

    @property
    def mbit_s(self) -> float:
        """Goodput in Mbit/s (0 when nothing or only one chunk arrived)."""
        return self.bytes * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def tcp_sink(address: str, port: int, ready_fd: int) -> TransferResult:
    """Accept one TCP connection and read it to the end (runs inside the receiving namespace)."""
    with socket.socket(_family(address), socket.SOCK_STREAM) as lsock:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((address, port))
        lsock.listen(1)
        os.write(ready_fd, b"R")
        conn, _ = lsock.accept()
    total = 0
    first = last = 0.0
    buf = bytearray(CHUNK)
    with conn:
        while True:
            try:
                n = conn.recv_into(buf)
            except ConnectionError:
                break
            if not n:
                break
            last = time.monotonic()
            if not total:
                first = last
            total += n
    return TransferResult(total, last - first)


def tcp_source(address: str, port: int, seconds: float | None, congestion: str | None) -> TransferResult:
    """Send zeros over TCP for `seconds` (or until SIGTERM); runs inside the sending namespace."""
    signal.signal(signal.SIGTERM, _raise_stop)
    sent = 0
    start = time.monotonic()
    deadline = None if seconds is None else start + seconds
    with socket.socket(_family(address), socket.SOCK_STREAM) as sock:
        if congestion:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion.encode())
        used = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\x00").decode()
        sock.connect((address, port))
        sock.settimeout(0.2)
        data = bytes(CHUNK)
        with contextlib.suppress(_Stop, ConnectionError):
            while deadline is None or time.monotonic() < deadline:
                try:
                    sent += sock.send(data)
                except TimeoutError:
                    continue
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return TransferResult(sent, time.monotonic() - start, congestion=used)


def _wait_ready(fd: int, timeout: float) -> None:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready or os.read(fd, 1) != b"R":
        raise NetemError("the sink did not start listening")


class CrossTraffic:
    """A kernel TCP bulk flow from `source` to `sink` host, for competing with the flow under test.

    `start()` returns once the connection is being set up; `stop()` ends the sender (SIGTERM) and
    returns what the sink received. Also a context manager.
    """

    def __init__(
        self,
        source: Host,
        sink: Host,
        *,
        port: int = 5201,
        seconds: float | None = None,
        congestion: str | None = "cubic",
        ipv6: bool = False,
    ) -> None:
        self.source, self.sink = source, sink
        self.port, self.seconds, self.congestion = port, seconds, congestion
        address = sink.address6 if ipv6 else sink.address
        if address is None:
            raise NetemError("the sink host has no IPv6 address")
        self.address = address
        self._sink_task: NamespaceTask[TransferResult] | None = None
        self._source_task: NamespaceTask[TransferResult] | None = None

    def start(self) -> CrossTraffic:
        """Start the sink, wait until it listens, then start the source."""
        r, w = os.pipe()
        try:
            self._sink_task = self.sink.spawn(tcp_sink, self.address, self.port, w)
            os.close(w)
            w = -1
            _wait_ready(r, 10.0)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        self._source_task = self.source.spawn(
            tcp_source, self.address, self.port, self.seconds, self.congestion
        )
        return self

    def wait(self, timeout: float | None = None) -> TransferResult:
        """Wait for a timed flow to finish by itself and return the sink's measurement."""
        if self._source_task is None or self._sink_task is None:
            raise NetemError("cross traffic was not started")
        sent = self._source_task.join(timeout)
        received = self._sink_task.join(timeout)
        self._source_task = self._sink_task = None
        return TransferResult(received.bytes, received.seconds, congestion=sent.congestion)

    def stop(self, timeout: float = 30.0) -> TransferResult:
        """End the flow now and return the sink's measurement."""
        if self._source_task is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._source_task.pid, signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """Kill both ends without collecting results (cleanup path)."""
        for task in (self._source_task, self._sink_task):
            if task is not None:
                task.kill()
        self._source_task = self._sink_task = None

    def __enter__(self) -> CrossTraffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def tcp_bulk(
    source: Host, sink: Host, seconds: float, congestion: str | None = "cubic", port: int = 5201
) -> TransferResult:
    """One timed kernel TCP bulk transfer from `source` to `sink`; the sink's measurement."""
    flow = CrossTraffic(source, sink, port=port, seconds=seconds, congestion=congestion).start()
    try:
        return flow.wait(timeout=seconds + 30.0)
    finally:
        flow.kill()


def udp_sink(address: str, port: int, ready_fd: int, idle_timeout: float, expect_end: bool) -> TransferResult:
    """Count UDP datagrams until an empty datagram (the end marker) or `idle_timeout` of silence."""
    with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER_BYTES)
        sock.bind((address, port))
        sock.settimeout(idle_timeout)
        os.write(ready_fd, b"R")
        total = packets = 0
        first = last = 0.0
        buf = bytearray(65536)
        while True:
            try:
                n = sock.recv_into(buf)
            except TimeoutError:
                if packets or not expect_end:
                    break
                continue
            if n == 0:
                break
            last = time.monotonic()
            if not packets:
                first = last
            packets += 1
            total += n
    return TransferResult(total, last - first, packets)


def udp_source(
    address: str, port: int, seconds: float, payload: int, rate_bps: float | None
) -> TransferResult:
    """Send `payload`-byte datagrams for `seconds`, paced to `rate_bps` (None: as fast as possible)."""
    sent = 0
    data = bytes(payload)
    with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER_BYTES)
        sock.connect((address, port))
        start = time.monotonic()
        end = start + seconds
        now = start
        while now < end:
            if rate_bps is not None:
                allowed = int((now - start) * rate_bps / 8 / payload) + 1
                if sent >= allowed:
                    select.select([], [], [], 0.0005)  # pacing gap
                    now = time.monotonic()
                    continue
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                sock.send(data)
                sent += 1
            now = time.monotonic()
        for _ in range(3):  # the end marker, repeated in case one is lost
            with contextlib.suppress(OSError):
                sock.send(b"")
    return TransferResult(sent * payload, now - start, sent)


def udp_blast(
    source: Host,
    sink: Host,
    seconds: float,
    *,
    payload: int = 1472,
    rate_bps: float | None = None,
    port: int = 5202,
    idle_timeout: float = 1.0,
) -> tuple[TransferResult, TransferResult]:
    """A timed UDP blast from `source` to `sink`; returns (sent, received)."""
    r, w = os.pipe()
    try:
        sink_task = sink.spawn(udp_sink, sink.address, port, w, idle_timeout, True)
        os.close(w)
        w = -1
        _wait_ready(r, 10.0)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    try:
        sent = source.call(udp_source, sink.address, port, seconds, payload, rate_bps, timeout=seconds + 30)
        received = sink_task.join(timeout=idle_timeout + 30)
    finally:
        sink_task.kill()
    return sent, received
