"""The one-struct-call encoders of the server flight (ServerHello, CertificateVerify, the ALPN of
EncryptedExtensions) against the general field-by-field code, including the values that must fall
back to it (and fail there as they always did)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.buffer import Writer
from rudp.tls import extensions as ext
from rudp.tls.extensions import ExtensionType
from rudp.tls.framing import HandshakeType, frame
from rudp.tls.messages import CertificateVerify, EncryptedExtensions, ServerHello

_u16 = st.integers(min_value=0, max_value=0xFFFF)


@given(
    random=st.binary(min_size=32, max_size=32),
    session_id=st.binary(max_size=32),
    suite=_u16,
    version=_u16,
    key_share=st.tuples(_u16, st.binary(min_size=1, max_size=133)),
    selected_identity=st.none() | _u16,
)
def test_the_usual_server_hello_equals_the_general_encoding(
    random: bytes,
    session_id: bytes,
    suite: int,
    version: int,
    key_share: tuple[int, bytes],
    selected_identity: int | None,
) -> None:
    hello = ServerHello(
        random=random,
        cipher_suite=suite,
        legacy_session_id_echo=session_id,
        selected_version=version,
        key_share=key_share,
        selected_identity=selected_identity,
    )
    assert hello.encode() == hello._encode_general()
    assert ServerHello.decode(hello.encode()[4:]) == hello


@pytest.mark.parametrize(
    "changes",
    [
        {"key_share": (0x10000, b"k")},
        {"selected_version": -1},
        {"cipher_suite": 0x10000},
        {"compression_method": 256},
        {"selected_identity": 0x10000},
        {"legacy_session_id_echo": bytes(256)},
    ],
)
def test_out_of_range_server_hello_fields_fail_as_in_the_general_code(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {"random": bytes(32), "cipher_suite": 0x1301, "key_share": (0x1D, b"k")}
    hello = ServerHello(**{**fields, **changes})  # type: ignore[arg-type]
    for encode in (hello.encode, hello._encode_general):
        with pytest.raises(OverflowError):
            encode()


def test_a_retry_request_takes_the_general_code() -> None:
    retry = ServerHello(random=bytes(32), cipher_suite=0x1301, selected_group=0x17, cookie=b"c")
    assert retry.encode() == retry._encode_general()
    no_version = ServerHello(bytes(32), 0x1301, selected_version=None, key_share=(1, b"k"))
    assert no_version.encode() == no_version._encode_general()


def _general_certificate_verify(msg: CertificateVerify) -> bytes:
    w = Writer()
    w.push_uint16(msg.algorithm)
    w.push_block(2, msg.signature)
    return frame(HandshakeType.certificate_verify, w.getvalue())


@given(algorithm=_u16, signature=st.binary(max_size=600))
def test_certificate_verify_equals_the_general_encoding(algorithm: int, signature: bytes) -> None:
    msg = CertificateVerify(algorithm, signature)
    assert msg.encode() == _general_certificate_verify(msg)
    assert CertificateVerify.decode(msg.encode()[4:]) == msg


@pytest.mark.parametrize("msg", [CertificateVerify(0x10000, b"s"), CertificateVerify(0x0403, bytes(0x10000))])
def test_out_of_range_certificate_verify_fails_as_in_the_general_code(msg: CertificateVerify) -> None:
    with pytest.raises(Exception) as general:  # (whatever the Writer raises)
        _general_certificate_verify(msg)
    with pytest.raises(general.type):
        msg.encode()


@pytest.mark.parametrize("size", [1, 2, 200, 255])
def test_alpn_of_any_length_equals_encode_alpn(size: int) -> None:
    protocol = bytes(range(size))
    encoded = EncryptedExtensions(alpn_protocol=protocol).encode()
    alpn = ext.encode_alpn([protocol])
    head = int(ExtensionType.application_layer_protocol_negotiation).to_bytes(2, "big")
    body = head + len(alpn).to_bytes(2, "big") + alpn
    assert encoded == frame(HandshakeType.encrypted_extensions, len(body).to_bytes(2, "big") + body)


def test_an_alpn_name_too_long_fails_as_encode_alpn() -> None:
    with pytest.raises(OverflowError):
        ext.encode_alpn([bytes(256)])
    with pytest.raises(OverflowError):
        EncryptedExtensions(alpn_protocol=bytes(256)).encode()
