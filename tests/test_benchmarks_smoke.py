"""Smoke test of the benchmarks: each core function runs once, tiny, through the emulator.

Checks that every benchmark returns a structurally valid, sane result (and that its report renders).
Speed is measured by the benchmarks themselves, never asserted here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks import bulk, handshake, hol_blocking, loss_sweep, many_small, migration
from benchmarks.common import Bench, bench_network, percentile

pytestmark = [pytest.mark.usefixtures("netem"), pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def bench(netem: None) -> Iterator[Bench]:
    with bench_network(nat=True, max_seconds=300) as running:
        yield running


def finite_positive(value: Any) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and value > 0


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0], 95) == 3.0
    assert math.isnan(percentile([], 50))


def test_handshake(bench: Bench) -> None:
    result = handshake.run(rtt=0.020, count=1, bench=bench)
    assert set(result["modes"]) == set(handshake.MODES)
    for mode, row in result["modes"].items():
        assert finite_positive(row["connect_ms"]), mode
        assert row["first_response_ms"] >= row["connect_ms"] > 0, mode
        assert len(row["samples_ms"]) == 1
        assert (row["zero_rtt_accepted"] is None) == (not mode.endswith("0rtt"))
    assert "rudp-quic-0rtt" in handshake.report(result)


def test_hol_blocking(bench: Bench) -> None:
    result = hol_blocking.run(losses=(0.0, 0.05), streams=4, size=1024, rounds=2, bench=bench)
    points = result["points"]
    assert len(points) == 2 * len(hol_blocking.STACKS)
    for p in points:
        assert p["requests"] == 8
        assert 0 < p["p50_ms"] <= p["p95_ms"] <= p["p99_ms"] <= p["max_ms"]
    assert "TCP/QUIC p50" in hol_blocking.report(result)


def test_loss_sweep(bench: Bench) -> None:
    result = loss_sweep.run(losses=(0.02,), seconds=0.5, rate_bps=20e6, bench=bench)
    assert [p["variant"] for p in result["points"]] == list(loss_sweep.VARIANTS)
    for p in result["points"]:
        assert math.isfinite(p["mbit_s"]) and 0 <= p["mbit_s"] < 25  # the link carries 20 Mbit/s
    assert "tun_tx_dropped" in result["link"]["s2c"]
    assert "rudp cubic/TCP" in loss_sweep.report(result)


def test_many_small(bench: Bench) -> None:
    result = many_small.run(sequential=5, requests=20, concurrency=4, bench=bench)
    assert set(result["stacks"]) == set(many_small.STACKS)
    for row in result["stacks"].values():
        assert finite_positive(row["concurrent_req_s"])
        assert 0 < row["sequential_p50_ms"] <= row["sequential_p99_ms"]
    assert "conc req/s" in many_small.report(result)


def test_migration_runs_last(bench: Bench) -> None:
    result = migration.run(mbytes=0.4, stall=3.0, bench=bench)
    runs = {r["stack"]: r for r in result["runs"]}
    assert set(runs) == set(migration.STACKS)
    for r in runs.values():
        assert r["rebound_to"] is not None  # every download got past half-way before the rebinding
        assert isinstance(r["completed"], bool)
        assert 0 < r["bytes"] <= result["conditions"]["bytes"]
    quic = runs["rudp-quic"]
    assert quic["completed"], quic["error"]
    assert quic["server_view"]["path_changes"] >= 1
    assert "BROKEN" in migration.report(result) or runs["rudp-tcp"]["completed"]


def test_bulk_loopback() -> None:
    result = bulk.run(mbytes=0.2, repeat=1)
    assert set(result["mbit_s"]) == {"rudp-quic", "rudp-quic-1350", "rudp-tcp", "aioquic"}
    assert all(finite_positive(v) for v in result["mbit_s"].values())
    assert "vs aioquic" in bulk.report(result)
