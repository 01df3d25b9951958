"""Smoke test of benchmarks/handshake_cpu.py: every mode completes (a resumed mode raises if it did not
resume), each side's CPU is measured and the report gives the ratios to aioquic."""

from __future__ import annotations

import math

from benchmarks import handshake_cpu


def test_handshake_cpu_runs_every_mode() -> None:
    result = handshake_cpu.run(count=2, rounds=1)
    assert set(result["modes"]) == set(handshake_cpu.MODES)
    assert result["conditions"]["handshakes_per_mode"] == 2
    for mode, row in result["modes"].items():
        for key in ("client_ms", "server_ms", "client_mean_ms", "server_mean_ms"):
            assert math.isfinite(row[key]) and row[key] > 0, (mode, key)
    text = handshake_cpu.report(result)
    assert "rudp resumed" in text and "load average" in text
    assert text.count("1.00x") >= 4  # aioquic against itself, both sides, both modes


def test_profile_names_the_handshake_code() -> None:
    text = handshake_cpu.profile("rudp full", "server", 1)
    assert "receive_datagram" in text
