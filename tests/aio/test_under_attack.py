"""A real server under attack and over time, on loopback sockets: handshake floods from many source
addresses of 127.0.0.0/8 (with Retry configured and without), garbage and mutated datagrams, churn,
and a server process that crashes and restarts (its clients learn it from a stateless reset).

Quick sizes here; ``python -m benchmarks.soak`` runs the same attacks for hours by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import rudp
from rudp.aio.endpoint import UdpEndpoint
from rudp.aio.hq import HQ_ALPN
from rudp.testing.certs import TestPki
from rudp.testing.flood import initial_variants, source_addresses
from tests.aio.test_streams import echo_handler

WAIT = 15.0
FLOOD_SECONDS = 4.0
FLOOD_RATE = 10_000  # datagrams/s in CI; benchmarks/soak.py floods at the highest rate it can


def _endpoint(server: rudp.Server) -> UdpEndpoint:
    (listener,) = server.listeners
    if not isinstance(listener, UdpEndpoint):
        raise TypeError("a QUIC server was expected")
    return listener


async def _echo(conn: rudp.Connection, payload: bytes) -> None:
    stream = await conn.open_stream()
    stream.write(payload)
    stream.write_eof()
    await stream.drain()
    echoed = await asyncio.wait_for(stream.read(), WAIT)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


@asynccontextmanager
async def _flooding(
    port: int, *, rate: int = FLOOD_RATE, seconds: float = FLOOD_SECONDS
) -> AsyncIterator[None]:
    """A flooder process sending valid Initials from 64 addresses of 127.0.0.0/8."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rudp.testing.flood", "127.0.0.1", str(port),
        "--seconds", str(seconds), "--rate", str(rate), "--sources", "64",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield
    finally:
        out, _ = await asyncio.wait_for(process.communicate(), seconds + WAIT)
        assert process.returncode == 0, out


async def _sample_while(task: asyncio.Task[Any], endpoint: UdpEndpoint) -> dict[str, int]:
    """The largest value of every per-connection structure while ``task`` runs."""
    peaks: dict[str, int] = {}
    while not task.done():
        for name, value in endpoint.quic.state_sizes().items():
            peaks[name] = max(peaks.get(name, 0), value)
        await asyncio.wait({task}, timeout=0.02)
    return peaks


async def _until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` every 20 ms; fail after WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def _legitimate_clients(endpoint: UdpEndpoint, config: rudp.Config, count: int) -> list[float]:
    """Once the flood is being answered with Retries, connect ``count`` times; return each
    handshake's duration."""
    loop = asyncio.get_running_loop()
    durations = []
    await _until(lambda: endpoint.quic.admission.retries_sent > 100)
    port = endpoint.port
    for i in range(count):
        start = loop.time()
        async with rudp.connect("127.0.0.1", port, config=config) as conn:
            durations.append(loop.time() - start)
            await _echo(conn, os.urandom(1000 + i))
    return durations


@pytest.mark.parametrize("retry", [False, True], ids=["auto-retry", "retry-always"])
async def test_handshake_flood_keeps_state_bounded_and_serves_clients(
    running_server: Any, client_config: Callable[..., rudp.Config], retry: bool
) -> None:
    threshold = 16
    async with running_server(echo_handler, retry=retry, retry_threshold=threshold) as server:
        endpoint = _endpoint(server)
        config = client_config(handshake_timeout=WAIT)
        async with _flooding(server.port):
            clients = asyncio.create_task(_legitimate_clients(endpoint, config, 3))
            peaks = await _sample_while(clients, endpoint)
            durations = await clients
        admission = endpoint.quic.admission
        assert len(durations) == 3
        assert admission.retries_sent > 1000  # the flood was answered statelessly
        # Without Retry configured, state for at most `threshold` flood handshakes; with it, none.
        allowed = (0 if retry else threshold) + 1
        assert peaks["handshakes"] <= allowed, peaks
        assert peaks["connections"] <= allowed + 2, peaks  # + the previous legitimate client, draining
        print("handshake seconds under flood:", [round(d, 3) for d in durations], peaks)
        assert peaks["stateless_queue"] <= 64 * 2  # one receive batch of replies at most


async def test_past_the_handshake_cap_a_client_is_refused_not_left_hanging(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    cap = 20
    async with running_server(echo_handler, retry_threshold=None, max_handshakes=cap) as server:
        endpoint = _endpoint(server)
        async with _flooding(server.port, rate=2_000, seconds=2.0):
            await _until(lambda: endpoint.quic.handshakes_in_progress >= cap)
            with pytest.raises(rudp.HandshakeFailed) as failed:
                await rudp.connect("127.0.0.1", server.port, config=client_config(handshake_timeout=WAIT))
            assert failed.value.code == rudp.TransportErrorCode.CONNECTION_REFUSED
            assert endpoint.quic.state_sizes()["connections"] <= cap


async def test_half_open_clients_lose_their_slots_at_the_handshake_timeout(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    """Clients at many addresses of 127.0.0.0/8 each send one valid Initial and go silent, filling
    every handshake slot: a real client is refused, but only until the handshake timeout (not the
    30 s idle timeout) has freed the slots."""
    cap, timeout = 16, 1.5
    options = {"retry_threshold": None, "max_handshakes": cap, "handshake_timeout": timeout}
    async with running_server(echo_handler, **options) as server:
        endpoint = _endpoint(server)
        loop = asyncio.get_running_loop()
        initials = initial_variants(cap, ("127.0.0.1", server.port))
        transports = []
        try:
            for host, initial in zip(source_addresses(cap), initials, strict=True):
                transport, _ = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, local_addr=(host, 0), remote_addr=("127.0.0.1", server.port)
                )
                transports.append(transport)
                transport.sendto(initial)
            await _until(lambda: endpoint.quic.handshakes_in_progress == cap)
            started = loop.time()
            with pytest.raises(rudp.HandshakeFailed) as refused:
                await rudp.connect("127.0.0.1", server.port, config=client_config(handshake_timeout=WAIT))
            assert refused.value.code == rudp.TransportErrorCode.CONNECTION_REFUSED

            await _until(lambda: endpoint.quic.handshakes_timed_out == cap)
            assert loop.time() - started < timeout + 1.0  # the handshake timeout, not the idle one
            assert endpoint.quic.handshakes_in_progress == 0
            assert endpoint.connections == []  # no Connection object left for the dropped ones
            async with rudp.connect("127.0.0.1", server.port, config=client_config()) as conn:
                await _echo(conn, os.urandom(2000))
        finally:
            for transport in transports:
                transport.close()
        assert endpoint.quic.connections_accepted == cap + 1


async def test_garbage_and_mutated_datagrams_leave_no_state(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    rng = random.Random(1234)
    async with running_server(echo_handler) as server:
        endpoint = _endpoint(server)
        real = initial_variants(20, ("127.0.0.1", server.port))
        loop = asyncio.get_running_loop()
        transports = []
        for host in source_addresses(16):
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(host, 0), remote_addr=("127.0.0.1", server.port)
            )
            transports.append(transport)
        for i in range(3000):
            kind = i % 5
            if kind == 0:
                data = rng.randbytes(rng.randrange(1, 1500))
            elif kind == 1:  # a real Initial with bytes flipped anywhere
                data = bytearray(rng.choice(real))
                for _ in range(rng.randrange(1, 4)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                data = bytes(data)
            elif kind == 2:  # truncated
                data = rng.choice(real)[: rng.randrange(1, 1200)]
            elif kind == 3:  # a short header with a random DCID
                data = bytes([0x40 | rng.randrange(64)]) + rng.randbytes(rng.randrange(20, 1300))
            else:  # a long header of an unknown version, or a 0-RTT/Handshake with no connection
                data = bytes([0xC0 | rng.randrange(64)]) + rng.randbytes(rng.randrange(5, 1300))
            transports[i % len(transports)].sendto(data)
            if i % 500 == 499:
                async with rudp.connect("127.0.0.1", server.port, config=client_config()) as conn:
                    await _echo(conn, rng.randbytes(3000))
        async with rudp.connect("127.0.0.1", server.port, config=client_config()) as conn:
            await _echo(conn, rng.randbytes(5000))
            assert endpoint.quic.connections_accepted == 7  # ours, none for the garbage
        await _until(lambda: not endpoint.quic.state_sizes()["connections"])
        sizes = endpoint.quic.state_sizes()
        assert sizes == dict.fromkeys(sizes, 0), sizes
        for transport in transports:
            transport.close()
        assert endpoint.quic.admission.initials_dropped > 100


async def test_churn_returns_the_server_to_its_starting_size(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with running_server(echo_handler, idle_timeout=2.0) as server:
        endpoint = _endpoint(server)
        config = client_config()
        for i in range(150):
            if i % 3 == 2:
                # A client that vanishes after its request (no CONNECTION_CLOSE): the server's idle
                # timer must clean up.
                conn = await rudp.connect("127.0.0.1", server.port, config=config)
                await _echo(conn, b"x" * (i + 1))
                link = conn._driver.link
                assert isinstance(link, UdpEndpoint) and link.io is not None
                link.io.abort()  # the socket goes away without a word to the server
                await conn.wait_closed()
            else:
                async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
                    await _echo(conn, b"y" * (i + 1))
        await _until(lambda: not endpoint.quic.state_sizes()["connections"])  # drain and idle timers
        sizes = endpoint.quic.state_sizes()
        assert sizes == dict.fromkeys(sizes, 0), sizes
        assert endpoint.connections == []
        await _until(lambda: not server._tasks)  # every handler task ends (it resumes a step later)


async def _start_server_process(pki: TestPki, www: Path, port: int) -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "rudp", "serve", "--www", str(www), "--host", "127.0.0.1",
         "--port", str(port), "--cert", str(pki.cert_file), "--key", str(pki.key_file)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        if process.stdout is None:
            raise RuntimeError("no stdout")
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), WAIT)
        match = re.search(rb"port (\d+)", line)
        if match is None:
            raise AssertionError(f"server did not start: {line!r}")
    except BaseException:
        _stop(process)  # never leave a server process behind, whatever failed (a timeout included)
        raise
    return process, int(match.group(1))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a server process and close its stdout pipe (left open, it is a leaked file)."""
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


async def _get(conn: rudp.Connection, path: str) -> bytes:
    stream = await conn.open_stream()
    stream.write(f"GET {path}\r\n".encode())
    stream.write_eof()
    await stream.drain()
    return await asyncio.wait_for(stream.read(), WAIT)


async def test_a_client_learns_of_a_crashed_and_restarted_server_from_a_stateless_reset(
    pki: TestPki, tmp_path: Path, client_config: Callable[..., rudp.Config]
) -> None:
    payload = os.urandom(20_000)
    (tmp_path / "file").write_bytes(payload)
    first, port = await _start_server_process(pki, tmp_path, 0)
    try:
        config = client_config(idle_timeout=120.0, alpn=[HQ_ALPN])  # `rudp serve` speaks hq-interop
        async with rudp.connect("127.0.0.1", port, config=config) as conn:
            assert await _get(conn, "/file") == payload
            first.send_signal(signal.SIGKILL)  # a crash: no CONNECTION_CLOSE
            await asyncio.to_thread(first.wait)
            second, _ = await _start_server_process(pki, tmp_path, port)
            try:
                loop = asyncio.get_running_loop()
                start = loop.time()
                with pytest.raises(rudp.ConnectionClosed) as closed:
                    await _get(conn, "/file")
                assert loop.time() - start < 5.0  # not the 120 s idle timeout
                assert "reset" in str(closed.value)
                # A new connection to the restarted server works.
                async with rudp.connect("127.0.0.1", port, config=config) as again:
                    assert await _get(again, "/file") == payload
            finally:
                _stop(second)
    finally:
        _stop(first)
