"""rudp.netem: a network emulator for tests and benchmarks (Linux, root).

Two network namespaces, `client` and `server`, are joined only through a TUN device in each; a
forwarder process moves IP packets between the two TUNs and applies per-direction impairments (delay,
jitter, loss, bursty loss, corruption, duplication, reordering, a rate-limited drop-tail bottleneck,
blackholes, drop lists) plus an optional rebinding NAT, writes pcaps and counts everything. Kernel TCP,
kernel UDP, rudp and other QUIC stacks all cross it unchanged. See README.md beside this file.

    from rudp.netem import Network, NetworkConfig, Impairments
    with Network(NetworkConfig(c2s=Impairments(delay=0.02), s2c=Impairments(delay=0.02))) as net:
        sock = net.server.socket()  # a socket inside the server namespace
        ...
        net.set_impairments("both", loss=0.01)
        print(net.stats().summary())

:func:`availability` says in one line why the emulator cannot run here, or returns None.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from rudp.netem.hosts import Host, NamespaceTask, TaskFailed
from rudp.netem.impairments import (
    DIRECTIONS,
    Aqm,
    BurstLoss,
    CodelMarker,
    Direction,
    GilbertElliott,
    ImpairmentError,
    Impairments,
    RedMarker,
    StepMarker,
    periodic_blackhole,
)
from rudp.netem.namespaces import NetemError
from rudp.netem.nat import NatConfig
from rudp.netem.network import Network, NetworkConfig
from rudp.netem.stats import DirectionStats, LinkStats

_availability: list[str | None] = []


def _probe() -> str | None:
    if not hasattr(os, "geteuid") or not os.path.isdir("/proc/self/ns"):
        return "rudp.netem needs Linux network namespaces"
    if os.geteuid() != 0:
        return "rudp.netem needs root (network namespaces and TUN devices)"
    if shutil.which("ip") is None:
        return "rudp.netem needs the `ip` command (apt-get install iproute2)"
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as exc:
        return f"rudp.netem cannot open /dev/net/tun: {exc.strerror}"
    os.close(fd)
    name = f"rudp-{os.getpid()}-probe"
    proc = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"rudp.netem: ip netns add failed: {proc.stderr.strip() or proc.returncode}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    return None


def availability() -> str | None:
    """None when the emulator can run here, else a one-line reason (cached after the first call)."""
    if not _availability:
        _availability.append(_probe())
    return _availability[0]


__all__ = [
    "DIRECTIONS",
    "Aqm",
    "BurstLoss",
    "CodelMarker",
    "Direction",
    "DirectionStats",
    "GilbertElliott",
    "Host",
    "ImpairmentError",
    "Impairments",
    "LinkStats",
    "NamespaceTask",
    "NatConfig",
    "NetemError",
    "Network",
    "NetworkConfig",
    "RedMarker",
    "StepMarker",
    "TaskFailed",
    "availability",
    "periodic_blackhole",
]
