"""Smoke tests of benchmarks/server_cpu.py: both asyncio servers in their own processes, connections
from rudp's client, full and resumed (a resumed batch raises if a connection did not resume); the
per-connection counters each server reports; the instruction count under callgrind."""

from __future__ import annotations

import math
import os
import shutil

import pytest

from benchmarks import server_cpu


@pytest.mark.parametrize("resumed", [False, True])
def test_server_cpu_runs_both_servers(resumed: bool) -> None:
    allowed = os.sched_getaffinity(0)
    result = server_cpu.run(batch=4, rounds=2, resumed=resumed)
    assert set(result["stacks"]) == {"rudp", "aioquic"}
    assert result["conditions"]["pinned"] == (len(allowed) >= 2)
    assert os.sched_getaffinity(0) == allowed  # the calling process is unpinned again
    for row in result["stacks"].values():
        assert len(row["batches_ms"]) == 2
        assert all(math.isfinite(v) and v > 0 for v in row["batches_ms"])
        assert row["median_ms"] > row["sys_ms"] >= 0
        assert row["faults"] >= 0 and row["collections_per_1000"] >= 0 and row["gc_ms"] >= 0
        assert row["waits"] >= 1  # (each connection wakes the server at least once)
        assert "instructions" not in row
    text = server_cpu.report(result)
    assert "vs aioquic" in text and ("resumed" in text) == resumed and "instructions" not in text


def test_server_cpu_counts_instructions_under_callgrind() -> None:
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        if os.environ.get("RUDP_REQUIRE_NETEM") == "1":
            pytest.fail("RUDP_REQUIRE_NETEM=1 but valgrind is not installed", pytrace=False)
        pytest.skip("valgrind is not installed (CI: RUDP_REQUIRE_NETEM=1 and .ci/run installs it)")
    result = server_cpu.run(batch=2, rounds=1, stacks=("rudp",), instructions=True)
    row = result["stacks"]["rudp"]
    # a server handshake (TLS 1.3 with X25519 and an ECDSA signature, in Python) is millions of
    # instructions; counting left on outside the batch (warm-up, start-up) would be far more
    assert 1e6 < row["instructions"] < 5e7
    assert "instructions" in server_cpu.report(result)


def test_server_cpu_without_callgrind_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(RuntimeError, match="valgrind"):
        server_cpu.run(batch=1, rounds=1, instructions=True)
