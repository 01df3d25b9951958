"""The sender's datagrams of one kind: CONNECTION_CLOSE, PMTU probes and path frames to another path.

Owns :class:`SpecialDatagrams`, which builds the datagrams a connection sends besides its data: the
CONNECTION_CLOSE of a closing connection in every level the peer may read (RFC 9000 §10.2.3), the
padded PING of a PMTU probe (RFC 9000 §14.3, RFC 8899 §4.1) and the PATH_CHALLENGE / PATH_RESPONSE
datagrams of a path other than the current one (RFC 9000 §8.2). Each goes through the sender's packet
hooks (:class:`PacketHooks`: numbering, protection and the one after-send bookkeeping), so it is
recorded like any other datagram; the sender passes itself per call (no reference to it is kept).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Protocol

from rudp.codec.frames import ConnectionClose, Ping
from rudp.codec.packet import MIN_INITIAL_DATAGRAM_SIZE
from rudp.errors import TransportErrorCode
from rudp.quic.packetizer import DatagramBuilder
from rudp.quic.paths import Path, Paths
from rudp.quic.pmtud import PmtuDiscovery
from rudp.quic.qlog import NullQlog
from rudp.quic.recovery import LossRecovery
from rudp.quic.spaces import PacketSpaces
from rudp.quic.state import Lifecycle
from rudp.quic.weak_callbacks import weak_method
from rudp.tls.engine import EncryptionLevel

MIN_PATH_DATAGRAM = 40
"""The smallest anti-amplification allowance worth a datagram of path frames: a 1-RTT packet with one
PATH_CHALLENGE or PATH_RESPONSE (header with an 8-byte CID, the frame, the AEAD tag) takes 38-41 bytes.
Smaller than :data:`~rudp.quic.state.MIN_SENDABLE_BYTES` so that a new address that sent us one small
datagram (an ACK) still gets every challenge its 3x allows (RFC 9000 §8.1, §8.2.1)."""
_APP = EncryptionLevel.APPLICATION


class Sent(Enum):
    """What a datagram carried, for the after-send hook."""

    DATA = "data"
    PATH = "path"
    """Path frames only, to a path other than the current one."""
    PMTU_PROBE = "pmtu probe"
    CLOSE = "close"


class PacketHooks(Protocol):
    """The sender's packet steps the builders here go through (:class:`~rudp.quic.sending.Sender`)."""

    def start_packet(
        self, builder: DatagramBuilder, level: EncryptionLevel, *, dcid: bytes | None = None
    ) -> bool: ...

    def end_packet(self, builder: DatagramBuilder, level: EncryptionLevel) -> bool: ...

    def advance(self, level: EncryptionLevel, packet_number: int) -> None: ...

    def after_datagram(
        self, builder: DatagramBuilder, datagram: bytes, path: Path, now: float, kind: Sent
    ) -> None: ...

    def may_send_new(self, path: Path, size: int, now: float, in_train: bool = False) -> bool: ...


class SpecialDatagrams:
    """Builds a connection's CONNECTION_CLOSE, PMTU-probe and other-path datagrams (see the module
    docstring). Owned by the sender; holds no state of its own."""

    __slots__ = ("_lifecycle", "_paths", "_qlog", "_recovery", "_spaces")

    def __init__(
        self,
        spaces: PacketSpaces,
        paths: Paths,
        recovery: LossRecovery,
        lifecycle: Lifecycle,
        qlog: NullQlog,
    ) -> None:
        self._spaces = spaces
        self._paths = paths
        self._recovery = recovery
        self._lifecycle = lifecycle
        self._qlog = qlog

    def path_datagram(self, path: Path, now: float, hooks: PacketHooks) -> bytes:
        """A datagram of path frames only, for a path other than the current one (within its allowance)."""
        allowance = path.datagram_allowance()
        base = path.pmtud.base
        size = base if allowance is None else min(base, allowance)
        if size < MIN_PATH_DATAGRAM:
            return b""
        builder = self._qlog.builder(size, now)
        if not hooks.start_packet(builder, _APP, dcid=path.dcid):
            return b""
        self._paths.write_path_frames(path, builder)
        if not hooks.end_packet(builder, _APP):
            return b""
        datagram = builder.finish(MIN_INITIAL_DATAGRAM_SIZE)
        hooks.after_datagram(builder, datagram, path, now, Sent.PATH)
        return datagram

    def pmtu_probe(self, path: Path, now: float, hooks: PacketHooks) -> bytes:
        """RFC 9000 §14.3: a PING padded to the size being probed."""
        pmtud = path.pmtud
        size = pmtud.probe_size(now)
        if size is None:
            return b""
        if not hooks.may_send_new(path, size, now):
            pmtud.cancel_probe(size)
            return b""
        builder = self._qlog.builder(size, now)
        if not hooks.start_packet(builder, _APP):
            pmtud.cancel_probe(size)
            return b""
        # (the handler holds no sender: a sent packet in recovery's record referring back to the sender
        # that owns recovery would make a reference cycle)
        builder.push_frame(Ping(), partial(_on_pmtu_probe, pmtud, size, weak_method(self._recovery.pto)))
        sent = builder.end_packet()
        datagram = builder.finish(size)
        if sent is None or not datagram:
            return b""
        sent.is_pmtu_probe = True
        hooks.advance(_APP, sent.packet_number)
        hooks.after_datagram(builder, datagram, path, now, Sent.PMTU_PROBE)
        return datagram

    def close(self, now: float, hooks: PacketHooks) -> list[tuple[bytes, Path]]:
        """The datagram of a closing connection's CONNECTION_CLOSE, when one is due."""
        frame = self._lifecycle.closing.take_frame()
        if frame is None:
            return []
        path = self._paths.current
        builder = self._qlog.builder(path.pmtud.current, now)
        for level in (EncryptionLevel.INITIAL, EncryptionLevel.HANDSHAKE, _APP):
            if self._spaces.write_keys(level) is None:
                continue
            # RFC 9000 §10.2.3: before confirmation the peer may lack some keys, so the close goes in
            # every level we can still write (Initial, Handshake and 1-RTT).
            to_send = frame
            if frame.application and level != _APP:
                # RFC 9000 §10.2.3: an application close before 1-RTT is sent as APPLICATION_ERROR.
                to_send = ConnectionClose(TransportErrorCode.APPLICATION_ERROR, b"", 0, False)
            if not hooks.start_packet(builder, level):
                break
            builder.push_frame(to_send)
            hooks.end_packet(builder, level)
        datagram = builder.finish(MIN_INITIAL_DATAGRAM_SIZE if builder.padding_required else 0)
        allowance = path.datagram_allowance()
        if not datagram or (allowance is not None and len(datagram) > allowance):
            return []
        hooks.after_datagram(builder, datagram, path, now, Sent.CLOSE)
        return [(datagram, path)]


def _on_pmtu_probe(pmtud: PmtuDiscovery, size: int, pto: Callable[[], float], acked: bool) -> None:
    """The delivery handler of a PMTU probe (RFC 8899 §4.1: a lost probe is retried a PTO later)."""
    if acked:
        pmtud.on_probe_acked(size)  # the path's datagrams grow at once
    else:
        pmtud.on_probe_lost(size, retry_delay=pto())


__all__ = ["MIN_PATH_DATAGRAM", "PacketHooks", "Sent", "SpecialDatagrams"]
