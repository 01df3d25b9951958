"""``serve(port=0, transport="both")``: TCP takes the number UDP picked; if a TCP socket already holds
it, another number is picked instead of failing."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

import rudp
import rudp._api as api
from tests.aio.test_streams import echo_handler


async def test_both_picks_again_when_tcp_holds_the_udp_port(
    server_config: Callable[..., rudp.Config], client_config: Callable[..., rudp.Config], monkeypatch: Any
) -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real_listen_quic = api.listen_quic
    calls: list[int] = []

    async def first_on_the_taken_port(server: Any, host: Any, port: int, config: rudp.Config) -> int:
        calls.append(port)
        # The first pick lands on a number TCP already holds (as a free UDP port may).
        return await real_listen_quic(server, host, taken if len(calls) == 1 else port, config)

    monkeypatch.setattr(api, "listen_quic", first_on_the_taken_port)
    try:
        server = await rudp.serve("127.0.0.1", 0, echo_handler, config=server_config(), transport="both")
        try:
            assert len(calls) == 2 and server.port != taken
            for transport in ("quic", "tcp"):
                async with rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn:  # noqa: E501
                    stream = await conn.open_stream()
                    stream.write(b"ping")
                    stream.write_eof()
                    assert await stream.read() == b"ping"
        finally:
            server.close()
            await server.wait_closed()
    finally:
        blocker.close()


async def test_a_fixed_port_in_use_still_fails(server_config: Callable[..., rudp.Config]) -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        with pytest.raises(OSError):
            await rudp.serve("127.0.0.1", blocker.getsockname()[1], echo_handler, config=server_config(), transport="both")  # noqa: E501
    finally:
        blocker.close()
