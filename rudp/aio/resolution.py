"""NameResolutionError: a host name that does not resolve, in the asyncio layer (it subclasses
``socket.gaierror``, which the sans-IO core's :mod:`rudp.errors` must not import).

Also exported as ``rudp.NameResolutionError``.
"""

from __future__ import annotations

import socket

from rudp.errors import NetworkError


class NameResolutionError(NetworkError, socket.gaierror):
    """A host name did not resolve: raised for the :class:`socket.gaierror` of the lookup (its
    ``__cause__``). Also a ``socket.gaierror`` and an ``OSError``."""

    @classmethod
    def for_host(cls, host: str, cause: Exception | None = None) -> NameResolutionError:
        """The error for ``host`` failing to resolve (``cause``: the lookup's exception, if any: a
        ``socket.gaierror``, or the ``UnicodeError`` of a name that cannot be encoded)."""
        if cause is None:
            return cls(f"cannot resolve {host!r}: no address")
        if isinstance(cause, OSError):
            words = cause.strerror or str(cause)
            return cls(f"cannot resolve {host!r}: {words}", errno=cause.errno, strerror=cause.strerror)
        return cls(f"cannot resolve {host!r}: not a valid host name ({cause})")


__all__ = ["NameResolutionError"]
