"""The client's ClientHello encoding with its configuration's extensions kept (issue 13, handshake
CPU): the bytes equal ``ClientHello.encode`` of the same fields (RFC 8446 §4.1.2), for every optional
part, and stay right when the configuration's values change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rudp.tls.client_hello import encode_client_hello
from rudp.tls.extensions import TLS13, OfferedPsks, PskKeyExchangeMode
from rudp.tls.messages import ClientHello

_uint16s = st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=6).map(tuple)
_names = st.none() | st.sampled_from(["localhost", "example.com", "a.b.c.example"])
_alpn = st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=3).map(tuple)
_psks = st.none() | st.builds(
    OfferedPsks,
    st.lists(st.tuples(st.binary(min_size=1, max_size=80), st.integers(0, 2**32 - 1)), min_size=1),
    st.lists(st.binary(min_size=32, max_size=48), min_size=1, max_size=2),
)


@given(
    random=st.binary(min_size=32, max_size=32),
    suites=_uint16s,
    server_name=_names,
    groups=_uint16s,
    schemes=_uint16s,
    alpn=_alpn,
    shares=st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(min_size=1, max_size=97)), max_size=2),
    parameters=st.binary(max_size=120),
    cookie=st.none() | st.binary(min_size=1, max_size=40),
    early_data=st.booleans(),
    psks=_psks,
)
def test_encoding_equals_the_message_encoder(
    random: bytes,
    suites: tuple[int, ...],
    server_name: str | None,
    groups: tuple[int, ...],
    schemes: tuple[int, ...],
    alpn: tuple[bytes, ...],
    shares: list[tuple[int, bytes]],
    parameters: bytes,
    cookie: bytes | None,
    early_data: bool,
    psks: OfferedPsks | None,
) -> None:
    expected = ClientHello(
        random=random,
        cipher_suites=list(suites),
        server_name=server_name,
        supported_versions=[TLS13],
        supported_groups=list(groups),
        signature_algorithms=list(schemes),
        key_shares=shares,
        alpn_protocols=list(alpn),
        psk_modes=[PskKeyExchangeMode.psk_dhe_ke],
        cookie=cookie,
        transport_parameters=parameters,
        early_data=early_data,
        pre_shared_key=psks,
    ).encode()
    for _ in range(2):  # the second time with the configuration's extensions kept
        encoded = encode_client_hello(
            random=random,
            cipher_suites=suites,
            server_name=server_name,
            supported_groups=groups,
            signature_algorithms=schemes,
            alpn_protocols=alpn,
            key_shares=shares,
            transport_parameters=parameters,
            cookie=cookie,
            early_data=early_data,
            pre_shared_key=psks,
        )
        assert encoded == expected
