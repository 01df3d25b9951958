"""The congestion controller registry and a user-defined controller driven by LossRecovery."""

from __future__ import annotations

import pytest

from rudp.errors import ConfigError
from rudp.quic.congestion import (
    BaseCongestionController,
    CongestionController,
    NewReno,
    register_congestion_controller,
    registered_congestion_controllers,
    resolve_congestion_controller,
)
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket
from tests.quic.recovery.helpers import RecordingController, ack_of, packet

APP = PacketSpace.APPLICATION


def test_resolve_builtin_by_name_case_insensitive() -> None:
    assert "newreno" in registered_congestion_controllers()
    for name in ("newreno", "NewReno"):
        controller = resolve_congestion_controller(name)(1500)
        assert isinstance(controller, NewReno)
        assert controller.max_datagram_size == 1500


def test_resolve_class_and_factory() -> None:
    assert isinstance(resolve_congestion_controller(NewReno)(1200), NewReno)
    made: list[int] = []

    def factory(mds: int) -> CongestionController:
        made.append(mds)
        return RecordingController(mds)

    assert isinstance(resolve_congestion_controller(factory)(1350), RecordingController)
    assert made == [1350]


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_congestion_controller("bbr9")
    message = str(info.value)
    assert "bbr9" in message
    for name in registered_congestion_controllers():
        assert name in message
    assert isinstance(info.value, ValueError)


def test_not_a_controller_spec() -> None:
    with pytest.raises(ConfigError):
        resolve_congestion_controller(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        register_congestion_controller("", NewReno)
    with pytest.raises(ConfigError):
        register_congestion_controller("x", 3)  # type: ignore[arg-type]


def test_register_user_controller_by_name() -> None:
    register_congestion_controller("test-recording", RecordingController)
    assert "test-recording" in registered_congestion_controllers()
    assert isinstance(resolve_congestion_controller("Test-Recording")(1200), RecordingController)


def test_builtins_satisfy_the_protocol() -> None:
    assert isinstance(NewReno(), CongestionController)
    assert isinstance(BaseCongestionController(), CongestionController)


class TwoPacketWindow(RecordingController):
    """A user-defined controller: at most two packets in flight, whatever their size."""

    def __init__(self, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size)
        self.in_flight = 0

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        super().on_packet_sent(packet, now)
        self.in_flight += packet.in_flight

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        super().on_packets_acked(packets, now, rtt)
        self.in_flight -= sum(p.in_flight for p in packets)

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        super().on_packets_lost(packets, now)
        self.in_flight -= sum(p.in_flight for p in packets)

    def can_send(self, bytes_in_flight: int) -> bool:
        return self.in_flight < 2


def test_user_controller_hooks_called_and_window_obeyed() -> None:
    controller = resolve_congestion_controller(TwoPacketWindow)(1200)
    assert isinstance(controller, TwoPacketWindow)
    recovery = LossRecovery(controller, RttEstimator(), max_ack_delay=0.025, is_client=False)
    recovery.set_handshake_confirmed()
    # Drive the window: send while allowed.
    pn = 0
    while recovery.can_send(100):
        recovery.on_packet_sent(packet(pn, 0.0, size=100))
        pn += 1
    assert pn == 2
    recovery.on_ack_received(APP, ack_of(1, ecn=(0, 0, 2)), 0.0, 0.1)
    recovery.on_ecn_ce(2, 0.1)  # what the connection does once the path's ECN counts validate
    assert controller.acked == [[1]]
    assert controller.ecn == [2]
    assert recovery.can_send(100)
    for number, at in [(2, 1.0), (3, 2.0), (4, 3.0), (5, 3.1)]:
        recovery.on_packet_sent(packet(number, at, size=100))
    recovery.on_ack_received(APP, ack_of(1, 5), 0.0, 3.2)
    assert controller.sent == [0, 1, 2, 3, 4, 5]
    assert controller.lost == [[0, 2, 3, 4]]
    assert controller.persistent == [3.2]
    assert controller.acked == [[1], [5]]


def test_send_hook_follows_the_path_controller() -> None:
    # LossRecovery calls the controller's on_packet_sent for every packet (skipping only the base
    # class's no-op); after a path change, the new path's controller gets them, the old one no more.
    first = RecordingController(1200)
    recovery = LossRecovery(first, RttEstimator(), max_ack_delay=0.025, is_client=False)
    recovery.set_handshake_confirmed()
    recovery.on_packet_sent(packet(0, 0.0, size=100))
    recovery.switch_path(NewReno(1200), RttEstimator())  # a no-op hook: nothing recorded anywhere
    recovery.on_packet_sent(packet(1, 0.1, size=100))
    second = RecordingController(1200)
    recovery.switch_path(second, RttEstimator())
    recovery.on_packet_sent(packet(2, 0.2, size=100))
    assert first.sent == [0]
    assert second.sent == [2]
