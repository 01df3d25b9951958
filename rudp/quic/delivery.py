"""The contract between the packetizer and the subsystems that own frames.

Each subsystem (streams, flow control, connection IDs, paths, datagrams, acks) writes its own frames
into the packet being built through a :class:`FrameSink`, and registers a :data:`DeliveryHandler` per
frame. When the packet is acknowledged the handler is called with ``True``; when it is declared lost,
with ``False``, and the subsystem re-queues the *intent* (e.g. "offsets 100..200 of stream 4 need
sending", "MAX_DATA needs sending") rather than the old bytes (ARCHITECTURE §2.1 rule 5). Frames are
never retransmitted verbatim, and packet numbers are never reused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol

from rudp.codec.frames import Frame

if TYPE_CHECKING:
    from rudp.quic.sent import SentPacket

DeliveryHandler = Callable[[bool], None]
"""Called once per sent frame: ``True`` when its packet is acknowledged, ``False`` when lost.

A packet whose keys are discarded before it is acknowledged (Initial/Handshake) reports ``False``
only for frames whose subsystem still cares; handlers must tolerate being called after the subsystem's
state has moved on (e.g. a stream that was reset meanwhile).
"""


class BatchSink(Protocol):
    """A subsystem whose frames' acknowledgments may be applied together (see :class:`Batched`)."""

    def deliver(self, item: tuple[int, ...], acked: bool) -> None:
        """One frame's fate, as a :data:`DeliveryHandler` reports it."""
        ...

    def deliver_acked(self, items: list[tuple[int, ...]]) -> None:
        """The frames one ACK frame acknowledged (RFC 9000 §13.2), in packet order: the same outcome
        as :meth:`deliver` called with ``True`` for each in turn."""
        ...


class Batched(partial[None]):
    """A :data:`DeliveryHandler` ``Batched(deliver, sink, item)``: called, it is ``deliver(sink, item,
    acked)`` (``deliver`` is the sink class's :meth:`BatchSink.deliver`); loss recovery instead
    gathers the items of the packets one ACK frame acknowledges and hands them to
    ``sink.deliver_acked`` in one call (:func:`deliver_acked`; a bulk transfer acknowledges dozens of
    STREAM frames per ACK). A ``functools.partial``, so a frame's handler is built and called
    without a Python frame."""

    __slots__ = ()


class AckedOnce(partial[None]):
    """A :data:`DeliveryHandler` whose acknowledgment means the same however many of the packets one
    ACK frame acknowledges carry it (``handler(True)`` twice does what once does, and no other handler
    reads what it changes): :func:`deliver_acked` calls it once per ACK, after the other handlers.
    Losses still call it per packet. The PMTU search's large-datagram watch is one
    (:attr:`~rudp.quic.pmtud.PmtuDiscovery.large_handler`)."""

    __slots__ = ()


def deliver_acked(acked: list[SentPacket]) -> None:
    """Call the delivery handlers of newly acknowledged packets with ``True``, in packet order; the
    items of :class:`Batched` handlers go to their sink in one call per run of the same sink (one
    for the whole ACK in a transfer), :class:`AckedOnce` handlers once each, at the end.
    :class:`~rudp.quic.recovery.LossRecovery` calls it per ACK."""
    sink: BatchSink | None = None
    items: list[tuple[int, ...]] = []
    append = items.append
    once: DeliveryHandler | None = None
    onces: list[DeliveryHandler] = []
    for packet in acked:
        for handler in packet.handlers:
            if type(handler) is Batched:
                batch_sink, item = handler.args
                if batch_sink is not sink:
                    if sink is not None:
                        sink.deliver_acked(items)
                    sink, items = batch_sink, []
                    append = items.append
                append(item)
            elif handler is once:
                continue
            elif type(handler) is AckedOnce:
                once = handler
                if handler not in onces:
                    onces.append(handler)
            else:
                handler(True)
    if sink is not None:
        sink.deliver_acked(items)
    for handler in onces:
        handler(True)


class FrameSink(Protocol):
    """Where a subsystem writes frames while a packet is being assembled."""

    @property
    def remaining(self) -> int:
        """Bytes still available for frames in the current packet (after header and AEAD tag)."""
        ...

    def push_frame(self, frame: Frame, handler: DeliveryHandler | None = None) -> None:
        """Append ``frame`` to the packet; ``handler`` learns whether it was delivered.

        The caller must check :attr:`remaining` first (use :func:`rudp.codec.frame_codec.encode_frames`
        or the size helpers to know a frame's size); pushing a frame that does not fit raises
        ``ValueError``.
        """
        ...

    def push_stream(
        self, stream_id: int, offset: int, data: bytes, fin: bool, handler: DeliveryHandler
    ) -> None:
        """:meth:`push_frame` of ``Stream(stream_id, offset, data, fin)`` (RFC 9000 §19.8, with its
        Length field), the frame of every packet of a transfer: a sink may write it without the
        frame object."""
        ...


class PacketSink(FrameSink, Protocol):
    """The packet being built, as the packetizer's frame sources see it (a
    :class:`~rudp.quic.packetizer.DatagramBuilder`)."""

    now: float
    """The time the datagram is built (and sent)."""

    def require_padding(self) -> None:
        """The datagram must be padded to 1200 bytes, within what may be sent (path probes, RFC 9000
        §8.2.1; client Initials, §14.1)."""
        ...


class FrameSource(Protocol):
    """A subsystem that owns frames of the packets we send (ARCHITECTURE §2.1 rule 5)."""

    def has_data(self) -> bool:
        """True if a frame is waiting to be written."""
        ...

    def write_frames(self, sink: PacketSink) -> None:
        """Write what fits of the waiting frames into ``sink``."""
        ...
