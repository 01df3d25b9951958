"""The congestion controller registry: names to factories.

Owns the mapping from names ("newreno", ...) to factories and the rules for turning a user's choice
(a name, a class or any callable) into a factory. It does not register anything by itself:
:mod:`rudp.quic.congestion` registers the built-in controllers explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from rudp.errors import ConfigError
from rudp.quic.congestion.base import CongestionController

CongestionFactory: TypeAlias = Callable[[int], CongestionController]
"""Builds a controller for one connection from its max datagram size in bytes."""

CongestionSpec: TypeAlias = "str | type[CongestionController] | CongestionFactory"
"""What a user may pass: a registered name, a controller class, or a factory."""

_REGISTRY: dict[str, CongestionFactory] = {}


def register_congestion_controller(name: str, factory: CongestionFactory) -> None:
    """Make ``factory`` selectable as ``name`` (case-insensitive); re-registering replaces it.

    Raises:
        ConfigError: if ``name`` is empty or ``factory`` is not callable.
    """
    if not name or not isinstance(name, str):
        raise ConfigError("congestion controller name must be a non-empty string")
    if not callable(factory):
        raise ConfigError(f"congestion controller factory for {name!r} is not callable")
    _REGISTRY[name.lower()] = factory


def registered_congestion_controllers() -> list[str]:
    """The registered names, sorted."""
    return sorted(_REGISTRY)


def resolve_congestion_controller(spec: CongestionSpec) -> CongestionFactory:
    """Turn a name, a class or a factory into a factory taking the max datagram size.

    A class (or any callable) is called with the max datagram size as its only positional argument.

    Raises:
        ConfigError: if ``spec`` is an unknown name (the message lists the known names) or is neither
            a string nor callable.
    """
    if isinstance(spec, str):
        factory = _REGISTRY.get(spec.lower())
        if factory is None:
            known = ", ".join(registered_congestion_controllers()) or "(none)"
            raise ConfigError(f"unknown congestion controller {spec!r}; known controllers: {known}")
        return factory
    if callable(spec):
        return spec
    raise ConfigError(f"congestion controller must be a name, a class or a factory, not {spec!r}")
