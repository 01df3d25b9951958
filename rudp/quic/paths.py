"""Network paths of a connection (RFC 9000 §8.1, §8.2, §9): addresses, validation, anti-amplification.

Owns :class:`Path` (one peer address, reached from one of our local addresses: whether it is validated, the
bytes sent to and received from it for the 3x anti-amplification limit, the PATH_CHALLENGEs sent on it and
the PATH_RESPONSEs owed on it, the validation deadline, its PMTU search, its ECN validation
(:class:`~rudp.quic.ecn.EcnPath`) and its :class:`PathCongestion`: RTT estimator, congestion controller and
pacer, RFC 9000 §9.4) and :class:`Paths` (the current path, the last validated one to fall back to, and a
few others that probed us; which one the peer moved to, and the timer of path validation; the frame source
of the current path). It does not own what is sent on a path besides the path frames: the packetizer builds
the datagrams, asks :meth:`Path.datagram_allowance` how much may go, and reports every datagram sent with
:meth:`Path.on_datagram_sent`, whatever it carried (data, probes, padding, CONNECTION_CLOSE).

The table is general (any number of paths, bounded by :data:`MAX_PATHS`) so that multipath QUIC can later
send on several at once (each path already has its own congestion controller, RTT estimator and pacer, as
draft-ietf-quic-multipath asks); today one path carries the connection's packets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from rudp.codec.frames import PathChallenge, PathResponse
from rudp.quic.cids import PeerCid, PeerConnectionIds
from rudp.quic.congestion.base import CongestionController
from rudp.quic.delivery import PacketSink
from rudp.quic.ecn import EcnPath
from rudp.quic.pacing import Pacer
from rudp.quic.pmtud import PmtuDiscovery
from rudp.quic.rtt import K_INITIAL_RTT, RttEstimator

Address = tuple[str, int]
"""A UDP peer address as (host, port) (IPv6 addresses may carry more fields; only these two are used)."""

MAX_PATH_RESPONSES: Final = 4
"""PATH_RESPONSEs owed at most per path: a flood of PATH_CHALLENGEs keeps only the latest ones. RFC 9000
§13.3: responses are sent once, never retransmitted (the peer sends new challenges), so dropping the
older ones of a burst is what loss would do anyway; §21.9 asks to bound what a peer makes us spend."""
MAX_CHALLENGES: Final = 8
"""PATH_CHALLENGE data remembered per path: a response to any of the latest few validates it (one
goes in every datagram while the anti-amplification limit holds, :meth:`Path.write_frames`)."""
MAX_PATHS: Final = 4
"""Paths remembered at most (current, previous, and peers' probes); the oldest others are forgotten."""
AMPLIFICATION_FACTOR: Final = 3
"""RFC 9000 §8.1, §9.3: at most three times the bytes received from an unvalidated address."""
PATH_FRAME_BYTES: Final = 9
"""A PATH_CHALLENGE or PATH_RESPONSE frame: type byte and 8 bytes of data."""
INITIAL_CHALLENGES: Final = 2
"""PATH_CHALLENGEs sent at once when a validation starts, each in its own datagram (RFC 9000 §8.2.1)."""
MIN_EXPANDED_DATAGRAM: Final = 1200
"""RFC 9000 §8.2.1: datagrams with PATH_CHALLENGE or PATH_RESPONSE are expanded to this size."""
_NONE_YET: Final[deque[bytes]] = deque(maxlen=0)
"""The challenges or responses of a path that has had none (most paths, for their whole life): shared,
as it can hold nothing (maxlen 0: an append would be dropped); a path makes its own at the first."""


@dataclass(slots=True, eq=False)
class PathCongestion:
    """What one network path knows of its capacity (RFC 9000 §9.4): its congestion controller, RTT
    estimator and pacer. A new path starts with fresh ones; a port-only change of the peer's address
    (NAT rebinding) keeps the old path's, which §9.4 allows."""

    controller: CongestionController
    rtt: RttEstimator
    pacer: Pacer


class Path:
    """One peer address and what the connection knows about reaching it."""

    __slots__ = (
        "_extra_challenges",
        "_mtu_challenge_owed",
        "_retry_delay",
        "address",
        "challenge_due",
        "challenge_retry_at",
        "challenges",
        "congestion",
        "dcid",
        "ecn",
        "limited",
        "local",
        "no_cid",
        "peer_cid",
        "pmtud",
        "received_bytes",
        "responses",
        "seen_dcid",
        "sent_bytes",
        "validated",
        "validation_deadline",
    )

    def __init__(
        self,
        address: Address,
        *,
        validated: bool,
        pmtud: PmtuDiscovery,
        congestion: PathCongestion,
        ecn: bool = False,
        dcid: bytes | None = None,
        limited: bool = True,
        local: Address | None = None,
    ) -> None:
        self.address = address
        self.local = local
        """Our local address of this path, as the endpoint named it (None: its main address). A server
        listening on its preferred address too (RFC 9000 §9.6) has two paths to one client address:
        a path is the pair of addresses (§9), and each has its own peer CID (§9.5)."""
        self.dcid = dcid
        """The peer CID reserved for this path while we probe it (RFC 9000 §9.5), None: the current one."""
        self.peer_cid: PeerCid | None = None
        """(server) The peer CID reserved for this path (its ``dcid``), retired when the path is dropped."""
        self.no_cid = False
        """(server) The peer changed its CID on this path and we have no fresh one to answer with: RFC
        9000 §9.5 forbids reusing ours, so nothing is sent here until one arrives."""
        self.seen_dcid: bytes | None = None
        """Our CID the peer addressed its latest 1-RTT packet on this path to."""
        self.limited = limited
        """The anti-amplification limit applies (RFC 9000 §8.1: to addresses the peer showed us, not
        to a server address we chose to probe, such as its preferred address)."""
        self.validated = validated
        """True once the peer proved it receives at this address (RFC 9000 §8)."""
        self.received_bytes = 0
        self.sent_bytes = 0
        self.challenges: deque[bytes] = _NONE_YET  # (its own deque from the first challenge sent)
        """Data of the latest PATH_CHALLENGEs sent on this path, awaiting a PATH_RESPONSE."""
        self.challenge_due = False
        """A (new) PATH_CHALLENGE should go out on this path at the next opportunity."""
        self.challenge_retry_at: float | None = None
        self.validation_deadline: float | None = None
        self._retry_delay = 0.0
        self._mtu_challenge_owed = False
        self._extra_challenges = 0
        self.responses: deque[bytes] = _NONE_YET  # (its own deque from the first response owed)
        """PATH_RESPONSE data owed on this path (RFC 9000 §8.2.2: on the path the challenge came on)."""
        self.pmtud = pmtud
        """The PMTU search of this path (paused while it is not validated)."""
        self.ecn = EcnPath(enabled=ecn)
        """ECN validation of this path (RFC 9000 §13.4.2: every new path is tested afresh)."""
        self.congestion = congestion
        """The congestion controller, RTT estimator and pacer of this path (RFC 9000 §9.4)."""

    def __repr__(self) -> str:
        state = "validated" if self.validated else "unvalidated"
        local = "" if self.local is None else f" from {self.local[0]}:{self.local[1]}"
        return f"<Path {self.address[0]}:{self.address[1]}{local} {state}>"

    # -- anti-amplification (RFC 9000 §8.1) -------------------------------------------------------------

    def datagram_allowance(self) -> int | None:
        """Bytes that may still be sent to this address, or None when it is validated (no limit)."""
        if self.validated or not self.limited:
            return None
        return max(0, AMPLIFICATION_FACTOR * self.received_bytes - self.sent_bytes)

    def on_datagram_received(self, size: int) -> None:
        """A datagram of ``size`` bytes arrived from this address."""
        self.received_bytes += size

    def on_datagram_sent(self, size: int) -> None:
        """A datagram of ``size`` bytes leaves for this address (every kind counts, RFC 9000 §8.1)."""
        self.sent_bytes += size

    # -- validation (RFC 9000 §8.2) -----------------------------------------------------------------------

    @property
    def validating(self) -> bool:
        """True while a validation of this path is under way."""
        return self.validation_deadline is not None

    def start_validation(self, now: float, pto: float) -> None:
        """Challenge the peer on this path now, again every PTO (doubling), until it answers or
        three times the larger of the PTO and the initial PTO have passed (RFC 9000 §8.2.4, §9.4)."""
        self.challenge_due = True
        # RFC 9000 §8.2.1: an endpoint MAY send several PATH_CHALLENGEs against loss (one per packet).
        # The first two leave together: each lost one would cost a PTO before its retry, with the
        # path stalled meanwhile, and the peer answers each with its own PATH_RESPONSE, so a lost
        # response is covered too.
        self._extra_challenges = INITIAL_CHALLENGES - 1
        self._retry_delay = pto
        self.challenge_retry_at = None
        self.validation_deadline = now + max(3 * pto, 6 * K_INITIAL_RTT)

    def owe_response(self, data: bytes) -> None:
        """A PATH_CHALLENGE arrived on this path: answer it here (the oldest of a flood are dropped)."""
        if self.responses is _NONE_YET:
            self.responses = deque(maxlen=MAX_PATH_RESPONSES)
        self.responses.append(data)

    def on_response(self, data: bytes) -> bool:
        """A PATH_RESPONSE arrived: True if it answers one of our challenges on this path (validated)."""
        if data not in self.challenges:
            return False
        self.mark_validated()
        return True

    def mark_validated(self) -> None:
        """The peer is known to receive here (a response, or the handshake itself, RFC 9000 §8.1)."""
        self.validated = True
        self.stop_validation()
        if self._mtu_challenge_owed:
            # RFC 9000 §8.2.1: the second validation, in a full-size datagram (sent once: a path
            # that cannot carry it shows in its PMTU search and loss detection, not here).
            self._mtu_challenge_owed = False
            self.challenge_due = True

    def stop_validation(self) -> None:
        """Stop challenging this path (validated, failed or abandoned)."""
        self.challenges.clear()
        self.challenge_due = False
        self._extra_challenges = 0
        self.challenge_retry_at = None
        self.validation_deadline = None

    def use_congestion(self, congestion: PathCongestion) -> None:
        """The network path behind this address changed (our own address moved): start afresh."""
        self.congestion = congestion

    def challenge_again(self) -> None:
        """The PTO since the last PATH_CHALLENGE passed without an answer: send a new one (§8.2.1)."""
        self.challenge_retry_at = None
        self.challenge_due = True

    def challenging_each_datagram(self) -> bool:
        """True while a validation of this path is under way and the anti-amplification limit applies
        (RFC 9000 §8.1): then every datagram sent here carries a PATH_CHALLENGE (:meth:`write_frames`)."""
        return self.validation_deadline is not None and self.limited and not self.validated

    def has_frames(self) -> bool:
        """True if a PATH_RESPONSE or PATH_CHALLENGE is waiting to be sent on this path."""
        return (bool(self.responses) or self.challenge_due) and not self.no_cid

    def _may_expand(self) -> bool:
        """RFC 9000 §8.2.1, §8.2.2: a datagram with path frames is expanded to 1200 bytes, unless the
        anti-amplification limit does not permit that size. Then it is not padded at all: a datagram
        padded to less than 1200 bytes proves nothing about the path MTU, and the padding would spend
        the allowance that a lost challenge's retry (or an ACK) needs."""
        allowance = self.datagram_allowance()
        return allowance is None or allowance >= MIN_EXPANDED_DATAGRAM

    def write_frames(self, sink: PacketSink, randbytes: Callable[[int], bytes]) -> None:
        """Write the owed PATH_RESPONSEs, then a due PATH_CHALLENGE; a datagram that carries either is
        padded to 1200 bytes when the allowance permits (RFC 9000 §8.2.1, §8.2.2)."""
        expand = self._may_expand()
        while self.responses and sink.remaining >= PATH_FRAME_BYTES:
            sink.push_frame(PathResponse(self.responses.popleft()))
            if expand:
                sink.require_padding()
        due = self.challenge_due
        # RFC 9000 §8.1, §8.2.1: while the anti-amplification limit holds, every datagram sent here
        # carries a PATH_CHALLENGE (several MAY be sent): the few the limit allows may all be lost
        # but an ACK, and a peer that only receives has nothing else to answer (it waits in silence
        # while we wait for its next datagram, until the validation fails and the idle timeout).
        if (due or self.challenging_each_datagram()) and sink.remaining >= PATH_FRAME_BYTES:
            data = randbytes(8)
            if self.challenges is _NONE_YET:
                self.challenges = deque(maxlen=MAX_CHALLENGES)
            self.challenges.append(data)
            if due:  # (not an extra one: the retry timer of the due ones keeps running)
                self.challenge_due = self._extra_challenges > 0
                if self.challenge_due:
                    self._extra_challenges -= 1  # the next one goes in the next packet
                elif self.validation_deadline is not None:
                    # RFC 9000 §9.4: a lost challenge is sent again after a PTO, backing off, never faster.
                    self.challenge_retry_at = sink.now + self._retry_delay
                    self._retry_delay *= 2
            sink.push_frame(PathChallenge(data))
            if expand:
                sink.require_padding()
            else:
                # RFC 9000 §8.2.1: the path MTU is not validated by this one; once the path validates,
                # a second PATH_CHALLENGE goes in a datagram of 1200 bytes.
                self._mtu_challenge_owed = True


class Paths:
    """The paths of one connection: the current one, the last validated one, and probing peers' others.

    Server side, the peer may move (NAT rebinding, migration): :meth:`on_peer_moved` switches the
    current path and starts validating the new one; a validation that times out falls back to the last
    validated path (RFC 9000 §9.3.2). Client side there is one path whose validation :meth:`revalidate`
    restarts after the client changed its own address.
    """

    def __init__(
        self,
        address: Address,
        *,
        validated: bool,
        base_size: int,
        max_size: int,
        pmtu_discovery: bool,
        new_congestion: Callable[[], PathCongestion],
        randbytes: Callable[[int], bytes],
        peer_cids: PeerConnectionIds | None = None,
        ecn: bool = False,
    ) -> None:
        self._peer_cids = peer_cids if peer_cids is not None else PeerConnectionIds(b"", 2)
        self._ecn = ecn
        self._new_congestion = new_congestion
        self._randbytes = randbytes
        self._base_size = base_size
        self._max_size = max_size
        self._pmtu_discovery = pmtu_discovery
        pmtud = PmtuDiscovery(base_size, max_size, enabled=pmtu_discovery)  # (_new_pmtud, inline)
        self.current = Path(address, validated=validated, pmtud=pmtud, congestion=new_congestion(), ecn=ecn)
        self.previous: Path | None = None
        """The last validated path, kept to fall back to while the current one is being validated."""
        self._paths: dict[tuple[Address, Address | None], Path] = {(address, None): self.current}
        self.changes = 0
        """How many times the peer's address changed (migration or NAT rebinding)."""
        self.validation_failures = 0
        """Path validations that timed out (the peer's new address never answered)."""

    def __iter__(self) -> Iterator[Path]:
        return iter(self._paths.values())

    def _new_pmtud(self) -> PmtuDiscovery:
        return PmtuDiscovery(self._base_size, self._max_size, enabled=self._pmtu_discovery)

    def limit_datagram_size(self, size: int) -> None:
        """The peer's max_udp_payload_size (RFC 9000 §18.2): no path sends larger datagrams."""
        self._base_size = min(self._base_size, size)
        self._max_size = min(self._max_size, size)
        for path in self._paths.values():
            path.pmtud.limit_to(size)

    # -- the frame source of the current path (the packetizer asks it like any other subsystem) --------

    def has_data(self) -> bool:
        """True if the current path owes a PATH_RESPONSE or a PATH_CHALLENGE."""
        current = self.current  # Path.has_frames, inline (asked for every datagram)
        return (bool(current.responses) or current.challenge_due) and not current.no_cid

    def write_frames(self, sink: PacketSink) -> None:
        """Write the current path's frames (RFC 9000 §8.2.2, §9.4: not held back by the congestion
        window, so the old path's packets in flight cannot starve the new path's validation)."""
        self.current.write_frames(sink, self._randbytes)

    def write_path_frames(self, path: Path, sink: PacketSink) -> None:
        """Write another path's frames into a datagram bound for that path."""
        path.write_frames(sink, self._randbytes)

    def get(self, address: Address, local: Address | None = None) -> Path | None:
        """The path to ``address`` from our ``local`` address, if known."""
        return self._paths.get((address, local))

    def on_local_address(self, local: Address | None) -> None:
        """(server) Where the client's handshake reaches us: the first path's local address (a client
        may connect to any address the endpoint listens on). Only before any other path exists."""
        current = self.current
        if current.local != local and len(self._paths) == 1:
            del self._paths[(current.address, current.local)]
            current.local = local
            self._paths[(current.address, local)] = current

    def knows(self, address: Address) -> bool:
        """True if ``address`` (host and port) is one of our paths' (for a client: one it sent to)."""
        return any(path.address[:2] == address[:2] for path in self._paths.values())

    def others_with_frames(self) -> list[Path]:
        """Paths other than the current one that owe a PATH_RESPONSE or a PATH_CHALLENGE."""
        if len(self._paths) == 1:
            # The usual connection of one path, the current one (asked for every batch): no list
            # comprehension.
            for path in self._paths.values():
                if path is self.current:
                    return []
        return [path for path in self._paths.values() if path is not self.current and path.has_frames()]

    def on_authenticated(self, address: Address, datagram_size: int, local: Address | None = None) -> Path:
        """An authenticated packet came from ``address`` to our ``local`` address: its path, made
        (counting the datagram that revealed it, for the anti-amplification limit) if new. Only
        authenticated packets make paths, so a spoofed datagram that does not decrypt costs nothing."""
        path = self._paths.get((address, local))
        if path is not None:
            return path
        # A port-only change (a NAT rebinding, RFC 9000 §9.4) keeps the network path, what the PMTU
        # search found on it, its congestion state and RTT estimate; a new IP address starts afresh,
        # and so does a new local address of ours (a server's preferred address, §9.6).
        current = self.current
        if address[0] == current.address[0] and local == current.local:
            pmtud, congestion = current.pmtud, current.congestion
        else:
            pmtud, congestion = self._new_pmtud(), self._new_congestion()
        # RFC 9000 §8.1: the anti-amplification limit protects addresses not known to be the peer's;
        # the peer's validated address reaching another local address of ours is one that is.
        proven = any(other.validated and other.address == address for other in self._paths.values())
        path = Path(
            address,
            validated=False,
            pmtud=pmtud,
            congestion=congestion,
            ecn=self._ecn,
            limited=not proven,
            local=local,
        )
        path.on_datagram_received(datagram_size)
        self._paths[(address, local)] = path
        self._bound()
        return path

    def _bound(self) -> None:
        while len(self._paths) > MAX_PATHS:
            for path in self._paths.values():
                if path is not self.current and path is not self.previous:
                    self._forget(path)
                    break
            else:
                return

    def _forget(self, path: Path) -> None:
        """Drop an abandoned path; the peer CID it used is retired (RFC 9000 §5.1.2, §9.5: never to
        be used on another path)."""
        self._paths.pop((path.address, path.local), None)
        if path.peer_cid is not None:
            self._peer_cids.release(path.peer_cid)
            path.peer_cid = path.dcid = None
            path.no_cid = True

    # -- connection IDs per path (RFC 9000 §9.5) -----------------------------------------------------------

    def on_peer_cid(self, path: Path, dcid: bytes) -> None:
        """(server) A 1-RTT packet addressed to our CID ``dcid`` arrived on ``path``. RFC 9000 §9.5: we
        must not send to two addresses with the same peer CID, except that when packets from a new
        address carry the same CID as before (a NAT rebinding) we MAY keep ours, "while still sending
        from the same local address". A peer that changed its CID on a new path, or reached another
        local address of ours (our preferred address, §9.6), gets a fresh one of its CIDs there; with
        none spare we cannot answer on that path (§9.5) until a NEW_CONNECTION_ID brings one."""
        current = self.current
        seen, path.seen_dcid = current.seen_dcid, dcid
        if path is current or path.peer_cid is not None:
            return
        if (seen is None or dcid == seen) and path.local == current.local:
            path.no_cid = False
            return
        reserved = self._peer_cids.reserve_spare()
        path.no_cid = reserved is None
        if reserved is not None:
            path.peer_cid, path.dcid = reserved, reserved.cid

    def _swap_cids(self, old: Path, new: Path) -> None:
        """``new`` becomes the current path: send with its reserved CID from now on; the old path keeps
        the CID used until now, retired when it is dropped (so a fall back needs no new one)."""
        reserved = new.peer_cid
        if reserved is None:
            return
        new.peer_cid = new.dcid = None
        new.no_cid = False
        previous = self._peer_cids.swap(reserved)
        if previous is None:
            return
        for other in self._paths.values():
            if other.peer_cid is None:
                other.no_cid = True  # it shared the CID that changed: decided again on its next packet
        old.peer_cid, old.dcid, old.no_cid = previous, previous.cid, False
        new.no_cid = False

    def add_probe(self, address: Address, now: float, pto: float, *, dcid: bytes) -> Path:
        """(client) Start validating a server address we chose (its preferred address, RFC 9000
        §9.6.1) with the peer CID ``dcid``; the current path stays in use meanwhile. A new address is a
        new network path: its own PMTU search, congestion controller and RTT estimator (§9.4)."""
        path = Path(
            address,
            validated=False,
            pmtud=self._new_pmtud(),
            congestion=self._new_congestion(),
            ecn=self._ecn,
            dcid=dcid,
            limited=False,
        )
        self._paths[(address, None)] = path
        self._bound()
        path.start_validation(now, pto)
        return path

    def on_peer_moved(self, path: Path, now: float, pto: float) -> None:
        """The peer's highest-numbered non-probing packet came on ``path`` (RFC 9000 §9.3): send there
        from now on and validate it. If its IP address is new, it has its own fresh congestion
        controller and RTT estimator (RFC 9000 §9.4): the caller moves loss recovery onto them."""
        old = self.current
        if path is old:
            return
        if old.validated:
            if self.previous is not None and self.previous.peer_cid is not None:
                self._forget(self.previous)
            self.previous = old
        old.stop_validation()  # RFC 9000 §9.3: validations of other addresses may be abandoned
        self._swap_cids(old, path)
        if self.previous is not old and old.peer_cid is not None:
            self._forget(old)  # never validated: not kept to fall back to
        self.current = path
        self.changes += 1
        if not path.validated and not path.validating:
            # RFC 9000 §9.3.1: the server starts validating the new address at once.
            path.start_validation(now, pto)

    def revalidate(self, now: float, pto: float) -> None:
        """(client) Our own address changed (migration): a new network path to the same server address,
        validated again, with a fresh congestion controller, RTT estimator and pacer (RFC 9000 §9.4)."""
        self.changes += 1
        self.current.use_congestion(self._new_congestion())
        self.current.start_validation(now, pto)

    def on_response(self, path: Path, data: bytes) -> bool:
        """A PATH_RESPONSE arrived on ``path``; True if it validated a path (RFC 9000 §8.2.3: the
        response may come on any path, and validates the one the challenge was sent on)."""
        for candidate in (path, *self._paths.values()):
            if candidate.on_response(data):
                if candidate is self.current and self.previous is not None:
                    # The old path is abandoned: its CID is retired (RFC 9000 §9.5) when it has its own.
                    previous, self.previous = self.previous, None
                    if previous.peer_cid is not None:
                        self._forget(previous)
                return True
        return False

    def next_deadline(self) -> float | None:
        """The earliest challenge retry or validation deadline of any path, or None."""
        earliest = None
        for path in self._paths.values():  # (plain loops: asked on every flush, usually of one path)
            for at in (path.challenge_retry_at, path.validation_deadline):
                if at is not None and (earliest is None or at < earliest):
                    earliest = at
        return earliest

    def on_timer(self, now: float) -> bool:
        """Resend due challenges and give up expired validations; True if the current path changed."""
        changed = False
        for path in list(self._paths.values()):
            deadline = path.validation_deadline
            if deadline is not None and now >= deadline:
                path.stop_validation()
                changed = self._on_validation_failed(path) or changed
            elif path.challenge_retry_at is not None and now >= path.challenge_retry_at:
                path.challenge_again()
        return changed

    def _on_validation_failed(self, path: Path) -> bool:
        # RFC 9000 §9.3.2: the new address never answered (spoofed, or gone): go back to the last
        # validated one. Should the peer really be there, its next packet starts a new validation.
        # Responses still owed there stay with that path (sent to its own address, RFC 9000 §8.2.2).
        self.validation_failures += 1
        if path is not self.current or self.previous is None:
            return False
        previous, self.previous = self.previous, None
        self._swap_cids(path, previous)
        self.current = previous
        if path.peer_cid is not None:
            self._forget(path)  # the failed address's CID was used there: retired (RFC 9000 §9.5)
        return True


__all__ = ["MAX_PATH_RESPONSES", "Address", "Path", "PathCongestion", "Paths"]
