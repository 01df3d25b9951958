"""(EC)DHE key shares (RFC 8446 §4.2.8, §7.4.2): both sides agree, bad peer keys are refused."""

from __future__ import annotations

import os

import pytest

from rudp.errors import TLSAlert
from rudp.tls.alerts import AlertDescription
from rudp.tls.extensions import NamedGroup
from rudp.tls.key_exchange import KeyShare


@pytest.mark.parametrize("group", [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1])
def test_both_sides_derive_the_same_secret(group: int) -> None:
    client, server = KeyShare(group, os.urandom), KeyShare(group, os.urandom)
    secret = client.exchange(server.public)
    assert secret == server.exchange(client.public) and any(secret)
    assert len(client.public) == {NamedGroup.x25519: 32, NamedGroup.secp256r1: 65}.get(group, 97)


@pytest.mark.parametrize(
    ("group", "peer"),
    [
        (NamedGroup.x25519, bytes(31)),  # wrong length
        (NamedGroup.x25519, bytes(32)),  # a low-order point: all-zero shared secret (§7.4.2)
        (NamedGroup.secp256r1, bytes(65)),  # not a point on the curve
        (NamedGroup.secp256r1, b"\x02" + bytes(32)),  # compressed: not allowed in TLS 1.3
    ],
)
def test_bad_peer_keys_are_an_illegal_parameter(group: int, peer: bytes) -> None:
    with pytest.raises(TLSAlert) as exc:
        KeyShare(group, os.urandom).exchange(peer)
    assert exc.value.alert == AlertDescription.illegal_parameter


def test_unsupported_group_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported group"):
        KeyShare(0x0101, os.urandom)
