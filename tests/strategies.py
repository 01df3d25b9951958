"""Hypothesis strategies for rudp's wire values: varints, every frame, headers, transport parameters."""

from __future__ import annotations

import dataclasses
import ipaddress

from hypothesis import strategies as st

from rudp.codec import frames as f
from rudp.codec.transport_params import PreferredAddress, TransportParameters, VersionInformation
from rudp.codec.varint import VARINT_MAX

varints = st.integers(min_value=0, max_value=VARINT_MAX)
small_varints = st.integers(min_value=0, max_value=(1 << 30) - 1)
cids = st.binary(min_size=0, max_size=20)
nonempty_cids = st.binary(min_size=1, max_size=20)
tokens16 = st.binary(min_size=16, max_size=16)
payload = st.binary(max_size=200)


@st.composite
def ack_ranges(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    """Descending, disjoint, non-adjacent inclusive ranges."""
    count = draw(st.integers(min_value=1, max_value=8))
    top = draw(st.integers(min_value=0, max_value=1 << 40))
    ranges = []
    high = top
    for _ in range(count):
        length = draw(st.integers(min_value=0, max_value=min(1000, high)))
        low = high - length
        ranges.append((low, high))
        gap = draw(st.integers(min_value=0, max_value=1000))
        high = low - gap - 2
        if high < 0:
            break
    return tuple(ranges)


def _stream_frames() -> st.SearchStrategy[f.Stream]:
    return st.builds(
        f.Stream,
        stream_id=varints,
        offset=st.integers(min_value=0, max_value=1 << 50),
        data=payload,
        fin=st.booleans(),
        explicit_length=st.just(True),
    )


frames_with_length: st.SearchStrategy[f.Frame] = st.one_of(
    st.builds(f.Padding, length=st.integers(min_value=1, max_value=50)),
    st.just(f.Ping()),
    st.builds(
        f.Ack,
        ranges=ack_ranges(),
        ack_delay=small_varints,
        ecn=st.none() | st.tuples(small_varints, small_varints, small_varints),
    ),
    st.builds(f.ResetStream, varints, varints, varints),
    st.builds(f.StopSending, varints, varints),
    st.builds(f.Crypto, offset=st.integers(min_value=0, max_value=1 << 40), data=payload),
    st.builds(f.NewToken, token=st.binary(min_size=1, max_size=64)),
    _stream_frames(),
    st.builds(f.MaxData, varints),
    st.builds(f.MaxStreamData, varints, varints),
    st.builds(f.MaxStreams, st.booleans(), st.integers(min_value=0, max_value=1 << 60)),
    st.builds(f.DataBlocked, varints),
    st.builds(f.StreamDataBlocked, varints, varints),
    st.builds(f.StreamsBlocked, st.booleans(), st.integers(min_value=0, max_value=1 << 60)),
    st.integers(min_value=0, max_value=1 << 40).flatmap(
        lambda seq: st.builds(
            f.NewConnectionId,
            st.just(seq),
            st.integers(min_value=0, max_value=seq),
            nonempty_cids,
            tokens16,
        )
    ),
    st.builds(f.RetireConnectionId, varints),
    st.builds(f.PathChallenge, st.binary(min_size=8, max_size=8)),
    st.builds(f.PathResponse, st.binary(min_size=8, max_size=8)),
    st.builds(f.ConnectionClose, varints, st.binary(max_size=40), st.just(0), st.just(True)),
    st.builds(f.ConnectionClose, varints, st.binary(max_size=40), varints, st.just(False)),
    st.just(f.HandshakeDone()),
    st.builds(f.Datagram, payload, st.just(True)),
    st.builds(f.AckFrequency, varints, varints, varints, varints),
    st.just(f.ImmediateAck()),
)
"""Every frame kind, in forms that may be followed by other frames."""

frames_last: st.SearchStrategy[f.Frame] = st.one_of(
    st.builds(
        f.Stream, varints, st.integers(min_value=0, max_value=1 << 50), payload, st.booleans(), st.just(False)
    ),
    st.builds(f.Datagram, payload, st.just(False)),
)
"""Frames without a Length field: valid only at the end of a packet."""

_ipv4_endpoints = st.tuples(st.none(), st.just(0)) | st.tuples(
    st.builds(ipaddress.IPv4Address, st.integers(min_value=1, max_value=(1 << 32) - 1)),
    st.integers(min_value=1, max_value=65535),
)
_ipv6_endpoints = st.tuples(st.none(), st.just(0)) | st.tuples(
    st.builds(ipaddress.IPv6Address, st.integers(min_value=1, max_value=(1 << 128) - 1)),
    st.integers(min_value=1, max_value=65535),
)
preferred_addresses = st.builds(
    lambda v4, v6, cid, token: PreferredAddress(v4[0], v4[1], v6[0], v6[1], cid, token),
    _ipv4_endpoints,
    _ipv6_endpoints,
    nonempty_cids,
    tokens16,
)

transport_parameters = st.builds(
    TransportParameters,
    original_destination_connection_id=st.none() | cids,
    max_idle_timeout=varints,
    stateless_reset_token=st.none() | tokens16,
    max_udp_payload_size=st.integers(min_value=1200, max_value=65527),
    initial_max_data=varints,
    initial_max_stream_data_bidi_local=varints,
    initial_max_stream_data_bidi_remote=varints,
    initial_max_stream_data_uni=varints,
    initial_max_streams_bidi=st.integers(min_value=0, max_value=1 << 60),
    initial_max_streams_uni=st.integers(min_value=0, max_value=1 << 60),
    ack_delay_exponent=st.integers(min_value=0, max_value=20),
    max_ack_delay=st.integers(min_value=0, max_value=(1 << 14) - 1),
    disable_active_migration=st.booleans(),
    preferred_address=st.none() | preferred_addresses,
    active_connection_id_limit=st.integers(min_value=2, max_value=1 << 20),
    initial_source_connection_id=st.none() | cids,
    retry_source_connection_id=st.none() | cids,
    version_information=st.none()
    | st.builds(
        VersionInformation,
        st.integers(min_value=1, max_value=(1 << 32) - 1),
        st.lists(st.integers(min_value=0, max_value=(1 << 32) - 1), max_size=4).map(tuple),
    ),
    max_datagram_frame_size=st.none() | small_varints,
).flatmap(
    # draft-ietf-quic-ack-frequency §3: min_ack_delay (us) is at most max_ack_delay (ms).
    lambda params: st.builds(
        dataclasses.replace,
        st.just(params),
        min_ack_delay=st.none() | st.integers(min_value=0, max_value=params.max_ack_delay * 1000),
    )
)
