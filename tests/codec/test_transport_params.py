"""Transport parameters (RFC 9000 §18, RFC 9221 §3, RFC 9368 §3)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rudp.codec.transport_params as transport_params
from rudp.codec.buffer import Writer
from rudp.codec.transport_params import (
    TransportParameterId,
    TransportParameters,
    VersionInformation,
    decode_transport_parameters,
    encode_transport_parameters,
    encode_with_changes,
    encode_with_source_cid,
)
from rudp.errors import DecodeError, TransportErrorCode
from tests.strategies import cids, transport_parameters

TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR


@given(transport_parameters)
def test_round_trip(params: TransportParameters) -> None:
    data = encode_transport_parameters(params)
    assert decode_transport_parameters(data, from_server=True) == params


def _raw(*items: tuple[int, bytes]) -> bytes:
    writer = Writer()
    for param_id, value in items:
        writer.push_varint(param_id)
        writer.push_block(0, value)
    return writer.getvalue()


def test_defaults_when_absent() -> None:
    params = decode_transport_parameters(b"", from_server=False)
    assert params.max_udp_payload_size == 65527
    assert params.ack_delay_exponent == 3 and params.max_ack_delay == 25
    assert params.active_connection_id_limit == 2 and params.max_datagram_frame_size is None


def test_unknown_and_grease_skipped() -> None:
    data = _raw((31 * 7 + 27, b"grease"), (0x4FFF, b""), (0x04, bytes([0x44, 0x00])))
    params = decode_transport_parameters(data, from_server=False)
    assert params.initial_max_data == 0x400
    assert [param_id for param_id, _ in params.unknown] == [31 * 7 + 27, 0x4FFF]
    grease = encode_transport_parameters(params, grease=(31 * 3 + 27, b"x"))
    assert decode_transport_parameters(grease, from_server=False).initial_max_data == 0x400


@pytest.mark.parametrize(
    ("items", "from_server"),
    [
        (((0x04, b"\x01"), (0x04, b"\x02")), True),  # duplicate (RFC 9000 §7.4)
        (((0x03, (1199).to_bytes(2, "big") and bytes([0x44, 0xAF])),), True),  # max_udp_payload_size 1199
        (((0x0A, bytes([21])),), True),  # ack_delay_exponent > 20
        (((0x0B, bytes([0x80, 0x00, 0x40, 0x00])),), True),  # max_ack_delay = 2^14
        (((0x0E, bytes([1])),), True),  # active_connection_id_limit < 2
        (((0x08, bytes([0xD0, 0, 0, 0, 0, 0, 0, 1])),), True),  # initial_max_streams_bidi > 2^60
        (((0x02, bytes(15)),), True),  # reset token not 16 bytes
        (((0x00, b"odcid"),), False),  # server-only from a client
        (((0x02, bytes(16)),), False),
        (((0x10, b"r"),), False),
        (((0x0C, b"\x00"),), True),  # disable_active_migration must be empty
        (((0x04, b"\x40"),), True),  # truncated varint value
        (((0x01, b"\x01\x02"),), True),  # trailing bytes
        (((0x00, bytes(21)),), True),  # CID too long
        (((0x11, bytes(6)),), True),  # version_information not a multiple of 4
        # draft-ietf-quic-ack-frequency §3: min_ack_delay 25001 us above the default 25 ms max_ack_delay
        (((0xFF04DE1B, bytes([0x80, 0x00, 0x61, 0xA9])),), True),
        (((0xFF04DE1B, bytes([0x80, 0x00, 0x61, 0xA9])), (0x0B, bytes([25]))), False),
        (((0xFF04DE1B, b"\x40"),), True),  # truncated
    ],
)
def test_invalid_parameters(items: tuple[tuple[int, bytes], ...], from_server: bool) -> None:
    with pytest.raises(DecodeError) as info:
        decode_transport_parameters(_raw(*items), from_server=from_server)
    assert info.value.code == TPE


def test_max_udp_payload_size_boundary() -> None:
    ok = _raw((TransportParameterId.MAX_UDP_PAYLOAD_SIZE, bytes([0x44, 0xB0])))  # 1200
    assert decode_transport_parameters(ok, from_server=True).max_udp_payload_size == 1200
    bad = _raw((TransportParameterId.MAX_UDP_PAYLOAD_SIZE, bytes([0x44, 0xAF])))  # 1199
    with pytest.raises(DecodeError):
        decode_transport_parameters(bad, from_server=True)


def test_preferred_address_with_empty_cid_rejected() -> None:
    body = bytes(4) + b"\x01\xbb" + bytes(16) + b"\x01\xbb" + b"\x00" + bytes(16)
    with pytest.raises(DecodeError) as info:
        decode_transport_parameters(_raw((0x0D, body)), from_server=True)
    assert info.value.code == TPE


def test_truncated_length_field() -> None:
    with pytest.raises(DecodeError) as info:
        decode_transport_parameters(bytes([0x04, 0x05, 0x01]), from_server=True)
    assert info.value.code == TPE


def test_encoder_omits_defaults() -> None:
    assert encode_transport_parameters(TransportParameters()) == b""
    params = dataclasses.replace(
        TransportParameters(), max_idle_timeout=30_000, disable_active_migration=True
    )
    assert encode_transport_parameters(params) == bytes([0x01, 0x04, 0x80, 0x00, 0x75, 0x30, 0x0C, 0x00])


def test_min_ack_delay_at_max_ack_delay_accepted() -> None:
    # draft-ietf-quic-ack-frequency §3: equal is allowed (25 ms = 25000 us); absent means None.
    params = decode_transport_parameters(
        _raw((0xFF04DE1B, bytes([0x80, 0x00, 0x61, 0xA8]))), from_server=True
    )
    assert params.min_ack_delay == 25000
    assert decode_transport_parameters(b"", from_server=True).min_ack_delay is None


def test_every_cut_inside_a_parameter_is_rejected() -> None:
    # IDs and lengths are read by index, the one-byte varints inline: each cut inside an ID, a length
    # or a value (two-byte and four-byte ones included) is TRANSPORT_PARAMETER_ERROR; a cut between
    # parameters leaves a shorter valid list.
    items = ((0x04, bytes([0x44, 0x00])), (0xFF04DE1B, bytes([0x43, 0xE8])), (31 * 5 + 27, b"\x0a" * 70))
    data = _raw(*items)
    boundaries = {0}
    for param_id, value in items:
        boundaries.add(max(boundaries) + len(_raw((param_id, value))))
    for cut in range(len(data) + 1):
        if cut in boundaries:
            decode_transport_parameters(data[:cut], from_server=True)
            continue
        with pytest.raises(DecodeError) as info:
            decode_transport_parameters(data[:cut], from_server=True)
        assert info.value.code == TPE


@pytest.mark.parametrize(
    ("value", "size"),
    [(1, 1), (63, 1), (64, 2), (16383, 2), (16384, 4), (2**30 - 1, 4), (2**30, 8), (2**62 - 1, 8)],
)
def test_integer_parameters_take_the_shortest_varint(value: int, size: int) -> None:
    # RFC 9000 §18: ID, Length, then the value as one varint of 1, 2, 4 or 8 bytes (§16)
    data = encode_transport_parameters(TransportParameters(initial_max_data=value))
    assert data[:2] == bytes([TransportParameterId.INITIAL_MAX_DATA, size]) and len(data) == 2 + size
    assert decode_transport_parameters(data, from_server=False).initial_max_data == value


@pytest.mark.parametrize("value", [-1, 2**62])
def test_integer_parameter_out_of_varint_range_is_refused(value: int) -> None:
    with pytest.raises(ValueError):
        encode_transport_parameters(TransportParameters(initial_max_data=value))


@given(transport_parameters, cids, cids, st.booleans())
def test_encode_with_source_cid_equals_encoding_the_whole(
    params: TransportParameters, first: bytes, second: bytes, client: bool
) -> None:
    # A client's parameters (no CID parameter of their own) take the cached path; others are whole.
    if client:
        params = dataclasses.replace(
            params,
            original_destination_connection_id=None,
            stateless_reset_token=None,
            initial_source_connection_id=None,
            retry_source_connection_id=None,
        )
    info = params.version_information or VersionInformation(1, (1,))
    for scid in (first, second, first):  # the second and third reuse the rest's bytes
        whole = dataclasses.replace(params, initial_source_connection_id=scid, version_information=info)
        assert encode_with_source_cid(params, scid, info) == encode_transport_parameters(whole)
    other = VersionInformation(0x6B3343CF, (0x6B3343CF, 1))  # another version_information: other bytes
    whole = dataclasses.replace(params, initial_source_connection_id=second, version_information=other)
    assert encode_with_source_cid(params, second, other) == encode_transport_parameters(whole)


@given(
    transport_parameters,
    st.lists(st.tuples(st.none() | cids, st.none() | cids, cids), min_size=1, max_size=3),
    st.none() | st.just(VersionInformation(1, (1, 0x6B3343CF))),
)
def test_encode_with_changes_gives_the_encoders_bytes(
    params: TransportParameters,
    connections: list[tuple[bytes | None, bytes | None, bytes]],
    info: VersionInformation | None,
) -> None:
    # A server's connections: other CIDs (and reset tokens), the same rest, taken from the cache
    # from the second on; every time the full encoder's bytes (a preferred address: encoded whole).
    for odcid, rscid, iscid in connections:
        changes: dict[str, object] = {
            "original_destination_connection_id": odcid,
            "retry_source_connection_id": rscid,
            "initial_source_connection_id": iscid,
            "stateless_reset_token": None if odcid is None else bytes(16),
            "version_information": info,
        }
        whole = dataclasses.replace(params, **changes)  # type: ignore[arg-type]
        assert encode_with_changes(params, changes) == encode_transport_parameters(whole)
        del changes["retry_source_connection_id"]  # not changed: the params' own
        whole = dataclasses.replace(whole, retry_source_connection_id=params.retry_source_connection_id)
        assert encode_with_changes(params, changes) == encode_transport_parameters(whole)


def test_encode_with_changes_keeps_a_bounded_rest_per_object_and_version_information() -> None:
    transport_params._AFTER_CIDS.clear()
    infos = [None, VersionInformation(1, (1,)), VersionInformation(0x6B3343CF, (0x6B3343CF, 1))]
    for limit in range(2, 12):
        base = TransportParameters(max_idle_timeout=30_000, active_connection_id_limit=limit)
        for info in infos:
            for cid in (b"\x01" * 8, b"\x02" * 4):
                changes = {"initial_source_connection_id": cid, "stateless_reset_token": bytes(16)}
                changes["version_information"] = info  # type: ignore[assignment]
                whole = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
                assert encode_with_changes(base, changes) == encode_transport_parameters(whole)
        assert len(transport_params._AFTER_CIDS) <= transport_params._MAX_AFTER_CIDS
    other = {"initial_source_connection_id": b"\x03", "max_idle_timeout": 5}  # not a CID: whole
    assert encode_with_changes(base, other) == encode_transport_parameters(
        dataclasses.replace(base, initial_source_connection_id=b"\x03", max_idle_timeout=5)
    )


@given(transport_parameters, cids)
def test_build_parameters_and_with_changes_equal_the_dataclass_constructor(
    params: TransportParameters, cid: bytes
) -> None:
    """build_parameters sets the slots the frozen dataclass's __init__ sets (the same object, field by
    field, ``unknown`` included); with_changes equals dataclasses.replace, and refuses what it refuses."""
    names = [field.name for field in dataclasses.fields(TransportParameters)]
    values = [getattr(params, name) for name in names]
    built = transport_params.build_parameters(values)
    assert type(built) is TransportParameters and built == TransportParameters(*values)
    assert [getattr(built, name) for name in names] == values
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.max_idle_timeout = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        transport_params.build_parameters(values[:-1])
    changes: dict[str, object] = {"initial_source_connection_id": cid, "max_idle_timeout": 7}
    changed = transport_params.with_changes(params, changes)
    assert changed == dataclasses.replace(params, **changes)  # type: ignore[arg-type]
    assert changed.unknown == params.unknown
    with pytest.raises(TypeError):
        transport_params.with_changes(params, {"no_such_parameter": 1})


def test_encode_with_changes_keeps_the_rest_per_version_information_value() -> None:
    """The rest's bytes are kept per version_information value: the chosen version and the available
    ones (equal values, other objects, share them; another list of available versions does not)."""
    transport_params._AFTER_CIDS.clear()
    base = TransportParameters(max_idle_timeout=30_000)
    infos = [
        VersionInformation(1, (1, 0x6B3343CF)),
        VersionInformation(1, (1,)),
        VersionInformation(0x6B3343CF, (1,)),
        VersionInformation(1, (1, 0x6B3343CF)),
        None,
    ]
    for info in infos:
        changes = {"initial_source_connection_id": b"\x01" * 8, "version_information": info}
        whole = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        assert encode_with_changes(base, changes) == encode_transport_parameters(whole)
    assert len(transport_params._AFTER_CIDS) == 4
