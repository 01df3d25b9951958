"""The HMAC and HKDF helpers of rudp.crypto.hkdf agree with the standard library's HMAC and with
``cryptography``'s HKDF for every key length (RFC 2104 long keys included) and both TLS 1.3 hashes."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given
from hypothesis import strategies as st

from rudp.crypto.hkdf import (
    KeyedHmac,
    hash_by_name,
    hkdf_expand,
    hkdf_expand_label,
    hkdf_expand_labels,
    hkdf_extract,
    hmac_digest,
    hmac_digests,
)

HASHES = st.sampled_from(["sha256", "sha384"])


@given(name=HASHES, key=st.binary(max_size=300), messages=st.lists(st.binary(max_size=200), max_size=4))
def test_hmac_helpers_match_the_standard_library(name: str, key: bytes, messages: list[bytes]) -> None:
    keyed = KeyedHmac(name, key)
    for message in messages:
        expected = hmac.digest(key, message, name)
        assert hmac_digest(name, key, message) == expected
        assert keyed.digest(message) == expected
    lengths = [(message, len(message) % 40) for message in messages]
    assert hmac_digests(name, key, tuple(lengths)) == [hmac.digest(key, m, name)[:n] for m, n in lengths]


@given(
    name=HASHES,
    prk=st.binary(min_size=1, max_size=64),
    info=st.binary(max_size=80),
    length=st.integers(1, 255),
)
def test_hkdf_expand_matches_cryptography(name: str, prk: bytes, info: bytes, length: int) -> None:
    algorithm = hash_by_name(name)
    if length > 255 * algorithm.digest_size:
        return
    assert hkdf_expand(algorithm, prk, info, length) == HKDFExpand(algorithm, length, info).derive(prk)


@given(name=HASHES, secret=st.binary(min_size=32, max_size=48))
def test_expand_labels_equals_one_label_at_a_time(name: str, secret: bytes) -> None:
    algorithm = hash_by_name(name)
    labels = ((b"quic key", 16), (b"quic iv", 12), (b"quic hp", 32), (b"derived", algorithm.digest_size))
    expected = [hkdf_expand_label(algorithm, secret, label, b"", length) for label, length in labels]
    assert hkdf_expand_labels(algorithm, secret, labels) == expected


def test_extract_with_an_empty_salt_uses_zeros() -> None:
    algorithm = hash_by_name("sha256")
    assert hkdf_extract(algorithm, b"", b"ikm") == hmac.digest(bytes(32), b"ikm", "sha256")


@given(
    name=HASHES,
    secret=st.binary(min_size=1, max_size=64),
    label=st.binary(min_size=1, max_size=20),
    context=st.binary(max_size=64),
    length=st.integers(1, 120),
)
def test_expand_label_is_hkdf_expand_of_the_hkdf_label(
    name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> None:
    # RFC 8446 §7.1: HkdfLabel = length (2 bytes), "tls13 " + label (<7..255>), context (<0..255>);
    # lengths within one hash block take the inline path, longer ones hkdf_expand's loop.
    algorithm = hash_by_name(name)
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context
    expected = HKDFExpand(algorithm, length, info).derive(secret)
    assert hkdf_expand_label(algorithm, secret, label, context, length) == expected


@given(dcid=st.binary(max_size=20), v2=st.booleans())
def test_initial_secrets_equal_the_general_hkdf_path(dcid: bytes, v2: bool) -> None:
    """The prepared Initial-salt HMAC key gives HKDF-Extract then two HKDF-Expand-Label (RFC 9001 §5.2)."""
    from rudp.codec.codes import Version
    from rudp.crypto.keys import _derive_initial_secrets, initial_salt

    version = Version.V2 if v2 else Version.V1
    sha256 = hash_by_name("sha256")
    secret = hkdf_extract(sha256, initial_salt(version), dcid)
    expected = tuple(
        hkdf_expand_label(sha256, secret, label, b"", 32) for label in (b"client in", b"server in")
    )
    for _ in range(2):  # the first call prepares the salt's key, the second reuses it
        assert _derive_initial_secrets(dcid, version) == expected


def test_keyed_hmac_prefixes_equal_one_digest_each() -> None:
    import hmac as _hmac

    from rudp.crypto.hkdf import KeyedHmac

    prf = KeyedHmac("sha256", b"k" * 32)
    messages = [b"", b"a", b"x" * 100, bytes(range(64))]
    assert prf.prefixes(messages, 16) == [_hmac.digest(b"k" * 32, m, "sha256")[:16] for m in messages]
    assert prf.prefixes([], 16) == []
