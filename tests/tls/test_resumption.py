"""Session tickets, resumption and 0-RTT."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgpack
import pytest

from rudp.crypto.suites import CipherSuite
from rudp.errors import TLSAlert, TransportError, TransportErrorCode
from rudp.tls import (
    AlertDescription,
    Direction,
    EncryptionLevel,
    NamedGroup,
    SessionTicket,
    TicketStore,
    TlsConfig,
)
from rudp.tls.client import TlsClient
from rudp.tls.framing import HandshakeReassembler, HandshakeType
from rudp.tls.messages import NewSessionTicket
from rudp.tls.tickets import QUIC_MAX_EARLY_DATA
from tests.tls.pki import Pki
from tests.tls.support import SERVER_TP, Clock, Pair, client_config, make_pair, server_config


def message_types(data: bytes) -> list[int]:
    reassembler = HandshakeReassembler()
    reassembler.feed(data)
    types = []
    while (message := reassembler.next_message()) is not None:
        types.append(message.msg_type)
    return types


def first_handshake(pki: Pki, server_cfg: TlsConfig, clock: Clock | None = None) -> SessionTicket:
    store = TicketStore()
    pair = make_pair(client_config(pki, ticket_store=store, clock=clock), server_cfg)
    pair.run()
    client = pair.client.engine
    assert client.handshake_complete
    assert len(client.new_session_tickets) == 1  # type: ignore[attr-defined]
    assert len(store) == 1
    ticket = store.get("localhost")
    assert ticket is not None
    return ticket


def resume(pki: Pki, server_cfg: TlsConfig, ticket: SessionTicket, seed: int = 7, **kwargs: object) -> Pair:
    pair = make_pair(client_config(pki, session_ticket=ticket, **kwargs), server_cfg, seed=seed)  # type: ignore[arg-type]
    pair.run()
    assert pair.client.engine.handshake_complete and pair.server.engine.handshake_complete
    return pair


def server_handshake_types(pair: Pair) -> list[int]:
    return message_types(b"".join(d for lvl, d in pair.server.sent if lvl == EncryptionLevel.HANDSHAKE))


def test_ticket_contents(pki: Pki) -> None:
    ticket = first_handshake(pki, server_config(pki))
    assert ticket.server_name == "localhost"
    assert ticket.alpn_protocol == "h3"
    assert ticket.transport_parameters == SERVER_TP
    assert ticket.max_early_data == 0  # the server does not allow 0-RTT by default
    assert ticket.lifetime == 24 * 3600


def test_resumption(pki: Pki) -> None:
    server_cfg = server_config(pki)
    ticket = first_handshake(pki, server_cfg)
    pair = resume(pki, server_cfg, ticket)
    assert pair.client.engine.session_resumed and pair.server.engine.session_resumed
    types = server_handshake_types(pair)
    assert types == [HandshakeType.encrypted_extensions, HandshakeType.finished]  # no Certificate
    assert not pair.client.engine.early_data_accepted


def test_store_save_and_load(pki: Pki, tmp_path: Path) -> None:
    server_cfg = server_config(pki)
    store = TicketStore()
    pair = make_pair(client_config(pki, ticket_store=store), server_cfg)
    pair.run()
    path = tmp_path / "tickets.msgpack"
    store.save(path)
    loaded = TicketStore()
    loaded.load(path)
    assert len(loaded) == 1
    pair = make_pair(client_config(pki, ticket_store=loaded), server_cfg, seed=3)
    pair.run()
    assert pair.client.engine.session_resumed and pair.server.engine.session_resumed
    assert len(loaded) == 1  # the used ticket was taken out, the new one stored


def test_store_loads_records_saved_before_the_version_stamp(pki: Pki, tmp_path: Path) -> None:
    """Records written before SessionTicket.quic_version existed still load (stamp None); a stamped
    ticket keeps its stamp through save and load."""
    ticket = first_handshake(pki, server_config(pki))
    assert ticket.quic_version is None  # (TLS alone: no QUIC layer stamped it)
    old = {k: v for k, v in ticket.to_dict().items() if k != "quic_version"}
    path = tmp_path / "old.msgpack"
    path.write_bytes(msgpack.packb({"version": 1, "tickets": [old]}, use_bin_type=True))
    loaded = TicketStore()
    loaded.load(path)
    assert loaded.get("localhost") == ticket
    stamped = TicketStore()
    stamped.add(dataclasses.replace(ticket, quic_version=0x6B3343CF))
    stamped.save(path)
    loaded.load(path)
    again = loaded.get("localhost")
    assert again is not None and again.quic_version == 0x6B3343CF


def test_tickets_refused_by_the_engine_stay_in_the_store(pki: Pki) -> None:
    """accept_ticket leaves a ticket unused without losing it (RFC 9369 §5: another QUIC version's
    ticket waits for a connection of that version); the newest accepted one is offered."""
    server_cfg = server_config(pki)
    first = first_handshake(pki, server_cfg)
    store = TicketStore()
    store.add(dataclasses.replace(first, quic_version=1))
    store.add(dataclasses.replace(first, quic_version=2))
    seen: list[int | None] = []

    def only_1(ticket: SessionTicket) -> bool:
        seen.append(ticket.quic_version)
        return ticket.quic_version == 1

    client = TlsClient(client_config(pki, ticket_store=store), SERVER_TP, accept_ticket=only_1)
    client.start(0.0)
    assert client.session_ticket is not None and client.session_ticket.quic_version == 1
    assert seen[:2] == [2, 1]  # the newest first
    left = store.get("localhost")
    assert left is not None and left.quic_version == 2 and len(store) == 0
    store.add(left)
    client = TlsClient(client_config(pki, ticket_store=store), SERVER_TP, accept_ticket=only_1)
    client.start(0.0)
    assert client.session_ticket is None and len(store) == 1  # nothing of version 1: a full handshake


def test_bad_binder(pki: Pki) -> None:
    server_cfg = server_config(pki)
    ticket = first_handshake(pki, server_cfg)

    def tamper(name: str, level: EncryptionLevel, data: bytes) -> bytes:
        if name == "client" and level == EncryptionLevel.INITIAL:
            return data[:-1] + bytes((data[-1] ^ 0x80,))  # the binder ends the ClientHello
        return data

    pair = make_pair(client_config(pki, session_ticket=ticket), server_cfg)
    with pytest.raises(TLSAlert) as exc:
        pair.run(tamper)
    assert exc.value.alert == AlertDescription.decrypt_error


def test_expired_ticket_gives_full_handshake(pki: Pki) -> None:
    server_clock = Clock()
    server_cfg = server_config(pki, clock=server_clock, ticket_lifetime=3600)
    ticket = first_handshake(pki, server_cfg)
    server_clock.now += 3601
    pair = resume(pki, server_cfg, ticket)  # the client's clock still thinks it valid
    assert not pair.client.engine.session_resumed and not pair.server.engine.session_resumed
    assert HandshakeType.certificate in server_handshake_types(pair)


def test_client_drops_expired_tickets(pki: Pki) -> None:
    ticket = first_handshake(pki, server_config(pki))
    store = TicketStore()
    store.add(ticket)
    assert store.get("localhost", ticket.received_at + ticket.lifetime + 1) is None
    assert len(store) == 0


def test_foreign_ticket_gives_full_handshake(pki: Pki) -> None:
    ticket = first_handshake(pki, server_config(pki))
    pair = resume(pki, server_config(pki), ticket)  # another random ticket key
    assert not pair.server.engine.session_resumed


def test_ticket_for_another_server_name_is_not_offered(pki: Pki) -> None:
    ticket = dataclasses.replace(first_handshake(pki, server_config(pki)), server_name="other")
    pair = resume(pki, server_config(pki), ticket)
    assert pair.client.engine.session_ticket is None  # type: ignore[attr-defined]


def test_resumption_after_hello_retry_request(pki: Pki) -> None:
    server_cfg = server_config(pki, groups=[NamedGroup.secp256r1])
    ticket = first_handshake(pki, server_cfg)
    pair = resume(pki, server_cfg, ticket, groups=[NamedGroup.x25519, NamedGroup.secp256r1])
    assert pair.client.engine.session_resumed and pair.server.engine.session_resumed
    assert len([1 for lvl, _ in pair.client.sent if lvl == EncryptionLevel.INITIAL]) == 2


# -- 0-RTT ---------------------------------------------------------------------------------------------


def early_keys(pair: Pair) -> tuple[list[bytes], list[bytes]]:
    def pick(keys: list) -> list[bytes]:  # type: ignore[type-arg]
        return [k.secret for k in keys if k.level == EncryptionLevel.EARLY_DATA]

    return pick(pair.client.keys), pick(pair.server.keys)


def test_zero_rtt_accepted(pki: Pki) -> None:
    server_cfg = server_config(pki, early_data=True)
    ticket = first_handshake(pki, server_cfg)
    assert ticket.max_early_data == QUIC_MAX_EARLY_DATA
    pair = resume(pki, server_cfg, ticket, early_data=True)
    client, server = pair.client.engine, pair.server.engine
    assert client.early_data_offered  # type: ignore[attr-defined]
    assert client.early_data_accepted and server.early_data_accepted
    client_early, server_early = early_keys(pair)
    assert len(client_early) == 1 and client_early == server_early
    assert pair.client.keys[0].level == EncryptionLevel.EARLY_DATA  # installed right after ClientHello
    assert pair.client.keys[0].direction == Direction.WRITE
    assert pair.server.keys[0].level == EncryptionLevel.EARLY_DATA
    # no EndOfEarlyData from the client (RFC 9001 §8.3)
    client_hs = b"".join(d for lvl, d in pair.client.sent if lvl == EncryptionLevel.HANDSHAKE)
    assert message_types(client_hs) == [HandshakeType.finished]


def test_zero_rtt_ticket_replay_refused(pki: Pki) -> None:
    server_cfg = server_config(pki, early_data=True)
    ticket = first_handshake(pki, server_cfg)
    first = resume(pki, server_cfg, ticket, early_data=True)
    assert first.server.engine.early_data_accepted
    again = resume(pki, server_cfg, ticket, seed=8, early_data=True)
    assert again.client.engine.session_resumed and not again.client.engine.early_data_accepted
    assert not again.server.engine.early_data_accepted
    assert early_keys(again)[1] == []


def test_zero_rtt_client_hello_replay_refused(pki: Pki) -> None:
    from rudp.tls import TlsServer

    server_cfg = server_config(pki, early_data=True)
    ticket = first_handshake(pki, server_cfg)
    pair = resume(pki, server_cfg, ticket, early_data=True)
    client_hello = pair.client.sent[0][1]
    replayed = TlsServer(server_cfg, SERVER_TP)
    replayed.receive(EncryptionLevel.INITIAL, client_hello, 0.0)
    assert replayed.session_resumed and not replayed.early_data_accepted
    assert all(k.level != EncryptionLevel.EARLY_DATA for k in replayed.key_events())


def test_zero_rtt_refused_by_server_config(pki: Pki) -> None:
    issuing = server_config(pki, early_data=True)
    ticket = first_handshake(pki, issuing)
    no_0rtt = server_config(pki, early_data=False, ticket_key=issuing.ticket_key)
    pair = resume(pki, no_0rtt, ticket, early_data=True)
    assert pair.client.engine.session_resumed and not pair.client.engine.early_data_accepted
    client_early, server_early = early_keys(pair)
    assert len(client_early) == 1 and server_early == []


def test_zero_rtt_refused_by_quic_check(pki: Pki) -> None:
    server_cfg = server_config(pki, early_data=True)
    ticket = first_handshake(pki, server_cfg)
    seen: list[bytes | None] = []

    class Veto:  # rudp.tls.server.QuicHooks
        def respond_parameters(self, client: bytes) -> bytes:
            return SERVER_TP

        def accept_ticket(self, remembered: bytes | None) -> bool:
            return True

        def accept_early_data(self, remembered: bytes | None) -> bool:
            seen.append(remembered)
            return False

    pair = make_pair(client_config(pki, session_ticket=ticket, early_data=True), server_cfg, quic=Veto())
    pair.run()
    assert seen == [SERVER_TP]
    assert pair.server.engine.session_resumed and not pair.server.engine.early_data_accepted


def test_zero_rtt_stale_age_refused(pki: Pki) -> None:
    server_clock = Clock()
    server_cfg = server_config(pki, early_data=True, clock=server_clock)
    ticket = first_handshake(pki, server_cfg)
    server_clock.now += 60  # the client's clock did not move: its reported age is 60 s off
    pair = resume(pki, server_cfg, ticket, early_data=True)
    assert pair.server.engine.session_resumed and not pair.server.engine.early_data_accepted


def test_zero_rtt_refused_after_hello_retry_request(pki: Pki) -> None:
    server_cfg = server_config(pki, early_data=True, groups=[NamedGroup.secp256r1])
    ticket = first_handshake(pki, server_cfg)
    pair = resume(pki, server_cfg, ticket, early_data=True, groups=[NamedGroup.x25519, NamedGroup.secp256r1])
    assert pair.server.engine.session_resumed and not pair.client.engine.early_data_accepted


def test_zero_rtt_not_offered_for_other_alpn(pki: Pki) -> None:
    server_cfg = server_config(pki, early_data=True)
    ticket = first_handshake(pki, server_cfg)
    pair = resume(pki, server_cfg, ticket, early_data=True, alpn_protocols=["hq-interop"])
    assert not pair.client.engine.early_data_offered  # type: ignore[attr-defined]


def test_new_session_ticket_with_bad_early_data_size(pki: Pki) -> None:
    pair = make_pair(client_config(pki), server_config(pki, session_tickets=0))
    pair.run()
    bad = NewSessionTicket(3600, 1, b"n", b"ticket", max_early_data=16384).encode()
    with pytest.raises(TransportError) as exc:
        pair.client.engine.receive(EncryptionLevel.APPLICATION, bad, 0.0)
    assert exc.value.code == TransportErrorCode.PROTOCOL_VIOLATION


def test_explicit_send_session_ticket(pki: Pki) -> None:
    pair = make_pair(client_config(pki), server_config(pki, session_tickets=0))
    pair.run()
    server = pair.server.engine
    server.send_session_ticket(0.0)  # type: ignore[attr-defined]
    server.send_session_ticket(0.0)  # type: ignore[attr-defined]
    for level, data in server.data_to_send():
        pair.client.engine.receive(level, data, 0.0)
    tickets = pair.client.engine.new_session_tickets  # type: ignore[attr-defined]
    assert len(tickets) == 2 and tickets[0].psk != tickets[1].psk


def test_resumption_keeps_the_tickets_suite_over_the_servers_first(pki: Pki) -> None:
    """RFC 8446 §4.2.11: a server resuming picks the ticket's suite when the client still offers it
    (here not the server's first choice: both are SHA-256 suites), else its own order."""
    aes, chacha = CipherSuite.AES_128_GCM_SHA256, CipherSuite.CHACHA20_POLY1305_SHA256
    server_cfg = server_config(pki, cipher_suites=[aes, chacha])
    store = TicketStore()
    first = make_pair(client_config(pki, ticket_store=store, cipher_suites=[chacha]), server_cfg)
    first.run()
    assert first.server.engine.cipher_suite == chacha
    ticket = store.get("localhost")
    assert ticket is not None
    pair = resume(pki, server_cfg, ticket, cipher_suites=[aes, chacha])
    assert pair.server.engine.session_resumed and pair.server.engine.cipher_suite == chacha
    full = make_pair(client_config(pki, cipher_suites=[chacha, aes]), server_cfg)
    full.run()
    assert full.server.engine.cipher_suite == aes  # (no ticket: the server's order)
