"""Caches that let handshakes share what does not change between them: parsed certificates, loaded
trust stores and the verdicts of chain verification.

Owns three bounded caches, each holding public data only (certificates, names, validity windows; never
a key, a secret or a transcript), so nothing of one connection can reach another through them:

* :class:`CertificateCache` maps DER bytes to the parsed ``x509.Certificate`` (immutable objects), so a
  client talking to the same server again does not parse the same chain again.
* :func:`cached_trust_store` loads a CA file, PEM data or directory (or the system bundle) once per
  content: a file is keyed by its path and its ``stat`` signature (device, inode, size, modification
  time), so replacing or editing it loads it again; PEM data by its SHA-256.
* :class:`VerifiedChains` (one per :class:`rudp.tls.certs.TrustStore`) remembers that a chain (by the
  DER bytes of every certificate, exactly as the peer sent them) verified for a name, together with the
  window of time in which every certificate of the chain that was built is valid. A handshake inside
  that window with the same bytes and the same name needs no second chain building: chain building,
  signatures, extension policies and name matching do not depend on the time, only the validity dates
  do (RFC 5280 §6.1.3 (a)(2)). Outside the window the chain is verified again. Failures are never
  cached. The CertificateVerify signature over each handshake's transcript is always checked
  (RFC 8446 §4.4.3): it is what proves the peer holds the key.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from cryptography import x509

if TYPE_CHECKING:
    from rudp.tls.certs import PemSource, TrustStore

K = TypeVar("K")
V = TypeVar("V")

MAX_CERTIFICATES: Final = 256
"""Parsed certificates kept (DER bytes -> object)."""
MAX_TRUST_STORES: Final = 16
"""Loaded trust stores kept (one per distinct CA source)."""
MAX_VERIFIED_CHAINS: Final = 64
"""Verified chains remembered per trust store."""


class BoundedCache(Generic[K, V]):
    """A dictionary that keeps its ``limit`` most recently used entries."""

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recently used), or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``; the least recently used entry goes when the cache is full."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget ``key`` if present."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


class CertificateCache:
    """Parsed certificates by their DER bytes (bounded, most recently used kept)."""

    def __init__(self, limit: int = MAX_CERTIFICATES) -> None:
        self._parsed: BoundedCache[bytes, x509.Certificate] = BoundedCache(limit)

    def __len__(self) -> int:
        return len(self._parsed)

    def load(self, der: bytes) -> x509.Certificate:
        """The certificate encoded by ``der``.

        Raises:
            ValueError: ``der`` is not a certificate (never cached).
        """
        der = bytes(der)
        cert = self._parsed.get(der)
        if cert is None:
            cert = x509.load_der_x509_certificate(der)
            self._parsed.put(der, cert)
        return cert

    def clear(self) -> None:
        """Forget every parsed certificate."""
        self._parsed.clear()


CERTIFICATES: Final = CertificateCache()
"""The process-wide cache of parsed peer certificates."""


Window = tuple[datetime, datetime]
"""(latest notBefore, earliest notAfter) of a verified chain: when all of it is valid."""


class VerifiedChains:
    """Chains that verified against one trust store, by (DER bytes of the chain, name); bounded."""

    __slots__ = ("_verdicts",)

    def __init__(self, limit: int = MAX_VERIFIED_CHAINS) -> None:
        self._verdicts: BoundedCache[tuple[tuple[bytes, ...], str | None], Window] = BoundedCache(limit)

    def __len__(self) -> int:
        return len(self._verdicts)

    def holds(self, ders: tuple[bytes, ...], name: str | None, at: datetime) -> bool:
        """True if this exact chain verified for ``name`` and every certificate of it is valid ``at``."""
        window = self._verdicts.get((ders, name))
        return window is not None and window[0] <= at <= window[1]

    def remember(self, ders: tuple[bytes, ...], name: str | None, built: Sequence[x509.Certificate]) -> None:
        """Record that ``ders`` verified for ``name``; ``built`` is the chain found (leaf to anchor)."""
        start = max(cert.not_valid_before_utc for cert in built)
        end = min(cert.not_valid_after_utc for cert in built)
        self._verdicts.put((ders, name), (start, end))

    def clear(self) -> None:
        """Forget every verdict."""
        self._verdicts.clear()


def _file_signature(path: str) -> tuple[int, int, int, int, int]:
    """What identifies a file's content without reading it (a replaced or edited file differs).

    The device and inode name the file whatever path reached it (no path normalisation: every client
    connection that loads its CAs through a fresh TLS configuration computes this). The change time
    is in it because the modification time alone can be set back (``os.utime``, ``touch -r``, a copy
    keeping times): a file rewritten in place with the same size and mtime still gets a new ctime,
    which no user call can set.
    """
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _source_key(source: PemSource) -> tuple[object, ...]:
    if isinstance(source, bytes):
        return ("pem", hashlib.sha256(source).digest())
    return ("file", _file_signature(os.fspath(source)))


def _directory_key(capath: str) -> tuple[object, ...]:
    entries = sorted(Path(capath).iterdir())
    return ("dir", _file_signature(capath), tuple(_file_signature(str(e)) for e in entries if e.is_file()))


_TRUST_STORES: Final[BoundedCache[tuple[object, ...], TrustStore]] = BoundedCache(MAX_TRUST_STORES)


def trust_store_cache_size() -> int:
    """How many loaded trust stores the process keeps (for tests and monitoring)."""
    return len(_TRUST_STORES)


def clear_caches() -> None:
    """Forget every cached trust store and parsed certificate."""
    _TRUST_STORES.clear()
    CERTIFICATES.clear()


def cached_trust_store(
    cafile: PemSource | None = None, cadata: bytes | None = None, capath: str | None = None
) -> TrustStore:
    """:func:`rudp.tls.certs.load_trust_store`, loaded once per distinct content of its sources.

    Raises:
        ConfigError: as ``load_trust_store`` (a source that cannot be read is never cached).
    """
    from rudp.tls.certs import load_trust_store, system_ca_bundle

    try:
        key: tuple[object, ...] = (
            None if cafile is None else _source_key(cafile),
            None if cadata is None else _source_key(cadata),
            None if capath is None else _directory_key(capath),
        )
        if cafile is None and cadata is None and capath is None:
            bundle = system_ca_bundle()
            key = ("system", None if bundle is None else _file_signature(bundle))
    except OSError:
        return load_trust_store(cafile, cadata, capath)  # raises the error that names the source
    store = _TRUST_STORES.get(key)
    if store is None:
        store = load_trust_store(cafile, cadata, capath)
        _TRUST_STORES.put(key, store)
    return store


__all__ = [
    "CERTIFICATES",
    "MAX_CERTIFICATES",
    "MAX_TRUST_STORES",
    "MAX_VERIFIED_CHAINS",
    "BoundedCache",
    "CertificateCache",
    "VerifiedChains",
    "cached_trust_store",
    "clear_caches",
    "trust_store_cache_size",
]
