"""Pluggable congestion control: the interface, the registry and the built-in controllers.

Owns the explicit registration of the built-in controllers (no import-time magic elsewhere). The
interface lives in :mod:`.base`, the name lookup in :mod:`.registry`, and each algorithm in its module.
"""

from __future__ import annotations

from rudp.quic.congestion.base import BaseCongestionController, CongestionController
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.congestion.registry import (
    CongestionFactory,
    CongestionSpec,
    register_congestion_controller,
    registered_congestion_controllers,
    resolve_congestion_controller,
)

register_congestion_controller("newreno", NewReno)

__all__ = [
    "BaseCongestionController",
    "CongestionController",
    "CongestionFactory",
    "CongestionSpec",
    "NewReno",
    "register_congestion_controller",
    "registered_congestion_controllers",
    "resolve_congestion_controller",
]
