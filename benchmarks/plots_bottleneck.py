"""Plots of the bottleneck benchmarks (``ecn_bottleneck``, ``fairness``), drawn with the helpers of
:mod:`benchmarks.plots`, which registers them in its ``PLOTTERS`` (and imports this module only when
one is drawn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.plots import STACK_COLORS, _label_bars, _new_figure, _titles

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FLOW_COLORS = {
    "rudp cubic": STACK_COLORS["rudp-quic"],
    "rudp bbr": "#9467bd",
    "kernel cubic": STACK_COLORS["rudp-tcp"],
}
"""One colour per flow (stack + controller); a flow without ECN is drawn lighter and hatched."""


def _flow_color(label: str) -> str:
    return next((c for flow, c in FLOW_COLORS.items() if label.startswith(flow)), "#7f7f7f")


def ecn_bottleneck(record: dict[str, Any]) -> Figure:
    """Per AQM, one bar per variant: packets dropped at the bottleneck, goodput, queue delay (p50 bar,
    p95 tick)."""
    c = record["conditions"]
    points = record["points"]
    aqms = list(dict.fromkeys(p["aqm"] for p in points))
    flows = list(dict.fromkeys(p["variant"].removesuffix(" no-ecn").removesuffix(" ecn") for p in points))
    variants = sorted(
        dict.fromkeys(p["variant"] for p in points),
        key=lambda v: (flows.index(v.removesuffix(" no-ecn").removesuffix(" ecn")), v.endswith("no-ecn")),
    )
    value = {(p["aqm"], p["variant"]): p for p in points}
    fig, axes = _new_figure(13.0, 4.8, ncols=3)
    width = 0.8 / len(variants)
    panels = (
        ("packets dropped at the bottleneck", lambda p: p["lost"], "{:.0f}"),
        ("goodput (Mbit/s)", lambda p: p["mbit_s"], ""),
        ("queue delay p50 (bar) and p95 (tick), ms", lambda p: p["queue_delay_ms"]["p50"], ""),
    )
    for ax, (ylabel, get, fmt) in zip(axes, panels, strict=True):
        for j, variant in enumerate(variants):
            xs = [
                i + (j - (len(variants) - 1) / 2) * width
                for i, aqm in enumerate(aqms)
                if (aqm, variant) in value
            ]
            rows = [value[(aqm, variant)] for aqm in aqms if (aqm, variant) in value]
            if not rows:
                continue
            ecn = rows[0]["ecn"]
            bars = ax.bar(
                xs,
                [get(p) for p in rows],
                width,
                color=_flow_color(variant),
                alpha=1.0 if ecn else 0.45,
                hatch="" if ecn else "//",
                edgecolor="white",
                label=variant,
            )
            if ax is axes[2]:
                ax.plot(xs, [p["queue_delay_ms"]["p95"] for p in rows], "k_", markersize=9)
            elif ax is axes[0]:
                _label_bars(ax, bars, fmt)
        ax.set_xticks(range(len(aqms)), aqms)
        ax.set_xlabel("AQM at the bottleneck")
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes[1].axhline(c["rate_mbit_s"], color="grey", linewidth=0.8, linestyle=":")
    axes[0].legend(fontsize=7, loc="upper right")
    _titles(
        fig,
        "ECN at a marking bottleneck: one bulk flow, ECN on (solid) and off (hatched)",
        f"{c['rate_mbit_s']:g} Mbit/s, RTT {c['rtt_ms']:g} ms, queue {c['queue_bytes'] / 1000:g} kB "
        f"({c['queue_bdp']:g} BDP), {c['seconds']:g} s per flow",
        record,
    )
    return fig


def fairness(record: dict[str, Any]) -> Figure:
    """Top: each pair's two flows (median Mbit/s bars, every run as a dot) with Jain's index; bottom:
    both flows' rate over time in the first run of each pair."""
    c = record["conditions"]
    points = record["points"]
    n = len(points)
    fig, axes = _new_figure(max(3.4 * n, 10.0), 7.5, nrows=2, ncols=max(n, 2), squeeze=False)
    grid = axes[0][0].get_gridspec()
    for ax in axes[0]:
        ax.remove()
    top = fig.add_subplot(grid[0, :])
    width = 0.38
    for i, p in enumerate(points):
        for k, side in enumerate((-1, 1)):
            x = i + side * width / 2
            label = p["flows"][k]
            bars = top.bar(
                x, p["median_mbit_s"][k], width, color=_flow_color(label), alpha=1.0 if k == 0 else 0.6
            )
            _label_bars(top, bars, "{:.1f}")
            dots = [r["mbit_s"][k] for r in p["reps"]]
            top.plot([x] * len(dots), dots, "k.", markersize=4)
        top.annotate(
            f"Jain {p['median_jain']:.3f}\nA/B {p['median_ratio']:.2f}",
            (i, 0),
            xytext=(0, -34),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    top.set_xticks(range(n), [p["pair"].replace(" vs ", "\nvs ") for p in points], fontsize=8)
    top.tick_params(axis="x", pad=36)
    top.axhline(c["rate_mbit_s"] / 2, color="grey", linewidth=0.8, linestyle=":", label="half the link")
    top.set_ylabel("Mbit/s (bars: median run, dots: runs)")
    top.legend(fontsize=8, loc="upper right")
    top.grid(axis="y", alpha=0.3)
    for ax, p in zip(axes[1], points, strict=False):
        rep = p["reps"][0]
        for k, series in enumerate(rep["bins_mbit_s"]):
            ts = [(j + 1) * c["bin_s"] for j in range(len(series))]
            ax.step(
                ts,
                series,
                where="post",
                color=_flow_color(p["flows"][k]),
                linestyle=("-", "--")[k],
                label=f"{'AB'[k]}: {p['flows'][k]}",
            )
        ax.axvline(c["skip_s"], color="k", linestyle=":", linewidth=0.8)
        ax.set_title(p["pair"], fontsize=9)
        ax.set_xlabel("s (counted after the dotted line)")
        ax.set_ylim(0, c["rate_mbit_s"] * 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[1][0].set_ylabel(f"Mbit/s per {c['bin_s']:g} s (first run)")
    for ax in axes[1][n:]:
        ax.set_visible(False)
    _titles(
        fig,
        "Fairness: two bulk flows sharing one bottleneck",
        f"{c['rate_mbit_s']:g} Mbit/s, RTT {c['rtt_ms']:g} ms, drop-tail queue "
        f"{c['queue_bytes'] / 1000:g} kB ({c['queue_bdp']:g} BDP), {c['seconds']:g} s per run "
        f"from {c['skip_s']:g} s, {c['repeat']} runs",
        record,
    )
    return fig
