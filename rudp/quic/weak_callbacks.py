"""Callbacks that do not keep their object alive.

A subsystem that hands one of its bound methods to an object it owns (the handshake to its TLS
engine, say) makes a reference cycle: owner -> owned -> bound method -> owner. Python frees such a
cycle only in a garbage collection, so every connection would linger after it ends (in the oldest
generation, for a long-running server: memory that grows between full collections, and collections
that take longer the more connections pass through). Rarely called callbacks go through
:func:`weak_method` instead; hot ones are passed as arguments where they are used.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def weak_method(method: Callable[P, R]) -> Callable[P, R]:
    """``method`` (a bound method) called through a weak reference to its object.

    Raises:
        ReferenceError: (when called) the object is gone; an owner outlives what it owns, so this
            means a callback escaped its owner.
    """
    ref = weakref.WeakMethod(method)

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        target = ref()
        if target is None:
            raise ReferenceError("the callback's object no longer exists")
        return target(*args, **kwargs)

    return call


def weak_callback(method: Callable[P, None]) -> Callable[P, None]:
    """``method`` (a bound method returning None) called through a weak reference to its object, and
    nothing done once the object is gone (a timer or socket callback that fires after its owner was
    dropped)."""
    ref = weakref.WeakMethod(method)

    def call(*args: P.args, **kwargs: P.kwargs) -> None:
        target = ref()
        if target is not None:
            target(*args, **kwargs)

    return call
