"""Per-packet protection: AEAD payload protection and header protection (RFC 9001 §5.3, §5.4).

This module owns the hot path that turns an unprotected packet into wire bytes and back. The
packet-number truncation and reconstruction it relies on (RFC 9000 §17.1, Appendix A.2/A.3) live in
:mod:`rudp.codec.packet` and are re-exported here. It does not parse headers: callers (the packetizer
and the receive path) know where the Packet Number field starts (``pn_offset``) and, for long headers,
where the packet ends.

A :class:`PacketProtection` holds the AEAD object and the header-protection cipher built once per key;
``protect()`` and ``unprotect()`` reuse them for every packet. Packets that cannot be authenticated are
never raised as exceptions: ``unprotect()`` returns a :class:`DecryptFailed` value and the caller drops
the packet (RFC 9001 §5.5).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from rudp.codec.frames import Frame
from rudp.codec.packet import decode_packet_number, encode_packet_number
from rudp.crypto.keys import derive_key_iv_hp, next_generation_keys
from rudp.crypto.suites import AEAD_LIMITS, CipherSuite

#: RFC 9001 §5.3: every QUIC AEAD adds a 16-byte authentication tag.
TAG_LENGTH: Final = 16
#: RFC 9001 §5.4.2: header protection samples 16 bytes of ciphertext.
SAMPLE_LENGTH: Final = 16
#: RFC 9001 §5.4.2: the sample starts 4 bytes after the start of the Packet Number field.
SAMPLE_OFFSET: Final = 4
#: RFC 9000 §17.1: a packet number is encoded on 1 to 4 bytes.
MAX_PN_LENGTH: Final = 4

# RFC 9001 §5.4.1: header protection masks the low 4 bits of a long header's first byte (reserved
# bits and packet number length) and the low 5 bits of a short header's (also the key phase).
_LONG_HEADER_BIT: Final = 0x80
_LONG_FIRST_BYTE_MASK: Final = 0x0F
_SHORT_FIRST_BYTE_MASK: Final = 0x1F
_KEY_PHASE_BIT: Final = 0x04
_PN_LENGTH_BITS: Final = 0x03
_ZERO_MASK_INPUT: Final = bytes(1 + MAX_PN_LENGTH)
_ZERO_SAMPLE: Final = bytes(SAMPLE_LENGTH)
_BYTES: Final = tuple(bytes((value,)) for value in range(256))
_MASK_FIELDS: Final = struct.Struct(">BI").unpack_from
_PN_WINDOWS: Final = tuple(
    (n, 32 - 8 * n, 1 << (8 * n), 1 << (8 * n - 1), ~((1 << (8 * n)) - 1), (1 << 62) - (1 << (8 * n)))
    for n in (1, 2, 3, 4)
)
"""By a short header's packet number length bits: the length, the shift of the field in four bytes,
and RFC 9000 Appendix A.3's window, half window, the bits above the window and the largest base."""
"""A header-protection mask's first byte and the next four (the packet number's at most), as ints."""
_UINT32: Final = struct.Struct(">I").unpack_from
"""Every one-byte ``bytes``, made once (``bytes((b,))`` costs a tuple and a constructor call)."""

#: RFC 9001 §6.6: packets that may be encrypted with one key (confidentiality limit), per suite.
CONFIDENTIALITY_LIMIT: Final[dict[CipherSuite, int]] = {
    suite: limits.confidentiality for suite, limits in AEAD_LIMITS.items()
}
#: RFC 9001 §6.6: packets that may fail authentication over a connection's lifetime (integrity limit).
INTEGRITY_LIMIT: Final[dict[CipherSuite, int]] = {
    suite: limits.integrity for suite, limits in AEAD_LIMITS.items()
}


def min_payload_length(pn_length: int) -> int:
    """Return the fewest plaintext payload bytes a packet with a ``pn_length``-byte PN may carry.

    The packet number plus ciphertext must reach the end of the header-protection sample, so short
    payloads need PADDING frames (RFC 9001 §5.4.2).
    """
    return SAMPLE_OFFSET + SAMPLE_LENGTH - TAG_LENGTH - pn_length


@dataclass(slots=True)
class UnprotectedPacket:
    """A packet whose header protection was removed and whose payload was authenticated. Read-only by
    convention (not frozen: a frozen dataclass sets each field through ``object.__setattr__``, and
    every long-header packet received makes one)."""

    first_byte: int
    """the first byte with header protection removed (reserved bits are not checked here)"""
    header: bytes
    """the unmasked header, up to and including the truncated packet number"""
    packet_number: int
    """the reconstructed full packet number"""
    pn_length: int
    """the length of the Packet Number field, 1 to 4 bytes"""
    key_phase: int
    """the Key Phase bit (0 or 1) of a short header; always 0 for long headers"""
    payload: bytes
    """the decrypted payload (frames)"""
    frames: list[tuple[int, Frame]] | None = None
    """the payload's frames, ``(type, frame)`` as :func:`~rudp.codec.frame_codec.parse_frames` gives
    them, when the packet was opened by :meth:`PacketProtection.open_and_keep` with a ``parse``;
    None: not parsed yet"""


@dataclass(frozen=True, slots=True)
class DecryptFailed:
    """The outcome of a packet that could not be unprotected; the caller drops it (RFC 9001 §5.5)."""

    reason: str
    """why: "too short" (no room for the header-protection sample) or "authentication failed" """


#: the packet was too short to hold a header-protection sample (RFC 9001 §5.4.2)
TOO_SHORT: Final = DecryptFailed("too short")
#: AEAD authentication failed: wrong keys, corruption or forgery (RFC 9001 §5.5)
AUTHENTICATION_FAILED: Final = DecryptFailed("authentication failed")


_ECB: Final = modes.ECB()  # stateless: one mode object serves every header-protection key

try:  # what ``Cipher(...).encryptor()`` calls after its ABC isinstance checks (~2 us of ~6 per key)
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    _create_encryption_ctx: Callable[..., Any] | None = _rust_openssl.ciphers.create_encryption_ctx
except (ImportError, AttributeError):  # a cryptography release without it: the public API
    _create_encryption_ctx = None


_AES: Final = algorithms.AES
"""the checked constructor"""
_AES_TYPE: Final = algorithms.AES


def _aes_header_mask(hp_key: bytes) -> Callable[[bytes], bytes]:
    """AES-ECB header protection (RFC 9001 §5.4.3): one encryptor reused for every packet; its
    ``update`` is the mask function itself (ECB encrypts each 16-byte sample on its own)."""
    if _create_encryption_ctx is not None:
        if type(hp_key) is bytes and len(hp_key) in (16, 32):
            # a key of a size AES takes (the suites' 128 and 256 bits, RFC 9001 §5.4.3): the AES object
            # without its constructor's size check, which only this check's keys skip
            algorithm = _AES_TYPE.__new__(_AES_TYPE)
            algorithm.key = hp_key
        else:
            algorithm = _AES(hp_key)  # (checks the key: ValueError)
        # ECB has nothing to check against AES.
        update: Callable[[bytes], bytes] = _create_encryption_ctx(algorithm, _ECB).update
        return update
    return Cipher(_AES(hp_key), _ECB).encryptor().update


class _ChaChaHeaderMask:
    """ChaCha20 header protection (RFC 9001 §5.4.4)."""

    __slots__ = ("_key",)

    def __init__(self, hp_key: bytes) -> None:
        self._key = hp_key

    def __call__(self, sample: bytes) -> bytes:
        # RFC 9001 §5.4.4: counter = sample[0..3] (little endian), nonce = sample[4..15]. The
        # ``cryptography`` ChaCha20 takes that same 16-byte counter||nonce value, so the sample is
        # passed unchanged; the mask encrypts 5 zero bytes. A fresh context is needed per sample.
        cipher = Cipher(algorithms.ChaCha20(self._key, sample), mode=None)
        return cipher.encryptor().update(_ZERO_MASK_INPUT)

    def many(self, samples: bytes) -> bytes:
        """The masks of consecutive 16-byte samples, 16 bytes apart (the first 5 of each are the mask:
        the key stream's first bytes, as :meth:`__call__` gives them). ChaCha20 takes a fresh context
        per sample (the sample is its counter and nonce), so this is one context per sample."""
        key, chacha, out = self._key, algorithms.ChaCha20, []
        for start in range(0, len(samples), SAMPLE_LENGTH):
            sample = samples[start : start + SAMPLE_LENGTH]
            out.append(Cipher(chacha(key, sample), mode=None).encryptor().update(_ZERO_SAMPLE))
        return b"".join(out)


_HeaderMask = Callable[[bytes], bytes]


_CHACHA20: Final = CipherSuite.CHACHA20_POLY1305_SHA256


class PacketProtection:
    """Packet and header protection for one direction under one traffic secret (one key phase).

    Build one per (secret, direction); the AEAD and header-protection ciphers are created once here.
    The same object protects (sender side) or unprotects (receiver side); a connection holds one for
    each direction and encryption level. Key updates make a successor with :meth:`next_generation`.

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """

    __slots__ = (
        "_aead",
        "_decrypt",
        "_hp",
        "_iv",
        "_mask",
        "_opened",
        "packets_protected",
        "secret",
        "suite",
        "version",
    )

    suite: CipherSuite
    """the negotiated cipher suite"""
    secret: bytes
    """the traffic secret these keys were derived from"""
    version: int
    """the QUIC version whose labels were used"""
    packets_protected: int
    """packets :meth:`protect` encrypted with this key (its confidentiality limit, RFC 9001 §6.6,
    counts them)"""
    _aead: AESGCM | ChaCha20Poly1305
    _decrypt: Callable[..., bytes]
    _iv: int
    _mask: _HeaderMask
    _hp: Callable[[bytes | memoryview], bytes]
    """The mask function itself: for AES the encryptor's own ``update`` (one C call per packet; ECB's
    update takes any buffer), for ChaCha20 a wrapper that copies the sample."""
    _opened: tuple[bytes, int, int, UnprotectedPacket] | None

    def __init__(self, suite: CipherSuite, secret: bytes, version: int) -> None:
        key, iv, hp = derive_key_iv_hp(suite, secret, version)
        if suite == _CHACHA20:
            self._setup(suite, secret, version, key, iv, _ChaChaHeaderMask(hp))
            return
        # AES (every Initial key, RFC 9001 §5.2, and the usual suites): _setup inlined, as a connection
        # builds six or seven of these during its handshake (ECB's update is the mask function, and
        # takes a memoryview sample as well as bytes).
        self.suite = suite
        self.secret = secret
        self.version = version
        aead = self._aead = AESGCM(key)
        self._decrypt = aead.decrypt
        self._iv = int.from_bytes(iv, "big")
        mask = self._mask = _aes_header_mask(hp)
        self._hp = mask  # type: ignore[assignment]
        self._opened = None
        self.packets_protected = 0

    def _setup(
        self, suite: CipherSuite, secret: bytes, version: int, key: bytes, iv: bytes, mask: _HeaderMask
    ) -> None:
        self.suite = suite
        self.secret = secret
        self.version = version
        self._aead = ChaCha20Poly1305(key) if suite == _CHACHA20 else AESGCM(key)
        self._decrypt = self._aead.decrypt
        self._iv = int.from_bytes(iv, "big")
        self._mask = mask
        hp: Callable[[bytes | memoryview], bytes] = mask  # type: ignore[assignment]
        if type(mask) is _ChaChaHeaderMask:
            hp = lambda sample: mask(bytes(sample))  # noqa: E731
        self._hp = hp
        self._opened = None
        self.packets_protected = 0

    def next_generation(self) -> PacketProtection:
        """Return the protection of the next key phase (key update, RFC 9001 §6).

        The new AEAD key and IV come from the "quic ku" successor of this secret. The
        header-protection key does not change on key update, so the same header-protection cipher is
        shared. This object stays usable, e.g. for late packets of the old phase.
        """
        secret, key, iv = next_generation_keys(self.suite, self.secret, self.version)
        successor = PacketProtection.__new__(PacketProtection)
        successor._setup(self.suite, secret, self.version, key, iv, self._mask)
        return successor

    def header_mask(self, sample: bytes) -> bytes:
        """Return the 5-byte header-protection mask for a 16-byte ciphertext ``sample``."""
        return self._mask(bytes(sample))[: 1 + MAX_PN_LENGTH]

    def seal(self, header: bytes, payload: bytes | bytearray, packet_number: int) -> bytes:
        """The AEAD half of :meth:`protect` (RFC 9001 §5.3): encrypt ``payload`` with ``header`` (which
        ends with the unmasked packet number) as associated data; return the ciphertext and tag. Counts
        towards the key's confidentiality limit like :meth:`protect`. Header protection follows, for
        one packet or many, with :meth:`header_masks` (the sample is ``ciphertext[4 - pn_length:][:16]``)."""
        ciphertext = self._aead.encrypt((self._iv ^ packet_number).to_bytes(12, "big"), payload, header)
        self.packets_protected += 1
        return ciphertext

    def header_masks(self, samples: bytes) -> bytes:
        """The header-protection masks (RFC 9001 §5.4.3, §5.4.4) of consecutive 16-byte ``samples``,
        16 bytes apart: the mask of sample ``i`` is ``masks[16 * i : 16 * i + 5]``, byte for byte
        :meth:`header_mask`'s. AES: one ECB call over all the samples (each block is encrypted on its
        own); ChaCha20: one context per sample.

        Raises:
            ValueError: ``samples`` is not a whole number of 16-byte samples.
        """
        if len(samples) % SAMPLE_LENGTH:
            raise ValueError(f"{len(samples)} bytes are not whole {SAMPLE_LENGTH}-byte samples")
        mask = self._mask
        if isinstance(mask, _ChaChaHeaderMask):
            return mask.many(samples)
        return mask(samples)

    def protect(
        self, header: bytes, payload: bytes | bytearray, packet_number: int, pn_offset: int, pn_length: int
    ) -> bytes:
        """Encrypt ``payload`` and apply header protection; return the whole protected packet.

        ``header`` ends with the truncated packet number (``pn_length`` bytes at ``pn_offset``) and its
        first byte already encodes ``pn_length - 1``; a long header's Length field already counts the
        packet number, the payload and the 16-byte tag. ``payload`` must hold at least
        :func:`min_payload_length` bytes so that a full sample exists.

        Raises:
            ValueError: the header does not end with the packet number, or ``payload`` is too short
                for a header-protection sample (sender bugs).
        """
        if len(header) != pn_offset + pn_length or not 1 <= pn_length <= MAX_PN_LENGTH:
            raise ValueError("header must end with the packet number field")
        if len(payload) < SAMPLE_OFFSET + SAMPLE_LENGTH - TAG_LENGTH - pn_length:  # min_payload_length
            raise ValueError(f"payload of {len(payload)} bytes is too short to sample; add PADDING")
        # RFC 9001 §5.3: nonce = iv XOR packet number, left-padded to the IV length.
        nonce = (self._iv ^ packet_number).to_bytes(12, "big")
        ciphertext = self._aead.encrypt(nonce, payload, header)
        self.packets_protected += 1
        # RFC 9001 §5.4.2: sample = packet[pn_offset + 4 : pn_offset + 20]; the ciphertext starts at
        # pn_offset + pn_length.
        start = SAMPLE_OFFSET - pn_length
        mask = self._mask(ciphertext[start : start + SAMPLE_LENGTH])
        packet = bytearray(header)
        # RFC 9001 §5.4.1: mask the first byte's low bits, then the packet number bytes.
        if packet[0] & _LONG_HEADER_BIT:
            packet[0] ^= mask[0] & _LONG_FIRST_BYTE_MASK
        else:
            packet[0] ^= mask[0] & _SHORT_FIRST_BYTE_MASK
        for i in range(pn_length):
            packet[pn_offset + i] ^= mask[1 + i]
        packet += ciphertext
        return bytes(packet)

    def open_short(
        self,
        datagram: bytes | memoryview,
        pn_offset: int,
        expected_pn: int,
        masks: bytes | None = None,
        index: int = 0,
    ) -> tuple[int, int, bytes] | None:
        """Open a 1-RTT (short header) packet that fills ``datagram``: the receive fast path.

        Does what :meth:`unprotect` does for such a packet (RFC 9001 §5.4.1 header protection, §5.3
        AEAD, RFC 9000 Appendix A.3 packet number) with fewer intermediate objects, and returns
        ``(first_byte, packet_number, payload)``, the first byte unmasked; None when the packet is too
        short for a sample or does not authenticate under these keys (the caller then takes the
        general path, which counts the failure and tries the other key phases). ``masks``: this
        packet's header-protection mask is at ``index`` in it (:meth:`header_masks` of the samples
        of a receive batch, computed in one call; RFC 9001 §6: the key update keeps this key).
        """
        sample_start = pn_offset + SAMPLE_OFFSET
        if pn_offset < 1 or sample_start + SAMPLE_LENGTH > len(datagram):
            return None
        # The mask's first byte and the four bytes that may mask the packet number, in one unpack;
        # likewise the four bytes from the packet number on (the sample starts after them, so they
        # exist), of which the first pn_length are the field (RFC 9001 §5.4.1).
        if masks is None:
            masks, index = self._hp(datagram[sample_start : sample_start + SAMPLE_LENGTH]), 0
        first_mask, pn_mask = _MASK_FIELDS(masks, index)
        first = datagram[0] ^ (first_mask & _SHORT_FIRST_BYTE_MASK)
        pn_length, shift, window, half_window, high_bits, limit = _PN_WINDOWS[first & _PN_LENGTH_BITS]
        payload_start = pn_offset + pn_length
        truncated = (_UINT32(datagram, pn_offset)[0] ^ pn_mask) >> shift
        # RFC 9000 Appendix A.3, inlined (decode_packet_number).
        packet_number = (expected_pn & high_bits) | truncated
        if packet_number <= expected_pn - half_window and packet_number < limit:
            packet_number += window
        elif packet_number > expected_pn + half_window and packet_number >= window:
            packet_number -= window
        header = _BYTES[first] + datagram[1:pn_offset] + truncated.to_bytes(pn_length, "big")
        nonce = (self._iv ^ packet_number).to_bytes(12, "big")
        try:
            # A slice of ``datagram`` as it is: a bytes slice, or a view's view, both cheaper for the AEAD
            # than a new memoryview of bytes.
            payload = self._decrypt(nonce, datagram[payload_start:], header)
        except InvalidTag:
            return None
        return first, packet_number, payload

    def open_and_keep(
        self,
        packet: bytes | memoryview,
        pn_offset: int,
        expected_pn: int,
        parse: Callable[[bytes], list[tuple[int, Frame]]] | None = None,
    ) -> UnprotectedPacket | DecryptFailed:
        """:meth:`unprotect`, and keep a successful result for the next :meth:`unprotect` of the very
        same packet bytes: a server's admission check opens a client's first Initial and hands these
        keys to the connection it creates, which opens that packet again (RFC 9001 §5.2 Initial keys
        are derived from the packet's DCID, so the check and the connection use the same keys). The
        kept result is used at most once and only for identical bytes, offset and expected packet
        number; the same key on the same bytes gives the same result, so nothing is skipped.

        ``parse``: reads the frames of the opened payload, kept with it (:attr:`UnprotectedPacket.frames`)
        so that they are not parsed twice either; when it raises, nothing is kept."""
        self._opened = None
        result = self._open(packet, pn_offset, expected_pn, parse)
        if type(result) is UnprotectedPacket:
            self._opened = (bytes(packet), pn_offset, expected_pn, result)
        return result

    def unprotect(
        self, packet: bytes | memoryview, pn_offset: int, expected_pn: int
    ) -> UnprotectedPacket | DecryptFailed:
        """Remove header protection, reconstruct the packet number and decrypt one packet.

        ``packet`` is exactly one QUIC packet (a long-header packet already cut at its Length field; a
        short-header packet runs to the end of the datagram). ``pn_offset`` is where the Packet Number
        field starts and ``expected_pn`` is the largest packet number processed in this space plus one.

        Never raises for bad input: a packet too short for a sample returns :data:`TOO_SHORT` and one
        that fails authentication returns :data:`AUTHENTICATION_FAILED` (RFC 9001 §5.5: drop it).
        The caller checks the reserved bits of ``first_byte`` only after success (RFC 9000 §17.2).
        """
        opened = self._opened
        if opened is not None:
            self._opened = None  # used once, whatever this packet is
            # (bytes == memoryview compares byte by byte in Python's memoryview comparison, ~25
            # instructions a byte: a copy and a memcmp are far cheaper for a 1200-byte Initial)
            if (
                opened[1] == pn_offset
                and opened[2] == expected_pn
                and opened[0] == (packet if type(packet) is bytes else bytes(packet))
            ):
                return opened[3]
        return self._open(packet, pn_offset, expected_pn, None)

    def _open(
        self,
        packet: bytes | memoryview,
        pn_offset: int,
        expected_pn: int,
        parse: Callable[[bytes], list[tuple[int, Frame]]] | None,
    ) -> UnprotectedPacket | DecryptFailed:
        """:meth:`unprotect` without the kept packet; ``parse``: read the frames of the payload too."""
        sample_start = pn_offset + SAMPLE_OFFSET
        # RFC 9001 §5.4.2: packets without room for a complete sample are discarded.
        if pn_offset < 1 or sample_start + SAMPLE_LENGTH > len(packet):
            return TOO_SHORT
        mask = self._mask(bytes(packet[sample_start : sample_start + SAMPLE_LENGTH]))
        first = packet[0]
        if first & _LONG_HEADER_BIT:
            first ^= mask[0] & _LONG_FIRST_BYTE_MASK
            key_phase = 0
        else:
            first ^= mask[0] & _SHORT_FIRST_BYTE_MASK
            key_phase = 1 if first & _KEY_PHASE_BIT else 0
        pn_length = (first & _PN_LENGTH_BITS) + 1
        payload_start = pn_offset + pn_length
        header = bytearray(packet[:payload_start])
        header[0] = first
        truncated = 0
        for i in range(pn_length):
            byte = header[pn_offset + i] ^ mask[1 + i]
            header[pn_offset + i] = byte
            truncated = (truncated << 8) | byte
        packet_number = decode_packet_number(truncated, pn_length * 8, expected_pn)
        nonce = (self._iv ^ packet_number).to_bytes(12, "big")
        header_bytes = bytes(header)
        try:
            payload = self._aead.decrypt(nonce, packet[payload_start:], header_bytes)
        except InvalidTag:
            return AUTHENTICATION_FAILED
        return UnprotectedPacket(
            first,
            header_bytes,
            packet_number,
            pn_length,
            key_phase,
            payload,
            None if parse is None else parse(payload),
        )


__all__ = [
    "AUTHENTICATION_FAILED",
    "CONFIDENTIALITY_LIMIT",
    "INTEGRITY_LIMIT",
    "MAX_PN_LENGTH",
    "SAMPLE_LENGTH",
    "SAMPLE_OFFSET",
    "TAG_LENGTH",
    "TOO_SHORT",
    "DecryptFailed",
    "PacketProtection",
    "UnprotectedPacket",
    "decode_packet_number",
    "encode_packet_number",
    "min_payload_length",
]
