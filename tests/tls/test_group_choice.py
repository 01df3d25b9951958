"""The server's key exchange group choice (RFC 8446 §4.2.7, §4.2.8) against the plain statement of its
policy: our first group the client sent a key share for, else our first group the client supports (a
HelloRetryRequest then asks for it), else handshake_failure."""

from __future__ import annotations

import itertools

import pytest

from rudp.errors import TLSAlert
from rudp.tls import AlertDescription
from rudp.tls.extensions import NamedGroup
from rudp.tls.key_exchange import SUPPORTED_GROUPS
from rudp.tls.messages import ClientHello
from rudp.tls.server import TlsServer
from tests.tls.pki import Pki
from tests.tls.support import SERVER_TP, server_config

GROUPS = [int(g) for g in NamedGroup] + [0x0100, 0x001E]  # (ffdhe2048 and x448: not ours)


def _reference(ours: list[int], shares: list[int], supported: list[int]) -> int | None:
    usable = [g for g in ours if g in SUPPORTED_GROUPS]
    for group in usable:
        if group in shares:
            return group
    for group in usable:
        if group in supported:
            return group
    return None


def _subsets() -> list[list[int]]:
    out: list[list[int]] = []
    for size in range(0, 3):
        out += [list(c) for c in itertools.permutations(GROUPS, size)]
    return out


def test_group_choice_follows_the_policy(pki: Pki) -> None:
    ours_options = [list(NamedGroup), [NamedGroup.secp384r1, NamedGroup.x25519], [NamedGroup.secp256r1]]
    for ours in ours_options:
        server = TlsServer(server_config(pki, groups=list(ours)), SERVER_TP)
        for shares, supported in itertools.product(_subsets(), _subsets()):
            hello = ClientHello(bytes(32), [0x1301], supported_groups=supported)
            hello.key_shares = [(g, b"k") for g in shares]
            expected = _reference([int(g) for g in ours], shares, supported)
            if expected is None:
                with pytest.raises(TLSAlert) as caught:
                    server._choose_group(hello)
                assert caught.value.alert == AlertDescription.handshake_failure
            else:
                assert server._choose_group(hello) == expected, (ours, shares, supported)


def test_a_retry_keeps_its_group(pki: Pki) -> None:
    server = TlsServer(server_config(pki), SERVER_TP)
    server._hrr_group = int(NamedGroup.secp384r1)
    hello = ClientHello(bytes(32), [0x1301], supported_groups=[int(NamedGroup.x25519)])
    hello.key_shares = [(int(NamedGroup.x25519), b"k")]
    assert server._choose_group(hello) == NamedGroup.secp384r1
