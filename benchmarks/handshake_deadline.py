"""How often a client's handshake deadline ends a handshake that would have completed, under random loss.

Run: ``python -m benchmarks.handshake_deadline [--runs 10000] [--loss 0.3] [--delay 0.005]``.

A rudp client and a rudp server (default Configs, no Retry) are driven in virtual time, sans-IO, on a
link that loses each datagram with probability ``--loss`` in either direction and delays the others by
``--delay`` seconds; run ``i`` uses ``random.Random(i)``. Nothing ends the handshake early here: each
run goes on until it completes or the client closes (its idle timeout, 90 s at most), and records when
each client deadline would have given up first. "fixed" is a deadline ``handshake_timeout`` after the
start (rudp's client before this script); "core" is ``QuicConnection.handshake_deadline``. A failure is
a deadline that comes before the completion (or a handshake that never completes).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import tempfile
from pathlib import Path

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing.certs import TestPki, make_test_pki

SERVER = ("10.0.0.2", 4433)
CLIENT = ("10.1.0.1", 5000)
START = 100.0
LIMIT = 90.0


def one_run(pki: TestPki, seed: int, loss: float, delay: float) -> tuple[float | None, float | None, bool]:
    """(completion time, when the core deadline gave up) after the start, None for never, and whether
    the server dropped the handshake at its own deadline (client silent for ``handshake_timeout``)."""
    rng = random.Random(seed)
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, retry_threshold=None)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    client_config = Config(cafile=pki.ca_file, server_name="localhost")
    client = QuicConnection.client(client_config, server_address=SERVER, now=START)
    in_flight: list[tuple[float, int, bool, bytes]] = []  # (arrival, order, to the server, datagram)
    order = itertools.count()
    gave_up: float | None = None
    now = START

    def send() -> None:
        for data, _ in client.datagrams_to_send(now):
            if rng.random() >= loss:
                heapq.heappush(in_flight, (now + delay, next(order), True, data))
        for data, _ in server.datagrams_to_send(now):
            if rng.random() >= loss:
                heapq.heappush(in_flight, (now + delay, next(order), False, data))

    send()
    while now < START + LIMIT and not client.handshake_complete and not client.is_closed:
        deadline = client.handshake_deadline if gave_up is None else None
        timers = [t for t in (client.next_timer(), server.next_timer(), deadline) if t is not None]
        if in_flight:
            timers.append(in_flight[0][0])
        now = max(now, min(timers))
        if deadline is not None and now >= deadline:
            gave_up = now - START
        while in_flight and in_flight[0][0] <= now:
            _, _, to_server, data = heapq.heappop(in_flight)
            if to_server:
                server.receive_datagram(data, CLIENT, now)
            else:
                client.receive_datagram(data, SERVER, now)
        if (at := client.next_timer()) is not None and at <= now:
            client.handle_timer(now)
        if (at := server.next_timer()) is not None and at <= now:
            server.handle_timer(now)
        send()
    done = now - START if client.handshake_complete else None
    return done, gave_up, server.handshakes_timed_out > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--loss", type=float, default=0.3)
    parser.add_argument("--delay", type=float, default=0.005)
    args = parser.parse_args()
    timeout = Config().handshake_timeout
    pki = make_test_pki(Path(tempfile.mkdtemp()))
    fixed = core = never = dropped = 0
    times: list[float] = []
    for seed in range(args.runs):
        done, gave_up, server_dropped = one_run(pki, seed, args.loss, args.delay)
        dropped += server_dropped
        if done is None:
            never += 1
        else:
            times.append(done)
        fixed += done is None or done > timeout
        core += gave_up is not None and (done is None or gave_up < done)
    times.sort()
    print(
        f"{args.runs} handshakes, loss {args.loss:.0%} each way, delay {args.delay * 1000:g} ms: "
        f"never complete {never}; ended by the fixed deadline {fixed} ({fixed - never} that would have "
        f"completed), by the core deadline {core} ({core - never}); dropped by the server {dropped}; "
        f"completion "
        f"p50 {times[len(times) // 2]:.2f} s, p99 {times[int(len(times) * 0.99)]:.2f} s, "
        f"max {times[-1]:.2f} s"
    )


if __name__ == "__main__":
    main()
