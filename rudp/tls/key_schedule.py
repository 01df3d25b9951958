"""The TLS 1.3 key schedule and transcript hash (RFC 8446 §7.1, §4.4.1), for one cipher suite.

Owns: :class:`Transcript` (the running handshake hash, including the HelloRetryRequest
``message_hash`` substitution), :class:`KeySchedule` (Early -> Handshake -> Main secret chain and the
traffic/binder/resumption secrets derived from it) and the Finished/binder HMAC. Packet keys are not
derived here: QUIC turns the traffic secrets into AEAD/IV/HP keys itself (RFC 9001 §5.1).
"""

from __future__ import annotations

import hashlib
from typing import Final

from rudp.crypto.hkdf import KeyedHmac, hash_by_name, hkdf_extract, hmac_digest, label_info
from rudp.crypto.suites import SUITE_HASH, CipherSuite
from rudp.tls.framing import HandshakeType, frame

#: labels of RFC 8446 §7.1 (HKDF-Expand-Label adds the "tls13 " prefix)
LABEL_EXT_BINDER: Final = b"ext binder"
LABEL_RES_BINDER: Final = b"res binder"
LABEL_CLIENT_EARLY: Final = b"c e traffic"
LABEL_CLIENT_HANDSHAKE: Final = b"c hs traffic"
LABEL_SERVER_HANDSHAKE: Final = b"s hs traffic"
LABEL_CLIENT_APP: Final = b"c ap traffic"
LABEL_SERVER_APP: Final = b"s ap traffic"
LABEL_EXPORTER: Final = b"exp master"
LABEL_RESUMPTION: Final = b"res master"


_HASH_NEW: Final = {"sha256": hashlib.sha256, "sha384": hashlib.sha384}
"""The two transcript hashes' constructors by name (``hashlib.new`` goes through a Python function)."""


class Transcript:
    """Transcript-Hash over the handshake messages (RFC 8446 §4.4.1).

    The hash function is unknown until the server picks a suite, so messages are kept raw until
    :meth:`set_hash` is called; from then on the hash is updated incrementally.
    """

    __slots__ = ("_digest", "_hash", "_pending")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._hash: hashlib._Hash | None = None
        self._digest: bytes | None = None
        """Transcript-Hash of the messages so far, once asked for (until the next message): a server
        derives its application secrets and checks the client Finished over the same messages"""

    @property
    def hash_name(self) -> str | None:
        """The hash name ("sha256" or "sha384") once chosen, else None."""
        return None if self._hash is None else self._hash.name

    def set_hash(self, name: str) -> None:
        """Choose the hash (idempotent for the same name) and absorb the messages kept so far."""
        if self._hash is not None:
            return
        self._hash = _HASH_NEW[name]()
        for raw in self._pending:
            self._hash.update(raw)
        self._pending.clear()

    def add(self, raw: bytes) -> None:
        """Append one whole handshake message (header included)."""
        self._digest = None
        if self._hash is None:
            self._pending.append(raw)
        else:
            self._hash.update(raw)

    def digest(self, extra: bytes = b"", name: str | None = None) -> bytes:
        """Transcript-Hash of the messages so far followed by ``extra`` (e.g. a truncated ClientHello).

        ``name`` picks the hash while none is set yet (the client's PSK binders, §4.2.11.2).
        """
        running = self._hash
        if running is not None:
            if extra:
                h = running.copy()
                h.update(extra)
                return h.digest()
            found = self._digest
            if found is None:
                found = self._digest = running.digest()  # (a hash object's digest leaves it running)
            return found
        h = _HASH_NEW[name or "sha256"]()
        for raw in self._pending:
            h.update(raw)
        h.update(extra)
        return h.digest()

    def restart_after_retry(self, name: str) -> None:
        """Replace ClientHello1 by ``message_hash`` = Hash(ClientHello1) (RFC 8446 §4.4.1).

        Call when a HelloRetryRequest arrives, before adding the HRR itself; it also fixes the hash.
        """
        client_hello1 = self.digest(name=name) if self._hash is None else self._hash.digest()
        self._pending.clear()
        self._digest = None
        self._hash = hashlib.new(name)
        self._hash.update(frame(HandshakeType.message_hash, client_hello1))


_FINISHED_BLOCK: Final = {
    name: label_info(b"finished", b"", hash_by_name(name).digest_size) + b"\x01" for name in _HASH_NEW
}
"""HKDF-Expand's one input block of finished_key (HkdfLabel "finished", empty context, Hash.length,
then the counter 0x01: RFC 8446 §4.4.4, RFC 5869 §2.3) by hash name, encoded once."""


def hmac_verify_data(hash_name: str, base_key: bytes, transcript_hash: bytes) -> bytes:
    """Finished.verify_data and PSK binders: HMAC(finished_key, transcript hash) (RFC 8446 §4.4.4)."""
    # finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length): one block, T(1)
    finished_key = hmac_digest(hash_name, base_key, _FINISHED_BLOCK[hash_name])
    return hmac_digest(hash_name, finished_key, transcript_hash)


_RESUMPTION_HEAD: Final = {
    name: label_info(b"resumption", b"", hash_by_name(name).digest_size)[:-1] for name in _HASH_NEW
}
"""HkdfLabel "resumption" of Hash.length up to its context (the ticket nonce), by hash name."""


def resumption_psk(hash_name: str, resumption_secret: bytes, nonce: bytes) -> bytes:
    """The PSK of a ticket: HKDF-Expand-Label(resumption_secret, "resumption", nonce, Hash.length)
    (§4.6.1): one HKDF-Expand block, T(1) = HMAC(PRK, HkdfLabel | 0x01) (RFC 5869 §2.3).

    Raises:
        ValueError: a nonce longer than 255 bytes (RFC 8446 §4.6.1: ticket_nonce<0..255>).
    """
    context = bytes((len(nonce),)) + nonce  # (bytes() raises ValueError beyond 255)
    return hmac_digest(hash_name, resumption_secret, _RESUMPTION_HEAD[hash_name] + context + b"\x01")


_EMPTY_HASH: Final = {name: hashlib.new(name).digest() for name in ("sha256", "sha384")}
"""Transcript-Hash of no messages, by hash name (RFC 8446 §7.1 Derive-Secret(., "derived", ""))."""
_NO_PSK: Final[dict[str, tuple[bytes, bytes, KeyedHmac]]] = {}
"""(Early Secret, its "derived" secret, that secret as an HMAC key) without a PSK, by hash name: public
constants (RFC 8446 §7.1: HKDF-Extract over zeros), computed once; never holds anything derived from a
PSK or a handshake."""


_LABEL_HEADS: dict[tuple[bytes, int], bytes] = {}
"""HkdfLabel up to its context (length, "tls13 " label, and the context length Hash.length) by (label,
Hash.length): the labels are a few constants (bounded by _MAX_LABEL_HEADS)."""
_MAX_LABEL_HEADS: Final = 64


def _label_head(label: bytes, length: int) -> bytes:
    info = label_info(label, b"", length)
    return info[:-1]  # without the empty context's length byte


_ALGORITHMS: Final = {name: hash_by_name(name) for name in _HASH_NEW}
"""The two hash algorithm objects by name (shared, immutable)."""


class KeySchedule:
    """The secret chain of RFC 8446 §7.1 for one hash function.

    Create it with the PSK (or None), then call :meth:`derive` for the secrets of the current stage,
    :meth:`enter_handshake` with the (EC)DHE shared secret and :meth:`enter_main`.
    """

    __slots__ = ("_derived", "_prf", "_zero", "algorithm", "hash_length", "hash_name", "secret")

    def __init__(self, hash_name: str, psk: bytes | None = None) -> None:
        self.hash_name = hash_name
        self.algorithm = _ALGORITHMS[hash_name]  # (hash_by_name's, without the call)
        self.hash_length: int = self.algorithm.digest_size
        """Hash.length in bytes."""
        self._zero = bytes(self.hash_length)
        self._derived: KeyedHmac | None = None
        """Derive-Secret(Early Secret, "derived", "") as an HMAC key when it is a public constant (no PSK)"""
        self._prf: KeyedHmac | None = None
        """the current stage's secret as an HMAC key (made on its first Derive-Secret), its pads
        hashed once for the two to four secrets each stage derives"""
        #: the current stage's secret: Early Secret, then Handshake Secret, then Main Secret
        if psk:
            self.secret = hkdf_extract(self.algorithm, self._zero, psk)
            return
        constants = _NO_PSK.get(hash_name)
        if constants is None:
            early = hkdf_extract(self.algorithm, self._zero, self._zero)
            self.secret = early
            derived = self.derive(b"derived", _EMPTY_HASH[hash_name])
            constants = _NO_PSK[hash_name] = (early, derived, KeyedHmac(hash_name, derived))
        self.secret, _, self._derived = constants
        self._prf = None

    @classmethod
    def for_suite(cls, suite: CipherSuite, psk: bytes | None = None) -> KeySchedule:
        """A key schedule with the hash of ``suite``."""
        return cls(SUITE_HASH[suite], psk)

    def derive(self, label: bytes, transcript_hash: bytes) -> bytes:
        """Derive-Secret(current secret, label, messages) given Transcript-Hash(messages): the one
        block of HKDF-Expand-Label (:func:`~rudp.crypto.hkdf.hkdf_expand_label`), the secret's HMAC
        pads hashed once per stage."""
        prf = self._prf
        if prf is None:
            prf = self._prf = KeyedHmac(self.hash_name, self.secret)
        size = len(self._zero)
        key = (label, size)
        head = _LABEL_HEADS.get(key)
        if head is None:
            # (with the length byte of a Hash.length context: every transcript hash of this hash)
            head = _label_head(label, size) + bytes((size,))
            if len(_LABEL_HEADS) < _MAX_LABEL_HEADS:
                _LABEL_HEADS[key] = head
        # RFC 5869 §2.3: T(1) = HMAC(PRK, HkdfLabel | 0x01), all of Hash.length
        if len(transcript_hash) == size:
            return prf.digest(head + transcript_hash + b"\x01")
        context = bytes((len(transcript_hash),)) + transcript_hash  # (another length: a caller's choice)
        return prf.digest(head[:-1] + context + b"\x01")

    def binder_key(self, external: bool = False) -> bytes:
        """binder_key from the Early Secret ("ext binder" or "res binder" over the empty transcript)."""
        label = LABEL_EXT_BINDER if external else LABEL_RES_BINDER
        return self.derive(label, _EMPTY_HASH[self.hash_name])

    def enter_handshake(self, ikm: bytes | None = None) -> None:
        """The next stage: Early Secret -> Handshake Secret with the (EC)DHE shared secret ``ikm``;
        Handshake Secret -> Main Secret (as :meth:`enter_main`, without ``ikm``: zeros)."""
        if ikm is None:
            ikm = self._zero
        derived = self._derived
        self._derived = None  # only the Early Secret without a PSK has a constant successor input
        if derived is None:  # RFC 5869 §2.2: HKDF-Extract(salt, IKM) = HMAC(salt, IKM)
            salt = self.derive(b"derived", _EMPTY_HASH[self.hash_name])
            self.secret = hmac_digest(self.hash_name, salt, ikm)  # (salt: never empty)
        else:
            self.secret = derived.digest(ikm)
        self._prf = None

    enter_main = enter_handshake
    """Handshake Secret -> Main Secret (one function for both stages: one code object touched)."""
