"""Work an accepted connection no longer repeats (issue 13, server handshake CPU): each shortcut must
give exactly what the general computation gives, or a test here fails."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import random

import pytest

from rudp.codec.transport_params import (
    PreferredAddress,
    TransportParameters,
    VersionInformation,
    with_changes,
)
from rudp.errors import ConfigError
from rudp.quic import versions as versions_module
from rudp.quic.cids import RESET_TOKEN_SIZE, LocalConnectionIds, stateless_reset_token
from rudp.quic.keys import KeyPair
from rudp.quic.spaces import PacketSpaces
from rudp.quic.versions import SUPPORTED_VERSIONS, Version, VersionNegotiation, compatible
from rudp.testing.certs import TestPki
from rudp.tls.config import TlsConfig
from rudp.tls.tickets import TicketSealer, TicketState


@pytest.mark.parametrize("key_length", [16, 32, 64, 65, 200])
def test_issued_reset_tokens_are_the_hmac_of_each_cid(key_length: int) -> None:
    """RFC 9000 §10.3.2: every token, the handshake's (sequence 0) and the NEW_CONNECTION_ID ones, is
    HMAC-SHA256(static key, CID) cut to 16 bytes, also for keys longer than a hash block."""
    rng = random.Random(key_length)
    key = rng.randbytes(key_length)
    counter = itertools.count(1)
    ids = LocalConnectionIds(b"\x07" * 8, key, lambda n: next(counter).to_bytes(n, "big"), 8)
    ids.issue_up_to(8)
    assert len(ids.active) == 8
    for entry in ids.active.values():
        expected = hmac.new(key, entry.cid, hashlib.sha256).digest()[:RESET_TOKEN_SIZE]
        assert entry.reset_token == expected == stateless_reset_token(key, entry.cid)
    preferred_ids = LocalConnectionIds(b"\x01" * 4, key, lambda n: rng.randbytes(n), 4)
    preferred = preferred_ids.issue_preferred()
    assert preferred.reset_token == hmac.new(key, preferred.cid, hashlib.sha256).digest()[:16]


def _offered_reference(original: int, preferred: tuple[int, ...] | None) -> tuple[int, ...]:
    order = preferred if preferred is not None else (original, *SUPPORTED_VERSIONS)
    offered = [v for v in order if compatible(original, v)]
    if original not in offered:
        offered.insert(0, original)
    return tuple(dict.fromkeys(offered))


def test_available_versions_are_computed_once_per_preference_and_equal_the_rule() -> None:
    """RFC 9368 §3: the client's Available Versions (the Chosen Version included, by preference); the
    shared answer for each (version, preference list) is the list the rule gives."""
    cases: list[tuple[int, tuple[int, ...] | None]] = [
        (Version.V1, None),
        (Version.V2, None),
        (Version.V1, (Version.V2, Version.V1)),
        (Version.V2, (Version.V1,)),
        (Version.V1, (0x1A2A3A4A, Version.V2)),
        (Version.V1, ()),
    ]
    for original, preferred in cases:
        spaces = PacketSpaces(original, random.Random(0).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
        first = VersionNegotiation(spaces, is_client=True, preferred=preferred)
        second = VersionNegotiation(spaces, is_client=True, preferred=preferred)
        expected = _offered_reference(original, preferred)
        assert first.local_information().available_versions == expected
        assert second.local_information().available_versions == expected
        assert first.local_information().chosen_version == original
    # a list as preference (not hashable) gives the same answer as the tuple
    spaces = PacketSpaces(Version.V1, random.Random(0).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
    listed = VersionNegotiation(spaces, is_client=True, preferred=[Version.V2, Version.V1])  # type: ignore[arg-type]
    assert listed.local_information().available_versions == _offered_reference(
        Version.V1, (Version.V2, Version.V1)
    )
    assert len(versions_module._OFFERED) <= versions_module._MAX_OFFERED


def _random_parameters(rng: random.Random) -> TransportParameters:
    def maybe_cid() -> bytes | None:
        return rng.randbytes(rng.randrange(0, 21)) if rng.random() < 0.7 else None

    return TransportParameters(
        original_destination_connection_id=maybe_cid(),
        initial_source_connection_id=maybe_cid(),
        retry_source_connection_id=maybe_cid(),
        stateless_reset_token=rng.randbytes(16) if rng.random() < 0.5 else None,
        max_idle_timeout=rng.randrange(0, 100_000),
        initial_max_data=rng.randrange(0, 2**40),
        active_connection_id_limit=rng.randrange(2, 10),
        disable_active_migration=rng.random() < 0.5,
        max_datagram_frame_size=rng.choice([None, 0, 1200, 65535]),
        min_ack_delay=rng.choice([None, 1000, 25000]),
        version_information=rng.choice([None, VersionInformation(Version.V1, (Version.V1, Version.V2))]),
    )


def test_with_changes_equals_dataclasses_replace() -> None:
    """The connection's own parameters (its CIDs, reset token, preferred address and version
    information filled in) are the object ``dataclasses.replace`` would give, field for field."""
    rng = random.Random(13)
    names = [f.name for f in dataclasses.fields(TransportParameters)]
    preferred = PreferredAddress(None, 0, None, 0, b"\x05" * 8, b"\x06" * 16)
    for _ in range(500):
        base = _random_parameters(rng)
        other = _random_parameters(rng)
        changed = rng.sample(names, rng.randrange(0, 6))
        changes: dict[str, object] = {name: getattr(other, name) for name in changed}
        if rng.random() < 0.3:
            changes["preferred_address"] = preferred
        made = with_changes(base, changes)
        reference = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        assert made == reference
        assert all(getattr(made, name) == getattr(reference, name) for name in names)  # unknown too
        assert all(getattr(base, name) == getattr(made, name) for name in names if name not in changes)
    with pytest.raises(TypeError):
        with_changes(TransportParameters(), {"no_such_parameter": 1})


def test_a_server_configuration_seals_tickets_with_one_sealer_per_key(pki: TestPki) -> None:
    """Every connection of a server configuration uses the same ticket AEAD; a ticket it seals opens
    with the key alone, and a new key gets a new sealer (tickets of the old key no longer open)."""
    config = TlsConfig(
        is_client=False, alpn_protocols=["h3"], certfile=pki.cert_file, keyfile=pki.key_file
    )
    sealer = config.ticket_sealer()
    assert config.ticket_sealer() is sealer
    state = TicketState(b"p" * 32, 0x1301, "h3", "example.com", 1000.0, 3600, 7, 0, b"\x01\x02")
    ticket = sealer.seal(state, b"n" * 12)
    assert config.ticket_key is not None
    assert TicketSealer(config.ticket_key).unseal(ticket) == state
    config.ticket_key = bytes(32)
    renewed = config.ticket_sealer()
    assert renewed is not sealer
    assert renewed.unseal(ticket) is None
    assert renewed.unseal(renewed.seal(state, b"m" * 12)) == state
    client = TlsConfig(is_client=True, alpn_protocols=["h3"], verify_peer=False)
    with pytest.raises(ConfigError):
        client.ticket_sealer()


def test_a_server_version_information_is_shared_and_names_its_version_now() -> None:
    """RFC 9368 §3: a server's version_information names the version it speaks now (after a switch,
    the new one) and every version it supports; one object per version, shared by its connections."""
    for original in (Version.V1, Version.V2):
        spaces = PacketSpaces(original, random.Random(0).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
        server = VersionNegotiation(spaces, is_client=False, preferred=None)
        info = server.local_information()
        assert info == VersionInformation(original, tuple(SUPPORTED_VERSIONS))
        assert VersionNegotiation(spaces, is_client=False, preferred=None).local_information() is info
        other = Version.V2 if original == Version.V1 else Version.V1
        spaces.switch_version(other, KeyPair.initial(b"\x01" * 8, other, is_client=False))
        assert server.local_information() == VersionInformation(other, tuple(SUPPORTED_VERSIONS))
