"""``version_information_of``: a ticket's remembered transport parameters give their
version_information (RFC 9368 §3) without decoding the rest, the same value a full decode gives."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given

from rudp.codec.transport_params import (
    TransportParameters,
    VersionInformation,
    decode_transport_parameters,
    encode_transport_parameters,
    version_information_of,
)
from rudp.errors import DecodeError, TransportErrorCode
from tests.strategies import transport_parameters


@given(transport_parameters)
def test_same_as_a_full_decode(params: TransportParameters) -> None:
    data = encode_transport_parameters(params, grease=(27, b"\x01\x02"))
    decoded = decode_transport_parameters(data, from_server=True)
    assert version_information_of(data) == decoded.version_information


def test_found_after_other_parameters_and_absent_gives_none() -> None:
    info = VersionInformation(0x6B3343CF, (0x6B3343CF, 0x00000001))
    params = dataclasses.replace(TransportParameters(), initial_max_data=123456, version_information=info)
    assert version_information_of(encode_transport_parameters(params)) == info
    assert version_information_of(encode_transport_parameters(TransportParameters())) is None
    assert version_information_of(b"") is None


def test_truncated_or_malformed_is_an_error() -> None:
    info = VersionInformation(1, (1,))
    data = encode_transport_parameters(dataclasses.replace(TransportParameters(), version_information=info))
    with pytest.raises(DecodeError) as exc:
        version_information_of(data[:-1])
    assert exc.value.code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR
    with pytest.raises(DecodeError):
        version_information_of(b"\x11\x03\x00\x00\x01")  # version_information of 3 bytes
