"""The receiver's routing table (:data:`ROUTES`): frame type -> the subsystem that handles it (RFC 9000
§12.4, §19). Part of :class:`~rudp.quic.receiving.Receiver` (each route is called with the receiver, the
frame and its packet's :class:`~rudp.quic.inbound.Inbound`), kept apart to keep that module small."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from rudp.codec import frames as f
from rudp.quic.inbound import Inbound, on_padding, on_ping

if TYPE_CHECKING:
    from rudp.quic.receiving import Receiver

Route: TypeAlias = "Callable[[Receiver, Any, Inbound], object]"
"""A frame's handler: the receiver, the frame (of the type it is routed by) and its packet."""

ROUTES: Final[dict[type[f.Frame], Route]] = {
    # streams and flow control (rudp.quic.streams)
    f.Stream: lambda rx, frame, _: rx._streams.on_stream(frame),
    f.MaxData: lambda rx, frame, _: rx._streams.on_max_data(frame),
    f.MaxStreamData: lambda rx, frame, _: rx._streams.on_max_stream_data(frame),
    f.ResetStream: lambda rx, frame, _: rx._streams.on_reset_stream(frame),
    f.StopSending: lambda rx, frame, _: rx._streams.on_stop_sending(frame),
    f.MaxStreams: lambda rx, frame, _: rx._streams.on_max_streams(frame),
    f.DataBlocked: lambda rx, frame, _: rx._streams.on_data_blocked(frame),
    f.StreamDataBlocked: lambda rx, frame, _: rx._streams.on_stream_data_blocked(frame),
    f.StreamsBlocked: lambda rx, frame, _: rx._streams.on_streams_blocked(frame),
    # connection IDs (rudp.quic.cids)
    f.NewConnectionId: lambda rx, frame, inbound: rx._on_new_connection_id(frame, inbound),
    f.RetireConnectionId: lambda rx, frame, inbound: rx._local_cids.on_retire(frame, inbound.header.dcid),
    # paths (rudp.quic.paths): a challenge is answered on the path it came on (RFC 9000 §8.2.2)
    f.PathChallenge: lambda rx, frame, inbound: inbound.path.owe_response(frame.data),
    f.PathResponse: lambda rx, frame, inbound: rx._paths.on_response(inbound.path, frame.data),
    # recovery and the ACK trackers, the TLS glue (rudp.quic.handshake), the lifecycle
    f.Ack: lambda rx, frame, inbound: rx._acks.on_ack(frame, inbound.space, inbound.now),
    f.Crypto: lambda rx, frame, inbound: rx._handshake.on_crypto(inbound.level, frame, inbound.now),
    f.HandshakeDone: lambda rx, frame, _: rx._handshake.on_handshake_done(frame),
    f.NewToken: lambda rx, frame, _: rx._handshake.on_new_token(frame),
    f.ConnectionClose: lambda rx, frame, inbound: rx._on_connection_close(frame, inbound),
    f.Datagram: lambda rx, frame, inbound: rx._on_datagram_frame(frame, inbound),
    f.Ping: on_ping,
    f.Padding: on_padding,
    # draft-ietf-quic-ack-frequency §4, §5
    f.AckFrequency: lambda rx, frame, _: rx._acks.on_ack_frequency(frame),
    f.ImmediateAck: on_ping,
}
"""Every frame type -> the subsystem that owns it (RFC 9000 §19); parse_frames already refused the
frames a packet type may not carry (§12.4)."""


__all__ = ["ROUTES", "Route"]
