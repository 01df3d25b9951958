"""How packet protection is set up (issue 13, handshake CPU): the AES header-protection encryptor made
without ``Cipher``'s checks, and the public ``Cipher`` API it falls back to, give the published masks
(RFC 9001 A.2/A.3, RFC 9369 A.2/A.3) and the same packets."""

from __future__ import annotations

import pytest

import rudp.crypto.protection as protection_module
from rudp.crypto.keys import INITIAL_SUITE
from rudp.crypto.protection import PacketProtection
from rudp.crypto.vectors import ALL_VECTORS, VersionVectors


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
