"""What a TLS failure tells the peer: the code and the alert's name, never our verdict's details
(RFC 9000 §10.2 leaves the reason to us; an unauthenticated peer gets nothing it could use)."""

from __future__ import annotations

from pathlib import Path

from rudp.codec.codes import TransportErrorCode
from rudp.testing.certs import TestPki, make_test_pki
from tests.support.sim import make_sim


def test_an_untrusted_server_hears_only_the_alert_name(pki: TestPki, tmp_path: Path) -> None:
    other = make_test_pki(tmp_path / "other")  # the client trusts another CA
    sim = make_sim(pki, client={"cafile": other.ca_file})
    assert sim.pair.drive(until=lambda: sim.conn.close_cause is not None, max_time=5)
    local = sim.conn.close_cause
    assert local is not None and not local.by_peer
    assert local.code == TransportErrorCode.CRYPTO_ERROR + 48  # unknown_ca
    assert "not trusted" in local.reason and "cafile" in local.reason  # the full story, for us
    assert sim.pair.drive(until=lambda: sim.server.conn.close_cause is not None, max_time=5)
    remote = sim.server.conn.close_cause
    assert remote is not None and remote.by_peer and remote.code == local.code
    assert remote.reason == "TLS alert unknown ca"  # and nothing else crosses the wire
