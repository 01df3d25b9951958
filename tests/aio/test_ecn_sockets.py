"""ECN over real sockets: a rudp pair validates ECN and marks; against aioquic (which reports no ECN
counts) validation fails and the socket stops marking (RFC 9000 §13.4.2)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from aioquic.asyncio import serve as aioquic_serve
from aioquic.quic.configuration import QuicConfiguration

import rudp
from rudp.aio.endpoint import UdpEndpoint
from rudp.aio.udp_io import ECT_0, NOT_ECT
from rudp.testing.certs import TestPki
from tests.aio.test_streams import echo_handler

WAIT = 10.0


def _endpoint(conn: rudp.Connection) -> UdpEndpoint:
    link = conn._driver.link
    if not isinstance(link, UdpEndpoint):
        raise TypeError("QUIC expected")
    return link


async def _exchange(conn: rudp.Connection, size: int) -> None:
    stream = await conn.open_stream()
    payload = os.urandom(size)
    stream.write(payload)
    stream.write_eof()
    assert await asyncio.wait_for(stream.read(), WAIT) == payload


async def test_a_rudp_pair_validates_ecn_and_keeps_marking(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(echo_handler, ecn=True) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(ecn=True)) as conn,
    ):
        await _exchange(conn, 200_000)
        stats = conn.stats
        assert stats.ecn_state == "capable", stats.ecn_state
        assert stats.ecn_received[0] > 0  # ECT(0) packets from the server, counted by the core
        endpoint = _endpoint(conn)
        assert endpoint._marking == ECT_0 and endpoint.ecn_counts[ECT_0] > 0


async def test_against_a_peer_without_ecn_counts_the_socket_stops_marking(
    pki: TestPki, client_config: Callable[..., rudp.Config]
) -> None:
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["rudp-test"])
    configuration.load_cert_chain(pki.cert_file, pki.key_file)

    tasks: set[asyncio.Task[None]] = set()

    def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def echo() -> None:
            writer.write(await reader.read())
            writer.write_eof()

        task = asyncio.ensure_future(echo())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await aioquic_serve("127.0.0.1", 0, configuration=configuration, stream_handler=handler)
    port = server._transport.get_extra_info("sockname")[1]
    try:
        config = client_config(ecn=True, alpn=["rudp-test"])
        async with rudp.connect("127.0.0.1", port, config=config) as conn:
            await _exchange(conn, 200_000)
            assert conn.stats.ecn_state == "failed", conn.stats.ecn_state
            assert _endpoint(conn)._marking == NOT_ECT  # marks stopped with the failed validation
            await _exchange(conn, 10_000)  # and the connection carries on
    finally:
        server.close()
