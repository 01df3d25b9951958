"""The forwarder process: move IP packets between the two TUN devices, applying the impairments.

Run as `python -m rudp.netem.forwarder CLIENT_FD SERVER_FD CONTROL_FD` by :class:`rudp.netem.Network`,
which passes the descriptors. The control descriptor is a Unix stream socket carrying one JSON object per
line: the first message is the configuration, then requests (`set`, `stats`, `rebind`, `stop`), each
answered by one reply line. End of file on the control socket (the parent died) stops the forwarder.

Timing: packets due later are kept in a heap and a timerfd (CLOCK_MONOTONIC, absolute, 1 ns timer slack)
wakes the loop; epoll timeouts alone overshoot by about a millisecond. Every wake-up delivers all the
packets due within `slack` seconds, so bursts cost one wake-up. This module owns the event loop and the
wire protocol of the control channel, not the impairment decisions (:mod:`rudp.netem.channel`).
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time
from typing import Final

from rudp.netem.channel import Channel
from rudp.netem.impairments import Impairments
from rudp.netem.namespaces import libc
from rudp.netem.nat import Nat, NatConfig
from rudp.netem.packet import ECN_CE, corrupt, ecn, set_ecn
from rudp.netem.pcap import PcapWriter
from rudp.netem.stats import DirectionStats

CLOCK_MONOTONIC: Final = 1
TFD_NONBLOCK: Final = os.O_NONBLOCK
TFD_CLOEXEC: Final = os.O_CLOEXEC
TFD_TIMER_ABSTIME: Final = 1
PR_SET_TIMERSLACK: Final = 29
READ_BATCH: Final = 64
MAX_PACKET: Final = 65535


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class TimerFd:
    """A one-shot CLOCK_MONOTONIC timerfd armed at absolute times (the clock of time.monotonic)."""

    def __init__(self) -> None:
        self._libc = libc()
        fd = self._libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self.fd: int = fd
        self.armed_at: float | None = None
        # Let the kernel fire the timer on time rather than coalescing it (default slack is 50 us).
        self._libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)

    def arm(self, at: float) -> None:
        """Fire at monotonic time `at` (replacing any earlier arming)."""
        if at == self.armed_at:
            return
        sec = int(at)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, max(1, int((at - sec) * 1e9))))
        if self._libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")
        self.armed_at = at

    def consume(self) -> None:
        """Acknowledge an expiry."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)
        self.armed_at = None

    def close(self) -> None:
        os.close(self.fd)


class Forwarder:
    """The event loop. Direction 0 is client-to-server ("c2s"), 1 is server-to-client ("s2c")."""

    def __init__(self, client_fd: int, server_fd: int, control: socket.socket, config: dict[str, object]):
        self.fds = (client_fd, server_fd)
        self.control = control
        self.slack = float(config.get("slack", 0.0001))  # type: ignore[arg-type]
        self.spin = float(config.get("spin", 0.00025))  # type: ignore[arg-type]
        seed = int(config.get("seed", 0))  # type: ignore[call-overload]
        now = time.monotonic()
        self.started_at = float(config.get("started_at", now))  # type: ignore[arg-type]
        self.stats = (DirectionStats(), DirectionStats())
        imps = config.get("impairments", {})
        if not isinstance(imps, dict):
            raise ValueError("impairments must be a dict")
        self.channels = tuple(
            Channel(Impairments.from_dict(imps.get(d, {})), self.stats[i], random.Random(seed + i), now)
            for i, d in enumerate(("c2s", "s2c"))
        )
        self.corrupt_rng = random.Random(seed + 2)
        nat = config.get("nat")
        self.nat: Nat | None = None
        if isinstance(nat, dict):
            nat_config = NatConfig(
                rebind_at=tuple(nat.get("rebind_at", ())),
                port=bool(nat.get("port", True)),
                address=bool(nat.get("address", False)),
            )
            self.nat = Nat(str(nat["client_address"]), nat_config, random.Random(seed + 3), self.started_at)
        pcaps = config.get("pcap", {})
        self.pcap: tuple[PcapWriter | None, PcapWriter | None] = (None, None)
        if isinstance(pcaps, dict):
            self.pcap = tuple(  # type: ignore[assignment]
                PcapWriter(str(pcaps[side])) if pcaps.get(side) else None for side in ("client", "server")
            )
        self.heap: list[tuple[float, int, int, bytes | bytearray]] = []
        self.seq = 0
        self.running = True
        self.timer = TimerFd()
        self._inbuf = b""

    # -- packets -------------------------------------------------------------------------------------

    def _drain(self, direction: int) -> bool:
        """Read up to a batch of packets from one side and schedule or deliver them.

        Returns whether the batch was used up (more packets may be waiting).
        """
        fd = self.fds[direction]
        channel = self.channels[direction]
        pcap = self.pcap[direction]
        stats = self.stats[direction]
        heap = self.heap
        for _ in range(READ_BATCH):
            try:
                pkt: bytes | bytearray = os.read(fd, MAX_PACKET)
            except BlockingIOError:
                return False
            now = time.monotonic()
            if pcap is not None:
                pcap.write(pkt, now)
            if (
                not pkt
                or (pkt[0] >> 4 == 6 and (len(pkt) < 40 or pkt[24] == 0xFF))
                or pkt[0] >> 4 not in (4, 6)
            ):
                stats.ignored += 1
                continue
            verdict = channel.process(len(pkt), now, ecn(pkt))
            if verdict.cause is not None:
                continue
            if verdict.corrupt:
                pkt = bytearray(pkt)
                imp = channel.impairments
                corrupt(pkt, imp.corrupt_bytes, self.corrupt_rng, imp.corrupt_fix_checksum)
            for at, marked in zip(verdict.deliver_at, verdict.ce, strict=True):
                out = pkt
                if marked:
                    out = bytearray(pkt)
                    set_ecn(out, ECN_CE)
                if at <= now and (not heap or heap[0][0] > now):
                    self._emit(direction, out, now)
                else:
                    self.seq += 1
                    heapq.heappush(heap, (at, self.seq, direction, out))
        return True

    def _emit(self, direction: int, pkt: bytes | bytearray, now: float) -> None:
        """Write one packet to the far side, translating it through the NAT first."""
        stats = self.stats[direction]
        nat = self.nat
        if nat is not None:
            nat.tick(now)
            if nat.epoch:
                buf = bytearray(pkt)
                if direction == 0:
                    done: bool | None = nat.outbound(buf)
                else:
                    done = nat.inbound(buf)
                    if done is None:
                        stats.drop("nat", len(pkt))
                        return
                if done:
                    stats.nat_rewritten += 1
                    pkt = buf
        try:
            os.write(self.fds[1 - direction], pkt)
        except OSError:
            stats.drop("write_error", len(pkt))
            return
        stats.forwarded_packets += 1
        stats.forwarded_bytes += len(pkt)
        pcap = self.pcap[1 - direction]
        if pcap is not None:
            pcap.write(pkt, now)

    def _deliver_due(self) -> None:
        heap = self.heap
        if not heap:
            return
        now = time.monotonic()
        first = heap[0][0]
        if now + self.slack < first <= now + self.spin:
            # The timer fires `spin` early to absorb the kernel's wake-up latency; wait out the rest.
            while now < first:
                now = time.monotonic()
        limit = now + self.slack
        while heap and heap[0][0] <= limit:
            _, _, direction, pkt = heapq.heappop(heap)
            self._emit(direction, pkt, now)
        if heap:
            self.timer.arm(heap[0][0] - self.spin)

    # -- control -------------------------------------------------------------------------------------

    def _on_control(self) -> None:
        try:
            data = self.control.recv(65536)
        except BlockingIOError:
            return
        if not data:
            self.running = False
            return
        self._inbuf += data
        # Packets the hosts sent before this request are already queued in the TUNs: process them
        # under the old settings first, so a change applies from the caller's next packet on.
        while self._drain(0) or self._drain(1):
            pass
        while b"\n" in self._inbuf:
            line, self._inbuf = self._inbuf.split(b"\n", 1)
            try:
                reply = self._handle(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.control.setblocking(True)
            try:
                self.control.sendall(json.dumps(reply).encode() + b"\n")
            finally:
                self.control.setblocking(False)

    def _handle(self, request: dict[str, object]) -> dict[str, object]:
        op = request.get("op")
        now = time.monotonic()
        if op == "set":
            index = ("c2s", "s2c").index(str(request["direction"]))
            imp = Impairments.from_dict(request["impairments"])  # type: ignore[arg-type]
            self.channels[index].configure(imp, now, bool(request.get("restart", True)))
            return {"ok": True}
        if op == "stats":
            for pcap in self.pcap:
                if pcap is not None:
                    pcap.flush()
            return {
                "ok": True,
                "c2s": self.stats[0].to_dict(),
                "s2c": self.stats[1].to_dict(),
                "in_flight": len(self.heap),
            }
        if op == "rebind":
            if self.nat is None:
                return {"ok": False, "error": "NAT is not enabled for this network"}
            port, address = request.get("port"), request.get("address")
            self.nat.rebind(None if port is None else bool(port), None if address is None else bool(address))
            return {"ok": True, "external": self.nat.external_address, "epoch": self.nat.epoch}
        if op == "ping":
            return {"ok": True, "now": now}
        if op == "stop":
            self.running = False
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    # -- loop ----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Forward until told to stop or the control socket closes."""
        ep = select.epoll()
        client_fd, server_fd = self.fds
        ctrl_fd, timer_fd = self.control.fileno(), self.timer.fd
        for fd in (client_fd, server_fd, ctrl_fd, timer_fd):
            ep.register(fd, select.EPOLLIN)
        self.control.setblocking(False)
        try:
            while self.running:
                for fd, _ in ep.poll():
                    if fd == client_fd:
                        self._drain(0)
                    elif fd == server_fd:
                        self._drain(1)
                    elif fd == timer_fd:
                        self.timer.consume()
                    elif fd == ctrl_fd:
                        self._on_control()
                self._deliver_due()
        finally:
            ep.close()
            for pcap in self.pcap:
                if pcap is not None:
                    pcap.close()
            self.timer.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the configuration line, report readiness, forward."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m rudp.netem.forwarder CLIENT_FD SERVER_FD CONTROL_FD", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells us to stop
    client_fd, server_fd, control_fd = (int(a) for a in args)
    control = socket.socket(fileno=control_fd)
    line = b""
    while not line.endswith(b"\n"):
        chunk = control.recv(65536)
        if not chunk:
            return 1
        line += chunk
    try:
        forwarder = Forwarder(client_fd, server_fd, control, json.loads(line))
    except (ValueError, TypeError, KeyError, OSError) as exc:
        control.sendall(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        return 1
    control.sendall(json.dumps({"ok": True, "pid": os.getpid()}).encode() + b"\n")
    forwarder.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
