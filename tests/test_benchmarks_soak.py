"""Smoke test of benchmarks/soak.py's churn client: connect, echo, close over and over, every third
client vanishing (its socket aborted, no CONNECTION_CLOSE), against an in-process server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import rudp
from benchmarks import soak
from rudp.testing.certs import make_test_pki


async def test_churn_clients_echo_and_vanish(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file, idle_timeout=10.0)
    async with await rudp.serve("127.0.0.1", 0, soak._echo, config=config) as server:
        failures: list[str] = []
        loop = asyncio.get_running_loop()
        durations = await soak._client_loop(server.port, pki.ca_file, loop.time() + 0.5, 3, failures)
    assert failures == []
    assert len(durations) >= 3  # at least one client vanished (the third)
    assert all(0 < d < 10 for d in durations)
