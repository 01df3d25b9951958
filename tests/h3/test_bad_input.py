"""Bad input from a peer gets the RFC 9114 §8.1 / RFC 9204 §6 code, at the right scope.

Connection errors close the QUIC connection with the code (seen by the peer as ``close_error``);
stream errors reset that request stream only, and the same connection keeps serving requests.
Reserved and unknown frame, stream and setting types are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pylsqpack
import pytest

import rudp
import rudp.h3
from rudp.codec.varint import encode_varint
from rudp.errors import StreamReset, StreamStopped
from rudp.h3 import H3Error, H3ErrorCode, H3Settings, HeadersTooLarge
from rudp.h3.client import h3_config
from rudp.h3.frames import FrameType, encode_frame, encode_settings, grease_value

from .conftest import TestApp

E = H3ErrorCode
SETTINGS = encode_settings({0x01: 0, 0x07: 0})
CONTROL = encode_varint(0x00)


def _goaway(payload: bytes) -> bytes:
    return encode_frame(FrameType.GOAWAY, payload)


# (name, bytes on a new unidirectional stream (None: on a bidirectional one), FIN after them, code)
RAW_CASES: list[tuple[str, bytes, bool, bool, int]] = [
    (
        "control stream without SETTINGS first",
        CONTROL + _goaway(encode_varint(0)),
        True,
        False,
        E.H3_MISSING_SETTINGS,
    ),
    ("second SETTINGS", CONTROL + SETTINGS + SETTINGS, True, False, E.H3_FRAME_UNEXPECTED),
    ("HTTP/2 setting", CONTROL + encode_settings({0x02: 1}), True, False, E.H3_SETTINGS_ERROR),
    ("setting repeated", CONTROL + encode_frame(4, b"\x06\x01\x06\x02"), True, False, E.H3_SETTINGS_ERROR),
    ("truncated SETTINGS", CONTROL + encode_frame(4, b"\x06"), True, False, E.H3_FRAME_ERROR),
    (
        "DATA on the control stream",
        CONTROL + SETTINGS + encode_frame(0, b"x"),
        True,
        False,
        E.H3_FRAME_UNEXPECTED,
    ),
    (
        "HEADERS on the control stream",
        CONTROL + SETTINGS + encode_frame(1, b"\0\0"),
        True,
        False,
        E.H3_FRAME_UNEXPECTED,
    ),
    (
        "HTTP/2 PING frame type",
        CONTROL + SETTINGS + encode_frame(0x06, b""),
        True,
        False,
        E.H3_FRAME_UNEXPECTED,
    ),
    ("malformed GOAWAY", CONTROL + SETTINGS + _goaway(b"\x00\x00"), True, False, E.H3_FRAME_ERROR),
    ("CANCEL_PUSH never promised", CONTROL + SETTINGS + encode_frame(3, b"\x00"), True, False, E.H3_ID_ERROR),
    (
        "oversized control frame",
        CONTROL + SETTINGS + encode_varint(7) + encode_varint(1 << 20),
        True,
        False,
        E.H3_EXCESSIVE_LOAD,
    ),
    ("control stream closed", CONTROL + SETTINGS, True, True, E.H3_CLOSED_CRITICAL_STREAM),
    ("two control streams", CONTROL + SETTINGS, True, False, E.H3_STREAM_CREATION_ERROR),
    # RFC 9297 §2.1.1: H3_DATAGRAM=1 without the max_datagram_frame_size transport parameter (this raw
    # client's QUIC has datagrams off), and a value other than 0 or 1; RFC 9220 §3 likewise for 0x08.
    (
        "H3_DATAGRAM without QUIC datagrams",
        CONTROL + encode_settings({0x33: 1}),
        True,
        False,
        E.H3_SETTINGS_ERROR,
    ),
    ("H3_DATAGRAM of 2", CONTROL + encode_settings({0x33: 2}), True, False, E.H3_SETTINGS_ERROR),
    ("ENABLE_CONNECT_PROTOCOL of 2", CONTROL + encode_settings({0x08: 2}), True, False, E.H3_SETTINGS_ERROR),
    ("push stream from a client", encode_varint(0x01) + b"\x00", True, False, E.H3_STREAM_CREATION_ERROR),
    (
        "bad QPACK encoder instruction",
        encode_varint(0x02) + b"\xff\x7f",
        True,
        False,
        E.QPACK_ENCODER_STREAM_ERROR,
    ),
    (
        "bad QPACK decoder instruction",
        encode_varint(0x03) + b"\x81",
        True,
        False,
        E.QPACK_DECODER_STREAM_ERROR,
    ),
    ("QPACK encoder stream closed", encode_varint(0x02), True, True, E.H3_CLOSED_CRITICAL_STREAM),
    ("DATA before HEADERS", encode_frame(0, b"body"), False, False, E.H3_FRAME_UNEXPECTED),
    ("SETTINGS on a request stream", SETTINGS, False, False, E.H3_FRAME_UNEXPECTED),
    ("GOAWAY on a request stream", _goaway(b"\x00"), False, False, E.H3_FRAME_UNEXPECTED),
    ("PUSH_PROMISE from a client", encode_frame(5, b"\x00\x00\x00"), False, False, E.H3_FRAME_UNEXPECTED),
    (
        "undecodable header block",
        encode_frame(1, b"\x00\x00\xff\xff\xff"),
        False,
        False,
        E.QPACK_DECOMPRESSION_FAILED,
    ),
    ("frame cut by FIN", encode_varint(1) + encode_varint(100) + b"abc", False, True, E.H3_FRAME_ERROR),
]


@pytest.mark.parametrize(("name", "data", "uni", "fin", "code"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
async def test_connection_errors(
    h3_server: Callable[..., Any],
    client_config: rudp.Config,
    name: str,
    data: bytes,
    uni: bool,
    fin: bool,
    code: int,
) -> None:
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as bystander,
    ):
        assert (await bystander.get("/sha256")).status == 200
        conn = await rudp.connect("127.0.0.1", server.port, config=h3_config(client_config))
        try:
            if name == "two control streams":  # a valid one first
                first = await conn.open_uni_stream()
                first.write(CONTROL + SETTINGS)
                await first.drain()
            stream = await (conn.open_uni_stream() if uni else conn.open_stream())
            stream.write(data)
            if fin:
                stream.write_eof()
            await conn.wait_closed()
            error = conn.close_error
            assert error is not None and error.by_peer and error.application
            assert error.code == code, f"{error.code:#x} != {code:#x}"
        finally:
            conn.close()
            await conn.wait_closed()
        # Nothing else affected: another connection to the same server carries on.
        posted = await bystander.post("/sha256", b"still fine")
        assert posted.status == 200 and len(await posted.read()) == 64
        assert not bystander.connection.is_closed


async def _request_stream_error(client: rudp.h3.H3Client, frames: Callable[[int], bytes]) -> int:
    """Send ``frames(stream_id)`` and FIN on a new request stream; the code of the server's reset."""
    stream = await client.connection.open_stream()
    stream.write(frames(stream.stream_id))
    stream.write_eof()
    with pytest.raises(StreamReset) as reset:
        await asyncio.wait_for(stream.read(), 10.0)
    return reset.value.code


MALFORMED: list[tuple[str, list[tuple[bytes, bytes]], bytes]] = [
    (
        "upper-case name",
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b"X-Up", b"1")],
        b"",
    ),
    ("no :path", [(b":method", b"GET"), (b":scheme", b"https")], b""),
    (
        "pseudo after regular",
        [(b":method", b"GET"), (b"a", b"1"), (b":scheme", b"https"), (b":path", b"/")],
        b"",
    ),
    (
        "response pseudo in request",
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":status", b"200")],
        b"",
    ),
    (
        "connection header",
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b"connection", b"close")],
        b"",
    ),
    (
        "content-length mismatch",
        [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/sha256"), (b"content-length", b"10")],
        b"abc",
    ),
    (
        # RFC 9110 §8.6: differing values make the message invalid (the body matches the last one, so
        # a server checking only that one would hand the application two lengths).
        "conflicting content-lengths",
        [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":path", b"/sha256"),
            (b"content-length", b"10"),
            (b"content-length", b"3"),
        ],
        b"abc",
    ),
    (
        # More digits than int() converts (sys.get_int_max_str_digits()): malformed, not a crash.
        "content-length of 5000 digits",
        [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":path", b"/sha256"),
            (b"content-length", b"1" * 5000),
        ],
        b"abc",
    ),
]


@pytest.mark.parametrize(("name", "fields", "body"), MALFORMED, ids=[c[0] for c in MALFORMED])
async def test_malformed_requests_reset_only_their_stream(
    h3_server: Callable[..., Any],
    client_config: rudp.Config,
    name: str,
    fields: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):

        def frames(sid: int) -> bytes:
            data = encode_frame(FrameType.DATA, body) if body else b""
            return client.h3.encode_headers(sid, fields) + data

        assert await _request_stream_error(client, frames) == E.H3_MESSAGE_ERROR
        response = await client.post("/sha256", b"still fine")
        assert response.status == 200 and len(await response.read()) == 64
        assert not client.connection.is_closed


async def test_reserved_and_unknown_types_are_ignored(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        # A reserved stream type: the server stops reading it with H3_STREAM_CREATION_ERROR (§6.2).
        grease = await client.connection.open_uni_stream()
        grease.write(encode_varint(grease_value(5)))
        with pytest.raises(StreamStopped) as stopped:
            for _ in range(1000):
                grease.write(b"\0" * 16384)
                await grease.drain()
        assert stopped.value.code == E.H3_STREAM_CREATION_ERROR
        # Reserved and unknown frame types around HEADERS and DATA on a request stream.
        stream = await client.connection.open_stream()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", b"x"),
            (b":path", b"/sha256"),
        ]
        stream.write(
            encode_frame(grease_value(1), b"ignored")
            + client.h3.encode_headers(stream.stream_id, headers)
            + encode_frame(0x2F00, b"unknown type")
            + encode_frame(FrameType.DATA, b"ab")
            + encode_frame(grease_value(2), b"")
            + encode_frame(FrameType.DATA, b"c")
        )
        stream.write_eof()
        reply = await stream.read()
        assert b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in reply  # sha256("abc")
        assert (await client.get("/sha256")).status == 200


async def _bad_server(
    server_config: rudp.Config, act: Callable[[rudp.Connection], Awaitable[None]]
) -> rudp.Server:
    async def handler(conn: rudp.Connection) -> None:
        await act(conn)
        await conn.wait_closed()

    return await rudp.serve("127.0.0.1", 0, handler, config=h3_config(server_config))


async def _answer_first_request(conn: rudp.Connection, data: bytes) -> None:
    control = await conn.open_uni_stream()
    control.write(CONTROL + SETTINGS)
    async for stream in conn:
        if stream.writable:
            stream.write(data)
            return


async def _data_first(conn: rudp.Connection) -> None:
    await _answer_first_request(conn, encode_frame(FrameType.DATA, b"x"))


async def _push_promise(conn: rudp.Connection) -> None:
    await _answer_first_request(conn, encode_frame(FrameType.PUSH_PROMISE, b"\x00\x00\x00"))


async def _bidi_from_server(conn: rudp.Connection) -> None:
    stream = await conn.open_stream()
    stream.write(b"\x01")


async def _push_stream(conn: rudp.Connection) -> None:
    stream = await conn.open_uni_stream()
    stream.write(encode_varint(0x01) + b"\x00")


async def _max_push_id_from_server(conn: rudp.Connection) -> None:
    stream = await conn.open_uni_stream()
    stream.write(CONTROL + SETTINGS + encode_frame(FrameType.MAX_PUSH_ID, b"\x05"))


async def _goaway_not_a_request_id(conn: rudp.Connection) -> None:
    stream = await conn.open_uni_stream()
    stream.write(CONTROL + SETTINGS + _goaway(encode_varint(2)))


SERVER_CASES: list[tuple[str, Callable[[rudp.Connection], Awaitable[None]], int]] = [
    ("DATA before HEADERS in a response", _data_first, E.H3_FRAME_UNEXPECTED),
    ("PUSH_PROMISE without MAX_PUSH_ID", _push_promise, E.H3_ID_ERROR),
    ("bidirectional stream from the server", _bidi_from_server, E.H3_STREAM_CREATION_ERROR),
    ("push stream without MAX_PUSH_ID", _push_stream, E.H3_ID_ERROR),
    ("MAX_PUSH_ID from a server", _max_push_id_from_server, E.H3_FRAME_UNEXPECTED),
    ("GOAWAY naming a non-request stream", _goaway_not_a_request_id, E.H3_ID_ERROR),
]


@pytest.mark.parametrize(("name", "act", "code"), SERVER_CASES, ids=[c[0] for c in SERVER_CASES])
async def test_client_closes_on_bad_server_input(
    server_config: rudp.Config,
    client_config: rudp.Config,
    name: str,
    act: Callable[[rudp.Connection], Awaitable[None]],
    code: int,
) -> None:
    server = await _bad_server(server_config, act)
    try:
        async with rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client:
            with contextlib.suppress(H3Error, rudp.ConnectionClosed):
                await client.get("/")
            await client.connection.wait_closed()
            error = client.connection.close_error
            assert error is not None and not error.by_peer
            assert error.code == code, f"{error.code:#x} != {code:#x}"
            assert client.h3.error is not None and client.h3.error.code == code
    finally:
        server.close()
        await server.wait_closed()


async def test_client_refuses_an_oversized_response_header_section(
    server_config: rudp.Config, client_config: rudp.Config
) -> None:
    """A server that ignores our MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2): that response is refused
    with H3_EXCESSIVE_LOAD on its stream only; the next request on the connection completes."""
    big = [(b":status", b"200"), (b"x-big", b"v" * 3000)]
    small = [(b":status", b"200"), (b"content-length", b"2")]

    async def answer_all(conn: rudp.Connection) -> None:
        encoder = pylsqpack.Encoder()  # no dynamic table: every field literal or static
        control = await conn.open_uni_stream()
        control.write(CONTROL + SETTINGS)
        replies = iter([encode_frame(FrameType.HEADERS, encoder.encode(0, big)[1])])
        async for stream in conn:
            if stream.writable:
                first = next(replies, None)
                block = encoder.encode(stream.stream_id, small)[1]
                stream.write(first or encode_frame(FrameType.HEADERS, block) + encode_frame(0, b"ok"))
                stream.write_eof()

    server = await _bad_server(server_config, answer_all)
    try:
        settings = H3Settings(max_field_section_size=2000)
        async with rudp.h3.connect(
            "127.0.0.1", server.port, config=client_config, settings=settings
        ) as client:
            with pytest.raises(HeadersTooLarge) as refused:
                await client.get("/big")
            assert refused.value.code == E.H3_EXCESSIVE_LOAD and not refused.value.by_peer
            assert refused.value.limit == 2000 and refused.value.size > 2000  # Huffman-coded: < 3000
            response = await client.get("/small")
            assert response.status == 200 and await response.read() == b"ok"
            assert not client.connection.is_closed and client.h3.error is None
    finally:
        server.close()
        await server.wait_closed()
