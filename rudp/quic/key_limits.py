"""AEAD usage limits (RFC 9001 §6.6) and the automatic 1-RTT key updates they call for (RFC 9001 §6).

:class:`KeyUsage` belongs to a connection's :class:`~rudp.quic.spaces.PacketSpaces` (it counts across every
level's keys) and owns:

* the limits in force: the negotiated suite's (:data:`~rudp.crypto.suites.AEAD_LIMITS`), or lower ones
  from ``Config.aead_limits`` (tests reach them with a few packets);
* the packets that failed authentication, per encryption level and in all: the integrity limit counts
  them across every key of the connection, and one past it closes the connection with
  AEAD_LIMIT_REACHED. (The packets protected are counted by each key itself,
  :attr:`~rudp.crypto.protection.PacketProtection.packets_protected`, so a new key starts at zero.)
* the decision taken before each datagram: start a key update once the current 1-RTT key protected
  ``Config.key_update_interval`` packets or three quarters of the confidentiality limit, whichever
  comes first; wait while an update may not start yet and try again before the next datagram. An update
  never starts before the handshake is confirmed nor before a packet of the current key phase is
  acknowledged (RFC 9001 §6, §6.1); one for the interval also waits three PTOs after that
  acknowledgment (the SHOULD of §6.5, for peers that keep only two sets of read keys), one for the
  limit does not. If the key nears its limit and still no update could start, close with
  AEAD_LIMIT_REACHED (§6.6 recommends closing before the limit leaves no way out; the margin leaves
  room for the CONNECTION_CLOSE packets);
* the ``key_updated`` qlog events of every 1-RTT key update, local (requested, automatic) or remote.

Only 1-RTT keys are ever updated; Initial, 0-RTT and Handshake keys protect a handshake's worth of
packets, far below any limit, so their confidentiality is not checked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Final, Protocol

from rudp.crypto.keys import INITIAL_SUITE
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import AEAD_LIMITS, AeadLimits, CipherSuite
from rudp.errors import TransportError, TransportErrorCode
from rudp.tls.engine import EncryptionLevel

if TYPE_CHECKING:
    from rudp.quic.qlog import NullQlog


class UpdatableKeys(Protocol):
    """The 1-RTT keys as :meth:`KeyUsage.maintain` sees them (:class:`~rudp.quic.keys.KeyPhase`)."""

    @property
    def write(self) -> PacketProtection | None:
        """The current 1-RTT write key, if installed."""
        ...

    def can_update(self) -> bool:
        """True if a key update may start now (RFC 9001 §6.1)."""
        ...

    def update(self, trigger: str = ...) -> None:
        """Start a key update."""
        ...


UPDATE_MARGIN: Final = 4
"""An automatic key update starts once a key protected all but 1/4 of its confidentiality limit."""
CLOSE_MARGIN: Final = 16
"""If no update could start, the connection closes once a key protected all but 1/16 of the limit."""
KEY_UPDATE_WAIT_PTOS: Final = 3
"""RFC 9001 §6.5: wait three PTOs after the current key phase is acknowledged before updating again
(a peer that keeps two sets of read keys needs that long to drop the old ones)."""

LOCAL_UPDATE: Final = "local_update"
REMOTE_UPDATE: Final = "remote_update"


@lru_cache(maxsize=16)  # (the suites' limits and the configured ones: a handful)
def _thresholds(confidentiality: int, interval: int | None) -> tuple[int, int, int]:
    """(urgent_at, update_at, close_at) of :class:`KeyUsage` for a confidentiality limit and an
    update interval, computed once per pair (every connection installs four keys)."""
    urgent_at = confidentiality - confidentiality // UPDATE_MARGIN
    update_at = urgent_at if interval is None else min(interval, urgent_at)
    return urgent_at, update_at, confidentiality - max(1, confidentiality // CLOSE_MARGIN)


class KeyUsage:
    """Counters, limits and the key-update decision of one connection (see the module docstring)."""

    __slots__ = (
        "_not_before",
        "_override",
        "_unlogged",
        "close_at",
        "forged",
        "forged_by_level",
        "interval",
        "limits",
        "update_at",
        "urgent_at",
    )

    def __init__(self, *, interval: int | None = None, limits: AeadLimits | None = None) -> None:
        self.interval = interval
        """Packets per 1-RTT key after which a key update starts by itself (None: near the limit only)."""
        self._override = limits
        self.limits = limits if limits is not None else AEAD_LIMITS[INITIAL_SUITE]
        """The limits in force (the negotiated suite's once known, or the override)."""
        self.forged = 0
        """Received packets that failed authentication, all keys and levels (RFC 9001 §6.6)."""
        self.forged_by_level: dict[EncryptionLevel, int] = {}
        """The same count, per encryption level."""
        self.update_at = 0
        """Packets under one 1-RTT key from which a key update is due (the interval, or ``urgent_at``)."""
        self.urgent_at = 0
        """Packets under one 1-RTT key from which the confidentiality limit needs an update: it starts
        as soon as RFC 9001 allows, without the three PTOs of §6.5."""
        self.close_at = 0
        """Packets under one 1-RTT key from which, with no update possible, the connection closes."""
        self._not_before = 0.0
        """No automatic update before this time (three PTOs after the current phase was acknowledged)."""
        self._unlogged: list[tuple[str, int]] = []
        """Key updates (trigger, key phase) waiting for a ``now`` to be logged at."""
        self.urgent_at, self.update_at, self.close_at = _thresholds(self.limits.confidentiality, interval)

    def _set_thresholds(self) -> None:
        limit = self.limits.confidentiality
        self.urgent_at, self.update_at, self.close_at = _thresholds(limit, self.interval)

    def set_suite(self, suite: CipherSuite) -> None:
        """The negotiated suite is known (its Handshake or 1-RTT keys are installed): use its limits
        (asked at each key installed: nothing to do when they are already in force)."""
        if self._override is None:
            limits = AEAD_LIMITS[suite]
            if limits is not self.limits:
                self.limits = limits
                self._set_thresholds()

    # -- receiving -------------------------------------------------------------------------------

    def on_forged(self, level: EncryptionLevel) -> None:
        """A packet of ``level`` failed authentication.

        Raises:
            TransportError: AEAD_LIMIT_REACHED once the count exceeds the integrity limit (RFC 9001
                §6.6: close at once and process no more packets).
        """
        self.forged += 1
        self.forged_by_level[level] = self.forged_by_level.get(level, 0) + 1
        if self.forged > self.limits.integrity:
            raise TransportError(
                TransportErrorCode.AEAD_LIMIT_REACHED,
                f"{self.forged} packets failed authentication, over the integrity limit "
                f"of {self.limits.integrity} (RFC 9001 §6.6)",
            )

    # -- key phases --------------------------------------------------------------------------------

    def on_phase_changed(self, trigger: str, key_phase: int) -> None:
        """Both 1-RTT keys moved to generation ``key_phase``; ``trigger`` is :data:`LOCAL_UPDATE` or
        :data:`REMOTE_UPDATE`. Logged at the next :meth:`maintain`, which has the time."""
        self._unlogged.append((trigger, key_phase))

    def on_phase_acked(self, now: float, pto: float) -> None:
        """A packet of the current key phase was acknowledged at ``now``: the peer has the keys, and an
        update for the interval may follow three PTOs later (RFC 9001 §6.5)."""
        self._not_before = now + KEY_UPDATE_WAIT_PTOS * pto

    # -- sending -------------------------------------------------------------------------------------

    def maintain(self, keys: UpdatableKeys, now: float, *, confirmed: bool, qlog: NullQlog) -> None:
        """Before a datagram is built: start a key update if one is due and allowed (``confirmed``: the
        handshake is confirmed, RFC 9001 §6), and log the key updates made since the last call.

        Raises:
            TransportError: AEAD_LIMIT_REACHED when the current 1-RTT key nears its confidentiality
                limit and no key update can start (RFC 9001 §6.6).
        """
        if self._unlogged:
            self._log(now, qlog)
        write = keys.write
        if write is None or write.packets_protected < self.update_at:
            return
        urgent = write.packets_protected >= self.urgent_at
        if confirmed and (urgent or now >= self._not_before) and keys.can_update():
            keys.update()
            self._log(now, qlog)
        elif write.packets_protected >= self.close_at:
            raise TransportError(
                TransportErrorCode.AEAD_LIMIT_REACHED,
                f"{write.packets_protected} packets protected with one key and no key update possible "
                f"(confidentiality limit {self.limits.confidentiality}, RFC 9001 §6.6)",
            )

    def packets_before_due(self, keys: UpdatableKeys) -> int:
        """How many more packets the current write key may protect before :meth:`maintain` has
        anything to do (0: call it before the next one). A packet train (several packets, no
        datagram received between them) calls it only then."""
        write = keys.write
        if self._unlogged or write is None:
            return 0
        left = self.update_at - write.packets_protected
        return left if left > 0 else 0

    def _log(self, now: float, qlog: NullQlog) -> None:
        for trigger, key_phase in self._unlogged:
            qlog.key_updated(trigger, key_phase, now)
        self._unlogged.clear()

    @staticmethod
    def key_phase_packets(keys: UpdatableKeys) -> int:
        """Packets protected with the current 1-RTT write key (0 before there is one)."""
        write = keys.write
        return 0 if write is None else write.packets_protected
