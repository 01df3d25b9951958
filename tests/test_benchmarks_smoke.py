"""Smoke test of the benchmarks: each core function runs once, tiny, through the emulator.

Checks that every benchmark returns a structurally valid, sane result (and that its report renders),
and that saving it writes the JSON and, with matplotlib installed, a PNG plot beside it. Speed is
measured by the benchmarks themselves, never asserted here.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import (
    bbr_trace,
    bulk,
    ecn_bottleneck,
    fairness,
    handshake,
    hol_blocking,
    loss_sweep,
    many_small,
    many_streams,
    migration,
    plots,
    run,
)
from benchmarks.bottleneck import jain
from benchmarks.common import Bench, bench_network, percentile, save_result, saved
from rudp.netem import StepMarker

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.usefixtures("netem"), pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def bench(netem: None) -> Iterator[Bench]:
    with bench_network(nat=True, max_seconds=300) as running:
        yield running


def finite_positive(value: Any) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and value > 0


def save_and_check_png(name: str, result: dict[str, Any], directory: Path) -> Path:
    """Save `result` as save_result does for a real run; assert the JSON and a real PNG beside it."""
    pytest.importorskip("matplotlib")
    path = save_result(name, result, results_dir=directory)
    assert json.loads(path.read_text())["benchmark"] == name
    png = path.with_suffix(".png")
    assert png.is_file(), f"no plot written for {name}"
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 400, (width, height)
    assert len(data) > 15_000, len(data)  # axes, labels and curves, not an empty canvas
    assert saved(path) == f"saved {path} and {png}"
    return png


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


def test_hol_blocking(bench: Bench, tmp_path: Path) -> None:
    workloads = ((4, 1024), (2, 2048))
    result = hol_blocking.run(losses=(0.0, 0.05), workloads=workloads, rounds=2, bench=bench)
    points = result["points"]
    variants = hol_blocking.HOL_VARIANTS
    assert {(p["loss"], p["streams"], p["size"], p["variant"]) for p in points} == {
        (loss, n, size, v) for loss in (0.0, 0.05) for n, size in workloads for v in variants
    }
    assert {p["congestion"] for p in points} == {"cubic", "bbr"}
    for p in points:
        assert p["requests"] == 2 * p["streams"]
        assert 0 < p["p50_ms"] <= p["p95_ms"] <= p["p99_ms"] <= p["max_ms"]
        assert len(p["latencies_ms"]) == p["requests"]  # every request's latency, for the CDF plot
        assert max(p["latencies_ms"]) == pytest.approx(p["max_ms"], abs=0.01)
    cells = hol_blocking.ratios(result)
    assert len(cells) == 2 * 2 * 2  # loss rates x workloads x controllers (cubic, bbr)
    for cell in cells:
        assert finite_positive(cell["tcp_over_quic_p50"]) and finite_positive(cell["tcp_over_quic_p99"])
        assert cell["tcp_over_quic_p99"] == pytest.approx(cell["tcp_p99_ms"] / cell["quic_p99_ms"])
    text = hol_blocking.report(result)
    assert "TCP/QUIC p50" in text and "rudp-tcp kernel-bbr" in text and "2x2048" in text
    save_and_check_png("hol_blocking", result, tmp_path)


def test_bbr_trace(bench: Bench, tmp_path: Path) -> None:
    # 3 s: Startup ends within ~0.5 s on an idle machine, but a CPU-starved sender (CI shares its 2
    # cores) saw its delivery rate keep growing past 1.5 s and never left Startup in the window.
    result = bbr_trace.run(seconds=3.0, loss=0.01, bench=bench)
    series, summary = result["series"], result["summary"]
    for key in bbr_trace.SERIES:  # every series came out of the sender's qlog, in time order
        assert len(series[key]) >= 3, key
        assert all(a[0] <= b[0] for a, b in itertools.pairwise(series[key])), key
    assert all(v > 0 for _, v in series["delivery_rate"])
    assert result["states"][0][1] == "startup" and len(result["states"]) >= 2
    assert summary["goodput_mbit_s"] > 0 and summary["bytes"] > 100_000
    assert 0 < summary["max_delivery_rate_mbit_s"] < 26  # bits/s of a 20 Mbit/s link
    assert sum(summary["state_s"].values()) == pytest.approx(
        result["end_s"] - result["states"][0][0], abs=0.01
    )
    assert "time in startup" in bbr_trace.report(result)
    save_and_check_png("bbr_trace", result, tmp_path)


def test_loss_sweep(bench: Bench) -> None:
    result = loss_sweep.run(losses=(0.02,), seconds=0.5, rate_bps=20e6, bench=bench)
    assert [p["variant"] for p in result["points"]] == list(loss_sweep.VARIANTS)
    for p in result["points"]:
        assert math.isfinite(p["mbit_s"]) and 0 <= p["mbit_s"] < 25  # the link carries 20 Mbit/s
    assert "tun_tx_dropped" in result["link"]["s2c"]
    report = loss_sweep.report(result)
    assert "rudp cubic/TCP" in report and "rudp bbr/kernel bbr" in report


def test_many_small(bench: Bench) -> None:
    result = many_small.run(sequential=5, requests=20, concurrency=4, bench=bench)
    assert set(result["stacks"]) == set(many_small.STACKS)
    for row in result["stacks"].values():
        assert finite_positive(row["concurrent_req_s"])
        assert 0 < row["sequential_p50_ms"] <= row["sequential_p99_ms"]
    assert "conc req/s" in many_small.report(result)


def test_ecn_bottleneck(bench: Bench, tmp_path: Path) -> None:
    result = ecn_bottleneck.run(aqms=("droptail", "step"), seconds=2.0, bench=bench)
    points = {(p["aqm"], p["variant"]): p for p in result["points"]}
    no_ecn = {n for n, spec in ecn_bottleneck.VARIANTS.items() if not spec.ecn}
    assert set(points) == {("droptail", n) for n in no_ecn} | {("step", n) for n in ecn_bottleneck.VARIANTS}
    for p in points.values():
        assert 0 < p["mbit_s"] < 21, p  # every flow moved bytes; the link carries 20 Mbit/s
        assert p["link"]["forwarded_packets"] > 100 and p["link"]["tun_tx_dropped"] == 0, p["link"]
        # A sender slowed by a loaded CPU may leave the queue empty most of the time: p50 can be 0.
        assert 0 <= p["queue_delay_ms"]["p50"] <= p["queue_delay_ms"]["p95"], p
        assert p["queue_delay_ms"]["p95"] > 0, p
        if p["aqm"] == "droptail" or not p["ecn"]:
            assert p["ce_marked"] == 0  # Not-ECT packets are dropped, never marked
    step = ecn_bottleneck.AQMS["step"]
    assert isinstance(step, StepMarker)
    for name, spec in ecn_bottleneck.VARIANTS.items():
        p = points[("step", name)]
        step_ms = step.threshold * 1e3
        signals = p["ce_marked"] + p["link"]["dropped"].get("aqm", 0)
        if p["queue_delay_ms"]["max"] > 1.2 * step_ms:  # (histogram buckets are ~10% wide)
            assert signals > 0, p  # some packet waited past the step: it was marked or dropped
        if spec.ecn:  # ECN-capable end to end: the step marker marks instead of dropping
            # (a Not-ECT packet, e.g. one sent before the flow's ECN was validated, may still be
            # dropped: marks must outnumber such drops by far). A CPU-starved sender may never
            # queue past the step in a short run: then there is nothing to mark.
            assert p["link"]["dropped"].get("aqm", 0) * 20 <= p["ce_marked"], p
        if spec.stack == "rudp-quic":  # the sender's own view came back over the connection
            assert p["sender"]["ecn_state"] == ("capable" if spec.ecn else "disabled"), p["sender"]
            assert p["sender"]["packets_sent"] > 100
    # kernel CUBIC is never CPU-starved: it fills the queue past the step and gets marks, not drops
    assert points[("step", "kernel cubic ecn")]["ce_marked"] > 0
    for row in result["summary"]:
        assert row["against"] in ("no-ecn", "droptail") and row["aqm"] == "step"
    assert len(result["summary"]) == 2 * 3  # three flows, each against ECN off and drop-tail
    text = ecn_bottleneck.report(result)
    assert "ratio (goal < 10%)" in text and "kernel cubic no-ecn" in text
    save_and_check_png("ecn_bottleneck", result, tmp_path)


def test_fairness(bench: Bench, tmp_path: Path) -> None:
    pairs = ("rudp cubic vs kernel cubic", "rudp bbr vs kernel cubic")
    result = fairness.run(pairs=pairs, seconds=3.0, skip=1.0, repeat=1, bench=bench)
    assert [p["pair"] for p in result["points"]] == list(pairs)
    for p in result["points"]:
        (rep,) = p["reps"]
        assert all(v > 0 for v in rep["mbit_s"]), rep["mbit_s"]  # both flows moved bytes
        assert sum(rep["mbit_s"]) < 21
        assert 0.5 <= p["median_jain"] <= 1.0
        assert p["median_jain"] == pytest.approx(jain(rep["mbit_s"]))
        assert p["median_share"] == pytest.approx(rep["mbit_s"][0] / sum(rep["mbit_s"]))
        assert len(rep["bins_mbit_s"]) == 2 and all(len(b) == 6 for b in rep["bins_mbit_s"])
    assert jain([1.0, 1.0]) == 1.0 and jain([1.0, 0.0]) == 0.5
    assert "Jain" in fairness.report(result)
    save_and_check_png("fairness", result, tmp_path)


def test_migration_runs_last(bench: Bench, tmp_path: Path) -> None:
    result = migration.run(mbytes=0.4, stall=3.0, bench=bench)
    runs = {r["stack"]: r for r in result["runs"]}
    assert set(runs) == set(migration.STACKS)
    half = result["conditions"]["bytes"] // 2
    for r in runs.values():
        assert r["rebound_to"] is not None  # every download got past half-way before the rebinding
        assert isinstance(r["completed"], bool)
        assert 0 < r["bytes"] <= result["conditions"]["bytes"]
        # the received-bytes series: starts at 0, never goes back, ends at the total
        series = r["received"]
        assert series[0] == [0.0, 0] and series[-1][1] == r["bytes"]
        assert all(a[0] <= b[0] and a[1] < b[1] for a, b in itertools.pairwise(series))
        # the child reached half the body, then the parent rebound: the same clock orders them
        assert 0 < r["half_at_s"] <= r["rebind_at_s"]
        assert next(t for t, b in series if b >= half) == r["half_at_s"]  # sampled where it signalled
    quic = runs["rudp-quic"]
    assert quic["completed"], quic["error"]
    assert quic["server_view"]["path_changes"] >= 1
    assert "BROKEN" in migration.report(result) or runs["rudp-tcp"]["completed"]
    save_and_check_png("migration", result, tmp_path)


def check_bulk_rows(rows: list[dict[str, Any]], expected: set[tuple[str, str, str]]) -> None:
    assert {(r["stack"], r["loop"], r["direction"]) for r in rows} == expected
    for r in rows:
        assert finite_positive(r["mbit_s"]) and len(r["mbit_s_runs"]) == 1, r
        assert r["sender_rss_mib"] > 5 and r["receiver_rss_mib"] > 5, r
        if r["stack"] == "rudp-tcp":
            continue
        # 256 KiB in 1452-byte datagrams (16 KiB with PMTU discovery on loopback): counted, roughly
        least = 15 if r["stack"] == "rudp-pmtud" else 100  # ~180 expected; qh3 (GRO) reports a few less
        assert r["datagrams_sent"] >= least and r["datagrams_received"] >= least, r
        assert finite_positive(r["sender_us_per_datagram"]) and finite_positive(
            r["receiver_us_per_datagram"]
        ), r
        assert 0 <= r["idle_timer_callbacks"] <= r["timer_callbacks"], r


def test_bulk_netns_mtu_1500(tmp_path: Path) -> None:
    """The headline mode: every QUIC stack on both loops, both directions, in an MTU-1500 namespace."""
    quic = [s for s in ("rudp", "aioquic", "qh3") if bulk.available(s)]
    loops = ["asyncio", *(["uvloop"] if bulk.available("uvloop") else [])]
    result = bulk.run(mbytes=0.25, repeat=1, paths=("netns",), stacks=tuple(quic), timeout=60)
    data = result["paths"]["netns"]
    assert data["errors"] == {}
    labels = {"rudp": "rudp-1452", "aioquic": "aioquic-1452", "qh3": "qh3-1452"}
    expected = {(labels[s], lp, d) for s in quic for lp in loops for d in bulk.DIRECTIONS}
    check_bulk_rows(data["rows"], expected)
    text = bulk.report(result)
    assert "MTU 1500" in text and "vs aioquic" in text
    save_and_check_png("bulk", result, tmp_path)


def test_bulk_default_loopback_labelled(tmp_path: Path) -> None:
    result = bulk.run(
        mbytes=0.25, repeat=1, paths=("loopback",), stacks=("rudp-pmtud", "rudp-tcp"), directions=("upload",)
    )
    data = result["paths"]["loopback"]
    assert data["errors"] == {}
    check_bulk_rows(data["rows"], {("rudp-pmtud", "asyncio", "upload"), ("rudp-tcp", "asyncio", "upload")})
    assert "default loopback" in bulk.report(result)


def test_many_streams_every_stream_checked(tmp_path: Path) -> None:
    """12 streams x 16 KiB each way on one connection, every stack, in the MTU-1500 namespace."""
    quic = [s for s in ("rudp", "aioquic", "qh3") if bulk.available(s)]
    result = many_streams.run(streams=12, kib=16, repeat=1, stacks=(*quic, "rudp-tcp"), timeout=60)
    data = result["paths"]["netns"]
    assert data["errors"] == {}  # a short, corrupted or mixed-up stream is an error of its run
    labels = {"rudp": "rudp-1452", "aioquic": "aioquic-1452", "qh3": "qh3-1452"}
    expected = {(labels.get(s, s), "asyncio", d) for s in (*quic, "rudp-tcp") for d in bulk.DIRECTIONS}
    check_bulk_rows(data["rows"], expected)  # 192 KiB per run: >= 100 datagrams each way for QUIC
    for r in data["rows"]:
        assert finite_positive(r["seconds"]) and finite_positive(r["server_cpu_s"]), r
        assert finite_positive(r["faster_vs_aioquic"]) and finite_positive(r["cpu_vs_aioquic"]), r
        if r["stack"] == "aioquic-1452":
            assert r["faster_vs_aioquic"] == r["cpu_vs_aioquic"] == 1.0
    text = many_streams.report(result)
    assert "12 streams x 16 KiB" in text and "FAILED" not in text
    save_and_check_png("many_streams", result, tmp_path)


def test_bulk_verifier_catches_a_stream_with_another_streams_body() -> None:
    """Stream bodies start at different places in the block, so a swapped stream does not compare equal."""
    first, second = (i * bulk.STREAM_STRIDE for i in (3, 4))
    body = bulk.BLOCK[first : first + 4096]
    right, wrong = bulk.Verifier(first), bulk.Verifier(second)
    right.feed(body)
    wrong.feed(body)
    assert right.ok and right.offset == 4096
    assert not wrong.ok and wrong.offset == 4096


def test_profile_categories() -> None:
    from benchmarks import profile

    assert profile.category("~", "<method 'encrypt' of 'builtins.AESGCM' objects>") == "AEAD"
    assert profile.category("/x/rudp/crypto/protection.py", "header_mask") == "header protection"
    assert profile.category("/x/rudp/codec/frames.py", "f") == "codecs"
    assert profile.category("/x/rudp/quic/congestion/cubic.py", "f") == "recovery/CC"
    assert profile.category("/x/rudp/quic/streams/send.py", "f") == "streams/flow control"
    assert profile.category("/x/rudp/quic/packetizer.py", "f") == "packet assembly"
    assert profile.category("/usr/lib/python3.11/asyncio/base_events.py", "_run_once") == "asyncio/syscalls"
    assert profile.category("~", "<method 'sendmsg' of '_socket.socket' objects>") == "asyncio/syscalls"


def test_without_matplotlib_only_the_json_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plots, "matplotlib_available", lambda: False)
    monkeypatch.setattr(plots, "_missing_reported", False)
    record = {"conditions": {"path": "loopback", "mbytes": 1.0, "repeat": 1}, "mbit_s": {"aioquic": 100.0}}
    first = save_result("bulk", record, results_dir=tmp_path)
    second = save_result("bulk", record, results_dir=tmp_path / "again")
    assert first.is_file() and second.is_file()
    assert list(tmp_path.rglob("*.png")) == []
    assert saved(first) == f"saved {first}"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib is not installed" in err


def test_run_help_lists_every_benchmark_and_no_empty_choice(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_help:
        run.main(["--help"])
    assert exit_help.value.code == 0
    help_text = capsys.readouterr().out
    assert "{}" not in help_text and "[]" not in help_text and "{," not in help_text
    for name in run.BENCHMARKS:
        assert name in help_text
    with pytest.raises(SystemExit) as exit_bad:
        run.main(["handshake", "nope"])
    assert exit_bad.value.code == 2
    assert "unknown benchmark(s): nope" in capsys.readouterr().err
