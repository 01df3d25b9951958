"""benchmarks/many_small.py's report: ratios to aioquic round by round, and the bound a link with a
round trip puts on requests in flight (concurrency / a lone request's mean latency, Little's law)."""

from __future__ import annotations

from typing import Any

from benchmarks import many_small


def _row(seq_p50: float, runs: list[float]) -> dict[str, Any]:
    return {
        "sequential_p50_ms": seq_p50,
        "sequential_p99_ms": seq_p50 + 1,
        "sequential_req_s": 1000 / (seq_p50 + 0.5),  # (a mean above the median)
        "concurrent_req_s": sorted(runs)[1],
        "concurrent_p50_ms": 14.0,
        "concurrent_p99_ms": 20.0,
        "runs": runs,
    }


def _result(rtt_ms: float) -> dict[str, Any]:
    conditions = {
        "rtt_ms": rtt_ms, "sequential": 200, "requests": 2000, "concurrency": 32, "repeat": 3,
        "response_bytes": 100,
    }
    stacks = {
        "rudp-quic": _row(11.5, [2200.0, 2640.0, 2400.0]),
        "aioquic": _row(10.0, [2000.0, 2400.0, 3000.0]),
    }
    return {"conditions": conditions, "stacks": stacks}


def test_rounds_are_compared_pairwise() -> None:
    text = many_small.report(_result(10.0))
    assert "1.10/1.10/0.80" in text  # 2200/2000, 2640/2400, 2400/3000
    assert "1.00/1.00/1.00" in text  # aioquic against itself


def test_the_bound_follows_the_fastest_lone_request() -> None:
    text = many_small.report(_result(10.0))
    assert "32 in flight / 10.5 ms (a lone request's mean latency) = 3048 req/s" in text
    assert "bound here" not in many_small.report(_result(0.0))
