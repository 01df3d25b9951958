"""Tests of the spec parser, the scenario table and the `python -m rudp.netem` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rudp.netem import BurstLoss, GilbertElliott, ImpairmentError, Impairments
from rudp.netem.__main__ import main
from rudp.netem.scenario import SCENARIOS, parse_spec


def test_parse_spec_all_keys() -> None:
    fields = parse_spec(
        "delay=20ms, jitter=1ms, loss=1%, ge=1%/25%, burst=0.5%/2-5, corrupt=0.1%, corrupt_bytes=2,"
        "duplicate=1%, reorder=2%, reorder_delay=5ms, rate=50mbit, queue=64kb, blackhole=1s-2s+5s-6s,"
        "drop=1+3, jitter_reorders=no, corrupt_fix_checksum=no"
    )
    imp = Impairments().replace(**fields)
    assert imp.delay == pytest.approx(0.02) and imp.loss == pytest.approx(0.01)
    assert imp.gilbert_elliott == GilbertElliott(0.01, 0.25)
    assert imp.burst == BurstLoss(0.005, 2, 5)
    assert imp.rate_bps == 50e6 and imp.queue_bytes == 64000
    assert imp.blackhole_periods == ((1.0, 2.0), (5.0, 6.0))
    assert imp.drop_list == frozenset({1, 3}) and not imp.corrupt_fix_checksum
    assert parse_spec("queue=100p") == {"queue_packets": 100}
    assert parse_spec("blackhole=on") == {"blackhole": True}
    assert parse_spec("") == {}
    for bad in ("latency=1ms", "delay", "burst=1%", "blackhole=3s", "jitter_reorders=maybe"):
        with pytest.raises(ImpairmentError):
            parse_spec(bad)


def test_scenarios_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"clean", "wan", "lossy", "rebind-port", "handshake-loss"} <= set(SCENARIOS)
    assert main(["scenarios"]) == 0
    assert "satellite" in capsys.readouterr().out


@pytest.mark.usefixtures("netem")
@pytest.mark.timeout(60)
def test_cli_run_executes_client_through_the_link() -> None:
    client = (
        f'{sys.executable} -c "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);'
        "s.settimeout(5); s.bind(('{client}',0)); s.sendto(b'x',('{server}',7)); print('sent')\""
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rudp.netem",
            "run",
            "--both",
            "delay=5ms",
            "--c2s",
            "drop=1",
            "--client",
            client,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sent" in proc.stdout
    assert "drops: drop_list=1" in proc.stderr
