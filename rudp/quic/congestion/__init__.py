"""Pluggable congestion control: the interface, the registry and the built-in controllers.

Owns the explicit registration of the built-in controllers (no import-time magic elsewhere): "newreno"
(RFC 9002 §7), "cubic" (RFC 9438 with HyStart++, RFC 9406) and "bbr" (BBRv3, draft-ietf-ccwg-bbr, on
the delivery-rate samples of :mod:`.delivery_rate`). The interface lives in :mod:`.base`,
the name lookup in :mod:`.registry`, and each algorithm in its module. ``README.md`` next to this file
documents the interface with a worked example of a user-defined controller.
"""

from __future__ import annotations

from rudp.quic.congestion.base import BaseCongestionController, CongestionController, RateSampleConsumer
from rudp.quic.congestion.bbr import Bbr
from rudp.quic.congestion.cubic import Cubic
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.congestion.registry import (
    CongestionFactory,
    CongestionSpec,
    register_congestion_controller,
    registered_congestion_controllers,
    resolve_congestion_controller,
)

register_congestion_controller("newreno", NewReno)
register_congestion_controller("cubic", Cubic)
register_congestion_controller("bbr", Bbr)

__all__ = [
    "BaseCongestionController",
    "Bbr",
    "CongestionController",
    "CongestionFactory",
    "CongestionSpec",
    "Cubic",
    "NewReno",
    "RateSampleConsumer",
    "register_congestion_controller",
    "registered_congestion_controllers",
    "resolve_congestion_controller",
]
