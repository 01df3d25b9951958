"""ECN-preserving sockets for :class:`~interop.tap.WireTap`: the tap forwards the IP ECN field as a
router would, instead of bleaching it.

A user-space forwarder normally loses the ECN codepoint: asyncio's datagram transports read with
``recvfrom`` (no ancillary data) and send with the socket's default TOS. Owns :class:`EcnLink` (the
codepoint of the datagram being forwarded) and :class:`MarkingTransport`, a datagram transport over a
non-blocking IPv4 UDP socket that reads every datagram's codepoint (``IP_RECVTOS``, ``recvmsg``) and
sends each datagram with the codepoint of the one being forwarded (an ``IP_TOS`` control message on
``sendmsg``; Linux takes it per datagram). The tap forwards synchronously from within
``datagram_received``, so "the datagram being forwarded" is simply the one just read. IPv4 and Linux
only (what the tap uses: 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from typing import Any, Final

NOT_ECT: Final = 0
ECT_1: Final = 1
ECT_0: Final = 2
CE: Final = 3
CODEPOINT_NAMES: Final = ("Not-ECT", "ECT(1)", "ECT(0)", "CE")
_IP_TOS: Final = getattr(socket, "IP_TOS", 1)
_IP_RECVTOS: Final = getattr(socket, "IP_RECVTOS", 13)
_RECEIVE_BUFFER: Final = 65536
_ANCILLARY: Final = socket.CMSG_SPACE(4) * 2 if hasattr(socket, "CMSG_SPACE") else 0


class EcnLink:
    """The ECN codepoint of the datagram the tap is forwarding now (Not-ECT outside of a forward)."""

    def __init__(self) -> None:
        self.current = NOT_ECT


class MarkingTransport(asyncio.DatagramTransport):
    """An asyncio datagram transport that reads and writes ECN codepoints (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.DatagramProtocol,
        link: EcnLink,
    ) -> None:
        super().__init__(extra={"socket": sock, "sockname": sock.getsockname()})
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTOS, 1)
        self._loop = loop
        self._sock = sock
        self._protocol = protocol
        self._link = link
        self._closing = False
        loop.add_reader(sock.fileno(), self._read_ready)
        protocol.connection_made(self)

    def _read_ready(self) -> None:
        while not self._closing:
            try:
                data, ancillary, _flags, addr = self._sock.recvmsg(_RECEIVE_BUFFER, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an ICMP error reported on the socket; the selector calls again if more is queued
            mark = NOT_ECT
            for level, kind, payload in ancillary:
                if level == socket.IPPROTO_IP and kind == _IP_TOS and payload:
                    mark = payload[0] & 3
            self._link.current = mark
            try:
                self._protocol.datagram_received(data, addr)
            finally:
                self._link.current = NOT_ECT

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send ``data`` (to ``addr`` unless connected) with the forwarded datagram's codepoint; a
        datagram the socket cannot take now is dropped, as on a full router queue."""
        if self._closing:
            return
        mark = self._link.current
        control = [(socket.IPPROTO_IP, _IP_TOS, mark.to_bytes(4, sys.byteorder))] if mark else []
        with contextlib.suppress(OSError):
            if addr is None:
                self._sock.sendmsg([data], control)
            else:
                self._sock.sendmsg([data], control, 0, addr)

    def is_closing(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing

    def close(self) -> None:
        """Stop reading and close the socket; idempotent."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._protocol.connection_lost(None)


def open_marking(
    protocol: asyncio.DatagramProtocol,
    link: EcnLink,
    *,
    local_addr: tuple[str, int] | None = None,
    remote_addr: tuple[str, int] | None = None,
) -> MarkingTransport:
    """A :class:`MarkingTransport` for ``protocol`` bound to ``local_addr`` and/or connected to
    ``remote_addr`` (IPv4), opened synchronously: ``connection_made`` has run when this returns."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(local_addr or ("127.0.0.1", 0))
        if remote_addr is not None:
            sock.connect(remote_addr)
        return MarkingTransport(asyncio.get_running_loop(), sock, protocol, link)
    except BaseException:
        sock.close()
        raise


__all__ = [
    "CE",
    "CODEPOINT_NAMES",
    "ECT_0",
    "ECT_1",
    "NOT_ECT",
    "EcnLink",
    "MarkingTransport",
    "open_marking",
]
