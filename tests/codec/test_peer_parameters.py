"""The peer's transport parameters decoded with an earlier decode of the bytes after its leading
connection-ID parameters (issue 13, handshake CPU): the same parameters and the same errors as the
full decoder, for valid encodings whose CIDs change between connections and for mutated ones."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rudp.codec.peer_parameters as cache_module
from rudp.codec.peer_parameters import decode_transport_parameters_cached
from rudp.codec.transport_params import (
    TransportParameters,
    decode_transport_parameters,
    encode_transport_parameters,
)
from rudp.errors import DecodeError
from tests.strategies import cids, transport_parameters

_tokens = st.binary(min_size=0, max_size=20)


def _outcome(data: bytes, from_server: bool) -> tuple[str, object]:
    try:
        return "ok", decode_transport_parameters(data, from_server=from_server)
    except DecodeError as exc:
        return "error", (exc.reason, exc.code)


def _cached_outcome(data: bytes, from_server: bool) -> tuple[str, object]:
    try:
        return "ok", decode_transport_parameters_cached(data, from_server=from_server)
    except DecodeError as exc:
        return "error", (exc.reason, exc.code)


def _same(data: bytes, from_server: bool) -> None:
    expected = _outcome(data, from_server)
    for _ in range(2):  # the second time from the cache, when the first one decoded
        got = _cached_outcome(data, from_server)
        assert got[0] == expected[0] and got[1] == expected[1]
        if got[0] == "ok":  # (unknown parameters compare=False: compared apart)
            assert isinstance(got[1], TransportParameters) and isinstance(expected[1], TransportParameters)
            assert got[1].unknown == expected[1].unknown


@given(transport_parameters, st.lists(st.tuples(cids, _tokens, cids), min_size=1, max_size=4), st.booleans())
def test_connections_with_other_cids_decode_as_the_full_decoder(
    params: TransportParameters, connections: list[tuple[bytes, bytes, bytes]], from_server: bool
) -> None:
    for odcid, token, iscid in connections:
        one = dataclasses.replace(
            params,
            original_destination_connection_id=odcid if params.original_destination_connection_id else None,
            stateless_reset_token=token if params.stateless_reset_token else None,  # (wrong sizes too)
            initial_source_connection_id=iscid,
        )
        _same(encode_transport_parameters(one), from_server)


@given(transport_parameters, st.data())
def test_mutated_encodings_give_the_full_decoders_result_or_error(
    params: TransportParameters, data: st.DataObject
) -> None:
    encoded = bytearray(encode_transport_parameters(params))
    _same(bytes(encoded), True)  # cached: the mutations below reuse its rest where they can
    for _ in range(data.draw(st.integers(1, 3))):
        if not encoded:
            break
        index = data.draw(st.integers(0, len(encoded) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            encoded[index] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del encoded[index:]
        else:
            encoded[index:index] = data.draw(st.binary(min_size=1, max_size=3))
    for from_server in (True, False):
        _same(bytes(encoded), from_server)


def test_leading_duplicates_and_server_only_ones_from_a_client_are_refused() -> None:
    base = encode_transport_parameters(TransportParameters(initial_source_connection_id=b"\x01" * 8))
    decode_transport_parameters_cached(base, from_server=True)  # its rest now cached
    twice = b"\x0f\x01\x02" + base  # initial_source_connection_id twice, the same rest after
    with pytest.raises(DecodeError, match="duplicate"):
        decode_transport_parameters_cached(twice, from_server=True)
    odcid_first = b"\x00\x01\x05" + base
    assert decode_transport_parameters_cached(
        odcid_first, from_server=True
    ).original_destination_connection_id
    with pytest.raises(DecodeError, match="server-only"):
        decode_transport_parameters_cached(odcid_first, from_server=False)


def test_the_cache_is_bounded_and_a_hit_takes_the_new_cids() -> None:
    params = TransportParameters(max_idle_timeout=30_000, initial_max_data=1 << 20)
    for i in range(100):
        cid = i.to_bytes(8, "big")
        encoded = encode_transport_parameters(dataclasses.replace(params, initial_source_connection_id=cid))
        decoded = decode_transport_parameters_cached(encoded, from_server=True)
        assert decoded.initial_source_connection_id == cid and decoded.initial_max_data == 1 << 20
        assert len(cache_module._REST) <= cache_module._MAX_REST


def test_a_clients_source_cid_after_the_rest_is_decoded_in_full_and_not_kept() -> None:
    # A server decodes its clients' parameters with the cache; one that writes its source CID among
    # the rest (not first, as rudp does) changes those bytes every connection: nothing is kept.
    rest = encode_transport_parameters(TransportParameters(max_idle_timeout=30_000, initial_max_data=1 << 20))
    cache_module._REST.clear()
    for cid in (b"\x01" * 8, b"\x02" * 8):
        data = rest + b"\x0f\x08" + cid  # initial_source_connection_id last
        decoded = decode_transport_parameters_cached(data, from_server=False)
        assert decoded == decode_transport_parameters(data, from_server=False)
        assert decoded.initial_source_connection_id == cid
    assert not cache_module._REST
    first = b"\x0f\x08" + b"\x03" * 8 + rest  # first, as rudp writes it: kept
    assert decode_transport_parameters_cached(first, from_server=False).initial_max_data == 1 << 20
    assert len(cache_module._REST) == 1
