"""A connection's qlog file never outlives it: closed when the connection closes, and when a connection
that was never closed is collected (no ResourceWarning, no open descriptor left behind)."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.testing.certs import TestPki


def test_a_dropped_connection_closes_its_qlog_file(pki: TestPki, tmp_path: Path) -> None:
    config = Config(cafile=pki.ca_file, server_name="localhost", qlog_dir=tmp_path)
    conn = QuicConnection.client(config, server_address=("10.0.0.2", 4433), now=0.0)
    assert conn.datagrams_to_send(0.0)
    conn.next_timer()  # the first sync writes the file (and opens it)
    (path,) = tmp_path.glob("*.sqlog")
    assert path.stat().st_size > 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        del conn
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
