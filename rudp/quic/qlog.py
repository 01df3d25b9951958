"""qlog: a structured event log per connection, in a form today's viewer (qvis) opens as it is.

Owns :class:`NullQlog` (the null object every connection holds when ``Config.qlog_dir`` is None: each
hook is a no-op, so the hot path has no ``if logger is not None`` tests), the file header, the event
names and the value conversions. :mod:`rudp.quic.qlog_trace` holds the writer (:class:`QlogTrace`),
which writes one JSON Text Sequences file (RFC 7464: each record is 0x1E, a JSON text, then a line
feed) per connection, named ``<original DCID hex>_<client|server>.sqlog``.

Format choice: one file that both the current drafts (draft-ietf-quic-qlog-main-schema, QUIC events
draft 13) and qvis accept, written always, with no option. qvis, the viewer people use, loads only
files whose header carries ``qlog_version`` ("0.3" and the draft-02 aliases) and, for JSON-SEQ,
``qlog_format: "JSON-SEQ"``, and its sequence diagram and congestion graph look events up by the
draft-02 names (``transport:packet_sent``, ``recovery:metrics_updated``...). So:

* The header has both generations of fields, all in its first 256 bytes: ``file_schema`` and
  ``serialization_format`` (current; required) and ``qlog_version`` / ``qlog_format`` (qvis). The
  main schema makes unknown fields explicitly not an error, so the extra two cost nothing.
* Event names are the qvis-readable ones (:data:`PACKET_SENT` ...; :data:`CURRENT_DRAFT_NAMES` maps
  each to its draft 13 ``quic:`` name). Writing each event under both names would double the file
  and make qvis draw every packet twice; a ``qlog_format="0.3"`` Config option would leave the
  default unreadable by the only viewer and split the writer in two. The names keep the main
  schema's ``namespace:type`` form; ``event_schemas`` still lists the draft 13 QUIC schema, whose data
  definitions every event body follows, and the main schema tells tools to accept events outside
  the listed schemas. The cost: a tool that knows only draft 13 names will not recognise these
  events by name; a rename of ``name`` (:data:`CURRENT_DRAFT_NAMES`) is all a conversion needs.
* Event bodies are draft 13's, plus the draft-02 spelling where qvis reads a different field:
  ``owner`` beside ``initiator`` in ``parameters_set`` (qvis draws the peer's flow control limits
  from it), ``length`` beside ``raw.length`` in STREAM and CRYPTO frames (its multiplexing view).
* Times are float milliseconds on the connection's clock: ``time_format`` "relative_to_epoch" with
  ``reference_time`` {"clock_type": "monotonic", "epoch": "unknown"} (current draft). qvis reads any
  time_format other than its own "relative"/"delta" as absolute and counts from the first event,
  which is exactly right for a monotonic clock with no known epoch; events are written in time
  order, as qvis requires (it re-sorts, and warns, otherwise). RTTs and ack delays are milliseconds.

Events written: ``transport:parameters_set`` (local and remote), ``recovery:parameters_set``,
``transport:packet_sent`` and ``transport:packet_received`` with their frames,
``recovery:metrics_updated`` (only the values that changed), ``recovery:packet_lost``,
``recovery:congestion_state_updated``, ``connectivity:connection_state_updated`` and
``security:key_updated`` (1-RTT key updates, with their trigger). The logger owns
no protocol decision: it only observes. The writer opens a file, the only I/O in :mod:`rudp.quic`;
time always comes from ``now``.
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rudp.codec import frames as f
from rudp.codec.codes import PacketType
from rudp.errors import TransportErrorCode
from rudp.quic.packetizer import DatagramBuilder
from rudp.quic.recovery import K_PACKET_THRESHOLD, K_PERSISTENT_CONGESTION_THRESHOLD, K_TIME_THRESHOLD
from rudp.quic.rtt import K_GRANULARITY
from rudp.quic.sent import PacketSpace, SentPacket

if TYPE_CHECKING:
    from rudp.codec.transport_params import TransportParameters
    from rudp.quic.congestion.base import CongestionController
    from rudp.quic.pacing import Pacer
    from rudp.quic.recovery import LossRecovery
    from rudp.quic.rtt import RttEstimator

EVENT_SCHEMA = "urn:ietf:params:qlog:events:quic-13"
"""The draft QUIC event schema URI (draft URIs carry the draft number, quic-events §2.1)."""
FILE_SCHEMA = "urn:ietf:params:qlog:file:sequential"
"""QlogFileSeq (qlog main schema §5)."""
RECORD_SEPARATOR = "\x1e"
"""RFC 7464 §2.2: every JSON text in a sequence starts with RS (0x1E) and ends with LF."""
SERIALIZATION_FORMAT = "application/qlog+json-seq"
"""The media type of a QlogFileSeq in JSON-SEQ (qlog main schema §5, §11)."""
QLOG_VERSION = "0.3"
"""The qvis compatibility ``qlog_version`` (qvis accepts "0.3" and the draft-02 aliases)."""
QLOG_FORMAT = "JSON-SEQ"
"""The qvis compatibility ``qlog_format`` of a JSON-SEQ file."""

PARAMETERS_SET = "transport:parameters_set"
PACKET_SENT = "transport:packet_sent"
PACKET_RECEIVED = "transport:packet_received"
RECOVERY_PARAMETERS_SET = "recovery:parameters_set"
METRICS_UPDATED = "recovery:metrics_updated"
PACKET_LOST = "recovery:packet_lost"
CONGESTION_STATE_UPDATED = "recovery:congestion_state_updated"
CONNECTION_STATE_UPDATED = "connectivity:connection_state_updated"
ECN_STATE_UPDATED = "recovery:ecn_state_updated"
MIGRATION_STATE_UPDATED = "quic:migration_state_updated"
"""No qvis name exists for it: written under its draft 13 name (RFC 9000 §9 path changes)."""
KEY_UPDATED = "security:key_updated"
CURRENT_DRAFT_NAMES = {
    PARAMETERS_SET: "quic:parameters_set",
    PACKET_SENT: "quic:packet_sent",
    PACKET_RECEIVED: "quic:packet_received",
    RECOVERY_PARAMETERS_SET: "quic:recovery_parameters_set",
    METRICS_UPDATED: "quic:recovery_metrics_updated",
    PACKET_LOST: "quic:packet_lost",
    CONGESTION_STATE_UPDATED: "quic:congestion_state_updated",
    CONNECTION_STATE_UPDATED: "quic:connection_state_updated",
    ECN_STATE_UPDATED: "quic:ecn_state_updated",
    MIGRATION_STATE_UPDATED: MIGRATION_STATE_UPDATED,
    KEY_UPDATED: "quic:key_updated",
}
"""The name each event we write has in QUIC events draft 13 (same data; see the module docstring)."""

_PACKET_TYPE_NAMES = {
    PacketType.INITIAL: "initial",
    PacketType.HANDSHAKE: "handshake",
    PacketType.ZERO_RTT: "0RTT",
    PacketType.ONE_RTT: "1RTT",
    PacketType.RETRY: "retry",
    PacketType.VERSION_NEGOTIATION: "version_negotiation",
}
_SPACE_TYPE_NAMES = {PacketSpace.INITIAL: "initial", PacketSpace.HANDSHAKE: "handshake"}


def frame_to_qlog(frame: f.Frame, ack_delay_exponent: int = 3) -> dict[str, Any]:
    """A frame as a qlog ``QuicFrame`` object (quic-events §8.13)."""
    match frame:
        case f.Stream():
            return {
                "frame_type": "stream",
                "stream_id": frame.stream_id,
                "offset": frame.offset,
                "length": len(frame.data),  # draft-02 spelling, for qvis
                "fin": frame.fin,
                "raw": {"length": len(frame.data)},
            }
        case f.Ack():
            ranges = [[low] if low == high else [low, high] for low, high in reversed(frame.ranges)]
            out: dict[str, Any] = {
                "frame_type": "ack",
                "ack_delay": frame.ack_delay * (1 << ack_delay_exponent) / 1000,
                "acked_ranges": ranges,
            }
            if frame.ecn is not None:
                out["ect0"], out["ect1"], out["ce"] = frame.ecn
            return out
        case f.Crypto():
            size = len(frame.data)
            return {"frame_type": "crypto", "offset": frame.offset, "length": size, "raw": {"length": size}}
        case f.Padding():
            return {"frame_type": "padding", "raw": {"payload_length": frame.length}}
        case f.Ping():
            return {"frame_type": "ping"}
        case f.MaxData():
            return {"frame_type": "max_data", "maximum": frame.maximum}
        case f.MaxStreamData():
            return {"frame_type": "max_stream_data", "stream_id": frame.stream_id, "maximum": frame.maximum}
        case f.ConnectionClose():
            return _connection_close(frame)
        case f.Datagram():
            return {"frame_type": "datagram", "raw": {"length": len(frame.data)}}
    return _rare_frame(frame)


def _connection_close(frame: f.ConnectionClose) -> dict[str, Any]:
    out: dict[str, Any] = {
        "frame_type": "connection_close",
        "error_space": "application" if frame.application else "transport",
        "reason": frame.reason.decode("utf-8", "replace"),
    }
    if frame.application:
        out.update(error="unknown", error_code=frame.error_code)
    elif 0x100 <= frame.error_code <= 0x1FF:
        out["error"] = f"crypto_error_{frame.error_code:#05x}"
    else:
        try:
            out["error"] = TransportErrorCode(frame.error_code).name.lower()
        except ValueError:
            out.update(error="unknown", error_code=frame.error_code)
        out["trigger_frame_type"] = frame.frame_type
    return out


def _rare_frame(frame: f.Frame) -> dict[str, Any]:
    match frame:
        case f.ResetStream():
            return {
                "frame_type": "reset_stream",
                "stream_id": frame.stream_id,
                "error": "unknown",
                "error_code": frame.error_code,
                "final_size": frame.final_size,
            }
        case f.StopSending():
            return {
                "frame_type": "stop_sending",
                "stream_id": frame.stream_id,
                "error": "unknown",
                "error_code": frame.error_code,
            }
        case f.NewToken():
            return {"frame_type": "new_token", "token": {"raw": {"length": len(frame.token)}}}
        case f.MaxStreams():
            kind = "bidirectional" if frame.bidirectional else "unidirectional"
            return {"frame_type": "max_streams", "stream_type": kind, "maximum": frame.maximum}
        case f.DataBlocked():
            return {"frame_type": "data_blocked", "limit": frame.limit}
        case f.StreamDataBlocked():
            return {"frame_type": "stream_data_blocked", "stream_id": frame.stream_id, "limit": frame.limit}
        case f.StreamsBlocked():
            kind = "bidirectional" if frame.bidirectional else "unidirectional"
            return {"frame_type": "streams_blocked", "stream_type": kind, "limit": frame.limit}
        case f.NewConnectionId():
            return {
                "frame_type": "new_connection_id",
                "sequence_number": frame.sequence,
                "retire_prior_to": frame.retire_prior_to,
                "connection_id": frame.connection_id.hex(),
                "stateless_reset_token": frame.stateless_reset_token.hex(),
            }
        case f.RetireConnectionId():
            return {"frame_type": "retire_connection_id", "sequence_number": frame.sequence}
        case f.PathChallenge():
            return {"frame_type": "path_challenge", "data": frame.data.hex()}
        case f.PathResponse():
            return {"frame_type": "path_response", "data": frame.data.hex()}
        case f.HandshakeDone():
            return {"frame_type": "handshake_done"}
    return {"frame_type": "unknown", "frame_type_bytes": 0}


def parameters_to_qlog(params: TransportParameters) -> dict[str, Any]:
    """Transport parameters as ``parameters_set`` fields (quic-events §5.3)."""
    out: dict[str, Any] = {
        "max_idle_timeout": params.max_idle_timeout,
        "max_udp_payload_size": params.max_udp_payload_size,
        "ack_delay_exponent": params.ack_delay_exponent,
        "max_ack_delay": params.max_ack_delay,
        "active_connection_id_limit": params.active_connection_id_limit,
        "initial_max_data": params.initial_max_data,
        "initial_max_stream_data_bidi_local": params.initial_max_stream_data_bidi_local,
        "initial_max_stream_data_bidi_remote": params.initial_max_stream_data_bidi_remote,
        "initial_max_stream_data_uni": params.initial_max_stream_data_uni,
        "initial_max_streams_bidi": params.initial_max_streams_bidi,
        "initial_max_streams_uni": params.initial_max_streams_uni,
        "disable_active_migration": params.disable_active_migration,
    }
    for name in (
        "original_destination_connection_id",
        "initial_source_connection_id",
        "retry_source_connection_id",
        "stateless_reset_token",
    ):
        value = getattr(params, name)
        if value is not None:
            out[name] = value.hex()
    if params.max_datagram_frame_size is not None:
        out["max_datagram_frame_size"] = params.max_datagram_frame_size
    return out


def trace_header(role: str, original_dcid: bytes) -> dict[str, Any]:
    """The first record of a trace: a QlogFileSeq header (main schema §5) qvis also loads.

    The four format fields come first so they fall in the file's first 256 bytes (main schema §4
    asks this of the two current ones; qvis sniffs ``.qlog``/``.json`` files for the other two).
    """
    return {
        "file_schema": FILE_SCHEMA,
        "serialization_format": SERIALIZATION_FORMAT,
        "qlog_version": QLOG_VERSION,
        "qlog_format": QLOG_FORMAT,
        "title": f"rudp {role} {original_dcid.hex()}",
        "trace": {
            "vantage_point": {"name": "rudp", "type": role},
            "common_fields": {
                "group_id": original_dcid.hex(),
                "time_format": "relative_to_epoch",
                "reference_time": {"clock_type": "monotonic", "epoch": "unknown"},
            },
            "event_schemas": [EVENT_SCHEMA],
        },
    }


def connection_state_name(state_value: str, handshake_confirmed: bool) -> str:
    """Our lifecycle state as a qlog ``ConnectionState`` (quic-events §4.6)."""
    if state_value == "handshake":
        return "attempted"
    if state_value == "established":
        return "handshake_confirmed" if handshake_confirmed else "handshake_complete"
    return state_value  # closing, draining, closed


class NullQlog:
    """The qlog of a connection that logs nothing: every hook is a no-op.

    :class:`QlogTrace` overrides each hook; the connection calls them unconditionally.
    """

    records = False
    """True for a log that records what is sent (:class:`QlogTrace`): the sender then builds every
    datagram with :meth:`builder` (no packet trains)."""

    def start(
        self, original_dcid: bytes, local: TransportParameters, max_datagram_size: int, now: float
    ) -> None:
        """The connection's identity is known (its original DCID): open the log."""

    def builder(self, max_size: int, now: float) -> DatagramBuilder:
        """A datagram builder; :class:`QlogTrace` returns one that remembers the frames written."""
        return DatagramBuilder(max_size, now)

    def packets_sent(self, builder: DatagramBuilder, now: float) -> None:
        """The packets of a finished datagram were sent."""

    def packet_received(
        self,
        packet_type: PacketType | None,
        packet_number: int,
        payload: bytes | memoryview,
        size: int,
        now: float,
    ) -> None:
        """An authenticated packet arrived (``payload`` is its plaintext)."""

    def parameters_set(self, initiator: str, params: TransportParameters, now: float) -> None:
        """Transport parameters of ``initiator`` ("local" or "remote") are known."""

    def ecn_state_updated(self, state: str, reason: str, now: float) -> None:
        """The current path's ECN validation state changed (RFC 9000 Appendix A.4)."""

    def migration_state_updated(self, new: str, remote: tuple[str, int] | None, now: float) -> None:
        """A path change or a step of the client's move to the preferred address (qlog
        MigrationState: probing_started, migration_complete...), toward ``remote``."""

    def key_updated(self, trigger: str, key_phase: int, now: float) -> None:
        """Both 1-RTT keys moved to generation ``key_phase`` (RFC 9001 §6); ``trigger`` is
        "local_update" or "remote_update"."""

    def observe(self, congestion: CongestionController) -> CongestionController:
        """The controller loss recovery should drive (a logging proxy, or ``congestion`` itself)."""
        return congestion

    def sync(
        self,
        now: float,
        state: str,
        handshake_confirmed: bool,
        recovery: LossRecovery,
        pacer: Pacer,
    ) -> None:
        """After an input or output: log what changed (state, metrics) and flush."""


def packet_header(packet_type: str, packet_number: int) -> dict[str, Any]:
    """A minimal qlog ``PacketHeader`` (quic-events §8.8)."""
    return {"packet_type": packet_type, "packet_number": packet_number}


def packet_type_name(packet_type: PacketType | None) -> str:
    """The qlog name of a packet type."""
    return "unknown" if packet_type is None else _PACKET_TYPE_NAMES[packet_type]


def sent_packet_type(packet: SentPacket) -> str:
    """The qlog packet type of a sent packet record (Application packets are logged as 1-RTT)."""
    return _SPACE_TYPE_NAMES.get(packet.space, "1RTT")


def rtt_metrics(rtt: RttEstimator) -> dict[str, float]:
    """RTT fields of ``recovery_metrics_updated``, in milliseconds (empty before the first sample)."""
    if not rtt.has_sample:
        return {}
    return {
        "min_rtt": round(rtt.min_rtt * 1000, 3),
        "smoothed_rtt": round(rtt.smoothed_rtt * 1000, 3),
        "latest_rtt": round(rtt.latest_rtt * 1000, 3),
        "rtt_variance": round(rtt.rttvar * 1000, 3),
    }


def recovery_parameters(max_datagram_size: int, initial_window: int) -> dict[str, Any]:
    """``recovery:parameters_set`` fields (quic-events §7.1, RFC 9002 Appendix A.2, B.2)."""
    return {
        "reordering_threshold": K_PACKET_THRESHOLD,
        "time_threshold": K_TIME_THRESHOLD,
        "timer_granularity": round(K_GRANULARITY * 1000),
        "max_datagram_size": max_datagram_size,
        "initial_congestion_window": initial_window,
        "minimum_congestion_window": 2 * max_datagram_size,
        "persistent_congestion_threshold": K_PERSISTENT_CONGESTION_THRESHOLD,
    }


class SeqWriter:
    """Writes JSON Text Sequence records (RFC 7464) to a file, buffering until :meth:`flush`.

    The file is closed by :meth:`close` (when the connection closes), or when the writer is collected:
    a connection the application dropped without closing it leaves no open file behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._finalizer: weakref.finalize[[], SeqWriter] | None = None
        self._pending: list[str] = []

    def record(self, value: dict[str, Any]) -> None:
        """Queue one record: RS, compact JSON, LF."""
        self._pending.append(RECORD_SEPARATOR + json.dumps(value, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Write the queued records (opening the file on first use)."""
        if not self._pending:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
            self._finalizer = weakref.finalize(self, self._file.close)
        self._file.write("".join(self._pending))
        self._file.flush()
        self._pending.clear()

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
