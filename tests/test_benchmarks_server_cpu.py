"""Smoke test of benchmarks/server_cpu.py: both asyncio servers in their own processes, connections
from rudp's client, full and resumed (a resumed batch raises if a connection did not resume)."""

from __future__ import annotations

import math

import pytest

from benchmarks import server_cpu


@pytest.mark.parametrize("resumed", [False, True])
def test_server_cpu_runs_both_servers(resumed: bool) -> None:
    result = server_cpu.run(batch=4, rounds=2, resumed=resumed)
    assert set(result["stacks"]) == {"rudp", "aioquic"}
    for row in result["stacks"].values():
        assert len(row["batches_ms"]) == 2
        assert all(math.isfinite(v) and v >= 0 for v in row["batches_ms"])
    text = server_cpu.report(result)
    assert "vs aioquic" in text and ("resumed" in text) == resumed
