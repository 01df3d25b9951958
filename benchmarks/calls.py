"""Python function calls per data datagram: a load-independent figure of the per-packet cost.

Both endpoints run in one process on the in-process simulator (:mod:`rudp.testing.netsim`, virtual
clock, perfect 20 ms link each way); the client uploads ``--mib`` MiB on one stream with
``Config(max_datagram_size=1452, pmtu_discovery=False)``. ``sys.setprofile`` counts every Python call
and every C-function call made while each side works (its ``receive_datagram``, ``datagrams_to_send``
and ``handle_timer``, and the stream reads and writes of this script), and divides:

- sender: the client's calls (building and sending, and processing the ACKs it gets back) per datagram
  the client sent;
- receiver: the server's calls (receiving, acknowledging) per datagram the server received.

The handshake is excluded (counting starts once both sides completed it). Calls are a proxy for CPU
in this pure-Python code (they track the hot path's bookkeeping closely and do not move with the
machine's load); wall-clock CPU per datagram comes from :mod:`benchmarks.bulk`.

    python -m benchmarks.calls [--mib 2] [--profile sender|receiver] [--top 25]

``--profile`` also runs that side under ``cProfile`` (a second, separate run) and prints its top
functions by self-time. Runs against whatever ``rudp`` is importable (``PYTHONPATH`` selects a tree).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from rudp.config import Config
from rudp.quic import events as ev
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing import LinkConfig, Pair, VirtualClock
from rudp.testing.certs import make_test_pki

CLIENT_ADDR = ("10.0.0.1", 5000)
SERVER_ADDR = ("10.0.0.2", 4433)
DATAGRAM_SIZE = 1452
CHUNK = 64 * 1024


class Side:
    """One endpoint as the simulator sees it; counts its calls while it works (``counting``)."""

    def __init__(self, target: QuicConnection | QuicEndpoint, name: str, meter: Meter) -> None:
        self.target = target
        self.name = name
        self.meter = meter
        self.datagrams_sent = 0
        self.datagrams_received = 0
        self.received_bytes = 0
        self.done = False
        self.handshake_done = False
        self.to_send = memoryview(b"")
        self.stream_id: int | None = None

    def _connections(self) -> list[QuicConnection]:
        if isinstance(self.target, QuicEndpoint):
            return list(self.target.connections)
        return [self.target]

    def _pump(self) -> None:
        for conn in self._connections():
            while (event := conn.next_event()) is not None:
                if isinstance(event, ev.HandshakeCompleted):
                    self.handshake_done = True
                elif isinstance(event, ev.StreamReadable):
                    self.received_bytes += len(conn.read_stream(event.stream_id))
                    if conn.stream_at_eof(event.stream_id):
                        self.done = True
            if self.to_send and self.stream_id is not None:
                last = len(self.to_send) <= CHUNK
                accepted = conn.send_stream(self.stream_id, self.to_send[:CHUNK], fin=last)
                self.to_send = self.to_send[accepted:]

    def receive_datagram(self, data: bytes, addr: Any, now: float, ecn: int = 0) -> None:
        with self.meter.side(self.name, "receive"):
            self.target.receive_datagram(data, addr, now, ecn)
            self._pump()
            self.datagrams_received += 1

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        with self.meter.side(self.name, "send"):
            self._pump()
            out = self.target.datagrams_to_send(now)
            self.datagrams_sent += len(out)
            return out

    def next_timer(self) -> float | None:
        return self.target.next_timer()

    def handle_timer(self, now: float) -> None:
        with self.meter.side(self.name, "timer"):
            self.target.handle_timer(now)
            self._pump()


class Meter:
    """Counts calls per side with ``sys.setprofile`` (or profiles one side with ``cProfile``)."""

    def __init__(self, profile_side: str | None = None) -> None:
        self.calls = {"client": 0, "server": 0}
        self.by_entry: dict[str, int] = {}
        """Calls per side and entry point (``client receive``, ``client send``, ...)."""
        self.active = False
        self._current: str | None = None
        self._profile_side = profile_side
        self.profiler = cProfile.Profile() if profile_side else None

    def side(self, name: str, entry: str) -> _SideContext:
        return _SideContext(self, name, entry)

    def _hook(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call" or event == "c_call":
            current = self._current
            if current is not None:
                self.calls[current] += 1


class _SideContext:
    def __init__(self, meter: Meter, name: str, entry: str) -> None:
        self.meter = meter
        self.name = name
        self.entry = f"{name} {entry}"
        self.before = 0

    def __enter__(self) -> None:
        meter = self.meter
        if not meter.active:
            return
        if meter.profiler is not None:
            if meter._profile_side == self.name:
                meter.profiler.enable()
            return
        meter._current = self.name
        self.before = meter.calls[self.name]
        sys.setprofile(meter._hook)

    def __exit__(self, *exc: object) -> None:
        meter = self.meter
        if not meter.active:
            return
        if meter.profiler is not None:
            if meter._profile_side == self.name:
                meter.profiler.disable()
            return
        sys.setprofile(None)
        meter._current = None
        meter.by_entry[self.entry] = meter.by_entry.get(self.entry, 0) + meter.calls[self.name] - self.before


def run(mib: float = 2.0, profile_side: str | None = None, top: int = 25) -> dict[str, Any]:
    """One upload; calls per datagram of each side (or a profile of one side)."""
    nbytes = int(mib * (1 << 20))
    work = Path(tempfile.mkdtemp(prefix="rudp-calls-"))
    pki = make_test_pki(work)
    common: dict[str, Any] = {"max_datagram_size": DATAGRAM_SIZE, "pmtu_discovery": False}
    client_config = Config(cafile=pki.ca_file, server_name="localhost", **common)
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **common)
    clock = VirtualClock(1000.0)
    meter = Meter(profile_side)
    conn = QuicConnection.client(client_config, server_address=SERVER_ADDR, now=clock.now)
    client = Side(conn, "client", meter)
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    server = Side(endpoint, "server", meter)
    link = LinkConfig(delay=0.02, bandwidth=200e6)
    pair = Pair(
        client, server, client_addr=CLIENT_ADDR, server_addr=SERVER_ADDR, c2s=link, s2c=link, clock=clock
    )
    if not pair.drive(until=lambda: client.handshake_done and server.handshake_done, max_time=10.0):
        raise RuntimeError("handshake did not complete")
    client.stream_id = conn.open_stream()
    client.to_send = memoryview(bytes(range(256)) * (nbytes // 256 + 1))[:nbytes]
    base = {"c": (client.datagrams_sent, 0), "s": (server.datagrams_sent, server.datagrams_received)}
    meter.active = True
    finished = pair.drive(until=lambda: server.done, max_time=600.0)
    meter.active = False
    if not finished or server.received_bytes != nbytes:
        raise RuntimeError(f"upload incomplete: {server.received_bytes} of {nbytes} bytes")
    sent = client.datagrams_sent - base["c"][0]
    received = server.datagrams_received - base["s"][1]
    result: dict[str, Any] = {
        "mib": mib,
        "client_datagrams_sent": sent,
        "server_datagrams_received": received,
        "server_acks_sent": server.datagrams_sent - base["s"][0],
    }
    if meter.profiler is not None:
        stats = pstats.Stats(meter.profiler)
        stats.sort_stats("tottime").print_stats(top)
        if os.environ.get("CALLS_CALLERS"):
            stats.print_callers(os.environ["CALLS_CALLERS"])
        if os.environ.get("CALLS_CALLEES"):
            stats.print_callees(os.environ["CALLS_CALLEES"])
        return result
    result["sender_calls_per_datagram"] = round(meter.calls["client"] / sent, 1)
    result["receiver_calls_per_datagram"] = round(meter.calls["server"] / received, 1)
    result["sender_calls_per_datagram_by_entry"] = {
        entry.split()[1]: round(count / sent, 1)
        for entry, count in meter.by_entry.items()
        if entry.startswith("client")
    }
    result["receiver_calls_per_datagram_by_entry"] = {
        entry.split()[1]: round(count / received, 1)
        for entry, count in meter.by_entry.items()
        if entry.startswith("server")
    }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--profile", choices=("sender", "receiver"), default=None)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    side: Callable[[str], str] = {"sender": "client", "receiver": "server"}.get  # type: ignore[assignment]
    print(json.dumps(run(args.mib, side(args.profile) if args.profile else None, args.top)))


if __name__ == "__main__":
    main()
