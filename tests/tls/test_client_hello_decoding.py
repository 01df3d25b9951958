"""The ClientHello decoder's by-index path for well-formed messages (issue 13, server handshake CPU)
accepts exactly what the general Reader-based decoder accepts, with the same fields, and
``ClientHello.decode`` raises the general decoder's alert for everything else (RFC 8446 §4.1.2)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.tls.extensions import OfferedPsks, encode_offered_psks
from rudp.tls.framing import decode_body
from rudp.tls.messages import ClientHello, _decode_well_formed

_uint16s = st.none() | st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=5)
_psks = st.none() | st.builds(
    OfferedPsks,
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=20), st.integers(0, 2**32 - 1)), min_size=1, max_size=1
    ),
    st.lists(st.binary(min_size=31, max_size=33), min_size=1, max_size=1),
)
_hellos = st.builds(
    ClientHello,
    random=st.binary(min_size=32, max_size=32),
    cipher_suites=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4),
    legacy_session_id=st.binary(max_size=1) | st.binary(min_size=32, max_size=33),
    legacy_version=st.integers(0, 0xFFFF),
    compression_methods=st.binary(min_size=1, max_size=2) | st.just(b""),
    server_name=st.none() | st.sampled_from(["localhost", "", "a.example"]),
    supported_versions=_uint16s,
    supported_groups=_uint16s,
    signature_algorithms=_uint16s,
    key_shares=st.none()
    | st.lists(st.tuples(st.integers(0, 3), st.binary(min_size=1, max_size=4)), max_size=3),
    alpn_protocols=st.none() | st.lists(st.binary(min_size=1, max_size=3), min_size=1, max_size=2),
    psk_modes=st.none() | st.lists(st.integers(0, 255), min_size=1, max_size=2),
    early_data=st.booleans(),
    cookie=st.none() | st.binary(min_size=1, max_size=3),
    transport_parameters=st.none() | st.binary(max_size=8),
    pre_shared_key=_psks,
    other_extensions=st.lists(
        st.tuples(st.sampled_from([0, 10, 41, 42, 57, 1234, 0x0A0A]), st.binary(max_size=3)), max_size=2
    ),
)
_edits = st.lists(
    st.tuples(st.sampled_from(["flip", "cut", "insert", "drop"]), st.integers(0, 400), st.integers(0, 255)),
    max_size=1,
)


def _edit(body: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    for kind, at, value in edits:
        at = at % (len(body) + 1)
        if kind == "flip" and at < len(body):
            body = body[:at] + bytes((value,)) + body[at + 1 :]
        elif kind == "cut":
            body = body[:at]
        elif kind == "insert":
            body = body[:at] + bytes((value,)) + body[at:]
        elif kind == "drop":
            body = body[:at] + body[at + 1 :]
    return body


def _outcome(decode: object, body: bytes) -> object:
    try:
        return decode(body)  # type: ignore[operator]
    except Exception as exc:
        return (type(exc), str(exc), getattr(exc, "description", None))


def _check(body: bytes) -> None:
    general = _outcome(lambda b: decode_body(b, ClientHello._parse), body)
    fast = _outcome(_decode_well_formed, body)
    if isinstance(general, ClientHello):
        assert fast == general  # every well-formed ClientHello takes the by-index path
    else:
        assert not isinstance(fast, ClientHello)  # and nothing malformed does
    assert _outcome(ClientHello.decode, body) == general


@settings(max_examples=600, deadline=None)
@given(hello=_hellos, edits=_edits)
def test_the_by_index_path_agrees_with_the_general_decoder(
    hello: ClientHello, edits: list[tuple[str, int, int]]
) -> None:
    try:
        body = hello.encode()[4:]
    except Exception:
        return
    _check(_edit(body, edits))


def test_every_truncation_of_a_hello_gets_the_general_outcome() -> None:
    body = ClientHello(bytes(32), [0x1301], supported_groups=[29], transport_parameters=b"").encode()[4:]
    for end in range(len(body) + 1):
        _check(body[:end])


def test_malformed_hellos_get_the_general_alert() -> None:
    """Each check of the by-index path, one at a time (RFC 8446 §4.1.2, §4.2, §4.2.11)."""
    base = ClientHello(bytes(32), [0x1301], server_name="a", transport_parameters=b"p")
    psk = OfferedPsks([(b"i", 1)], [bytes(32)])
    bodies = [
        ClientHello(bytes(32), [0x1301], legacy_session_id=bytes(33)).encode()[4:],
        ClientHello(bytes(32), [0x1301], compression_methods=b"").encode()[4:],
        ClientHello(bytes(32), [0x1301], other_extensions=[(0, b"")], server_name="a").encode()[4:],
        ClientHello(bytes(32), [0x1301], pre_shared_key=psk, other_extensions=[(41, b"")]).encode()[4:],
        base.encode()[4:] + b"\x00",
    ]
    bodies.append(b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x03\x13\x01\x13" + b"\x01\x00")  # odd suites
    not_last = [(41, encode_offered_psks(psk)), (77, b"")]  # pre_shared_key not the last extension
    bodies.append(ClientHello(bytes(32), [0x1301], psk_modes=[1], other_extensions=not_last).encode()[4:])
    for body in bodies:
        _check(body)
        assert not isinstance(_outcome(ClientHello.decode, body), ClientHello)
    _check(ClientHello(bytes(32), [0x1301], psk_modes=[1], other_extensions=not_last[::-1]).encode()[4:])
    assert isinstance(
        _outcome(
            ClientHello.decode, ClientHello(bytes(32), [1], other_extensions=not_last[::-1]).encode()[4:]
        ),
        ClientHello,
    )
