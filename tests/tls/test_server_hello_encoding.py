"""The server's ServerHello (and HelloRetryRequest) joined from its fields (issue 13, handshake CPU):
the bytes of the RFC 8446 §4.1.3 layout written field by field, for every optional part, and what
``ServerHello.decode`` reads back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.buffer import Writer
from rudp.tls import extensions as ext
from rudp.tls.extensions import ExtensionType
from rudp.tls.framing import HandshakeType, frame
from rudp.tls.messages import HRR_RANDOM, ServerHello

_u16 = st.integers(min_value=0, max_value=0xFFFF)


def _reference(hello: ServerHello) -> bytes:
    """The ServerHello as a Writer writes it, extension by extension (RFC 8446 §4.1.3, §4.2)."""
    exts: ext.Extensions = []
    if hello.selected_version is not None:
        exts.append((ExtensionType.supported_versions, ext.encode_uint16(hello.selected_version)))
    if hello.key_share is not None:
        exts.append((ExtensionType.key_share, ext.encode_server_key_share(*hello.key_share)))
    if hello.selected_group is not None:
        exts.append((ExtensionType.key_share, ext.encode_uint16(hello.selected_group)))
    if hello.cookie is not None:
        exts.append((ExtensionType.cookie, ext.encode_cookie(hello.cookie)))
    if hello.selected_identity is not None:
        exts.append((ExtensionType.pre_shared_key, ext.encode_uint16(hello.selected_identity)))
    w = Writer()
    w.push_uint16(hello.legacy_version)
    w.push_bytes(hello.random)
    w.push_block(1, hello.legacy_session_id_echo)
    w.push_uint16(hello.cipher_suite)
    w.push_uint8(hello.compression_method)
    ext.push_extensions(w, exts)
    return frame(HandshakeType.server_hello, w.getvalue())


@given(
    random=st.binary(min_size=32, max_size=32),
    session_id=st.binary(max_size=32),
    suite=_u16,
    selected_version=st.none() | _u16,
    key_share=st.none() | st.tuples(_u16, st.binary(min_size=1, max_size=133)),
    selected_identity=st.none() | _u16,
)
def test_server_hello_bytes(
    random: bytes,
    session_id: bytes,
    suite: int,
    selected_version: int | None,
    key_share: tuple[int, bytes] | None,
    selected_identity: int | None,
) -> None:
    hello = ServerHello(
        random=random,
        cipher_suite=suite,
        legacy_session_id_echo=session_id,
        selected_version=selected_version,
        key_share=key_share,
        selected_identity=selected_identity,
    )
    assert hello.encode() == _reference(hello)


@given(selected_group=_u16, cookie=st.none() | st.binary(min_size=1, max_size=64))
def test_hello_retry_request_bytes(selected_group: int, cookie: bytes | None) -> None:
    hello = ServerHello(random=HRR_RANDOM, cipher_suite=0x1301, selected_group=selected_group, cookie=cookie)
    assert hello.encode() == _reference(hello)


def test_a_server_hello_reads_back() -> None:
    hello = ServerHello(random=bytes(range(32)), cipher_suite=0x1301, key_share=(0x1D, b"\x09" * 32))
    encoded = hello.encode()
    assert (
        encoded[0] == HandshakeType.server_hello and int.from_bytes(encoded[1:4], "big") == len(encoded) - 4
    )
    assert ServerHello.decode(encoded[4:]) == hello
