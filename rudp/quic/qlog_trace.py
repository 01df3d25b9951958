"""The qlog writer of one connection: :class:`QlogTrace` and its two observers.

Owns the trace's event stream (see :mod:`rudp.quic.qlog` for the format, the null object and the
value conversions), a :class:`~rudp.quic.packetizer.DatagramBuilder` that remembers the frames of each
packet so ``packet_sent`` can list them, and a congestion-controller proxy through which loss recovery's
signals become ``packet_lost`` and ``congestion_state_updated`` events. Only connections with
``Config.qlog_dir`` set ever build these (:func:`open_qlog`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import parse_frames
from rudp.codec.frames import Frame
from rudp.quic.congestion.undo import Undoable
from rudp.quic.delivery import DeliveryHandler
from rudp.quic.packetizer import DatagramBuilder
from rudp.quic.qlog import (
    CONGESTION_STATE_UPDATED,
    CONNECTION_STATE_UPDATED,
    ECN_STATE_UPDATED,
    KEY_UPDATED,
    METRICS_UPDATED,
    MIGRATION_STATE_UPDATED,
    PACKET_LOST,
    PACKET_RECEIVED,
    PACKET_SENT,
    PARAMETERS_SET,
    RECOVERY_PARAMETERS_SET,
    NullQlog,
    SeqWriter,
    connection_state_name,
    frame_to_qlog,
    packet_header,
    packet_type_name,
    parameters_to_qlog,
    recovery_parameters,
    rtt_metrics,
    sent_packet_type,
    trace_header,
)
from rudp.quic.sent import PacketSpace, SentPacket

if TYPE_CHECKING:
    from collections.abc import Callable

    from rudp.codec.transport_params import TransportParameters
    from rudp.config import Config
    from rudp.crypto.protection import PacketProtection
    from rudp.quic.congestion.base import CongestionController, RateSampleConsumer
    from rudp.quic.congestion.delivery_rate import RateSample
    from rudp.quic.pacing import Pacer
    from rudp.quic.recovery import LossRecovery
    from rudp.quic.rtt import RttEstimator


_NULL_QLOG: Final = NullQlog()
"""The qlog of every connection that logs nothing (it holds no state: one is shared)."""


def open_qlog(config: Config, *, is_client: bool) -> NullQlog:
    """The qlog for a new connection: a :class:`QlogTrace` if ``config.qlog_dir`` is set."""
    if config.qlog_dir is None:
        return _NULL_QLOG
    return QlogTrace(Path(config.qlog_dir), is_client=is_client, ack_delay_exponent=config.ack_delay_exponent)


class RecordingBuilder(DatagramBuilder):
    """A datagram builder that keeps each packet's frames and qlog packet type."""

    def __init__(self, max_size: int, now: float) -> None:
        super().__init__(max_size, now)
        self.records: list[tuple[SentPacket, str, list[Frame]]] = []
        self._open_type = "1RTT"
        self._open_frames: list[Frame] = []

    def start_packet(
        self,
        *,
        space: PacketSpace,
        protection: PacketProtection,
        first_byte: int,
        prefix: bytes,
        is_long: bool,
        packet_number: int,
        largest_acked: int | None,
    ) -> bool:
        """Open a packet (see :meth:`DatagramBuilder.start_packet`) and start its frame list."""
        if not is_long:
            self._open_type = "1RTT"
        else:
            self._open_type = {PacketSpace.INITIAL: "initial", PacketSpace.HANDSHAKE: "handshake"}.get(
                space, "0RTT"
            )
        self._open_frames = []
        return super().start_packet(
            space=space,
            protection=protection,
            first_byte=first_byte,
            prefix=prefix,
            is_long=is_long,
            packet_number=packet_number,
            largest_acked=largest_acked,
        )

    def push_frame(self, frame: Frame, handler: DeliveryHandler | None = None) -> None:
        """Write and remember a frame."""
        super().push_frame(frame, handler)
        self._open_frames.append(frame)

    def end_packet(self) -> SentPacket | None:
        """Close the packet and keep its record if it was not empty."""
        sent = super().end_packet()
        if sent is not None:
            self.records.append((sent, self._open_type, self._open_frames))
        return sent


class LoggedController:
    """A congestion controller proxy that logs what loss recovery tells the controller."""

    def __init__(self, inner: CongestionController, trace: QlogTrace) -> None:
        self.inner = inner
        self.trace = trace
        self._recovery_start_at: float | None = None
        self.uses_rate_samples: bool = getattr(inner, "uses_rate_samples", False)
        # The recovery hooks of congestion/undo.py and prr.py, forwarded when the controller has them.
        self.uses_prr: bool = getattr(inner, "uses_prr", False)
        self.set_app_limited: Callable[[bool], None] | None = getattr(inner, "set_app_limited", None)
        # The pacer's gain for a window-based controller (pacing.py), forwarded the same way.
        self.window_pacing_gain: Callable[[], float] | None = getattr(inner, "window_pacing_gain", None)

    @property
    def in_slow_start(self) -> bool:
        """The wrapped controller's, False if it has none (congestion/window_use.py asks it)."""
        return bool(getattr(self.inner, "in_slow_start", False))

    @property
    def congestion_events(self) -> int:
        """The wrapped controller's count (0 if it keeps none)."""
        return int(getattr(self.inner, "congestion_events", 0))

    def undo_snapshot(self) -> object:
        """Forwarded; None (nothing to undo) for a controller that cannot undo."""
        return self.inner.undo_snapshot() if isinstance(self.inner, Undoable) else None

    def undo(self, snapshot: object) -> None:
        """Forwarded (only called with a snapshot the controller gave)."""
        if isinstance(self.inner, Undoable):
            self.inner.undo(snapshot)
            self._recovery_start_at = None  # logged with the next acknowledgment's state

    @property
    def congestion_window(self) -> int:
        """The wrapped controller's window."""
        return self.inner.congestion_window

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        """Forwarded."""
        self.inner.on_packet_sent(packet, now)

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        """Forwarded; a recovery period ends with the first packet acknowledged that was sent after it."""
        self.inner.on_packets_acked(packets, now, rtt)
        start = self._recovery_start_at
        if start is not None and packets and packets[-1].sent_at > start:
            self._recovery_start_at = None
        self.trace.congestion_state(now, self._state(), None)

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        """Log each lost packet, then forward."""
        for packet in packets:
            self.trace.packet_lost(packet, now)
        before = self.inner.congestion_window
        self.inner.on_packets_lost(packets, now)
        if self.inner.congestion_window < before:
            self._recovery_start_at = now
        self.trace.congestion_state(now, self._state(), "loss")

    def on_persistent_congestion(self, now: float) -> None:
        """Forwarded."""
        self.inner.on_persistent_congestion(now)
        self.trace.congestion_state(now, self._state(), "persistent_congestion")

    def on_ecn_ce(self, count: int, now: float) -> None:
        """Forwarded."""
        self.inner.on_ecn_ce(count, now)
        self.trace.congestion_state(now, self._state(), "ecn")

    def on_path_change(self, now: float) -> None:
        """Forwarded."""
        self.inner.on_path_change(now)

    def on_rate_sample(self, sample: RateSample, now: float) -> None:
        """Forwarded to a controller that consumes rate samples (BBR names its own states)."""
        cast("RateSampleConsumer", self.inner).on_rate_sample(sample, now)
        if sample.valid:
            self.trace.delivery_rate = sample.delivery_rate
        self.trace.congestion_state(now, self._state(), None)

    def can_send(self, bytes_in_flight: int) -> bool:
        """Forwarded."""
        return self.inner.can_send(bytes_in_flight)

    def pacing_rate(self, rtt: RttEstimator) -> float | None:
        """Forwarded."""
        return self.inner.pacing_rate(rtt)

    def metrics(self) -> dict[str, float]:
        """Forwarded."""
        return self.inner.metrics()

    def _state(self) -> str:
        # A controller may name its own states (``congestion_state``, e.g. CUBIC's); otherwise the
        # RFC 9002 states are derived from the window, ssthresh and the last reduction.
        named = getattr(self.inner, "congestion_state", None)
        if isinstance(named, str):
            return named
        if self._recovery_start_at is not None:
            return "recovery"
        metrics = self.inner.metrics()
        ssthresh = metrics.get("ssthresh")
        if ssthresh is None or self.inner.congestion_window < ssthresh:
            return "slow_start"
        return "congestion_avoidance"


class QlogTrace(NullQlog):
    """Writes one connection's qlog as JSON-SEQ (QlogFileSeq, qlog main schema §5), qvis-readable."""

    records = True

    def __init__(self, directory: Path, *, is_client: bool, ack_delay_exponent: int = 3) -> None:
        self.directory = directory
        self.is_client = is_client
        self.path: Path | None = None
        self._writer: SeqWriter | None = None
        self._local_exponent = ack_delay_exponent
        self._peer_exponent = 3
        self._congestion_state: str | None = None
        self._connection_state: str | None = None
        self._metrics: dict[str, float] = {}
        self._early: list[dict[str, Any]] = []
        self._initial_window = 0
        self.delivery_rate: float | None = None
        """The latest valid delivery-rate sample (bytes/s), for controllers that consume them (BBR)."""

    def _event(self, now: float, name: str, data: dict[str, Any]) -> None:
        record = {"time": round(now * 1000, 3), "name": name, "data": data}
        if self._writer is None:
            self._early.append(record)
        else:
            self._writer.record(record)

    # -- hooks ----------------------------------------------------------------------------------------------

    def start(
        self, original_dcid: bytes, local: TransportParameters, max_datagram_size: int, now: float
    ) -> None:
        """Open ``<dir>/<odcid hex>_<role>.sqlog``; write the header and the local parameters."""
        role = "client" if self.is_client else "server"
        self.path = self.directory / f"{original_dcid.hex()}_{role}.sqlog"
        self._writer = SeqWriter(self.path)
        self._writer.record(trace_header(role, original_dcid))
        for record in self._early:
            self._writer.record(record)
        self._early.clear()
        self.parameters_set("local", local, now)
        self._event(
            now, RECOVERY_PARAMETERS_SET, recovery_parameters(max_datagram_size, self._initial_window)
        )

    def builder(self, max_size: int, now: float) -> DatagramBuilder:
        """A :class:`RecordingBuilder`."""
        return RecordingBuilder(max_size, now)

    def packets_sent(self, builder: DatagramBuilder, now: float) -> None:
        """One ``transport:packet_sent`` per packet of the datagram, with its frames."""
        if not isinstance(builder, RecordingBuilder):
            return
        exponent = self._local_exponent
        for sent, packet_type, frames in builder.records:
            self._event(
                now,
                PACKET_SENT,
                {
                    "header": packet_header(packet_type, sent.packet_number),
                    "frames": [frame_to_qlog(frame, exponent) for frame in frames],
                    "raw": {"length": sent.size_bytes},
                },
            )

    def packet_received(
        self,
        packet_type: PacketType | None,
        packet_number: int,
        payload: bytes | memoryview,
        size: int,
        now: float,
    ) -> None:
        """``transport:packet_received`` with the frames decoded again from the plaintext."""
        exponent = self._peer_exponent
        frames = [frame_to_qlog(frame, exponent) for _, frame in parse_frames(payload)]
        self._event(
            now,
            PACKET_RECEIVED,
            {
                "header": packet_header(packet_type_name(packet_type), packet_number),
                "frames": frames,
                "raw": {"length": size},
            },
        )

    def parameters_set(self, initiator: str, params: TransportParameters, now: float) -> None:
        """``transport:parameters_set`` for one side."""
        if initiator == "remote":
            self._peer_exponent = params.ack_delay_exponent
        data = {"initiator": initiator, "owner": initiator, **parameters_to_qlog(params)}  # owner: qvis
        self._event(now, PARAMETERS_SET, data)

    def observe(self, congestion: CongestionController) -> CongestionController:
        """A :class:`LoggedController` around ``congestion``."""
        self._initial_window = congestion.congestion_window
        return LoggedController(congestion, self)

    def ecn_state_updated(self, state: str, reason: str, now: float) -> None:
        data: dict[str, Any] = {"new": state}
        if reason:
            data["reason"] = reason
        self._event(now, ECN_STATE_UPDATED, data)

    def migration_state_updated(self, new: str, remote: tuple[str, int] | None, now: float) -> None:
        """``quic:migration_state_updated`` with the remote half of the tuple (TupleEndpointInfo)."""
        data: dict[str, Any] = {"new": new}
        if remote is not None:
            family = "v6" if ":" in remote[0] else "v4"
            data["tuple_remote"] = {f"ip_{family}": remote[0], f"port_{family}": remote[1]}
        self._event(now, MIGRATION_STATE_UPDATED, data)

    def key_updated(self, trigger: str, key_phase: int, now: float) -> None:
        """``security:key_updated`` (draft 13 ``quic:key_updated``) for each direction's 1-RTT secret;
        the secrets themselves are not written."""
        for key_type in ("client_1rtt_secret", "server_1rtt_secret"):
            self._event(now, KEY_UPDATED, {"key_type": key_type, "key_phase": key_phase, "trigger": trigger})

    def packet_lost(self, packet: SentPacket, now: float) -> None:
        """``recovery:packet_lost``."""
        self._event(
            now,
            PACKET_LOST,
            {"header": packet_header(sent_packet_type(packet), packet.packet_number)},
        )

    def congestion_state(self, now: float, state: str, trigger: str | None) -> None:
        """``recovery:congestion_state_updated`` when the state differs from the last one logged."""
        old = self._congestion_state
        if state == old:
            return
        self._congestion_state = state
        data: dict[str, Any] = {"new": state}
        if old is not None:
            data["old"] = old
        if trigger is not None:
            data["trigger"] = trigger
        self._event(now, CONGESTION_STATE_UPDATED, data)

    def sync(
        self,
        now: float,
        state: str,
        handshake_confirmed: bool,
        recovery: LossRecovery,
        pacer: Pacer,
    ) -> None:
        """Log connection state and recovery metrics that changed, then flush the file."""
        name = connection_state_name(state, handshake_confirmed)
        if name != self._connection_state:
            data = (
                {"new": name}
                if self._connection_state is None
                else {"old": self._connection_state, "new": name}
            )
            self._connection_state = name
            self._event(now, CONNECTION_STATE_UPDATED, data)
        self._log_metrics(now, recovery, pacer)
        writer = self._writer
        if writer is not None:
            if name == "closed":
                writer.close()
            else:
                writer.flush()

    def _log_metrics(self, now: float, recovery: LossRecovery, pacer: Pacer) -> None:
        congestion = recovery.congestion
        current: dict[str, float] = rtt_metrics(recovery.rtt)
        current["pto_count"] = recovery.pto_count
        current["congestion_window"] = congestion.congestion_window
        current["bytes_in_flight"] = recovery.bytes_in_flight
        model = congestion.metrics()
        ssthresh = model.get("ssthresh")
        if ssthresh is not None:
            current["ssthresh"] = int(ssthresh)
        if math.isfinite(pacer.rate):
            current["pacing_rate"] = int(pacer.rate * 8)
        # Not in the qlog schema (extension fields, bits/s like pacing_rate): the latest delivery-rate
        # sample and a rate-based controller's bandwidth estimate (BBR's ``bw``).
        if self.delivery_rate is not None:
            current["delivery_rate"] = int(self.delivery_rate * 8)
        if model.get("bw"):
            current["bandwidth_estimate"] = int(model["bw"] * 8)
        last = self._metrics
        changed = {key: value for key, value in current.items() if last.get(key) != value}
        if not changed:
            return
        last.update(changed)
        self._event(now, METRICS_UPDATED, changed)
