"""How packet protection is set up (issue 13, handshake CPU): the AES header-protection encryptor made
without ``Cipher``'s checks, and the public ``Cipher`` API it falls back to, give the published masks
(RFC 9001 A.2/A.3, RFC 9369 A.2/A.3) and the same packets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import rudp.crypto.protection as protection_module
from rudp.codec.codes import Version
from rudp.crypto.hkdf import hash_by_name, hkdf_expand_label
from rudp.crypto.keys import (
    INITIAL_SUITE,
    LABELS_V1,
    LABELS_V2,
    derive_aead_key_and_iv,
    derive_key_iv_hp,
    next_generation_keys,
    next_generation_secret,
)
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import SUITE_HASH, SUITE_KEY_LENGTH, CipherSuite
from rudp.crypto.vectors import ALL_VECTORS, VersionVectors

SECRET_LENGTH = {"sha256": 32, "sha384": 48}


def _masks_and_packet(vectors: VersionVectors) -> tuple[bytes, bytes, bytes]:
    client, server = vectors.client_initial, vectors.server_initial
    client_keys = PacketProtection(INITIAL_SUITE, vectors.client_keys.secret, vectors.version)
    server_keys = PacketProtection(INITIAL_SUITE, vectors.server_keys.secret, vectors.version)
    header = bytes([0xC3]) + bytes(8) + (7).to_bytes(4, "big")
    packet = client_keys.protect(header, bytes(range(40)), 7, len(header) - 4, 4)
    return client_keys.header_mask(client.sample), server_keys.header_mask(server.sample), packet


@pytest.mark.parametrize("vectors", ALL_VECTORS, ids=["rfc9001-v1", "rfc9369-v2"])
def test_both_ways_of_making_the_aes_encryptor_give_the_published_masks(
    vectors: VersionVectors, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _masks_and_packet(vectors)
    assert direct[0] == vectors.client_initial.mask and direct[1] == vectors.server_initial.mask
    monkeypatch.setattr(protection_module, "_create_encryption_ctx", None)
    assert _masks_and_packet(vectors) == direct


def test_the_direct_encryptor_is_used_when_available() -> None:
    # The shortcut is what runs (not only the fallback), and it still refuses a bad key size.
    assert protection_module._create_encryption_ctx is not None
    with pytest.raises(ValueError):
        protection_module._aes_header_mask(bytes(15))


@pytest.mark.parametrize("version", [Version.V1, Version.V2])
@pytest.mark.parametrize("suite", list(CipherSuite))
def test_key_iv_hp_from_cached_label_blocks_equal_hkdf_expand_label(
    suite: CipherSuite, version: int
) -> None:
    # RFC 9001 §5.1, RFC 9369 §3.3.2: key, iv and hp are HKDF-Expand-Label(secret, label, "", L); the
    # precomputed info blocks (kept per suite and version) give the same bytes, twice in a row.
    secret = bytes(range(SECRET_LENGTH[SUITE_HASH[suite]]))
    labels = LABELS_V1 if version == Version.V1 else LABELS_V2
    algorithm = hash_by_name(SUITE_HASH[suite])
    size = SUITE_KEY_LENGTH[suite]
    expected = [
        hkdf_expand_label(algorithm, secret, labels.key, b"", size),
        hkdf_expand_label(algorithm, secret, labels.iv, b"", 12),
        hkdf_expand_label(algorithm, secret, labels.hp, b"", size),
    ]
    assert derive_key_iv_hp(suite, secret, version) == expected
    assert derive_key_iv_hp(suite, secret, version) == expected
    other = derive_key_iv_hp(suite, bytes(len(secret)), version)
    assert all(a != b for a, b in zip(other, expected, strict=True))


def _public_api_mask(hp_key: bytes) -> Callable[[bytes], bytes]:
    return Cipher(algorithms.AES(hp_key), modes.ECB()).encryptor().update


@pytest.mark.parametrize("size", [16, 32])
def test_the_aes_object_made_without_its_constructor_masks_as_the_public_api(size: int) -> None:
    # The shortcut (an AES object for a 16- or 32-byte key without algorithms.AES's size check) and
    # the public Cipher API give the same masks, for many keys and samples.
    for seed in range(16):
        key = bytes((seed * 31 + i) & 0xFF for i in range(size))
        samples = bytes((seed * 7 + i * 13) & 0xFF for i in range(16 * 8))
        mask = protection_module._aes_header_mask(key)
        assert mask(samples) == _public_api_mask(key)(samples)
        assert mask(samples[:16]) == _public_api_mask(key)(samples[:16])


@pytest.mark.parametrize("key", [bytes(range(24)), bytearray(range(16)), memoryview(bytes(range(32)))])
def test_other_keys_take_the_checked_aes_constructor(key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fall back of the shortcut: a 24-byte key (AES takes it, no QUIC suite uses it) or a key that
    # is not bytes goes through algorithms.AES, and still masks as the public API.
    made: list[object] = []
    checked = protection_module._AES

    def counting(key: bytes) -> algorithms.AES:
        made.append(key)
        return checked(key)

    monkeypatch.setattr(protection_module, "_AES", counting)
    sample = bytes(range(100, 116))
    assert protection_module._aes_header_mask(key)(sample) == _public_api_mask(bytes(key))(sample)
    assert made == [key]
    made.clear()
    protection_module._aes_header_mask(bytes(16))(sample)
    assert made == []  # (the shortcut, for the suites' key sizes)


@pytest.mark.parametrize("version", [Version.V1, Version.V2])
@pytest.mark.parametrize("suite", list(CipherSuite))
def test_next_generation_keys_equal_the_general_derivation(suite: CipherSuite, version: int) -> None:
    # RFC 9001 §6.1: the next secret is HKDF-Expand-Label(secret, "quic ku", "", Hash.length) and its
    # key and iv follow as for any secret; the cached label blocks give the same bytes, twice.
    for secret in (bytes(range(SECRET_LENGTH[SUITE_HASH[suite]])), bytes(SECRET_LENGTH[SUITE_HASH[suite]])):
        expected_secret = next_generation_secret(suite, secret, version)
        expected = (expected_secret, *derive_aead_key_and_iv(suite, expected_secret, version))
        assert next_generation_keys(suite, secret, version) == expected
        assert next_generation_keys(suite, secret, version) == expected
        successor = PacketProtection(suite, secret, version).next_generation()
        assert successor.secret == expected_secret


def test_next_generation_keys_refuse_an_unknown_version() -> None:
    with pytest.raises(ValueError):
        next_generation_keys(CipherSuite.AES_128_GCM_SHA256, bytes(32), 0x0A0A0A0A)
