"""Batched UDP socket I/O for :class:`~rudp.aio.endpoint.UdpEndpoint`: GSO, GRO and ECN marks.

:class:`DatagramSocket` owns one non-blocking UDP socket on an asyncio loop (``add_reader`` /
``add_writer``, so it works on the selector loops and uvloop) and does the per-syscall batching the
sans-IO core cannot:

* **Send (GSO).** :meth:`DatagramSocket.send` takes the core's ``[(datagram, address), ...]`` and groups
  consecutive datagrams to the same address and of the same size (the last of a group may be shorter)
  into one ``sendmsg`` carrying a ``UDP_SEGMENT`` control message: the kernel cuts the buffer into
  datagrams (Linux >= 4.18). At most :data:`GSO_MAX_SEGMENTS` datagrams and :data:`GSO_MAX_BYTES`
  bytes per call. A GSO send failing with EIO (no checksum offload on the route) or EINVAL (e.g. a
  segment larger than the device MTU) turns GSO off for that socket for good and the group is resent
  one datagram at a time. EMSGSIZE (segments above the device MTU: a PMTU probe grouped with the datagram
  after it) resends that group one datagram at a time, so only the oversized one is lost.
* **Receive (GRO).** With ``UDP_GRO`` set (Linux >= 5.0) the kernel may hand over several datagrams of
  one flow coalesced in one buffer; ``recvmsg`` reports their size in a ``UDP_GRO`` control message and
  the buffer is split here. Each wake-up drains the socket (up to :data:`RECEIVE_BATCH` datagrams)
  and hands the whole batch to the owner at once, so one flush answers a burst. Draining ends with a
  read that finds the socket empty (a syscall and an exception); on sparse traffic (the last wake-up
  found one datagram, then nothing) the next wake-up reads one datagram without that probe, and the
  one after it drains again, so a burst waits at most one loop pass to be drained.
* **ECN (RFC 9000 §13.4).** Every received datagram carries its ECN codepoint (the low two bits of the
  IPv4 TOS / IPv6 traffic class, read through ``IP_RECVTOS`` / ``IPV6_RECVTCLASS``; one mark per
  coalesced GRO buffer, which the kernel only coalesces for equal marks).
  :meth:`DatagramSocket.set_ecn_marking` marks outgoing packets ECT(0) through ``IP_TOS`` /
  ``IPV6_TCLASS``.

Each feature is detected once per socket and falls back cleanly: without GSO every datagram is one
``sendto``; without ``recvmsg`` (Windows) it is ``recvfrom`` and every mark reads Not-ECT. A loop
without ``add_reader`` (Windows' proactor loop) gets :class:`TransportDatagramSocket`, a plain asyncio
datagram transport behind the same interface. ``RUDP_UDP_OFFLOAD=0`` in the environment turns GSO and
GRO off (for comparisons).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger("rudp.aio")

IS_LINUX = sys.platform.startswith("linux")

# Linux values the socket module (3.11) does not name (include/uapi/linux/udp.h).
SOL_UDP = 17  # == IPPROTO_UDP
UDP_SEGMENT = 103  # setsockopt / cmsg: GSO segment size (u16), Linux >= 4.18
UDP_GRO = 104  # setsockopt: allow GRO; cmsg on receive: the coalesced segment size (int), Linux >= 5.0

GSO_MAX_SEGMENTS = 64
"""Datagrams per GSO send (the kernel's UDP_MAX_SEGMENTS)."""

GSO_MAX_BYTES = 65_000
"""Payload bytes per GSO send: the IP packet the kernel segments must stay under 64 KiB."""

RECEIVE_BATCH = 128
"""Datagrams read per readiness event before the owner answers them all at once."""

RECEIVE_BUFFER = 65_535
"""Bytes per ``recvmsg``: a whole GRO-coalesced buffer (or the largest datagram) fits."""

# ECN codepoints (RFC 3168 §5): the low two bits of the TOS / traffic class byte.
NOT_ECT = 0
ECT_1 = 1
ECT_0 = 2
CE = 3

OFFLOAD_ENABLED = os.environ.get("RUDP_UDP_OFFLOAD", "1") != "0"

_ANCILLARY_SPACE = socket.CMSG_SPACE(4) * 4 if hasattr(socket, "CMSG_SPACE") else 0
_IP_TOS = getattr(socket, "IP_TOS", 1)
_IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
_IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
_IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)
_GSO_FAILURES = (errno.EIO, errno.EINVAL)

Received = tuple[bytes, Any, int]
"""(datagram, source address as the socket reports it, ECN codepoint)."""
Outgoing = tuple[bytes, Any]
"""(datagram, destination address; ignored on a connected socket)."""


@dataclass
class IoStats:
    """Counters of one socket: datagrams against the syscalls that moved them."""

    datagrams_sent: int = 0
    send_calls: int = 0
    gso_calls: int = 0
    datagrams_received: int = 0
    receive_calls: int = 0
    gro_buffers: int = 0


def _set(sock: socket.socket, level: int, option: int, value: int) -> bool:
    try:
        sock.setsockopt(level, option, value)
    except OSError:
        return False
    return True


def detect_gso(sock: socket.socket) -> bool:
    """Whether the kernel takes UDP_SEGMENT on this socket (Linux >= 4.18 answers the getsockopt)."""
    if not (IS_LINUX and hasattr(sock, "sendmsg")) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.getsockopt(SOL_UDP, UDP_SEGMENT)
    except OSError:
        return False
    return True


def enable_gro(sock: socket.socket) -> bool:
    """Ask for GRO on ``sock``; False where the kernel lacks it (Linux < 5.0, other systems)."""
    if not (IS_LINUX and hasattr(sock, "recvmsg")):
        return False
    return _set(sock, SOL_UDP, UDP_GRO, 1)


def enable_ecn_reports(sock: socket.socket) -> bool:
    """Ask for the TOS / traffic class of every received datagram; False if no family took it."""
    if not hasattr(sock, "recvmsg"):
        return False
    ok = _set(sock, socket.IPPROTO_IP, _IP_RECVTOS, 1)  # IPv4, and IPv4-mapped on a dual-stack socket
    if sock.family == socket.AF_INET6:
        ok = _set(sock, socket.IPPROTO_IPV6, _IPV6_RECVTCLASS, 1) or ok
    return ok


def set_ecn_marking(sock: socket.socket, codepoint: int) -> bool:
    """Mark every packet ``sock`` sends with ``codepoint`` (ECT_0 to mark, NOT_ECT to stop)."""
    ok = _set(sock, socket.IPPROTO_IP, _IP_TOS, codepoint)
    if sock.family == socket.AF_INET6:
        ok = _set(sock, socket.IPPROTO_IPV6, _IPV6_TCLASS, codepoint) or ok
    return ok


def gso_groups(datagrams: Sequence[Outgoing], start: int, *, connected: bool) -> int:
    """End (exclusive) of the GSO group starting at ``start``.

    A group holds consecutive datagrams to one address, all of the first one's size except possibly a
    shorter last one, at most :data:`GSO_MAX_SEGMENTS` of them and :data:`GSO_MAX_BYTES` in total.
    """
    data, addr = datagrams[start]
    size = total = len(data)
    end = start + 1
    limit = min(len(datagrams), start + GSO_MAX_SEGMENTS)
    while end < limit:
        nxt, nxt_addr = datagrams[end]
        n = len(nxt)
        if n > size or total + n > GSO_MAX_BYTES or (not connected and nxt_addr != addr):
            break
        total += n
        end += 1
        if n < size:
            break
    return end


class DatagramSocket:
    """One non-blocking UDP socket on the loop: batched sends, drained receives, ECN marks.

    ``on_datagrams`` gets every batch of :data:`Received` tuples read in one wake-up; ``on_error`` the
    socket errors (ICMP reports such as ConnectionRefusedError; the datagram that failed is dropped, as
    an asyncio transport drops it); ``on_closed`` is called soon after the socket is closed. Sends that
    meet a full socket buffer are queued and finished when the socket is writable again.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_datagrams: Callable[[list[Received]], None],
        on_error: Callable[[OSError], None],
        on_closed: Callable[[], None],
        *,
        gso: bool | None = None,
        gro: bool | None = None,
    ) -> None:
        loop.add_reader(sock, self._read_ready)  # NotImplementedError on a proactor loop: before GRO
        sock.setblocking(False)
        self._loop = loop
        self._sock = sock
        self._on_datagrams = on_datagrams
        self._on_error = on_error
        self._on_closed = on_closed
        self.stats = IoStats()
        self.sockname = sock.getsockname()
        self._connected = _is_connected(sock)
        self.gso = (detect_gso(sock) and OFFLOAD_ENABLED) if gso is None else (gso and detect_gso(sock))
        if gro is None:
            gro = OFFLOAD_ENABLED
        self.gro = gro and enable_gro(sock)
        self.ecn_reports = enable_ecn_reports(sock)
        self._recvmsg = hasattr(sock, "recvmsg")
        self._read_limit = RECEIVE_BATCH  # datagrams the next wake-up reads at most (see _read_ready)
        self._pending: deque[Outgoing] = deque()
        self.closing = False
        """True once :meth:`close` was called (:meth:`is_closing`, read as an attribute by the endpoint's
        every flush)"""
        self._closed = False

    # ------------------------------------------------------------------ state

    @property
    def socket(self) -> socket.socket:
        """The socket (closed once :meth:`close` finished)."""
        return self._sock

    def is_closing(self) -> bool:
        """True once :meth:`close` was called."""
        return self.closing

    def set_ecn_marking(self, codepoint: int) -> bool:
        """Mark every packet sent from now on with ``codepoint`` (ECT_0, or NOT_ECT to stop)."""
        return set_ecn_marking(self._sock, codepoint)

    # ------------------------------------------------------------------ sending

    def send(self, datagrams: Sequence[Outgoing]) -> None:
        """Send ``datagrams`` in order, batched into as few syscalls as the kernel allows."""
        if self.closing or not datagrams:
            return
        if self._pending:
            self._pending.extend(datagrams)
            return
        done = self._transmit(datagrams, 0)
        if done < len(datagrams):
            self._pending.extend(datagrams[done:])
            self._loop.add_writer(self._sock, self._write_ready)

    def _transmit(self, datagrams: Sequence[Outgoing], start: int) -> int:
        """Send ``datagrams[start:]``; the index of the first one the full socket buffer refused."""
        sock, connected, stats = self._sock, self._connected, self.stats
        count = len(datagrams)
        i = start
        singles_until = 0  # a group GSO refused goes out again one datagram per call
        while i < count:
            data, addr = datagrams[i]
            grouped = self.gso and i >= singles_until and i + 1 < count  # (a last datagram is alone)
            end = gso_groups(datagrams, i, connected=connected) if grouped else i + 1
            try:
                if end - i == 1:
                    if connected:
                        sock.send(data)
                    else:
                        sock.sendto(data, addr)
                else:
                    buffers = [d for d, _ in datagrams[i:end]]
                    control = [(SOL_UDP, UDP_SEGMENT, len(data).to_bytes(2, sys.byteorder))]
                    if connected:
                        sock.sendmsg(buffers, control)
                    else:
                        sock.sendmsg(buffers, control, 0, addr)
                    stats.gso_calls += 1
            except BlockingIOError:
                return i
            except OSError as exc:
                if end - i > 1 and exc.errno in _GSO_FAILURES:
                    _log.debug("GSO send failed (%r): sending one datagram per syscall from now on", exc)
                    self.gso = False
                    continue  # the same group again, one datagram at a time
                if end - i > 1 and exc.errno == errno.EMSGSIZE:
                    # Segments larger than the path allows (a PMTU probe and the datagrams after it):
                    # GSO works; only the oversized datagrams must fail, each on its own.
                    singles_until = end
                    continue
                self._on_error(exc)
            stats.send_calls += 1
            stats.datagrams_sent += end - i
            i = end
        return count

    def _write_ready(self) -> None:
        pending = list(self._pending)
        self._pending.clear()
        done = self._transmit(pending, 0)
        if done < len(pending):
            self._pending.extend(pending[done:])
            return
        self._loop.remove_writer(self._sock)
        if self.closing:
            self._finish_close()

    # ------------------------------------------------------------------ receiving

    def _read_ready(self) -> None:
        """Drain the socket (up to :data:`RECEIVE_BATCH` datagrams), then hand the batch over.

        After a wake-up that found one datagram and then an empty socket, the next one reads a single
        datagram and skips the read that would find the socket empty again (sparse traffic: one
        syscall and one exception per wake-up saved); the wake-up after such a read drains again."""
        sock, stats = self._sock, self.stats
        batch: list[Received] = []
        error: OSError | None = None
        limit, self._read_limit = self._read_limit, RECEIVE_BATCH
        try:
            while len(batch) < limit:
                if not self._recvmsg:
                    data, addr = sock.recvfrom(RECEIVE_BUFFER)
                    stats.receive_calls += 1
                    batch.append((data, addr, NOT_ECT))
                    continue
                data, ancillary, _flags, addr = sock.recvmsg(RECEIVE_BUFFER, _ANCILLARY_SPACE)
                stats.receive_calls += 1
                segment = 0
                ecn = NOT_ECT
                for level, kind, payload in ancillary:
                    if level == SOL_UDP and kind == UDP_GRO:
                        segment = int.from_bytes(payload, sys.byteorder)
                    elif (level == socket.IPPROTO_IP and kind == _IP_TOS) or (
                        level == socket.IPPROTO_IPV6 and kind == _IPV6_TCLASS
                    ):
                        ecn = int.from_bytes(payload, sys.byteorder) & 3  # 1 byte (IPv4) or int (IPv6)
                if segment and len(data) > segment:
                    stats.gro_buffers += 1
                    batch += [(data[o : o + segment], addr, ecn) for o in range(0, len(data), segment)]
                else:
                    batch.append((data, addr, ecn))
        except BlockingIOError:
            if len(batch) == 1:
                self._read_limit = 1
        except OSError as exc:
            error = exc
        stats.datagrams_received += len(batch)
        if batch:
            self._on_datagrams(batch)
        if error is not None:
            self._on_error(error)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop reading; close the socket once queued sends are out; ``on_closed`` follows; idempotent."""
        if self.closing:
            return
        self.closing = True
        self._loop.remove_reader(self._sock)
        if not self._pending:
            self._finish_close()

    def abort(self) -> None:
        """Close now, dropping queued sends."""
        self.closing = True
        self._loop.remove_reader(self._sock)
        self._pending.clear()
        self._finish_close()

    def _finish_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_writer(self._sock)
        self._sock.close()
        self._loop.call_soon(self._on_closed)


def _is_connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: TransportDatagramSocket) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner.stats.receive_calls += 1
        self.owner.stats.datagrams_received += 1
        self.owner._on_datagrams([(data, addr, NOT_ECT)])

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.owner._on_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._on_closed()


class TransportDatagramSocket:
    """The fallback for loops without ``add_reader``: an asyncio datagram transport, one datagram per
    syscall, every mark Not-ECT. Same interface as :class:`DatagramSocket`."""

    gso = False
    gro = False
    ecn_reports = False

    def __init__(
        self,
        sock: socket.socket,
        on_datagrams: Callable[[list[Received]], None],
        on_error: Callable[[OSError], None],
        on_closed: Callable[[], None],
    ) -> None:
        self._sock = sock
        self._on_datagrams = on_datagrams
        self._on_error = on_error
        self._on_closed = on_closed
        self.stats = IoStats()
        self.sockname = sock.getsockname()
        self._connected = _is_connected(sock)
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Create the transport."""
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=self._sock)
        self._transport = transport

    @property
    def socket(self) -> socket.socket:
        """The socket."""
        return self._sock

    def is_closing(self) -> bool:
        """True once the transport is closing."""
        return self._transport is None or self._transport.is_closing()

    @property
    def closing(self) -> bool:
        """:meth:`is_closing`, as :class:`DatagramSocket`'s attribute reads."""
        return self.is_closing()

    def set_ecn_marking(self, codepoint: int) -> bool:
        """Mark every packet sent from now on with ``codepoint``."""
        return set_ecn_marking(self._sock, codepoint)

    def send(self, datagrams: Sequence[Outgoing]) -> None:
        """One ``sendto`` per datagram (the transport buffers what the socket refuses)."""
        transport = self._transport
        if transport is None:
            return
        for data, addr in datagrams:
            transport.sendto(data, None if self._connected else addr)
        self.stats.send_calls += len(datagrams)
        self.stats.datagrams_sent += len(datagrams)

    def close(self) -> None:
        """Close the transport; ``on_closed`` follows."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close the transport at once."""
        if self._transport is not None:
            self._transport.abort()


async def open_datagram_socket(
    sock: socket.socket,
    on_datagrams: Callable[[list[Received]], None],
    on_error: Callable[[OSError], None],
    on_closed: Callable[[], None],
    *,
    gso: bool | None = None,
    gro: bool | None = None,
) -> DatagramSocket | TransportDatagramSocket:
    """Drive the non-blocking ``sock`` on the running loop (the fallback where it lacks add_reader).

    ``gso`` / ``gro``: None detects the kernel's support (the default); False forces the fallback.
    """
    loop = asyncio.get_running_loop()
    try:
        return DatagramSocket(loop, sock, on_datagrams, on_error, on_closed, gso=gso, gro=gro)
    except NotImplementedError:
        fallback = TransportDatagramSocket(sock, on_datagrams, on_error, on_closed)
        await fallback.start(loop)
        return fallback


__all__ = [
    "CE",
    "ECT_0",
    "ECT_1",
    "GSO_MAX_BYTES",
    "GSO_MAX_SEGMENTS",
    "NOT_ECT",
    "RECEIVE_BATCH",
    "DatagramSocket",
    "IoStats",
    "Received",
    "TransportDatagramSocket",
    "detect_gso",
    "enable_ecn_reports",
    "enable_gro",
    "gso_groups",
    "open_datagram_socket",
    "set_ecn_marking",
]
