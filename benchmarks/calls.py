"""Python calls per data datagram on each side of a bulk upload, on the in-process simulator.

A load-independent figure for issue 13's per-datagram CPU: a rudp client uploads ``--mib`` MiB on one
stream to a rudp server over :class:`rudp.testing.Pair` (virtual clock, 10 ms one-way delay, 1452-byte
datagrams, PMTU discovery off), with ``sys.setprofile`` counting every Python function call (``call``
events; calls into C functions are counted apart as ``c_call``) made while each side runs: receiving
datagrams, timers, building datagrams, and the application reading or writing the stream.

    python -m benchmarks.calls [--mib 2] [--loss 0.0] [--ack-frequency on|off] [--cpu] [--batch-window MS]

Prints one JSON line: per side, Python calls per data datagram (sender: per datagram sent; receiver:
per datagram received), C calls likewise, and the receiver's calls inside ``receive_datagram`` alone;
ACK frames per data datagram (datagrams the receiver sent per datagram it received). With ``--cpu``
the profiler is off and each side's thread CPU time (``time.thread_time``) per data datagram is
measured instead: in-process, so the network stack and the event loop are not in it, and steadier than
wall-clock figures on a loaded machine (other processes only share the cores). Runs against
whatever ``rudp`` is importable (``PYTHONPATH`` selects a tree), so two trees compare with one script.

``--batch-window MS`` hands the receiver what arrives within MS milliseconds (at most 44 datagrams, one
GRO buffer) in one ``receive_datagrams`` call, and lets it transmit only after it handled something,
as the aio endpoint does per socket wake-up (a sender's pacer releases a burst per 1-2 ms); a tree
without ``receive_datagrams`` gets one ``receive_datagram`` call per datagram of the batch instead.

``--pmtu default`` runs with ``Config``'s defaults instead (1350-byte base size, PMTU discovery on) on
the simulated link's 1500-byte MTU (1472-byte UDP payloads), where the search finds 1452: what a user
with the default configuration gets. ``--instructions`` runs the upload once under ``valgrind
--tool=callgrind`` and reports the sender's instructions per datagram sent: during the upload every
call into the sender side (building datagrams, its timers and ACKs received, the application writing)
goes through ``itertools.starmap``, which nothing else here uses, so ``--toggle-collect=starmap_next``
counts those alone (deterministic and blind to the load: the figure to compare two trees with).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.events import StreamReadable
from rudp.testing import LinkConfig, Pair, VirtualClock
from rudp.testing.certs import make_test_pki

CLIENT = ("10.0.0.1", 5000)
SERVER = ("10.0.0.2", 4433)
SIDES = ("sender", "receiver")
BATCH_LIMIT = 44
"""Datagrams of one receive batch at most with ``--batch-window``: one GRO buffer of 1452-byte ones."""


class _Counter:
    """The ``sys.setprofile`` hook: counts calls into the side that is running."""

    def __init__(self) -> None:
        self.side: str | None = None
        self.in_receive = False
        self.calls = dict.fromkeys(SIDES, 0)
        self.c_calls = dict.fromkeys(SIDES, 0)
        self.receive_calls = 0
        self.cpu = dict.fromkeys(SIDES, 0.0)
        self.through_starmap = False
        """The sender side's calls go through ``itertools.starmap`` (``--instructions``: from the start
        of the upload on)."""

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        side = self.side
        if side is None:
            return
        if event == "call":
            self.calls[side] += 1
            if self.in_receive and side == "receiver":
                self.receive_calls += 1
        elif event == "c_call":
            self.c_calls[side] += 1


class _Side:
    """A ``SimEndpoint`` around a client connection or a server endpoint, counted as one side."""

    def __init__(
        self, target: QuicConnection | QuicEndpoint, side: str, counter: _Counter, batch_window: float = 0.0
    ) -> None:
        self.target = target
        self.side = side
        self.counter = counter
        self.batch_window = batch_window
        """> 0: datagrams wait up to this long (or until :data:`BATCH_LIMIT` of them) and go to the
        target in one ``receive_datagrams`` call, as one socket wake-up hands them over; the side
        transmits only after it handled something (a batch, a timer), as the aio endpoint flushes."""
        self.buffered: list[tuple[bytes, tuple[str, int], int]] = []
        self.batch_due: float | None = None
        self.batches = 0
        self.dirty = True
        self.datagrams_sent = 0
        self.datagrams_received = 0
        self.pending: memoryview | None = None
        self.stream_id: int | None = None
        self.received = hashlib.sha256()
        self.received_bytes = 0
        self.eof = False

    def _connections(self) -> list[QuicConnection]:
        target = self.target
        return target.connections if isinstance(target, QuicEndpoint) else [target]

    def _pump(self) -> None:
        for conn in self._connections():
            while (event := conn.next_event()) is not None:
                if isinstance(event, StreamReadable):
                    chunk = conn.read_stream(event.stream_id)
                    self.received.update(chunk)
                    self.received_bytes += len(chunk)
                    self.eof = self.eof or conn.stream_at_eof(event.stream_id)
            if self.pending is not None and self.stream_id is not None and not conn.is_closed:
                accepted = conn.send_stream(self.stream_id, self.pending, fin=True)
                self.pending = None if accepted == len(self.pending) else self.pending[accepted:]

    def _run(self, fn: Any, *args: Any, receive: bool = False) -> Any:
        counter = self.counter
        counter.side, counter.in_receive = self.side, receive
        start = time.thread_time()
        try:
            if counter.through_starmap and self.side == "sender":
                return next(itertools.starmap(self._call, ((fn, args),)))
            return self._call(fn, args)
        finally:
            counter.cpu[self.side] += time.thread_time() - start
            counter.side, counter.in_receive = None, False

    def _call(self, fn: Any, args: tuple[Any, ...]) -> Any:
        result = fn(*args)
        self.counter.in_receive = False
        self._pump()
        return result

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float, ecn: int = 0) -> None:
        self.datagrams_received += 1
        if not self.batch_window:
            self._run(self.target.receive_datagram, data, addr, now, ecn, receive=True)
            return
        if not self.buffered:
            self.batch_due = now + self.batch_window
        self.buffered.append((data, addr, ecn))
        if len(self.buffered) >= BATCH_LIMIT:
            self._deliver(now)

    def _deliver(self, now: float) -> None:
        batch, self.buffered, self.batch_due = self.buffered, [], None
        self.batches += 1
        self.dirty = True
        self._run(self._receive_batch, batch, now, receive=True)

    def _receive_batch(self, batch: list[tuple[bytes, tuple[str, int], int]], now: float) -> None:
        receive = getattr(self.target, "receive_datagrams", None)
        if receive is None:  # an older tree: one call per datagram, as its aio endpoint did
            for data, addr, ecn in batch:
                self.target.receive_datagram(data, addr, now, ecn)
        else:
            receive(batch, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        if self.batch_window and not self.dirty:
            return []
        self.dirty = False
        out: list[tuple[bytes, tuple[str, int]]] = self._run(self._to_send, now)
        self.datagrams_sent += len(out)
        return out

    def _to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        self._pump()
        return self.target.datagrams_to_send(now)

    @property
    def ecn_codepoint(self) -> int:
        return self.target.ecn_codepoint

    def next_timer(self) -> float | None:
        timer = self.target.next_timer()
        due = self.batch_due
        if due is not None and (timer is None or due < timer):
            return due
        return timer

    def handle_timer(self, now: float) -> None:
        if self.batch_due is not None and self.batch_due <= now:
            self._deliver(now)
        timer = self.target.next_timer()
        if not self.batch_window or (timer is not None and timer <= now):
            self.dirty = True
            self._run(self.target.handle_timer, now)


def _config(common: dict[str, Any], ack_frequency: bool) -> dict[str, Any]:
    # Older trees have no ack_frequency option: pass it only where Config knows it.
    if "ack_frequency" in inspect.signature(Config).parameters:
        return {**common, "ack_frequency": ack_frequency}
    return common


FIXED_1452: dict[str, Any] = {"max_datagram_size": 1452, "pmtu_discovery": False}
"""``--pmtu fixed`` (the default): 1452-byte datagrams from the start, no PMTU discovery."""


def run(
    mib: float,
    loss: float,
    ack_frequency: bool,
    certs: Path,
    *,
    cpu: bool = False,
    batch_window: float = 0.0,
    pmtu: str = "fixed",
) -> dict[str, Any]:
    """Upload ``mib`` MiB and count; the JSON-able result. ``pmtu="default"``: Config's defaults (a
    1350-byte base size, PMTU discovery on), on the simulated link's 1500-byte MTU (1472-byte UDP
    payloads), where the search finds 1452, as a user with the default configuration gets."""
    pki = make_test_pki(certs)
    common: dict[str, Any] = {"alpn": ["bench"], **(FIXED_1452 if pmtu == "fixed" else {})}
    common = _config(common, ack_frequency)
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **common)
    client_config = Config(cafile=pki.ca_file, server_name="localhost", **common)
    clock = VirtualClock(1000.0)
    counter = _Counter()
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    conn = QuicConnection.client(client_config, server_address=SERVER, now=clock.now)
    client, server = _Side(conn, "sender", counter), _Side(endpoint, "receiver", counter, batch_window)
    link = LinkConfig(delay=0.01, bandwidth=200e6, loss=loss, seed=1)
    s2c = LinkConfig(delay=0.01, loss=loss, seed=2)
    pair = Pair(client, server, client_addr=CLIENT, server_addr=SERVER, c2s=link, s2c=s2c, clock=clock)
    if not pair.drive(until=lambda: conn.handshake_complete and bool(endpoint.connections), max_time=10):
        raise RuntimeError("handshake did not complete")
    body = bytes(range(256)) * (int(mib * 1024 * 1024) // 256)
    client.stream_id = conn.open_stream()
    client.pending = memoryview(body)
    start_sent, start_received = client.datagrams_sent, server.datagrams_received
    bytes_before = conn.stats.bytes_sent
    acks_before = server.datagrams_sent
    counter.cpu = dict.fromkeys(SIDES, 0.0)
    counter.through_starmap = cpu
    if not cpu:
        sys.setprofile(counter)
    try:
        done = pair.drive(until=lambda: server.eof, max_time=600)
    finally:
        sys.setprofile(None)
    if not done or server.received.digest() != hashlib.sha256(body).digest():
        raise RuntimeError("the upload did not arrive intact")
    sent = client.datagrams_sent - start_sent
    received = server.datagrams_received - start_received
    acks = server.datagrams_sent - acks_before
    # (the mean datagram size tells whether the PMTU search was done: 1452 once it settled)
    mean_size = round((conn.stats.bytes_sent - bytes_before) / sent)
    batching: dict[str, Any] = {"pmtu": pmtu, "mean_datagram_bytes": mean_size}
    if batch_window:
        batching["batch_window_ms"] = batch_window * 1e3
        batching["datagrams_per_batch"] = round(received / server.batches, 1)
    if cpu:
        return {
            "mib": mib,
            "loss": loss,
            "ack_frequency": ack_frequency,
            **batching,
            "datagrams_sent": sent,
            "sender_cpu_us_per_datagram": round(counter.cpu["sender"] / sent * 1e6, 1),
            "receiver_cpu_us_per_datagram": round(counter.cpu["receiver"] / received * 1e6, 1),
            "receiver_datagrams_per_data_datagram": round(acks / received, 3),
        }
    return {
        "mib": mib,
        "loss": loss,
        "ack_frequency": ack_frequency,
        **batching,
        "datagrams_sent": sent,
        "datagrams_received": received,
        "sender_calls_per_datagram": round(counter.calls["sender"] / sent, 1),
        "receiver_calls_per_datagram": round(counter.calls["receiver"] / received, 1),
        "receiver_calls_in_receive_datagram": round(counter.receive_calls / received, 1),
        "sender_c_calls_per_datagram": round(counter.c_calls["sender"] / sent, 1),
        "receiver_c_calls_per_datagram": round(counter.c_calls["receiver"] / received, 1),
        "receiver_datagrams_per_data_datagram": round(acks / received, 3),
        "virtual_seconds": round(clock.now - 1000.0, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--loss", type=float, default=0.0, help="random loss both ways (0..1)")
    parser.add_argument("--ack-frequency", choices=("on", "off"), default="on")
    parser.add_argument("--cpu", action="store_true", help="thread CPU time per datagram, no profiler")
    parser.add_argument(
        "--batch-window",
        type=float,
        default=0.0,
        help="ms: the receiver takes what arrives within it (at most 44 datagrams) in one call, as one "
        "socket wake-up; 0 (default): one call per datagram",
    )
    parser.add_argument(
        "--pmtu",
        choices=("fixed", "default"),
        default="fixed",
        help="fixed (default): 1452-byte datagrams, PMTU discovery off; default: Config's defaults "
        "(1350-byte base, PMTU discovery on) on a 1500-byte MTU link, which it finds as 1452",
    )
    parser.add_argument("--instructions", action="store_true", help="the sender's, under callgrind")
    args = parser.parse_args(argv)
    if args.instructions:
        print(json.dumps(sender_instructions([a for a in argv or sys.argv[1:] if a != "--instructions"])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = run(
            args.mib,
            args.loss,
            args.ack_frequency == "on",
            Path(tmp),
            cpu=args.cpu,
            batch_window=args.batch_window / 1e3,
            pmtu=args.pmtu,
        )
        print(json.dumps(result))


def sender_instructions(argv: list[str]) -> dict[str, Any]:
    """The upload ``argv`` asks for, once under callgrind (``--cpu``: no profiler): the sender's
    instructions per datagram sent, with the run's own result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--toggle-collect=starmap_next",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.calls",
            *argv,
            "--cpu",
        ]
        proc = subprocess.run(command, capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        found = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise RuntimeError("callgrind wrote no summary")
    for key in ("sender_cpu_us_per_datagram", "receiver_cpu_us_per_datagram"):
        result.pop(key, None)  # (times under valgrind: meaningless)
    result["sender_instructions_per_datagram"] = round(int(found.group(1)) / result["datagrams_sent"])
    return result


if __name__ == "__main__":
    main()
