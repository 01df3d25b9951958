"""A ClientHello offering a PSK is encoded once and its binders written in place (issue 13, handshake
CPU): the bytes are exactly those of encoding the whole message again with the binders (RFC 8446
§4.2.11.2), and the server accepts the binder."""

from __future__ import annotations

import pytest

import rudp.tls.server as server_module
from rudp.tls import EncryptionLevel
from rudp.tls.extensions import OfferedPsks, encode_binders, encode_offered_psks
from rudp.tls.framing import HandshakeReassembler, HandshakeType
from rudp.tls.key_schedule import KeySchedule
from rudp.tls.messages import ClientHello
from tests.tls.pki import Pki
from tests.tls.support import client_config, make_pair, server_config
from tests.tls.test_resumption import first_handshake


def test_binders_written_in_place_equal_a_full_encode(pki: Pki) -> None:
    server_cfg = server_config(pki)
    ticket = first_handshake(pki, server_cfg)
    pair = make_pair(client_config(pki, session_ticket=ticket), server_cfg, seed=5)
    pair.run()
    assert pair.client.engine.session_resumed and pair.server.engine.session_resumed
    reassembler = HandshakeReassembler()
    reassembler.feed(b"".join(d for level, d in pair.client.sent if level == EncryptionLevel.INITIAL))
    message = reassembler.next_message()
    assert message is not None and message.msg_type == HandshakeType.client_hello
    hello = ClientHello.decode(message.body)
    assert hello.pre_shared_key is not None
    binder = hello.pre_shared_key.binders[0]
    assert len(binder) == 32 and any(binder)  # a real SHA-256 binder, not the zero placeholder
    assert hello.encode() == message.raw


def test_binders_block_is_the_end_of_the_offered_psks() -> None:
    psks = OfferedPsks([(b"ticket", 7)], [bytes(range(32)), bytes(48)])
    encoded = encode_offered_psks(psks)
    tail = encode_binders(psks.binders)
    assert len(tail) == psks.binders_size() == 2 + 33 + 49
    assert encoded.endswith(tail) and encoded[: -len(tail)] == b"\x00\x0c\x00\x06ticket\x00\x00\x00\x07"


def test_resuming_server_derives_the_early_secret_once(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    # The schedule that checked the binder (RFC 8446 §4.2.11.2) goes on to the handshake secrets.
    server_cfg = server_config(pki)
    ticket = first_handshake(pki, server_cfg)
    made: list[bytes | None] = []

    class Counting(KeySchedule):
        __slots__ = ()

        def __init__(self, hash_name: str, psk: bytes | None = None) -> None:
            made.append(psk)
            super().__init__(hash_name, psk)

    monkeypatch.setattr(server_module, "KeySchedule", Counting)
    pair = make_pair(client_config(pki, session_ticket=ticket), server_cfg, seed=9)
    pair.run()
    assert pair.server.engine.session_resumed and pair.client.engine.handshake_complete
    assert made == [ticket.psk]
