"""``connect()`` follows the core's handshake deadline (``QuicConnection.handshake_deadline``): a peer
that keeps sending authenticated packets keeps the handshake going past ``handshake_timeout``, up to
three timeouts, and the error is then the same ConnectTimeout as for a silent peer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

import rudp
from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import encode_frames
from rudp.codec.frames import Ping
from rudp.codec.packet import iter_packets
from rudp.quic.handshake_deadline import HANDSHAKE_LIFETIME
from tests.support.sim import Sniffer, pad_front

TIMEOUT = 0.5
INTERVAL = 0.1


async def _talk_without_finishing(sock: socket.socket) -> None:
    """Answer a client's first Initial with an Initial PING every INTERVAL, for ever: authenticated
    (the keys come from the client's DCID, RFC 9001 §5.2), from the right address and connection ID,
    but never a ServerHello."""
    loop = asyncio.get_running_loop()
    first, client = await loop.sock_recvfrom(sock, 2048)
    header = next(iter_packets(first, short_dcid_length=8))
    keys = Sniffer.initial(header.dcid, client=False)
    payload = pad_front(encode_frames([Ping()]), 1100)
    for number in range(1_000_000):
        packet = keys.protect_long(PacketType.INITIAL, header.scid, b"\x5a" * 8, number, payload)
        await loop.sock_sendto(sock, packet, client)
        await asyncio.sleep(INTERVAL)  # the peer's pace, not a wait for a result


async def test_a_peer_still_talking_keeps_connect_going_up_to_three_timeouts(
    client_config: Callable[..., rudp.Config],
) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        peer = asyncio.ensure_future(_talk_without_finishing(sock))
        try:
            started = loop.time()
            with pytest.raises(rudp.ConnectTimeout) as info:
                await rudp.connect("127.0.0.1", port, config=client_config(handshake_timeout=TIMEOUT))
            ended = loop.time()
        finally:
            peer.cancel()
    # Not at TIMEOUT, where a deadline fixed at the start ended it: at the cap (the core's deadline is
    # computed from the same loop clock; asyncio timers never fire early beyond its resolution).
    assert ended - started >= HANDSHAKE_LIFETIME * TIMEOUT - 0.01
    assert str(info.value) == (
        f"connecting to 127.0.0.1 port {port} timed out: the handshake did not complete within {TIMEOUT:g} s"
    )
