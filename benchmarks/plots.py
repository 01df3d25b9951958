"""PNG plots of benchmark results, one function per benchmark, each taking the saved JSON record.

:func:`benchmarks.common.save_result` calls :func:`save_plot` after writing a record, so every benchmark
run leaves ``<name>-<time>.png`` beside its ``<name>-<time>.json`` when matplotlib is installed
(``pip install -e '.[plot]'``); without it, one line says so and nothing else changes. Plots use
matplotlib's object API with the Agg canvas (no pyplot, no display, no global state).

Plots can be redrawn from saved records::

    python -m benchmarks.plots benchmarks/results/hol_blocking-20261207-101500.json [...] [--out DIR]

==================  ======================================================================================
benchmark           plot
==================  ======================================================================================
``handshake``       bars: time to connection and to the first response in RTTs, per mode; dots = samples
``hol_blocking``    CDFs of request completion time, a row per workload and controller, a panel per loss
``bbr_trace``       one rudp BBR flow over time: cwnd, delivery rate, pacing rate, BBR state, losses
``migration``       received MB over time around the NAT rebinding (t = 0), one curve per stack
``loss_sweep``      goodput (Mbit/s, log scale) against loss, one line per stack and controller
``many_small``      concurrent requests/s per stack, and p50/p99 latency of both phases
``bulk``            bars per path: Mbit/s per stack, loop and direction; CPU us per datagram
``many_streams``    bars per stack and direction: time to complete all streams; server and client CPU
``ecn_bottleneck``  bars per AQM and flow, ECN on/off: drops at the bottleneck, goodput, queue delay
``fairness``        two flows' Mbit/s per pair with Jain's index; both rates over time (plots_bottleneck)
==================  ======================================================================================
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# One colour per client stack, the same in every plot (matplotlib's default cycle, colour-blind safe-ish).
STACK_COLORS = {
    "rudp-quic": "#1f77b4",
    "rudp-quic-1350": "#9ecae1",
    "rudp": "#1f77b4",
    "rudp-tcp": "#ff7f0e",
    "aioquic": "#2ca02c",
    "qh3": "#d62728",
}
_OTHER_COLOR = "#7f7f7f"
BULK_NOTES = {
    "rudp-quic": "PMTU discovery",
    "rudp-quic-1350": "1350-byte datagrams",
    "rudp-tcp": "kernel TCP + ssl",
    "aioquic": "1350-byte datagrams",
}
_missing_reported = False


def _stack_of(label: str) -> str:
    """The stack a mode/variant label belongs to (``rudp-quic-0rtt`` -> ``rudp-quic``)."""
    for stack in sorted(STACK_COLORS, key=len, reverse=True):
        if label == stack or label.startswith(stack + "-") or label.startswith(stack + " "):
            return stack
    return label


def _color(label: str) -> str:
    return STACK_COLORS.get(_stack_of(label), _OTHER_COLOR)


def _new_figure(width: float = 9.0, height: float = 5.0, **subplots: Any) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots)
    return fig, axes


def _when(record: dict[str, Any]) -> str:
    """``2026-12-07 10:15, Python 3.11.7`` from the record's stamp (``20261207-101500``)."""
    stamp = str(record.get("time", ""))
    try:
        day = time.strftime("%Y-%m-%d %H:%M", time.strptime(stamp, "%Y%m%d-%H%M%S"))
    except ValueError:
        day = stamp or "unknown date"
    return f"{day}, Python {record.get('python', '?')}"


def _titles(fig: Figure, title: str, conditions: str, record: dict[str, Any]) -> None:
    fig.suptitle(f"{title}\n{conditions}; {_when(record)}", fontsize=11)


def _pct(loss: float) -> str:
    return f"{loss * 100:g} %"


def _label_bars(ax: Axes, bars: Any, fmt: str) -> None:
    ax.bar_label(bars, labels=[fmt.format(b.get_height()) for b in bars], padding=2, fontsize=8)


# ---------------------------------------------------------------------------------------------- plots


def handshake(record: dict[str, Any]) -> Figure:
    """Connection and first-response time per mode in RTTs (median bars, every sample as a dot)."""
    c = record["conditions"]
    rtt_ms = float(c["rtt_ms"])
    modes = list(record["modes"])
    fig, ax = _new_figure(9.0, 5.0)
    width = 0.38
    for i, mode in enumerate(modes):
        row = record["modes"][mode]
        color = _color(mode)
        connect = ax.bar(i - width / 2, row["connect_ms"] / rtt_ms, width, color=color, alpha=0.45)
        ax.bar(i + width / 2, row["first_response_rtts"], width, color=color)
        _label_bars(ax, connect, "{:.2f}")
        samples = [v / rtt_ms for v in row.get("samples_ms", [])]
        ax.plot([i + width / 2] * len(samples), samples, "k.", markersize=3, alpha=0.6)
        top = max([row["first_response_rtts"], *samples])  # the label goes above the highest dot
        ax.annotate(
            f"{row['first_response_rtts']:.2f}",
            (i + width / 2, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            fontweight="bold",
        )
    for n in (1, 2, 3):
        ax.axhline(n, color="grey", linewidth=0.6, linestyle=":", zorder=0)
    ax.set_xticks(range(len(modes)), [m.replace("-0rtt", "\n0-RTT (resumed)") for m in modes])
    ax.set_ylabel(f"time since connect() (RTTs of {rtt_ms:g} ms)")
    ax.set_xlabel("client stack and mode")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(facecolor="grey", alpha=0.45, label="connection usable (median)"),
            Patch(facecolor="grey", label="first 1000-byte response (median)"),
            Line2D([], [], color="k", marker=".", linestyle="", label="first response, each connection"),
        ],
        loc="upper right",
        fontsize=8,
    )
    ax.set_ylim(0, max(3.6, ax.get_ylim()[1] * 1.08))
    _titles(
        fig,
        "Handshake latency: TCP+TLS 1.3 vs QUIC 1-RTT vs 0-RTT",
        f"RTT {rtt_ms:g} ms, no loss, {c['count']} fresh connections per mode",
        record,
    )
    return fig


def _hol_points(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's points, each with its workload and controller (older records: one CUBIC workload)."""
    c = record["conditions"]
    return [
        {
            "variant": p["stack"],
            "congestion": "cubic",
            "streams": c.get("streams"),
            "size": c.get("response_bytes"),
            **p,
        }
        for p in record["points"]
    ]


def hol_blocking(record: dict[str, Any]) -> Figure:
    """CDF of request completion time: one row of panels per workload and congestion controller, one
    panel per loss rate, one curve per variant (stack and controller)."""
    c = record["conditions"]
    points = _hol_points(record)
    if any("latencies_ms" not in p for p in points):
        raise ValueError("hol_blocking record has no per-request latencies (latencies_ms); rerun it")
    losses = list(dict.fromkeys(p["loss"] for p in points))
    groups = list(dict.fromkeys((p["streams"], p["size"], p["congestion"]) for p in points))
    ncols = len(losses)
    fig, axes = _new_figure(
        4.2 * ncols, 3.1 * len(groups) + 0.8, nrows=len(groups), ncols=ncols, sharey=True, squeeze=False
    )
    for row, (streams, size, cc) in zip(axes, groups, strict=True):
        for ax, loss in zip(row, losses, strict=True):
            cell = [
                p
                for p in points
                if p["loss"] == loss and (p["streams"], p["size"], p["congestion"]) == (streams, size, cc)
            ]
            for p in cell:
                lat = sorted(p["latencies_ms"])
                n = len(lat)
                ys = [(i + 1) / n for i in range(n)]
                label = f"{p['variant']} (p50 {p['p50_ms']:.0f}, p99 {p['p99_ms']:.0f} ms)"
                ax.step(lat, ys, where="post", color=_color(p["stack"]), label=label)
            ax.set_title(f"{streams} x {size} B, {cc.upper()}, loss {_pct(loss)}", fontsize=9)
            ax.set_xlim(left=0)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right", fontsize=7)
        row[0].set_ylabel("fraction of requests")
    for ax in axes[-1]:
        ax.set_xlabel("request completion time (ms)")
    _titles(
        fig,
        "Head-of-line blocking: completion time of concurrent requests on one connection",
        f"RTT {c['rtt_ms']:g} ms, {c['rate_mbit_s']:g} Mbit/s, {c['rounds']} rounds per workload; "
        "rudp QUIC's controller beside the kernel's (TCP baseline)",
        record,
    )
    return fig


def _resumed_after(run: dict[str, Any]) -> float | None:
    """Seconds from the rebinding to the first byte received after it (None: none arrived)."""
    at = run.get("rebind_at_s")
    if at is None:
        return None
    before = [b for t, b in run["received"] if t <= at]
    after = [t for t, b in run["received"] if t > at and b > (before[-1] if before else 0)]
    return after[0] - at if after else None


def migration(record: dict[str, Any]) -> Figure:
    """Received MB against time since the NAT rebinding (t = 0), one curve per stack.

    Left: the whole download; right: a zoom on the rebinding, where the stall (QUIC) or the reset
    (TCP) shows. A broken run's curve runs flat to the moment the connection failed, marked X.
    """
    c = record["conditions"]
    runs = record["runs"]
    if any("received" not in r for r in runs):
        raise ValueError("migration record has no received-bytes series (received); rerun it")
    fig, (whole, zoom) = _new_figure(11.0, 5.0, ncols=2, width_ratios=[1.25, 1])
    window = (-0.15, 0.35)
    zoom_mb: list[float] = []
    for r in runs:
        shift = r.get("rebind_at_s") or 0.0
        ts = [t - shift for t, _ in r["received"]]
        mb = [b / 1e6 for _, b in r["received"]]
        if not r["completed"]:  # flat until the failure
            ts.append(r["elapsed_s"] - shift)
            mb.append(mb[-1])
        resumed = _resumed_after(r)
        if r["completed"]:
            after = f", data again {resumed * 1000:.0f} ms after the rebinding" if resumed is not None else ""
            label = f"{r['stack']}: completed{after}"
        else:
            label = f"{r['stack']}: broken, failed {ts[-1] * 1000:.0f} ms after the rebinding"
        color = _color(r["stack"])
        for ax in (whole, zoom):
            ax.step(ts, mb, where="post", color=color, label=label)
            if not r["completed"]:
                ax.plot(ts[-1], mb[-1], marker="X", markersize=10, color=color, linestyle="")
        zoom_mb += [m for t, m in zip(ts, mb, strict=True) if window[0] <= t <= window[1]]
    for ax in (whole, zoom):
        ax.axvline(0.0, color="k", linestyle="--", linewidth=1)
        ax.set_xlabel("time since the NAT rebinding (s)")
        ax.grid(alpha=0.3)
    whole.annotate(
        "NAT rebinding\n(new client port)",
        (0.0, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(-6, -6),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=8,
    )
    whole.axhline(c["bytes"] / 1e6, color="grey", linewidth=0.6, linestyle=":")
    whole.set_ylabel("bytes received (MB)")
    whole.set_ylim(0, c["bytes"] / 1e6 * 1.08)
    whole.set_title("whole download", fontsize=10)
    whole.legend(loc="lower right", fontsize=8)
    zoom.set_xlim(*window)
    zoom.set_ylabel("bytes received (MB)")
    if zoom_mb:
        low, high = min(zoom_mb), max(zoom_mb)
        pad = max((high - low) * 0.08, 0.01)
        zoom.set_ylim(low - pad, high + pad)
    zoom.set_title(f"zoom: {window[0] * 1000:+.0f} to {window[1] * 1000:+.0f} ms around it", fontsize=10)
    _titles(
        fig,
        "Connection migration: a download across a NAT rebinding",
        f"{c['bytes'] / 1e6:g} MB, RTT {c['rtt_ms']:g} ms, {c['rate_mbit_s']:g} Mbit/s, "
        "client port changes after half the body",
        record,
    )
    return fig


def loss_sweep(record: dict[str, Any]) -> Figure:
    """Goodput against random loss, one line per stack and congestion controller (log scale)."""
    from matplotlib.ticker import FuncFormatter

    c = record["conditions"]
    points = record["points"]
    losses = list(dict.fromkeys(p["loss"] for p in points))
    variants = list(dict.fromkeys(p["variant"] for p in points))
    value = {(p["loss"], p["variant"]): p["mbit_s"] for p in points}
    fig, ax = _new_figure(9.0, 5.0)
    xs = list(range(len(losses)))
    floor = 0.05  # a point of 0 Mbit/s is drawn at the floor of the log axis
    for variant in variants:
        ys = [max(value.get((loss, variant), float("nan")), floor) for loss in losses]
        cubic, bbr = "cubic" in variant.lower(), "bbr" in variant.lower()
        ax.plot(
            xs,
            ys,
            marker="o" if cubic else "^" if bbr else "s",
            linestyle="-" if cubic else "-." if bbr else "--",
            color=_color(variant),
            label=variant,
        )
    ax.axhline(c["rate_mbit_s"], color="grey", linewidth=0.8, linestyle=":")
    ax.annotate(
        f"link {c['rate_mbit_s']:g} Mbit/s",
        (len(losses) - 1, c["rate_mbit_s"]),
        xytext=(0, 4),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        color="grey",
    )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    lowest = min([v if v > 0 else floor for v in value.values()], default=floor)
    ax.set_ylim(bottom=lowest / 1.5, top=c["rate_mbit_s"] * 1.6)
    ax.set_xticks(xs, [_pct(loss) for loss in losses])
    ax.set_xlabel("random packet loss, each direction (points evenly spaced)")
    ax.set_ylabel("goodput (Mbit/s, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left", fontsize=8, title="stack, congestion controller", title_fontsize=8)
    _titles(
        fig,
        "Loss sweep: bulk goodput against random loss",
        f"RTT {c['rtt_ms']:g} ms, {c['rate_mbit_s']:g} Mbit/s link, "
        f"one {c['seconds']:g} s download per point",
        record,
    )
    return fig


def many_small(record: dict[str, Any]) -> Figure:
    """Concurrent requests/s per stack (left) and p50/p99 latency of both phases (right)."""
    c = record["conditions"]
    rows = record["stacks"]
    stacks = list(rows)
    fig, (left, right) = _new_figure(10.0, 4.8, ncols=2, width_ratios=[1, 1.6])
    bars = left.bar(stacks, [rows[s]["concurrent_req_s"] for s in stacks], color=[_color(s) for s in stacks])
    _label_bars(left, bars, "{:.0f}")
    left.set_ylabel("requests per second")
    left.set_title(f"throughput, {c['concurrency']} in flight", fontsize=10)
    left.set_ylim(0, left.get_ylim()[1] * 1.1)
    series = [
        ("sequential_p50_ms", "sequential p50"),
        ("sequential_p99_ms", "sequential p99"),
        ("concurrent_p50_ms", "concurrent p50"),
        ("concurrent_p99_ms", "concurrent p99"),
    ]
    width = 0.8 / len(stacks)
    for j, stack in enumerate(stacks):
        offsets = [i + (j - (len(stacks) - 1) / 2) * width for i in range(len(series))]
        b = right.bar(offsets, [rows[stack][k] for k, _ in series], width, color=_color(stack), label=stack)
        _label_bars(right, b, "{:.0f}")
    right.axhline(c["rtt_ms"], color="grey", linewidth=0.8, linestyle=":", label=f"RTT ({c['rtt_ms']:g} ms)")
    right.set_xticks(range(len(series)), [label for _, label in series])
    right.set_ylabel("request latency (ms)")
    right.set_title("latency per request", fontsize=10)
    right.set_ylim(0, right.get_ylim()[1] * 1.1)
    right.legend(fontsize=8, loc="upper left")
    _titles(
        fig,
        "Many small requests on one connection",
        f"RTT {c['rtt_ms']:g} ms, no loss, {c['response_bytes']}-byte responses; {c['sequential']} "
        f"sequential, then {c['requests']} with {c['concurrency']} in flight",
        record,
    )
    return fig


def bulk(record: dict[str, Any]) -> Figure:
    """Per path (MTU-1500 namespace first): Mbit/s per stack and loop, both directions; CPU per datagram."""
    if "paths" not in record:
        return _bulk_legacy(record)
    c = record["conditions"]
    paths = [p for p in ("netns", "loopback") if p in record["paths"]]
    fig, axes = _new_figure(13.0, 4.4 * len(paths), nrows=len(paths), ncols=2, squeeze=False)
    titles = {
        "netns": f"namespace, loopback MTU {c.get('mtu', 1500)} ({c.get('datagram', 1452)}-byte datagrams)",
        "loopback": "default loopback, MTU 65536 (not a real path)",
    }
    for row_axes, path in zip(axes, paths, strict=True):
        rows = record["paths"][path]["rows"]
        labels = list(dict.fromkeys(f"{r['stack']}\n{r['loop']}" for r in rows))
        index = {label: i for i, label in enumerate(labels)}
        directions = list(dict.fromkeys(r["direction"] for r in rows))
        width = 0.8 / max(1, len(directions))
        ax, cpu_ax = row_axes
        for d, direction in enumerate(directions):
            chosen = [r for r in rows if r["direction"] == direction]
            xs = [
                index[f"{r['stack']}\n{r['loop']}"] + (d - (len(directions) - 1) / 2) * width for r in chosen
            ]
            bars = ax.bar(
                xs,
                [r["mbit_s"] for r in chosen],
                width,
                color=[_color(r["stack"]) for r in chosen],
                alpha=1.0 if d == 0 else 0.55,
                hatch=None if d == 0 else "//",
                edgecolor="white",
                label=direction,
            )
            _label_bars(ax, bars, "{:.0f}")
            for x, r in zip(xs, chosen, strict=True):  # every run's figure as a dot
                ax.plot([x] * len(r["mbit_s_runs"]), r["mbit_s_runs"], "k.", markersize=3)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylabel("Mbit/s (bars: median run)")
        ax.set_title(titles.get(path, path), fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
        quic = [r for r in rows if r.get("sender_us_per_datagram") and r["direction"] == directions[0]]
        qlabels = [f"{r['stack']}\n{r['loop']}" for r in quic]
        xs2 = range(len(quic))
        b1 = cpu_ax.bar(
            [x - 0.2 for x in xs2],
            [r["sender_us_per_datagram"] for r in quic],
            0.4,
            color=[_color(r["stack"]) for r in quic],
            label="sender",
        )
        b2 = cpu_ax.bar(
            [x + 0.2 for x in xs2],
            [r["receiver_us_per_datagram"] or 0 for r in quic],
            0.4,
            color=[_color(r["stack"]) for r in quic],
            alpha=0.5,
            hatch="..",
            edgecolor="white",
            label="receiver",
        )
        _label_bars(cpu_ax, b1, "{:.0f}")
        _label_bars(cpu_ax, b2, "{:.0f}")
        cpu_ax.axhline(15, color="k", linestyle=":", linewidth=1, label="issue 13 goal (15 us)")
        cpu_ax.set_xticks(list(xs2), qlabels, fontsize=7)
        cpu_ax.set_ylabel(f"CPU us per datagram ({directions[0]})")
        cpu_ax.set_title("CPU per datagram, sender (solid) and receiver (dotted)", fontsize=9)
        cpu_ax.legend(fontsize=7)
        cpu_ax.grid(axis="y", alpha=0.3)
    _titles(
        fig,
        "Bulk transfer, one stream, server and client in separate processes",
        f"{c['mbytes']:g} MiB, {c['repeat']} interleaved runs per configuration, 4 MiB socket buffers",
        record,
    )
    return fig


def many_streams(record: dict[str, Any]) -> Figure:
    """Per stack and direction: time to complete every stream (dots = runs), and CPU of each side."""
    c = record["conditions"]
    rows = record["paths"]["netns"]["rows"]
    labels = [f"{r['stack']}\n{r['loop']}\n{r['direction']}" for r in rows]
    colors = [_color(r["stack"]) for r in rows]
    fig, (time_ax, cpu_ax) = _new_figure(12.0, 4.8, ncols=2)
    xs = list(range(len(rows)))
    bars = time_ax.bar(xs, [r["seconds"] * 1000 for r in rows], color=colors)
    _label_bars(time_ax, bars, "{:.0f}")
    for x, r in zip(xs, rows, strict=True):
        time_ax.plot([x] * len(r["seconds_runs"]), [t * 1000 for t in r["seconds_runs"]], "k.", markersize=3)
    time_ax.set_ylabel("ms to complete all streams (bars: median run)")
    time_ax.set_title("time to complete (lower is better)", fontsize=9)
    server = [
        (r["sender_cpu_s"] if r["direction"] == "download" else r["receiver_cpu_s"]) * 1000 for r in rows
    ]
    client = [
        (r["receiver_cpu_s"] if r["direction"] == "download" else r["sender_cpu_s"]) * 1000 for r in rows
    ]
    cpu_ax.bar([x - 0.2 for x in xs], server, 0.4, color=colors, label="server")
    cpu_ax.bar([x + 0.2 for x in xs], client, 0.4, color=colors, alpha=0.5, hatch="..", label="client")
    cpu_ax.set_ylabel("CPU ms (user + system)")
    cpu_ax.set_title("CPU per side: server (solid), client (dotted)", fontsize=9)
    cpu_ax.legend(fontsize=7)
    for ax in (time_ax, cpu_ax):
        ax.set_xticks(xs, labels, fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    _titles(
        fig,
        f"{c['streams']} streams x {c.get('kib', c['mbytes'] * 1024):g} KiB on one connection",
        f"namespace, loopback MTU {c['mtu']} ({c['datagram']}-byte datagrams), separate processes, "
        f"{c['repeat']} interleaved runs",
        record,
    )
    return fig


def _bulk_legacy(record: dict[str, Any]) -> Figure:
    """Loopback throughput per stack (Mbit/s bars)."""
    c = record["conditions"]
    values = record["mbit_s"]
    stacks = list(values)
    fig, ax = _new_figure(8.0, 4.6)
    xs = range(len(stacks))
    bars = ax.bar(xs, [values[s] for s in stacks], color=[_color(s) for s in stacks])
    _label_bars(ax, bars, "{:.0f}")
    ax.set_xticks(xs, [f"{s}\n({BULK_NOTES[s]})" if s in BULK_NOTES else s for s in stacks])
    ax.set_ylabel("throughput (Mbit/s)")
    ax.set_xlabel("client and server stack")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    ax.grid(axis="y", alpha=0.3)
    _titles(
        fig,
        "Bulk download on loopback (CPU-bound)",
        f"{c['mbytes']:g} MB over {c['path']}, one stream, best of {c['repeat']}",
        record,
    )
    return fig


def ecn_bottleneck(record: dict[str, Any]) -> Figure:
    """See :func:`benchmarks.plots_bottleneck.ecn_bottleneck`."""
    from benchmarks import plots_bottleneck

    return plots_bottleneck.ecn_bottleneck(record)


def fairness(record: dict[str, Any]) -> Figure:
    """See :func:`benchmarks.plots_bottleneck.fairness`."""
    from benchmarks import plots_bottleneck

    return plots_bottleneck.fairness(record)


BBR_STATE_COLORS = {
    "startup": "#d62728",
    "drain": "#ff7f0e",
    "probe_bw_down": "#9467bd",
    "probe_bw_cruise": "#2ca02c",
    "probe_bw_refill": "#17becf",
    "probe_bw_up": "#bcbd22",
    "probe_rtt": "#7f7f7f",
}


def bbr_trace(record: dict[str, Any]) -> Figure:
    """One BBR flow over time: rates (top), window and bytes in flight (middle), state and losses."""
    c, s = record["conditions"], record["summary"]
    series = record["series"]
    fig, (rates, window, state_ax) = _new_figure(11.0, 7.6, nrows=3, sharex=True, height_ratios=[3, 2.2, 1])

    def xy(key: str, scale: float) -> tuple[list[float], list[float]]:
        return [t for t, _ in series[key]], [v / scale for _, v in series[key]]

    xs, ys = xy("delivery_rate", 1e6)
    rates.plot(xs, ys, ".", markersize=2.5, color="#1f77b4", alpha=0.4, label="delivery-rate sample")
    for key, color, label in (
        ("bandwidth_estimate", "#d62728", "BBR bandwidth estimate (bw)"),
        ("pacing_rate", "#2ca02c", "pacing rate"),
    ):
        xs, ys = xy(key, 1e6)
        rates.step(xs, ys, where="post", color=color, linewidth=1.0, label=label)
    rates.axhline(c["rate_mbit_s"], color="k", linestyle=":", linewidth=0.8, label="link rate")
    rates.set_ylabel("Mbit/s")
    rates.set_ylim(0, c["rate_mbit_s"] * 2.2)
    rates.legend(loc="upper right", fontsize=7, ncols=2)
    rates.grid(alpha=0.3)
    bdp_kb = c["rate_mbit_s"] * 1e6 / 8 * c["rtt_ms"] / 1000 / 1000
    for key, color, label in (
        ("congestion_window", "#9467bd", "congestion window"),
        ("bytes_in_flight", "#8c564b", "bytes in flight"),
    ):
        xs, ys = xy(key, 1000)
        window.step(xs, ys, where="post", color=color, linewidth=0.9, label=label)
    window.axhline(bdp_kb, color="k", linestyle=":", linewidth=0.8, label=f"BDP ({bdp_kb:.0f} kB)")
    window.set_ylabel("kB")
    window.set_ylim(0, bdp_kb * 4)
    window.legend(loc="upper right", fontsize=7, ncols=3)
    window.grid(alpha=0.3)
    names = list(BBR_STATE_COLORS)
    states = record["states"]
    for (t, name), nxt in zip(states, [*states[1:], [record["end_s"], None]], strict=True):
        color = BBR_STATE_COLORS.get(name, _OTHER_COLOR)
        level = names.index(name) if name in names else len(names)
        state_ax.fill_between([t, nxt[0]], level - 0.4, level + 0.4, color=color, linewidth=0)
        for ax in (rates, window):
            ax.axvspan(t, nxt[0], color=color, alpha=0.06, linewidth=0)
    state_ax.set_yticks(range(len(names)), [n.replace("probe_bw_", "bw ") for n in names], fontsize=7)
    state_ax.set_ylim(-0.6, len(names) - 0.4)
    losses = record["losses_s"]
    state_ax.plot(losses, [-0.5] * len(losses), "|", color="k", markersize=6, label=f"{len(losses)} losses")
    state_ax.legend(loc="upper right", fontsize=7)
    state_ax.set_xlabel("time since the connection's first event (s)")
    state_ax.set_xlim(0, record["end_s"])
    _titles(
        fig,
        "rudp BBR over time (sender's qlog): rates, window and state",
        f"RTT {c['rtt_ms']:g} ms, {c['rate_mbit_s']:g} Mbit/s, {c['loss'] * 100:g} % random loss both ways; "
        f"goodput {s['goodput_mbit_s']:.1f} Mbit/s",
        record,
    )
    return fig


PLOTTERS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "bbr_trace": bbr_trace,
    "handshake": handshake,
    "hol_blocking": hol_blocking,
    "migration": migration,
    "loss_sweep": loss_sweep,
    "many_small": many_small,
    "bulk": bulk,
    "many_streams": many_streams,
    "ecn_bottleneck": ecn_bottleneck,
    "fairness": fairness,
}


# ---------------------------------------------------------------------------------------------- saving


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def save_plot(record: dict[str, Any], path: Path) -> Path | None:
    """Draw ``record`` (a saved benchmark JSON) to ``path`` as PNG; the path, or None if not drawn.

    Records without a plotter (``run``, ``soak``) are skipped quietly. Without matplotlib a single
    line per process goes to stderr. A plotting error is reported in one line and not raised, so that
    a long run never loses the benchmarks after it.
    """
    global _missing_reported
    plotter = PLOTTERS.get(str(record.get("benchmark")))
    if plotter is None:
        return None
    if not matplotlib_available():
        if not _missing_reported:
            _missing_reported = True
            print(
                "plots skipped: matplotlib is not installed (pip install -e '.[plot]' to get PNGs)",
                file=sys.stderr,
            )
        return None
    try:
        fig = plotter(record)
        fig.savefig(path, format="png")
    except Exception as exc:
        print(f"plot of {record['benchmark']} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return path


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="Redraw the PNG plot of saved benchmark results.")
    parser.add_argument("records", nargs="+", type=Path, metavar="JSON", help="benchmarks/results/*.json")
    parser.add_argument("--out", type=Path, help="directory for the PNGs (default: beside each JSON)")
    args = parser.parse_args(argv)
    if not matplotlib_available():
        parser.error("matplotlib is not installed (pip install -e '.[plot]')")
    failed = 0
    for source in args.records:
        record = json.loads(source.read_text())
        target = (args.out or source.parent) / source.with_suffix(".png").name
        if save_plot(record, target) is None:
            failed += 1
            print(f"{source}: not plotted", file=sys.stderr)
        else:
            print(f"{source} -> {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
