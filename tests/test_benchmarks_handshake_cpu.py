"""Smoke test of benchmarks/handshake_cpu.py: every mode completes (a resumed mode raises if it did not
resume), each side's CPU is measured and the report gives the ratios to aioquic."""

from __future__ import annotations

import math

import pytest

from benchmarks import handshake_cpu
from rudp.testing.certs import TestPki


def test_handshake_cpu_runs_every_mode() -> None:
    result = handshake_cpu.run(count=2, rounds=1, block=1)
    assert set(result["modes"]) == set(handshake_cpu.MODES)
    assert result["conditions"]["handshakes_per_mode"] == 2
    for mode, row in result["modes"].items():
        for key in ("client_ms", "server_ms", "client_mean_ms", "server_mean_ms"):
            assert math.isfinite(row[key]) and row[key] > 0, (mode, key)
    assert result["conditions"]["processes"] == "one per mode"
    for row in result["modes"].values():  # each worker counted the collections of its 2 handshakes
        assert row["collections"]["handshakes"] == 2 and row["collections"]["seconds"] >= 0
    text = handshake_cpu.report(result)
    assert "rudp resumed" in text and "load average" in text and "processes: one per mode" in text
    assert "garbage collections (each mode's own process)" in text
    assert text.count("1.00x") >= 4  # aioquic against itself, both sides, both modes


def test_profile_names_the_handshake_code() -> None:
    text = handshake_cpu.profile("rudp full", "server", 1)
    assert "receive_datagram" in text


def test_blocks_run_each_mode_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real = handshake_cpu._exchange

    def recording(mode: str, pki: TestPki) -> handshake_cpu.Exchange:
        exchange = real(mode, pki)

        def counted() -> tuple[float, float]:
            order.append(mode)
            return exchange()

        return counted

    monkeypatch.setattr(handshake_cpu, "_exchange", recording)
    result = handshake_cpu.run(
        count=4, rounds=1, block=2, modes=("rudp full", "aioquic full"), separate=False
    )
    assert order == (["rudp full"] * 2 + ["aioquic full"] * 2) * 2  # turns of two handshakes of a mode
    assert result["conditions"]["handshakes_per_mode"] == 4
    assert "in blocks of 2 handshakes" in handshake_cpu.report(result)
