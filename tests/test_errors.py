"""rudp's error classes: messages read as sentences, attributes keep the facts, and every class wraps the
builtin one code written for the standard library catches."""

from __future__ import annotations

import errno
import socket
import traceback

import pytest

import rudp
from rudp.errors import ConnectionClosed, HandshakeFailed, TransportErrorCode, describe_close, tls_alert_words

CRYPTO = TransportErrorCode.CRYPTO_ERROR


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (ConnectionClosed(0, ""), "the connection was closed by this side"),
        (ConnectionClosed(0, "", by_peer=True), "the peer closed the connection"),
        (
            ConnectionClosed(0, "server closing", by_peer=True),
            "the peer closed the connection: server closing",
        ),
        (ConnectionClosed(0x10, "", by_peer=True), "the peer closed the connection with error code 0x10"),
        (ConnectionClosed(7, "bye"), "the connection was closed by this side with error code 0x7: bye"),
        (
            HandshakeFailed(CRYPTO + 42, "bad_certificate", by_peer=True, application=False),
            "the peer rejected our certificate (TLS alert bad certificate)",
        ),
        (
            HandshakeFailed(CRYPTO + 116, "the client sent no certificate", by_peer=True, application=False),
            "the peer requires a certificate from us (TLS alert certificate required): "
            "the client sent no certificate",
        ),
        (
            HandshakeFailed(CRYPTO + 50, "decode_error", application=False),
            "the TLS handshake failed (TLS alert decode error)",
        ),
        (
            HandshakeFailed(CRYPTO + 48, "certificate for x is not trusted", application=False),
            "certificate for x is not trusted",
        ),
        (
            ConnectionClosed(0, "idle timeout", application=False),
            "the connection closed: nothing was received within the idle timeout",
        ),
        (
            ConnectionClosed(
                TransportErrorCode.PROTOCOL_VIOLATION, "bad frame", by_peer=True, application=False
            ),
            "the peer closed the connection with transport error PROTOCOL_VIOLATION: bad frame",
        ),
        (
            ConnectionClosed(TransportErrorCode.FLOW_CONTROL_ERROR, "", application=False),
            "the connection failed with transport error FLOW_CONTROL_ERROR",
        ),
        (
            ConnectionClosed(
                TransportErrorCode.NO_VIABLE_PATH, "the TCP connection failed (reset)", application=False
            ),
            "the connection was lost: the TCP connection failed (reset)",
        ),
        (
            rudp.ConnectionRefused(reason="too many connections", by_peer=True),
            "the server refused the connection: too many connections",
        ),
    ],
)
def test_close_messages_are_sentences(error: ConnectionClosed, text: str) -> None:
    assert str(error) == text
    assert error.args == (text,)
    # the sentence is composed when read: what ``BaseException(text)`` shows, and no extra attribute
    assert repr(error) == repr(BaseException(text)).replace("BaseException", type(error).__name__)
    assert traceback.format_exception_only(error)[0].endswith(f"{type(error).__name__}: {text}\n")
    assert sorted(vars(error)) == ["application", "by_peer", "code", "reason"]
    error.args = ("replaced",)
    assert error.args == ("replaced",) and str(error) == text
    assert "(transport code" not in text and "(application code" not in text and not text.endswith(": ")


def test_attributes_keep_the_facts() -> None:
    error = HandshakeFailed(CRYPTO + 42, "bad_certificate", by_peer=True, application=False)
    assert (error.code, error.reason, error.by_peer, error.application) == (
        0x12A,
        "bad_certificate",
        True,
        False,
    )
    assert isinstance(error, rudp.RudpError) and isinstance(error, ConnectionError)
    assert str(error) == describe_close(0x12A, "bad_certificate", by_peer=True, application=False)


def test_alert_words() -> None:
    assert tls_alert_words(42) == "bad certificate"
    assert tls_alert_words(120) == "no application protocol"
    assert tls_alert_words(250) == "0xfa"


def test_builtin_bases_still_catch() -> None:
    refused = rudp.ConnectionRefused.nobody_listening("h", 1)
    assert isinstance(refused, ConnectionRefusedError) and isinstance(refused, rudp.HandshakeFailed)
    resolution = rudp.NameResolutionError.for_host(
        "h", socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    )
    assert isinstance(resolution, socket.gaierror) and isinstance(resolution, OSError)
    assert (
        resolution.errno == socket.EAI_NONAME
        and str(resolution) == "cannot resolve 'h': Name or service not known"
    )
    network = rudp.NetworkError.wrap(
        "cannot listen on :: port 1 (UDP)", OSError(errno.EADDRINUSE, "Address already in use")
    )
    assert network.errno == errno.EADDRINUSE and network.strerror == "Address already in use"
    assert str(network) == "cannot listen on :: port 1 (UDP): Address already in use"
    assert isinstance(rudp.ConnectTimeout.after("h", 1, 2), TimeoutError)
    assert issubclass(rudp.DatagramError, rudp.RudpError) and issubclass(rudp.ConfigError, ValueError)
