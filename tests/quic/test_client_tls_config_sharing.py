"""A client's TLS settings are shared by the connections of one configuration (issue 13, handshake
CPU: no TlsConfig, key-log lookup and trust-store lookup built per connection), and only while every
input is the same: another value, another ticket store or a rewritten CA file gives new settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import rudp
from rudp.quic.connection import QuicConnection
from rudp.testing.certs import TestPki, make_test_pki
from tests.support.sim import make_sim


def _client(pki: TestPki, **kwargs: object) -> rudp.Config:
    return rudp.Config(alpn=["hq-interop"], cafile=pki.ca_file, server_name="localhost", **kwargs)  # type: ignore[arg-type]


def test_equal_inputs_share_one_tls_config_and_any_change_makes_another(pki: TestPki) -> None:
    config = _client(pki)
    first = config.tls_config(is_client=True)
    assert config.tls_config(is_client=True) is first
    assert _client(pki).tls_config(is_client=True) is first  # an equal configuration
    assert config.tls_config(is_client=True, server_name="127.0.0.1").server_name == "127.0.0.1"
    assert config.tls_config(is_client=True, server_name="127.0.0.1") is not first
    tickets = rudp.TicketStore()
    with_tickets = _client(pki, session_ticket_store=tickets).tls_config(is_client=True)
    assert with_tickets is not first and with_tickets.ticket_store is tickets
    other_store = _client(pki, session_ticket_store=rudp.TicketStore()).tls_config(is_client=True)
    assert other_store is not with_tickets
    config.alpn = ["h3"]  # changed in place
    assert config.tls_config(is_client=True).alpn_protocols == ["h3"]
    config.alpn = ["hq-interop"]
    config.enable_0rtt = True
    assert config.tls_config(is_client=True).early_data


def test_servers_and_clients_with_certificates_get_their_own(pki: TestPki) -> None:
    server = rudp.Config(alpn=["hq-interop"], certfile=pki.cert_file, keyfile=pki.key_file)
    first = server.tls_config(is_client=False)
    assert server.tls_config(is_client=False) is not first
    assert server.tls_config(is_client=False).ticket_key != first.ticket_key  # each its own ticket key
    mutual = _client(pki, certfile=pki.client_cert_file, keyfile=pki.client_key_file)
    assert mutual.tls_config(is_client=True) is not mutual.tls_config(is_client=True)


def test_a_rewritten_ca_file_gives_new_settings_with_the_new_anchors(tmp_path: Path) -> None:
    first_pki = make_test_pki(tmp_path / "a")
    other_pki = make_test_pki(tmp_path / "b")
    cafile = tmp_path / "ca.pem"
    shutil.copy(first_pki.ca_file, cafile)
    config = rudp.Config(alpn=["hq-interop"], cafile=cafile, server_name="localhost")
    first = config.tls_config(is_client=True)
    anchors = first.trust_store().anchors
    assert config.tls_config(is_client=True) is first
    shutil.copy(other_pki.ca_file, tmp_path / "new.pem")
    os.replace(tmp_path / "new.pem", cafile)  # another file in its place
    again = config.tls_config(is_client=True)
    assert again is not first and again.trust_store().anchors != anchors


def test_connections_of_one_configuration_share_it(pki: TestPki) -> None:
    # (resumption and 0-RTT through shared settings: test_flow_and_resumption's second connection)
    sim = make_sim(pki)
    sim.handshake()
    second = QuicConnection.client(sim.client_config, server_address=("10.0.0.2", 4433), now=sim.clock.now)
    assert second._handshake._tls_config is sim.conn._handshake._tls_config
