"""What the receiver knows of one inbound packet (:mod:`rudp.quic.receiving`): the packet whose frames
are being handed out (:class:`Inbound`), one kept until its keys arrive (:class:`PendingPacket`), and
the frame kinds that decide whether a packet is probing or ack-eliciting (RFC 9000 §9.1, §13.2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rudp.codec import frames as f
from rudp.codec.packet import PacketHeader
from rudp.quic.paths import Address, Path
from rudp.quic.sent import PacketSpace
from rudp.tls.engine import EncryptionLevel

PROBING_FRAMES: Final = frozenset({f.PathChallenge, f.PathResponse, f.NewConnectionId, f.Padding})
"""Frames of a probing packet (RFC 9000 §9.1): such a packet does not move us to its address."""
NOT_ACK_ELICITING: Final = frozenset({f.Ack, f.Padding, f.ConnectionClose})
"""Frames that do not make a packet ack-eliciting (RFC 9000 §13.2.1)."""


@dataclass(slots=True)
class Inbound:
    """One authenticated packet while its frames are handed out: where it came from, and what its
    frames asked of the receiver (filled in by the route handlers)."""

    header: PacketHeader
    level: EncryptionLevel
    space: PacketSpace
    path: Path
    """The path it arrived on (a PATH_CHALLENGE is answered there, RFC 9000 §8.2.2)."""
    now: float
    ack_eliciting: bool = False
    probing: bool = True
    """Only probing frames so far (RFC 9000 §9.1)."""
    ping: bool = False
    """It carried a PING: acknowledge at once (the peer is probing or measuring)."""
    padded: bool = False
    """It carried PADDING (a PING so padded is a PMTU probe, part of the peer's flow, not a keep-alive)."""
    closed: bool = False
    """It carried CONNECTION_CLOSE: stop handling frames."""


@dataclass(slots=True)
class PendingPacket:
    """A packet that arrived before its keys: kept (a few) and replayed when they come."""

    packet: bytes
    address: Address
    received_at: float
    ecn: int
    local: Address | None


def on_ping(receiver: object, frame: f.Ping | f.ImmediateAck, inbound: Inbound) -> None:
    """A PING, and IMMEDIATE_ACK (draft-ietf-quic-ack-frequency §5), are answered without delay (a
    route of :data:`rudp.quic.receiving.ROUTES`)."""
    inbound.ping = True


def on_padding(receiver: object, frame: f.Padding, inbound: Inbound) -> None:
    """PADDING: the packet was padded (a route of :data:`rudp.quic.receiving.ROUTES`)."""
    inbound.padded = True


def drop_frame(frame: f.AckFrequency) -> None:
    """Sends nothing: a receiver without ACK frequency answers no frame of it."""
    return


__all__ = [
    "NOT_ACK_ELICITING",
    "PROBING_FRAMES",
    "Inbound",
    "PendingPacket",
    "drop_frame",
    "on_padding",
    "on_ping",
]
