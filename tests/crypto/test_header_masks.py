"""Batched header protection (issue 13 packet trains): ``PacketProtection.header_masks`` gives, for
many samples at once, byte for byte the masks ``header_mask`` gives one sample at a time (RFC 9001
§5.4.3 AES, §5.4.4 ChaCha20; QUIC v1 and v2 keys), the published RFC 9001 / RFC 9369 masks among them,
and ``seal`` plus those masks rebuild exactly the packet ``protect`` writes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.codec.codes import Version
from rudp.crypto.keys import INITIAL_SUITE
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import SUITE_HASH, CipherSuite
from rudp.crypto.vectors import ALL_VECTORS, VersionVectors

SECRET_LENGTH = {"sha256": 32, "sha384": 48}


def _protection(suite: CipherSuite, version: int, fill: int = 0x3C) -> PacketProtection:
    return PacketProtection(suite, bytes([fill]) * SECRET_LENGTH[SUITE_HASH[suite]], version)


@settings(max_examples=60)
@given(
    suite=st.sampled_from(list(CipherSuite)),
    version=st.sampled_from([Version.V1, Version.V2]),
    samples=st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=40),
)
def test_batched_masks_equal_one_sample_at_a_time(
    suite: CipherSuite, version: int, samples: list[bytes]
) -> None:
    one_by_one = _protection(suite, version)
    batched = _protection(suite, version)
    masks = batched.header_masks(b"".join(samples))
    assert len(masks) == 16 * len(samples)
    for i, sample in enumerate(samples):
        assert masks[16 * i : 16 * i + 5] == one_by_one.header_mask(sample)
    # The AES encryptor is reused: a batch leaves it where single masks expect it.
    assert batched.header_mask(samples[0]) == one_by_one.header_mask(samples[0])


def test_masks_differ_between_suites_and_versions() -> None:
    # A test that cannot pass by accident: the same sample under other keys gives other masks.
    sample = bytes(range(16))
    masks = {
        _protection(suite, version).header_masks(sample)[:5]
        for suite in CipherSuite
        for version in (Version.V1, Version.V2)
    }
    assert len(masks) == 2 * len(CipherSuite)


@pytest.mark.parametrize("vectors", ALL_VECTORS, ids=["rfc9001-v1", "rfc9369-v2"])
def test_published_masks_in_one_batch(vectors: VersionVectors) -> None:
    # RFC 9001 A.2, A.3, A.5 and RFC 9369 A.2, A.3, A.5: the samples of the client and server Initials
    # in one AES call, and the ChaCha20 short packet's sample beside another.
    version = vectors.version
    client, server = vectors.client_initial, vectors.server_initial
    protection = PacketProtection(INITIAL_SUITE, vectors.client_keys.secret, version)
    masks = protection.header_masks(client.sample + client.sample)
    assert masks[:5] == client.mask and masks[16:21] == client.mask
    server_keys = PacketProtection(INITIAL_SUITE, vectors.server_keys.secret, version)
    assert server_keys.header_masks(server.sample)[:5] == server.mask
    chacha = vectors.chacha20_short
    keys = PacketProtection(CipherSuite.CHACHA20_POLY1305_SHA256, chacha.secret, version)
    masks = keys.header_masks(bytes(16) + chacha.sample)
    assert masks[16:21] == chacha.mask
    assert masks[:5] == keys.header_mask(bytes(16)) != chacha.mask


@settings(max_examples=60)
@given(
    suite=st.sampled_from(list(CipherSuite)),
    version=st.sampled_from([Version.V1, Version.V2]),
    pn_length=st.integers(1, 4),
    payload=st.binary(min_size=3, max_size=200),
)
def test_seal_and_masks_rebuild_protect(
    suite: CipherSuite, version: int, pn_length: int, payload: bytes
) -> None:
    dcid = b"\x11" * 8
    packet_number = 0x1234567 & ((1 << (8 * pn_length)) - 1)
    header = bytes([0x40 | 0x04 | (pn_length - 1)]) + dcid + packet_number.to_bytes(pn_length, "big")
    expected = _protection(suite, version).protect(header, payload, packet_number, 1 + len(dcid), pn_length)
    protection = _protection(suite, version)
    sealed = protection.seal(header, payload, packet_number)
    assert protection.packets_protected == 1
    mask = protection.header_masks(sealed[4 - pn_length : 20 - pn_length])
    first = header[0] ^ (mask[0] & 0x1F)
    pn = bytes(b ^ m for b, m in zip(header[-pn_length:], mask[1 : 1 + pn_length], strict=True))
    assert bytes([first]) + dcid + pn + sealed == expected


def test_masks_refuse_a_partial_sample() -> None:
    with pytest.raises(ValueError, match="16-byte samples"):
        _protection(CipherSuite.AES_128_GCM_SHA256, Version.V1).header_masks(bytes(20))
