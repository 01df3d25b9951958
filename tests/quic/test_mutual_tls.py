"""Mutual TLS through the public Config: a server that requires client certificates accepts a client
that presents one signed by its CA and refuses one that presents none (certificate_required)."""

from __future__ import annotations

from rudp.testing.certs import TestPki
from tests.support.sim import make_sim


def test_client_certificate_required_and_presented(pki: TestPki) -> None:
    sim = make_sim(
        pki,
        client={"certfile": pki.client_cert_file, "keyfile": pki.client_key_file},
        server={"client_auth": "required", "cafile": pki.ca_file},
    )
    sim.handshake()
    peer = sim.server.conn.peer_certificate
    assert peer is not None and "rudp test client" in peer.subject.rfc4514_string()
    assert sim.conn.peer_certificate is not None  # and the client verified the server, as always


def test_client_without_certificate_is_refused(pki: TestPki) -> None:
    sim = make_sim(pki, server={"client_auth": "required", "cafile": pki.ca_file})
    assert sim.pair.drive(until=lambda: sim.client.terminated is not None, max_time=5)
    end = sim.client.terminated
    assert end is not None and end.code == 0x100 + 116 and end.by_peer  # certificate_required
