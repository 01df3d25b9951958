"""EncryptedExtensions and NewSessionTicket encoders joined in one pass (issue 13, server handshake
CPU) write the bytes of the general Writer-based encoding (RFC 8446 §4.3.1, §4.6.1), and decode back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.buffer import Writer
from rudp.tls import extensions as ext
from rudp.tls.extensions import Extensions, ExtensionType
from rudp.tls.framing import HandshakeType, frame
from rudp.tls.messages import EncryptedExtensions, NewSessionTicket


def _general_encrypted_extensions(msg: EncryptedExtensions) -> bytes:
    exts: Extensions = []
    if msg.server_name_ack:
        exts.append((ExtensionType.server_name, b""))
    if msg.supported_groups is not None:
        exts.append((ExtensionType.supported_groups, ext.encode_uint16_list(msg.supported_groups)))
    if msg.alpn_protocol is not None:
        exts.append(
            (ExtensionType.application_layer_protocol_negotiation, ext.encode_alpn([msg.alpn_protocol]))
        )
    if msg.early_data:
        exts.append((ExtensionType.early_data, b""))
    if msg.transport_parameters is not None:
        exts.append((ExtensionType.quic_transport_parameters, msg.transport_parameters))
    exts.extend(msg.other_extensions)
    w = Writer()
    ext.push_extensions(w, exts)
    return frame(HandshakeType.encrypted_extensions, w.getvalue())


def _general_new_session_ticket(msg: NewSessionTicket) -> bytes:
    w = Writer()
    w.push_uint32(msg.lifetime)
    w.push_uint32(msg.age_add)
    w.push_block(1, msg.nonce)
    w.push_block(2, msg.ticket)
    exts: Extensions = []
    if msg.max_early_data is not None:
        exts.append((ExtensionType.early_data, msg.max_early_data.to_bytes(4, "big")))
    ext.push_extensions(w, exts)
    return frame(HandshakeType.new_session_ticket, w.getvalue())


@given(
    st.builds(
        EncryptedExtensions,
        alpn_protocol=st.none() | st.binary(min_size=1, max_size=20),
        transport_parameters=st.none() | st.binary(max_size=300),
        early_data=st.booleans(),
        server_name_ack=st.booleans(),
        supported_groups=st.none() | st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4),
        other_extensions=st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=8)), max_size=3),
    )
)
def test_encrypted_extensions_equal_the_general_encoding(msg: EncryptedExtensions) -> None:
    assert msg.encode() == _general_encrypted_extensions(msg)


@given(
    st.builds(
        NewSessionTicket,
        lifetime=st.integers(0, 2**32 - 1),
        age_add=st.integers(0, 2**32 - 1),
        nonce=st.binary(max_size=255),
        ticket=st.binary(min_size=1, max_size=400),
        max_early_data=st.none() | st.integers(0, 2**32 - 1),
    )
)
def test_new_session_ticket_equals_the_general_encoding(msg: NewSessionTicket) -> None:
    encoded = msg.encode()
    assert encoded == _general_new_session_ticket(msg)
    assert NewSessionTicket.decode(encoded[4:]) == msg


def test_out_of_range_fields_fail_as_before() -> None:
    for bad in (
        NewSessionTicket(2**32, 0, b"", b"t"),
        NewSessionTicket(0, 0, bytes(256), b"t"),
        NewSessionTicket(0, 0, b"", b"t", max_early_data=-1),
    ):
        for encode in (bad.encode, lambda bad=bad: _general_new_session_ticket(bad)):
            try:
                encode()
            except OverflowError:
                continue
            raise AssertionError("no OverflowError")
