"""Server ticket sealing (:class:`rudp.tls.tickets.TicketSealer`): the sealed plaintext is exactly
``msgpack.packb`` of the state's fields (the small-buffer packer changes no byte, also past its
buffer), so tickets sealed before and after open alike."""

from __future__ import annotations

import msgpack
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rudp.tls.tickets import _PACK_BUFFER, _TICKET_AAD, _TICKET_FORMAT, TicketSealer, TicketState

KEY = bytes(range(32))
NONCE = bytes(range(100, 112))


def _state(
    parameters: bytes | None, alpn: str | None = "h3", name: str | None = "example.com"
) -> TicketState:
    return TicketState(
        psk=bytes(range(32)),
        cipher_suite=0x1301,
        alpn_protocol=alpn,
        server_name=name,
        issued_at=1_700_000_000.25,
        lifetime=86400,
        age_add=0xDEADBEEF,
        max_early_data=0xFFFFFFFF,
        transport_parameters=parameters,
    )


def _fields(state: TicketState) -> list[object]:
    return [
        state.psk,
        state.cipher_suite,
        state.alpn_protocol,
        state.server_name,
        state.issued_at,
        state.lifetime,
        state.age_add,
        state.max_early_data,
        state.transport_parameters,
    ]


@pytest.mark.parametrize(
    "state",
    [
        _state(b"\x01\x02" * 40),
        _state(None, None, None),
        _state(bytes(_PACK_BUFFER)),  # past the packer's first buffer: it grows
        _state(bytes(range(256)) * 40, "x" * 300, "n" * 255),
    ],
)
def test_sealed_plaintext_is_packb_of_the_fields(state: TicketState) -> None:
    ticket = TicketSealer(KEY).seal(state, NONCE)
    assert ticket[0] == _TICKET_FORMAT and ticket[1:13] == NONCE
    plaintext = AESGCM(KEY).decrypt(NONCE, ticket[13:], _TICKET_AAD)
    assert plaintext == msgpack.packb(_fields(state), use_bin_type=True)
    assert TicketSealer(KEY).unseal(ticket) == state


def test_a_ticket_sealed_with_packb_opens() -> None:
    # (what earlier releases sealed: the format byte, the nonce, AES-GCM of packb of the fields)
    state = _state(b"\x05" * 50)
    sealed = AESGCM(KEY).encrypt(NONCE, msgpack.packb(_fields(state), use_bin_type=True), _TICKET_AAD)
    assert TicketSealer(KEY).unseal(bytes((_TICKET_FORMAT,)) + NONCE + sealed) == state


def test_tickets_of_another_key_or_tampered_do_not_open() -> None:
    ticket = TicketSealer(KEY).seal(_state(b""), NONCE)
    assert TicketSealer(bytes(32)).unseal(ticket) is None
    assert TicketSealer(KEY).unseal(ticket[:-1] + bytes((ticket[-1] ^ 1,))) is None
    assert TicketSealer(KEY).unseal(bytes((_TICKET_FORMAT + 1,)) + ticket[1:]) is None
