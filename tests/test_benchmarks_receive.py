"""The receiver benchmarks of issue 13 run and measure what they say: benchmarks.calls with a receive
batch window, benchmarks.receive_replay (record in a fork, replay into the untouched receiver)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import calls, receive_replay


def test_calls_with_a_batch_window(tmp_path: Path) -> None:
    result = calls.run(0.25, 0.0, True, tmp_path, batch_window=0.001)
    assert result["datagrams_per_batch"] > 1  # the receiver took several datagrams per call
    assert 0 < result["receiver_calls_in_receive_datagram"] < result["receiver_calls_per_datagram"]
    plain = calls.run(0.25, 0.0, True, tmp_path)
    assert "datagrams_per_batch" not in plain
    # One flush per batch instead of one per datagram: fewer ACK-only datagrams back.
    assert result["receiver_datagrams_per_data_datagram"] < plain["receiver_datagrams_per_data_datagram"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the replay forks")
def test_receive_replay_reads_the_whole_upload() -> None:
    result = receive_replay.measure(0.25, 0.001, 1)  # raises unless the replay reads every byte
    assert result["datagrams"] > 100 and result["datagrams_per_batch"] > 1
    assert result["cpu_us_per_datagram_min"] > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the replay forks")
def test_receive_replay_with_the_default_config() -> None:
    """``--pmtu default``: Config()'s defaults (PMTU discovery on) record and replay the whole upload."""
    result = receive_replay.measure(0.25, 0.001, 1, "default")
    assert result["pmtu"] == "default" and result["datagrams"] > 100
