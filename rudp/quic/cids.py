"""Connection IDs: the ones we issue (with stateless reset tokens) and the peer's pool (RFC 9000 §5.1).

Owns NEW_CONNECTION_ID / RETIRE_CONNECTION_ID handling and writing, and the stateless reset tokens
(derived from a static key so an endpoint that lost state can still send a reset, RFC 9000 §10.3.2).
Routing by CID is the endpoint's job; it learns about changes from :attr:`LocalConnectionIds.changes`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

from rudp.codec.frames import NewConnectionId, RetireConnectionId
from rudp.crypto.hkdf import KeyedHmac, hmac_digest
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.delivery import FrameSink

RESET_TOKEN_SIZE = 16


def stateless_reset_token(key: bytes, cid: bytes) -> bytes:
    """The stateless reset token of ``cid`` under the endpoint's static ``key``."""
    return hmac_digest("sha256", key, cid)[:RESET_TOKEN_SIZE]


@lru_cache(maxsize=4)
def _reset_prf(key: bytes) -> KeyedHmac:
    """The HMAC of an endpoint's static reset ``key``, its pads hashed once for all the endpoint's
    connections (a :class:`KeyedHmac` never changes: each digest continues copies of its pads). A few
    keys at most: one per endpoint of the process, none from a peer."""
    return KeyedHmac("sha256", key)


@dataclass(slots=True)
class IssuedCid:
    """A connection ID we issued."""

    sequence: int
    cid: bytes
    reset_token: bytes
    sent: bool = False
    """NEW_CONNECTION_ID for it has been acknowledged (seq 0 is sent in the handshake)."""
    in_flight: bool = False


class LocalConnectionIds:
    """The connection IDs the peer may use to reach us."""

    def __init__(
        self, initial_cid: bytes, reset_key: bytes | None, randbytes: Callable[[int], bytes], cid_length: int
    ):
        # The endpoint's static key the reset tokens are derived from (RFC 9000 §10.3.2), its HMAC
        # pads hashed once for the endpoint (_reset_prf); None: a client's connection, whose tokens
        # are random, kept with their CIDs and never derived again.
        prf = self._reset_prf = _reset_prf(reset_key) if reset_key is not None else None
        self._randbytes = randbytes
        self._cid_length = cid_length
        self._next_sequence = 1
        self._limit = 0  # how many the peer holds at once, once issue_up_to() has been called
        # (_reset_token, inline: once per connection)
        token = randbytes(RESET_TOKEN_SIZE) if prf is None else prf.digest(initial_cid)[:RESET_TOKEN_SIZE]
        self.active: dict[int, IssuedCid] = {0: IssuedCid(0, initial_cid, token, sent=True)}
        self.changes: list[tuple[bool, bytes]] = []
        """(added?, cid) for the endpoint's routing table (a list: taken whole, a few at a time)."""
        self._unsent_hint = False
        """False: every active CID's NEW_CONNECTION_ID is sent or in flight (set on each issue and
        loss, cleared when :meth:`has_data` finds none; asked before every datagram)."""

    def _reset_token(self, cid: bytes) -> bytes:
        """:func:`stateless_reset_token` of ``cid`` under the endpoint's key, or random bytes."""
        prf = self._reset_prf
        if prf is None:
            # RFC 9000 §10.3: a token must be difficult to guess; one no endpoint key will ever derive
            # again can be random (an HMAC costs ~20x the random bytes).
            return self._randbytes(RESET_TOKEN_SIZE)
        return prf.digest(cid)[:RESET_TOKEN_SIZE]

    def issue_up_to(self, limit: int) -> None:
        """Issue new CIDs until ``limit`` are active (zero-length CIDs issue none)."""
        if self._cid_length == 0:
            return
        self._limit = limit
        active = self.active
        count = limit - len(active)
        if count <= 0:
            return
        prf = self._reset_prf
        if prf is None:  # (a client's random tokens are drawn between its CIDs)
            while len(active) < limit:
                cid = self._randbytes(self._cid_length)
                entry = IssuedCid(self._next_sequence, cid, self._reset_token(cid))
                active[entry.sequence] = entry
                self._next_sequence += 1
                self.changes.append((True, cid))
            self._unsent_hint = True
            return
        # A server's reset tokens derived in one call (RFC 9000 §10.3.2), the CIDs drawn in the same
        # order as one at a time (the same bytes as the loop above).
        randbytes, length = self._randbytes, self._cid_length
        cids = []
        for _ in range(count):  # (plain loops: no comprehension frames)
            cids.append(randbytes(length))
        tokens = prf.prefixes(cids, RESET_TOKEN_SIZE)
        sequence = self._next_sequence
        changes = self.changes
        for cid, token in zip(cids, tokens, strict=True):
            active[sequence] = IssuedCid(sequence, cid, token)
            sequence += 1
            changes.append((True, cid))
        self._next_sequence = sequence
        self._unsent_hint = True

    def issue_preferred(self) -> IssuedCid:
        """(server) The connection ID of the preferred_address transport parameter: sequence number 1
        (RFC 9000 §5.1.1), delivered by the handshake (so never in a NEW_CONNECTION_ID frame), routed
        and retired like any other. Issued once, before any other; later calls return it."""
        entry = self.active.get(1)
        if entry is not None or self._next_sequence > 1 or self._cid_length == 0:
            if entry is None:
                raise ValueError("the preferred address needs connection IDs, issued before any other")
            return entry
        cid = self._randbytes(self._cid_length)
        entry = IssuedCid(1, cid, self._reset_token(cid), sent=True)
        self.active[1] = entry
        self._next_sequence = 2
        self.changes.append((True, cid))
        return entry

    def on_retire(self, frame: RetireConnectionId, packet_dcid: bytes) -> None:
        """The peer retired one of our CIDs (RFC 9000 §19.16).

        Raises:
            TransportError: PROTOCOL_VIOLATION for a sequence never issued, or the CID of the packet
                carrying the frame.
        """
        if frame.sequence >= self._next_sequence:
            raise TransportError(TransportErrorCode.PROTOCOL_VIOLATION, "retiring an unissued CID", 0x19)
        entry = self.active.get(frame.sequence)
        if entry is None:
            return
        if entry.cid == packet_dcid:
            raise TransportError(TransportErrorCode.PROTOCOL_VIOLATION, "retiring the CID in use", 0x19)
        del self.active[frame.sequence]
        self.changes.append((False, entry.cid))
        # RFC 9000 §5.1.1: replace it, so the peer keeps spare IDs for migration. Each replacement
        # answers one RETIRE_CONNECTION_ID, so the active set never exceeds the limit.
        if self._limit:
            self.issue_up_to(self._limit)

    def write_frames(self, sink: FrameSink) -> None:
        """Write NEW_CONNECTION_ID frames for CIDs not yet delivered."""
        for entry in self.active.values():
            if entry.sent or entry.in_flight:
                continue
            frame = NewConnectionId(entry.sequence, 0, entry.cid, entry.reset_token)
            if sink.remaining < 2 + 8 + 8 + 1 + len(entry.cid) + 16:
                return
            entry.in_flight = True
            sink.push_frame(frame, partial(self._on_delivery, entry))

    def _on_delivery(self, entry: IssuedCid, acked: bool) -> None:
        """The delivery handler of a NEW_CONNECTION_ID frame (a partial: no closure per frame)."""
        entry.in_flight = False
        if acked:
            entry.sent = True
        elif not entry.sent:
            self._unsent_hint = True  # RFC 9000 §13.3: a lost NEW_CONNECTION_ID is sent again

    def take_changes(self) -> list[tuple[bool, bytes]]:
        """CIDs issued (True) or retired (False) since the last call, for the endpoint's routing."""
        changes = self.changes
        self.changes = []
        return changes

    def has_data(self) -> bool:
        """True when a NEW_CONNECTION_ID frame is waiting (the packetizer's ``FrameSource`` question)."""
        if not self._unsent_hint:
            return False  # (the usual answer, without a look at every CID)
        for entry in self.active.values():  # (a plain loop: asked for every datagram)
            if not entry.sent and not entry.in_flight:
                return True
        self._unsent_hint = False
        return False

    has_data_to_send = has_data  # one function, no second call per question


@dataclass(slots=True)
class PeerCid:
    """A connection ID the peer gave us."""

    sequence: int
    cid: bytes
    reset_token: bytes | None


class PeerConnectionIds:
    """The peer's CIDs we may use as destination, and the retirements we owe (RFC 9000 §5.1.2)."""

    def __init__(self, initial_cid: bytes, active_limit: int) -> None:
        self.reset_token_generation = 0
        """Bumped whenever :meth:`reset_tokens` changes, so an endpoint indexing the tokens re-reads
        them only then (not on every flush)."""
        self.current = PeerCid(0, initial_cid, None)
        """The peer CID we send with (RFC 9000 §5.1.2): an attribute, read for every packet sent;
        written only here, by :meth:`_use`."""
        self._spare: dict[int, PeerCid] = {}
        self._limit = active_limit
        self._retire_prior_to = 0
        self._to_retire: list[int] = []
        """Retirements to send (again, after a loss), oldest first (a list: at most
        :attr:`max_retiring`, and most connections never owe one)."""
        self._retiring: set[int] = set()
        """Sequences retired whose RETIRE_CONNECTION_ID is not acknowledged yet (queued or in flight)."""
        # RFC 9000 §5.1.2: track at least twice active_connection_id_limit unacknowledged retirements;
        # a peer that makes us owe more is churning CIDs faster than it lets us retire them.
        self.max_retiring = 2 * active_limit

    def _use(self, cid: PeerCid) -> None:
        """Send with ``cid`` from now on (its reset token, if another, re-read by the endpoint)."""
        if cid.reset_token != self.current.reset_token:
            self.reset_token_generation += 1
        self.current = cid

    def set_initial(self, cid: bytes) -> None:
        """Replace the handshake DCID (the server's chosen SCID, or a Retry's)."""
        # (_use, inline: the reset token stays, so its generation does too)
        self.current = PeerCid(0, cid, self.current.reset_token)

    def set_reset_token(self, token: bytes | None) -> None:
        """The stateless_reset_token transport parameter belongs to sequence 0."""
        if self.current.sequence == 0 and self.current.reset_token != token:
            self.current.reset_token = token
            self.reset_token_generation += 1

    def on_new_connection_id(self, frame: NewConnectionId) -> None:
        """Handle NEW_CONNECTION_ID (RFC 9000 §19.15).

        Raises:
            TransportError: PROTOCOL_VIOLATION for a sequence reused with another CID;
                CONNECTION_ID_LIMIT_ERROR when the peer exceeds our active_connection_id_limit, or
                makes us owe more than :attr:`max_retiring` unacknowledged retirements (§5.1.2).
        """
        known = self._spare.get(frame.sequence)
        if frame.sequence == self.current.sequence:
            known = self.current
        if known is not None:
            if known.cid != frame.connection_id:
                raise TransportError(TransportErrorCode.PROTOCOL_VIOLATION, "CID sequence reused", 0x18)
            return
        if frame.sequence < self._retire_prior_to:
            self._retire(frame.sequence)  # RFC 9000 §19.15: retire it immediately
            return
        self._spare[frame.sequence] = PeerCid(
            frame.sequence, frame.connection_id, frame.stateless_reset_token
        )
        if frame.retire_prior_to > self._retire_prior_to:
            self._retire_prior_to = frame.retire_prior_to
            for seq in [s for s in self._spare if s < frame.retire_prior_to]:
                del self._spare[seq]
                self._retire(seq)
            if self.current.sequence < frame.retire_prior_to:
                self._retire(self.current.sequence)
                self._switch()
        if len(self._spare) + 1 > self._limit:
            raise TransportError(
                TransportErrorCode.CONNECTION_ID_LIMIT_ERROR, "too many connection IDs", 0x18
            )

    def add_preferred(self, cid: bytes, reset_token: bytes) -> None:
        """(client) The connection ID of the server's preferred_address: sequence number 1 (RFC 9000
        §5.1.1), a spare like those of NEW_CONNECTION_ID frames (§9.6.3: usable on any path)."""
        self.on_new_connection_id(NewConnectionId(1, 0, cid, reset_token))

    def reserve(self, sequence: int) -> PeerCid | None:
        """Take the spare CID ``sequence`` for a path being probed (RFC 9000 §9.5: a CID is used on one
        path only), or None if it is not spare (used, retired, or never received)."""
        return self._spare.pop(sequence, None)

    def reserve_spare(self) -> PeerCid | None:
        """Take the lowest spare CID for a new path (RFC 9000 §9.5), or None if none is spare."""
        if not self._spare:
            return None
        return self._spare.pop(min(self._spare))

    def swap(self, reserved: PeerCid) -> PeerCid | None:
        """Send with ``reserved`` from now on; return the CID used until now, still reserved for the
        path it was used on (the caller releases it when that path is dropped); None if nothing
        changed (``reserved`` was retired by the peer meanwhile and no other is spare)."""
        previous = self.current
        if reserved.sequence < self._retire_prior_to:
            # The peer retired it meanwhile (RFC 9000 §19.15): retire it, move to a spare if any.
            self.release(reserved)
            spare = self.reserve_spare()
            if spare is None:
                return None
            reserved = spare
        self._use(reserved)
        return previous

    def use(self, reserved: PeerCid) -> None:
        """Send with ``reserved`` from now on (the probed path became the current one) and retire the
        CID used until now."""
        if reserved.sequence < self._retire_prior_to:
            # The peer retired it while we probed (RFC 9000 §19.15): retire it and pick a spare.
            self.release(reserved)
            return
        self._retire(self.current.sequence, limited=False)
        self._use(reserved)

    def release(self, reserved: PeerCid) -> None:
        """Give up ``reserved`` (its path failed validation): it was used there, so retire it."""
        self._retire(reserved.sequence, limited=False)

    def _switch(self) -> None:
        if not self._spare:
            raise TransportError(TransportErrorCode.PROTOCOL_VIOLATION, "no connection ID left", 0x18)
        self._use(self._spare.pop(min(self._spare)))

    def rotate(self) -> bool:
        """Move to a fresh peer CID (e.g. on migration) and retire the old one; False if none spare."""
        if not self._spare:
            return False
        self._retire(self.current.sequence, limited=False)  # our own choice: never an error
        self._switch()
        return True

    def _retire(self, sequence: int, *, limited: bool = True) -> None:
        if sequence in self._retiring:
            return  # already owed: one RETIRE_CONNECTION_ID in the queue or in flight is enough
        if limited and len(self._retiring) >= self.max_retiring:
            raise TransportError(
                TransportErrorCode.CONNECTION_ID_LIMIT_ERROR,
                f"more than {self.max_retiring} connection IDs awaiting retirement",
                0x18,
            )
        self._retiring.add(sequence)
        self._to_retire.append(sequence)

    def is_stateless_reset(self, datagram: bytes | memoryview) -> bool:
        """True if the datagram ends with a reset token of one of the peer's CIDs (RFC 9000 §10.3.1)."""
        if len(datagram) < 21:
            return False
        tail = bytes(datagram[-RESET_TOKEN_SIZE:])
        tokens = [self.current.reset_token] + [c.reset_token for c in self._spare.values()]
        return any(token is not None and hmac.compare_digest(token, tail) for token in tokens)

    def reset_tokens(self) -> tuple[bytes, ...]:
        """The reset token of the peer CID in use, the only one a reset may carry (RFC 9000 §10.3.1:
        never tokens of CIDs not used or retired); for an endpoint's index of unroutable datagrams."""
        token = self.current.reset_token
        return () if token is None else (token,)

    def write_frames(self, sink: FrameSink) -> None:
        """Write owed RETIRE_CONNECTION_ID frames; lost ones are re-queued."""
        while self._to_retire and sink.remaining >= 9:
            sequence = self._to_retire.pop(0)
            sink.push_frame(RetireConnectionId(sequence), self._retire_handler(sequence))

    def _retire_handler(self, sequence: int) -> Callable[[bool], None]:
        def handler(acked: bool) -> None:
            if acked:
                self._retiring.discard(sequence)
            elif sequence in self._retiring:
                self._to_retire.append(sequence)

        return handler

    def has_data(self) -> bool:
        """True when a RETIRE_CONNECTION_ID is owed (the packetizer's ``FrameSource`` question)."""
        return bool(self._to_retire)

    has_data_to_send = has_data  # one function, no second call per question

    @property
    def retiring(self) -> int:
        """Retirements owed and not yet acknowledged (at most :attr:`max_retiring`)."""
        return len(self._retiring)
