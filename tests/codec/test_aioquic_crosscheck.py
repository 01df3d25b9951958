"""Cross-check the codec against aioquic (dev dependency, public pip modules only).

aioquic parses what rudp encodes and rudp parses what aioquic encodes: headers, Retry, Version
Negotiation, ACK and other frames, transport parameters.
"""

from __future__ import annotations

import ipaddress

from aioquic.buffer import Buffer
from aioquic.quic import packet as aq
from aioquic.quic.rangeset import RangeSet
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.codec import frames as f
from rudp.codec.codes import PacketType, Version
from rudp.codec.frame_codec import encode_frames, parse_frames
from rudp.codec.packet import encode_long_header, encode_retry, encode_version_negotiation, parse_header
from rudp.codec.transport_params import (
    PreferredAddress,
    TransportParameters,
    VersionInformation,
    decode_transport_parameters,
    encode_transport_parameters,
)
from tests.strategies import ack_ranges, cids

AQ_TYPES = {
    PacketType.INITIAL: aq.QuicPacketType.INITIAL,
    PacketType.ZERO_RTT: aq.QuicPacketType.ZERO_RTT,
    PacketType.HANDSHAKE: aq.QuicPacketType.HANDSHAKE,
}


@given(
    packet_type=st.sampled_from(list(AQ_TYPES)),
    version=st.sampled_from([Version.V1, Version.V2]),
    dcid=cids,
    scid=cids,
    token=st.binary(max_size=40),
)
def test_aioquic_parses_rudp_long_header(
    packet_type: PacketType, version: int, dcid: bytes, scid: bytes, token: bytes
) -> None:
    body = bytes(40)
    header = encode_long_header(
        packet_type, version, dcid, scid, token=token, length=2 + len(body), packet_number=0x1234, pn_length=2
    )
    parsed = aq.pull_quic_header(Buffer(data=header + body), host_cid_length=8)
    assert parsed.version == version and parsed.packet_type == AQ_TYPES[packet_type]
    assert (parsed.destination_cid, parsed.source_cid) == (dcid, scid)
    assert parsed.token == (token if packet_type is PacketType.INITIAL else b"")
    assert parsed.packet_length == len(header) + len(body)


@given(
    version=st.sampled_from([Version.V1, Version.V2]),
    dcid=cids,
    scid=cids,
    odcid=cids,
    token=st.binary(min_size=1, max_size=60),
)
def test_rudp_parses_aioquic_retry(
    version: int, dcid: bytes, scid: bytes, odcid: bytes, token: bytes
) -> None:
    data = aq.encode_quic_retry(version, scid, dcid, odcid, token)
    parsed = parse_header(data)
    assert parsed.packet_type is PacketType.RETRY and parsed.version == version
    assert (parsed.dcid, parsed.scid, parsed.token) == (dcid, scid, token)
    assert encode_retry(version, dcid, scid, token, parsed.integrity_tag) == data


def test_version_negotiation_both_ways() -> None:
    theirs = aq.encode_quic_version_negotiation(b"server", b"client", [1, 0x6B3343CF, 0x1A2A3A4A])
    parsed = parse_header(theirs)
    assert parsed.packet_type is PacketType.VERSION_NEGOTIATION
    assert (parsed.dcid, parsed.scid) == (b"client", b"server")
    assert parsed.supported_versions == (1, 0x6B3343CF, 0x1A2A3A4A)
    ours = encode_version_negotiation(b"client", b"server", [1, 2])
    header = aq.pull_quic_header(Buffer(data=ours), host_cid_length=8)
    assert header.packet_type == aq.QuicPacketType.VERSION_NEGOTIATION
    assert header.supported_versions == [1, 2]


@settings(max_examples=50)
@given(ranges=ack_ranges(), delay=st.integers(0, 1 << 20))
def test_ack_both_ways(ranges: tuple[tuple[int, int], ...], delay: int) -> None:
    ours = encode_frames([f.Ack(ranges, delay)])
    buf = Buffer(data=ours[1:])
    rangeset, their_delay = aq.pull_ack_frame(buf)
    assert their_delay == delay
    assert sorted((r.start, r.stop - 1) for r in rangeset) == sorted(ranges)
    rs = RangeSet()
    for low, high in ranges:
        rs.add(low, high + 1)
    out = Buffer(capacity=4096)
    out.push_uint_var(0x02)
    aq.push_ack_frame(out, rs, delay, 4096)
    [(_, frame)] = parse_frames(out.data)
    assert isinstance(frame, f.Ack) and frame.ranges == ranges and frame.ack_delay == delay


def test_other_frames_field_by_field() -> None:
    # aioquic has no standalone frame parser: read rudp's bytes with aioquic's buffer, field by field.
    data = encode_frames(
        [
            f.Stream(4, 1000, b"hello", fin=True),
            f.Crypto(7, b"chlo"),
            f.MaxStreamData(8, 65536),
            f.NewConnectionId(3, 1, b"cid-3", bytes(range(16))),
            f.ConnectionClose(0x0A, b"bad", 0x08),
        ]
    )
    buf = Buffer(data=data)
    assert buf.pull_uint_var() == 0x0F
    assert (buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var()) == (4, 1000, 5)
    assert buf.pull_bytes(5) == b"hello"
    assert (buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var()) == (0x06, 7, 4)
    assert buf.pull_bytes(4) == b"chlo"
    assert (buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var()) == (0x11, 8, 65536)
    assert (buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint8()) == (
        0x18,
        3,
        1,
        5,
    )
    assert buf.pull_bytes(5) == b"cid-3" and buf.pull_bytes(16) == bytes(range(16))
    assert (buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var()) == (
        0x1C,
        0x0A,
        0x08,
        3,
    )
    assert buf.pull_bytes(3) == b"bad" and buf.eof()
    # and the reverse: frames written with aioquic's buffer primitives
    out = Buffer(capacity=256)
    for value in (0x0E, 5, 9, 3):
        out.push_uint_var(value)
    out.push_bytes(b"abc")
    out.push_uint_var(0x1D)
    out.push_uint_var(0x100)
    out.push_uint_var(0)
    out.push_uint_var(0x1E)
    assert [frame for _, frame in parse_frames(out.data)] == [
        f.Stream(5, 9, b"abc"),
        f.ConnectionClose(0x100, b"", 0, True),
        f.HandshakeDone(),
    ]


def test_transport_parameters_both_ways() -> None:
    ours = TransportParameters(
        original_destination_connection_id=b"odcid",
        max_idle_timeout=30_000,
        stateless_reset_token=bytes(range(16)),
        max_udp_payload_size=1452,
        initial_max_data=1 << 20,
        initial_max_stream_data_bidi_local=1 << 18,
        initial_max_stream_data_bidi_remote=1 << 17,
        initial_max_stream_data_uni=1 << 16,
        initial_max_streams_bidi=100,
        initial_max_streams_uni=3,
        ack_delay_exponent=4,
        max_ack_delay=20,
        disable_active_migration=True,
        preferred_address=PreferredAddress(
            ipaddress.IPv4Address("192.0.2.1"), 443, None, 0, b"pref", bytes(16)
        ),
        active_connection_id_limit=8,
        initial_source_connection_id=b"iscid",
        retry_source_connection_id=b"rscid",
        version_information=VersionInformation(Version.V1, (Version.V1, Version.V2)),
        max_datagram_frame_size=1200,
    )
    theirs = aq.pull_quic_transport_parameters(Buffer(data=encode_transport_parameters(ours)))
    for name in (
        "original_destination_connection_id",
        "max_idle_timeout",
        "stateless_reset_token",
        "max_udp_payload_size",
        "initial_max_data",
        "initial_max_stream_data_bidi_local",
        "initial_max_stream_data_bidi_remote",
        "initial_max_stream_data_uni",
        "initial_max_streams_bidi",
        "initial_max_streams_uni",
        "ack_delay_exponent",
        "max_ack_delay",
        "disable_active_migration",
        "active_connection_id_limit",
        "initial_source_connection_id",
        "retry_source_connection_id",
        "max_datagram_frame_size",
    ):
        assert getattr(theirs, name) == getattr(ours, name), name
    assert theirs.preferred_address is not None
    assert theirs.preferred_address.ipv4_address == ("192.0.2.1", 443)
    assert theirs.preferred_address.connection_id == b"pref"
    assert theirs.version_information is not None
    assert theirs.version_information.chosen_version == Version.V1
    assert list(theirs.version_information.available_versions) == [Version.V1, Version.V2]

    buf = Buffer(capacity=1024)
    aq.push_quic_transport_parameters(buf, theirs)
    back = decode_transport_parameters(buf.data, from_server=True)
    assert back == ours
