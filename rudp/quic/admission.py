"""Admission: what a server answers to a client it holds no state for (RFC 9000 §5.2.2, §8.1, §10.3).

Owns the stateless side of a server endpoint: checking that a first Initial really decrypts before
any state is created, address-validation tokens (Retry tokens and NEW_TOKEN tokens, RFC 9000 §8.1.2,
§8.1.3), the stateless replies (Retry, a CONNECTION_REFUSED Initial, stateless reset) and the rate
limit on the replies that could be used for reflection. It decides nothing about routing: that is
:class:`~rudp.quic.endpoint.QuicEndpoint`'s, which asks this object what to do with a new client.

A flood of handshakes is answered as TCP answers SYN floods: past ``Config.retry_threshold``
handshakes in progress, clients without a valid token get a stateless Retry (the SYN-cookie step: a
spoofed source never comes back with the token); past ``Config.max_handshakes`` (or
``Config.max_connections``) they are refused with CONNECTION_REFUSED (the backlog limit).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Final, NamedTuple

from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import encode_frames, parse_frames
from rudp.codec.frames import ConnectionClose, Crypto, Frame
from rudp.codec.packet import PacketHeader, encode_long_header, encode_retry
from rudp.config import Config
from rudp.crypto.keys import initial_secrets
from rudp.crypto.protection import PacketProtection, UnprotectedPacket
from rudp.crypto.retry import AddressToken, TokenSealer, retry_integrity_tag
from rudp.crypto.suites import CipherSuite
from rudp.errors import DecodeError, TransportErrorCode
from rudp.quic.cids import stateless_reset_token
from rudp.quic.paths import Address

RETRY_TOKEN_LIFETIME: Final = 10.0
"""Seconds a Retry token stays valid: it only has to survive one round trip (RFC 9000 §8.1.3)."""
MIN_STATELESS_RESET_SIZE: Final = 21
"""RFC 9000 §10.3: the smallest datagram that can carry a stateless reset (5 bytes + 16-byte token)."""
MAX_STATELESS_RESET_SIZE: Final = 43
"""Our resets are at most this size, and always smaller than the packet that triggered them."""
STATELESS_REPLIES_PER_SECOND: Final = 500
"""Budget for replies to packets we hold no state for (resets, refusals, version negotiation): a
spoofed source cannot turn the server into a reflector beyond this rate (RFC 9000 §10.3.3, §21.4)."""

MIN_REFUSAL_PAYLOAD: Final = 20
_KIND_RETRY: Final = b"R"
_KIND_NEW_TOKEN: Final = b"N"
_INITIAL_SUITE: Final = CipherSuite.AES_128_GCM_SHA256


_initial_frames: Final[Callable[[bytes], list[tuple[int, Frame]]]] = partial(
    parse_frames, packet_type=PacketType.INITIAL
)
"""The frames of an Initial's payload, checked against the frames an Initial may carry (RFC 9000
§12.4): a partial, so no Python frame of its own per accepted client."""


class Verdict(Enum):
    """What to do with a first Initial from an unknown client."""

    ACCEPT = "accept"
    """create the connection (the Initial decrypts; within the caps)"""
    RETRY = "retry"
    """answer with a stateless Retry: the client must prove its address first"""
    REFUSE = "refuse"
    """answer with CONNECTION_REFUSED: the server is at its cap"""
    DROP = "drop"
    """say nothing: the datagram is not a valid Initial"""


class Decision(NamedTuple):
    """What :meth:`Admission.decide` says about a first Initial."""

    verdict: Verdict
    token: AddressToken | None
    """the valid address token the Initial carried, if any"""
    initial_read: PacketProtection | None = None
    """on ACCEPT: the client's Initial keys that opened the packet, holding its opened form for the
    new connection (:meth:`PacketProtection.open_and_keep`): it is not derived nor decrypted twice"""


class RateLimit:
    """A token bucket: ``rate`` events per second, bursts of up to ``rate`` (time passed in)."""

    __slots__ = ("_last", "_rate", "_tokens")

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """Take one token at ``now``; False when the budget is spent."""
        if self._last is not None and now > self._last:
            self._tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
        self._last = now if self._last is None else max(self._last, now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def derive_secret(master: bytes, label: bytes) -> bytes:
    """A 32-byte secret for ``label`` from ``master`` (HMAC-SHA256 as a PRF, RFC 2104)."""
    # (the one-shot C digest: same bytes as hmac.new(...).digest() without its Python objects)
    return hmac.digest(master, b"rudp endpoint secret: " + label, "sha256")


class Admission:
    """The stateless answers of one server endpoint.

    ``master_secret`` (32 bytes) keys the address tokens and the stateless reset tokens: an endpoint
    restarted with the same secret recognises the tokens it issued before and sends resets its old
    peers recognise (RFC 9000 §10.3.2).
    """

    def __init__(self, config: Config, master_secret: bytes, randbytes: Callable[[int], bytes]) -> None:
        self._config = config
        self._randbytes = randbytes
        key = config.stateless_reset_key
        self.reset_key = key if key is not None else derive_secret(master_secret, b"stateless reset")
        """The key of this endpoint's stateless reset tokens (RFC 9000 §10.3.2): the configured one,
        else derived from the master secret (an attribute: read for every connection accepted; one
        HMAC per endpoint, even a client's)."""
        self._master_secret = master_secret
        self._sealer: TokenSealer | None = None  # made on first use: a client endpoint never needs one
        self._replies = RateLimit(STATELESS_REPLIES_PER_SECOND)
        self.retries_sent = 0
        self.refusals_sent = 0
        self.resets_sent = 0
        self.initials_dropped = 0

    def _token_sealer(self) -> TokenSealer:
        if self._sealer is None:
            self._sealer = TokenSealer(derive_secret(self._master_secret, b"address token"), self._randbytes)
        return self._sealer

    # -- decisions ------------------------------------------------------------------------------

    def decide(
        self,
        data: bytes,
        header: PacketHeader,
        addr: Address,
        now: float,
        *,
        handshakes: int,
        connections: int,
    ) -> Decision:
        """Decide what to do with the first Initial of an unknown client (``header`` parsed from
        ``data``), given how many handshakes are in progress and how many connections exist."""
        config = self._config
        token = self.open_token(header.token, addr, now, header.version or 0) if header.token else None
        threshold = config.retry_threshold
        wants_retry = config.retry or (threshold is not None and handshakes >= threshold)
        if token is None and wants_retry:
            return Decision(Verdict.RETRY, None)  # RFC 9000 §8.1.2: no state before the address is proven
        initial_read = self.open_initial(data, header)
        if initial_read is None:
            self.initials_dropped += 1
            return Decision(Verdict.DROP, None)
        if handshakes >= config.max_handshakes or connections >= config.max_connections:
            return Decision(Verdict.REFUSE, None)
        return Decision(Verdict.ACCEPT, token, initial_read)

    def initial_decrypts(self, data: bytes, header: PacketHeader) -> bool:
        """True when the first packet of ``data`` decrypts with the Initial keys its DCID gives and
        carries a CRYPTO frame, only frames an Initial may carry (RFC 9000 §17.2.2, §12.4)."""
        return self.open_initial(data, header) is not None

    def open_initial(self, data: bytes, header: PacketHeader) -> PacketProtection | None:
        """The client's Initial keys (RFC 9001 §5.2) when the first packet of ``data`` decrypts with
        them and carries a CRYPTO frame and only frames an Initial may carry (RFC 9000 §17.2.2,
        §12.4); they keep the opened packet for the connection's own :meth:`~PacketProtection.unprotect`.
        None otherwise."""
        version = header.version or 0  # (_version, inline: long headers always carry one)
        client_secret, _ = initial_secrets(header.dcid, version)
        protection = PacketProtection(_INITIAL_SUITE, client_secret, version)
        packet = memoryview(data)[header.start : header.end]
        try:  # (the frames are kept with the opened packet: the connection does not parse them again)
            result = protection.open_and_keep(packet, header.pn_offset - header.start, 0, _initial_frames)
        except DecodeError:
            return None
        if not isinstance(result, UnprotectedPacket) or result.first_byte & 0x0C or result.frames is None:
            return None
        for _, frame in result.frames:  # (a plain loop: no generator per accepted client)
            if type(frame) is Crypto:
                return protection
        return None

    # -- tokens ---------------------------------------------------------------------------------

    def retry_token(self, addr: Address, original_dcid: bytes, now: float, version: int) -> bytes:
        """A token for a Retry: bound to the client's IP and port and to ``version``, the version of
        the Initial it answers (RFC 9369 §5), valid for one round trip."""
        sealer = self._token_sealer()
        return _KIND_RETRY + sealer.seal(_ip_and_port(addr), original_dcid, now, retry=True, version=version)

    def new_token(self, addr: Address, now: float, version: int) -> bytes:
        """A token for a NEW_TOKEN frame: bound to the client's IP only (its next connection comes
        from another port) and to ``version``, the connection's Negotiated Version (RFC 9369 §5),
        valid for ``Config.address_token_lifetime`` (RFC 9000 §8.1.3)."""
        sealer = self._sealer or self._token_sealer()  # (made once: one call less per connection)
        return _KIND_NEW_TOKEN + sealer.seal_new_token(addr[0].encode(), now, version)

    def open_token(self, token: bytes, addr: Address, now: float, version: int) -> AddressToken | None:
        """The contents of a valid token presented from ``addr`` in an Initial of ``version``, or None
        (an invalid token, or one issued for another version, counts as no token: RFC 9000 §8.1.3,
        RFC 9369 §5)."""
        kind, sealed = token[:1], token[1:]
        if kind == _KIND_RETRY:
            opened = self._token_sealer().open(
                sealed, _ip_and_port(addr), now, RETRY_TOKEN_LIFETIME, version=version
            )
            return opened if opened is not None and opened.retry else None
        if kind == _KIND_NEW_TOKEN:
            lifetime = self._config.address_token_lifetime
            sealer = self._sealer or self._token_sealer()  # (made once: one call less per connection)
            opened = sealer.open(sealed, addr[0].encode(), now, lifetime, version=version)
            return opened if opened is not None and not opened.retry else None
        return None

    # -- stateless replies ----------------------------------------------------------------------

    def retry(self, header: PacketHeader, addr: Address, now: float) -> bytes:
        """A Retry packet for ``header``'s client (RFC 9000 §17.2.5); smaller than its 1200-byte
        Initial, so it cannot amplify."""
        new_scid = self._randbytes(self._config.connection_id_length or 8)
        version = _version(header)
        token = self.retry_token(addr, header.dcid, now, version)
        pseudo = encode_retry(version, header.scid, new_scid, token)
        self.retries_sent += 1
        return pseudo + retry_integrity_tag(pseudo, header.dcid, version)

    def refusal(self, header: PacketHeader, now: float) -> bytes | None:
        """An Initial carrying CONNECTION_CLOSE(CONNECTION_REFUSED) (RFC 9000 §5.2.2), or None when the
        reply budget is spent. Costs one key derivation and one encryption, no connection state."""
        if not self._replies.allow(now):
            return None
        version = _version(header)
        _, server_secret = initial_secrets(header.dcid, version)
        protection = PacketProtection(_INITIAL_SUITE, server_secret, version)
        close = ConnectionClose(TransportErrorCode.CONNECTION_REFUSED, b"server busy, try again later")
        payload = encode_frames([close])
        payload += bytes(max(0, MIN_REFUSAL_PAYLOAD - len(payload)))  # PADDING frames: room for a sample
        scid = self._randbytes(self._config.connection_id_length or 8)
        packet_header = encode_long_header(
            PacketType.INITIAL,
            version,
            header.scid,
            scid,
            length=1 + len(payload) + 16,
            packet_number=0,
            pn_length=1,
        )
        self.refusals_sent += 1
        return protection.protect(packet_header, payload, 0, len(packet_header) - 1, 1)

    def stateless_reset(self, data: bytes, cid_length: int, now: float) -> bytes | None:
        """A stateless reset for a short-header packet we cannot route (RFC 9000 §10.3), or None.

        Never answers a packet that could itself be a reset of ours: the reply is always smaller than
        the trigger (§10.3.3, so two endpoints cannot loop), and the rate is limited.
        """
        size = min(len(data) - 1, MAX_STATELESS_RESET_SIZE)
        if size < MIN_STATELESS_RESET_SIZE or not self._replies.allow(now):
            return None
        dcid = bytes(data[1 : 1 + cid_length])
        body = bytearray(self._randbytes(size - 16))
        body[0] = 0x40 | (body[0] & 0x3F)
        self.resets_sent += 1
        return bytes(body) + stateless_reset_token(self.reset_key, dcid)

    def allow_reply(self, now: float) -> bool:
        """Take one unit of the stateless-reply budget (for version negotiation)."""
        return self._replies.allow(now)


def _version(header: PacketHeader) -> int:
    return 0 if header.version is None else header.version  # long headers always carry one


def _ip_and_port(addr: Address) -> bytes:
    return f"{addr[0]}|{addr[1]}".encode()


__all__ = [
    "MIN_STATELESS_RESET_SIZE",
    "RETRY_TOKEN_LIFETIME",
    "STATELESS_REPLIES_PER_SECOND",
    "Admission",
    "Decision",
    "RateLimit",
    "Verdict",
    "derive_secret",
]
