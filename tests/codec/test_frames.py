"""Frames (RFC 9000 §19, §12.4; RFC 9221 §4): round trips, validation and packet-type rules."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec import frames as f
from rudp.codec.buffer import Reader, Writer
from rudp.codec.codes import FrameType, PacketType
from rudp.codec.frame_codec import (
    encode_frames,
    parse_frames,
    pull_filling_stream,
    pull_frame,
    pull_one_rtt_frame,
    pull_stream_fields,
    write_frame,
)
from rudp.codec.varint import encode_varint
from rudp.errors import DecodeError, TransportErrorCode
from tests.strategies import frames_last, frames_with_length

FEE = TransportErrorCode.FRAME_ENCODING_ERROR
PV = TransportErrorCode.PROTOCOL_VIOLATION


def _padding_normalised(frames: list[f.Frame]) -> list[f.Frame]:
    """Adjacent PADDING frames decode as one: merge them the same way for comparison."""
    out: list[f.Frame] = []
    for frame in frames:
        if isinstance(frame, f.Padding) and out and isinstance(out[-1], f.Padding):
            out[-1] = f.Padding(out[-1].length + frame.length)
        else:
            out.append(frame)
    return out


@given(st.lists(frames_with_length, min_size=1, max_size=8), st.none() | frames_last)
def test_round_trip_every_frame(frames: list[f.Frame], last: f.Frame | None) -> None:
    all_frames = frames + ([last] if last is not None else [])
    decoded = [frame for _, frame in parse_frames(encode_frames(all_frames))]
    assert decoded == _padding_normalised(all_frames)


@pytest.mark.parametrize(
    ("offset", "explicit_length", "fin", "expected_type"),
    [
        (0, False, False, 0x08),
        (0, False, True, 0x09),
        (0, True, False, 0x0A),
        (0, True, True, 0x0B),
        (5, False, False, 0x0C),
        (5, False, True, 0x0D),
        (5, True, False, 0x0E),
        (5, True, True, 0x0F),
    ],
)
def test_stream_flag_combinations(offset: int, explicit_length: bool, fin: bool, expected_type: int) -> None:
    frame = f.Stream(4, offset, b"hello", fin, explicit_length)
    data = encode_frames([frame])
    assert data[0] == expected_type
    [(frame_type, decoded)] = parse_frames(data)
    assert frame_type == expected_type and decoded == frame


@pytest.mark.parametrize(
    ("sequence", "retire_prior_to"), [(0, 0), (1, 0), (63, 63), (5, 3), (64, 0), (70, 65), (3, 5), (2**20, 7)]
)
def test_new_connection_id_wire_format(sequence: int, retire_prior_to: int) -> None:
    # RFC 9000 §19.15: type, Sequence Number and Retire Prior To (varints), Length (one byte), CID,
    # token. The one-byte shortcut (both varints below 64) writes exactly what the general path does.
    frame = f.NewConnectionId(sequence, retire_prior_to, b"\x0a" * 8, b"\x0b" * 16)
    fields = encode_varint(sequence) + encode_varint(retire_prior_to)
    expected = b"\x18" + fields + b"\x08" + frame.connection_id + frame.stateless_reset_token
    assert encode_frames([frame]) == expected
    if retire_prior_to <= sequence:
        assert parse_frames(expected) == [(0x18, frame)]


def test_ack_wire_format_with_ranges_and_ecn() -> None:
    frame = f.Ack(ranges=((8, 10), (2, 5), (0, 0)), ack_delay=7, ecn=(1, 2, 3))
    # largest 10, delay 7, 2 more ranges, first range 2; gap 8-5-2=1 len 3; gap 2-0-2=0 len 0; ecn
    assert encode_frames([frame]) == bytes([0x03, 10, 7, 2, 2, 1, 3, 0, 0, 1, 2, 3])
    assert parse_frames(bytes([0x03, 10, 7, 2, 2, 1, 3, 0, 0, 1, 2, 3])) == [(0x03, frame)]
    assert frame.largest == 10


def test_ack_below_zero_rejected() -> None:
    with pytest.raises(DecodeError) as info:
        parse_frames(bytes([0x02, 5, 0, 0, 6]))
    assert info.value.code == FEE and info.value.frame_type == 0x02
    with pytest.raises(DecodeError):
        parse_frames(bytes([0x02, 5, 0, 1, 0, 4, 0]))  # second range reaches -1


def test_ack_encoder_rejects_unordered_ranges() -> None:
    with pytest.raises(ValueError):
        encode_frames([f.Ack(ranges=((0, 1), (5, 6)))])


def test_unknown_frame_type() -> None:
    with pytest.raises(DecodeError) as info:
        parse_frames(bytes([0x21]))
    assert info.value.code == FEE and info.value.frame_type == 0x21


def test_non_minimal_frame_type_is_protocol_violation() -> None:
    with pytest.raises(DecodeError) as info:
        parse_frames(bytes([0x40, 0x01]))  # PING in two bytes
    assert info.value.code == PV


def test_empty_payload_is_protocol_violation() -> None:
    with pytest.raises(DecodeError) as info:
        parse_frames(b"")
    assert info.value.code == PV


@pytest.mark.parametrize(
    ("frame", "packet_type"),
    [
        (f.Stream(0, 0, b"x"), PacketType.INITIAL),
        (f.Stream(0, 0, b"x"), PacketType.HANDSHAKE),
        (f.Ack(((0, 0),)), PacketType.ZERO_RTT),
        (f.Crypto(0, b"x"), PacketType.ZERO_RTT),
        (f.HandshakeDone(), PacketType.ZERO_RTT),
        (f.NewToken(b"t"), PacketType.HANDSHAKE),
        (f.PathResponse(bytes(8)), PacketType.ZERO_RTT),
        (f.ConnectionClose(0, application=True), PacketType.INITIAL),
        (f.Datagram(b"d"), PacketType.HANDSHAKE),
        (f.AckFrequency(0, 1, 1000, 1), PacketType.INITIAL),
        (f.AckFrequency(0, 1, 1000, 1), PacketType.HANDSHAKE),
        (f.ImmediateAck(), PacketType.INITIAL),
        (f.ImmediateAck(), PacketType.HANDSHAKE),
    ],
)
def test_frames_not_allowed_in_packet_type(frame: f.Frame, packet_type: PacketType) -> None:
    with pytest.raises(DecodeError) as info:
        parse_frames(encode_frames([frame]), packet_type)
    assert info.value.code == PV


@pytest.mark.parametrize(
    ("frame", "packet_type"),
    [
        (f.Crypto(0, b"x"), PacketType.INITIAL),
        (f.Ack(((0, 3),)), PacketType.HANDSHAKE),
        (f.ConnectionClose(1, frame_type=6), PacketType.INITIAL),
        (f.Padding(3), PacketType.ZERO_RTT),
        (f.Stream(0, 0, b"x"), PacketType.ZERO_RTT),
        (f.HandshakeDone(), PacketType.ONE_RTT),
    ],
)
def test_frames_allowed_in_packet_type(frame: f.Frame, packet_type: PacketType) -> None:
    assert parse_frames(encode_frames([frame]), packet_type)[0][1] == frame


def test_stream_beyond_max_offset_rejected() -> None:
    writer = Writer()
    for value in (0x0E, 0, (1 << 62) - 2):
        writer.push_varint(value)
    writer.push_varint(5)
    writer.push_bytes(b"12345")
    with pytest.raises(DecodeError) as info:
        parse_frames(writer.getvalue())
    assert info.value.code == FEE


def test_max_streams_above_2_60_rejected() -> None:
    writer = Writer()
    writer.push_varint(FrameType.MAX_STREAMS_BIDI)
    writer.push_varint((1 << 60) + 1)
    with pytest.raises(DecodeError) as info:
        parse_frames(writer.getvalue())
    assert info.value.code == FEE


def test_new_connection_id_rules() -> None:
    bad_length = bytes([0x18, 1, 0, 0]) + bytes(16)
    with pytest.raises(DecodeError):
        parse_frames(bad_length)
    retire_above_sequence = bytes([0x18, 1, 2, 4]) + b"abcd" + bytes(16)
    with pytest.raises(DecodeError):
        parse_frames(retire_above_sequence)


def test_empty_new_token_rejected() -> None:
    with pytest.raises(DecodeError):
        parse_frames(bytes([0x07, 0]))


def test_padding_runs_merge() -> None:
    assert parse_frames(bytes(5) + b"\x01" + bytes(2)) == [
        (0, f.Padding(5)),
        (1, f.Ping()),
        (0, f.Padding(2)),
    ]


@pytest.mark.parametrize("run", [1, 899, 1499, 1500, 1501, 4000])
def test_padding_run_to_the_end_or_not(run: int) -> None:
    # A run to the end of the payload (compared with zero bytes at once, when it is short enough) and
    # the same run followed by a frame count the same zeros.
    assert parse_frames(b"\x01" + bytes(run)) == [(1, f.Ping()), (0, f.Padding(run))]
    assert parse_frames(bytes(run) + b"\x01") == [(0, f.Padding(run)), (1, f.Ping())]
    assert parse_frames(bytes(run) + b"\x01" + bytes(run)) == [
        (0, f.Padding(run)),
        (1, f.Ping()),
        (0, f.Padding(run)),
    ]


def test_writer_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        write_frame(Writer(), f.PathChallenge(b"short"))
    with pytest.raises(ValueError):
        write_frame(Writer(), f.NewConnectionId(1, 0, b"", bytes(16)))


@given(st.lists(frames_with_length, min_size=1, max_size=1) | st.lists(frames_last, min_size=1, max_size=1))
def test_frame_size_matches_encoding(frames: list[f.Frame]) -> None:
    from rudp.codec.frame_codec import frame_size

    assert frame_size(frames[0]) == len(encode_frames(frames))


def test_ack_frequency_wire_format() -> None:
    # draft-ietf-quic-ack-frequency §4: type 0xaf (a 2-byte varint), then four varints; §5: 0x1f.
    frame = f.AckFrequency(
        sequence=5, ack_eliciting_threshold=9, request_max_ack_delay=1000, reordering_threshold=1
    )
    wire = encode_frames([frame])
    assert wire == bytes([0x40, 0xAF, 5, 9, 0x43, 0xE8, 1])
    assert parse_frames(wire, PacketType.ONE_RTT) == [(FrameType.ACK_FREQUENCY, frame)]
    assert encode_frames([f.ImmediateAck()]) == b"\x1f"
    assert parse_frames(b"\x1f", PacketType.ONE_RTT) == [(FrameType.IMMEDIATE_ACK, f.ImmediateAck())]


@given(st.integers(min_value=0, max_value=(1 << 62) - 1), st.integers(min_value=0, max_value=(1 << 62) - 1))
def test_ack_frequency_truncated_is_frame_encoding_error(sequence: int, delay: int) -> None:
    wire = encode_frames([f.AckFrequency(sequence, 3, delay, 0)])
    for cut in range(2, len(wire)):
        with pytest.raises(DecodeError) as info:
            parse_frames(wire[:cut], PacketType.ONE_RTT)
        assert info.value.code == FEE
        assert info.value.frame_type == FrameType.ACK_FREQUENCY


def test_ack_frequency_encoder_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        encode_frames([f.AckFrequency(1 << 62, 1, 1000, 1)])
    with pytest.raises(ValueError):
        encode_frames([f.AckFrequency(0, -1, 1000, 1)])


@given(st.lists(frames_with_length, min_size=1, max_size=6), st.none() | frames_last)
def test_pull_frame_matches_parse_frames(frames: list[f.Frame], last: f.Frame | None) -> None:
    """The receive fast path's one-frame decoder and STREAM field decoder agree with parse_frames."""
    wire = encode_frames([*frames, *([last] if last is not None else [])])
    expected = parse_frames(wire, PacketType.ONE_RTT)
    reader = Reader(wire)
    got = []
    while not reader.eof():
        position = reader.position
        kind = wire[position]
        if 0x08 <= kind <= 0x0F:
            stream_id, offset, start, end = pull_stream_fields(wire, position, kind)
            frame: f.Frame = f.Stream(stream_id, offset, wire[start:end], bool(kind & 1), bool(kind & 2))
            reader.seek(end)
            got.append((kind, frame))
        else:
            got.append(pull_frame(reader, PacketType.ONE_RTT))
    assert got == expected


def test_pull_stream_fields_truncated() -> None:
    wire = encode_frames([f.Stream(4, 1 << 20, b"abcdef", False, True)])
    for cut in range(1, len(wire) - 6):
        with pytest.raises(DecodeError) as info:
            pull_stream_fields(wire[:cut], 0, wire[0])
        assert info.value.code == FEE
        assert info.value.frame_type == wire[0]
    with pytest.raises(DecodeError) as info:  # data shorter than the Length field
        pull_stream_fields(wire[:-1], 0, wire[0])
    assert info.value.code == FEE
    beyond = bytes([0x0C, 0x00, *[0xFF] * 8, 0x00])  # offset 2^62-1 and 1 byte of data
    with pytest.raises(DecodeError) as info:
        pull_stream_fields(beyond, 0, 0x0C)
    assert info.value.code == FEE


def _varint_of_width(value: int, width: int) -> bytes:
    """``value`` as a QUIC varint of exactly ``width`` bytes (RFC 9000 §16 allows wider than needed)."""
    return (value | ({1: 0, 2: 1, 4: 2, 8: 3}[width] << (8 * width - 2))).to_bytes(width, "big")


@pytest.mark.parametrize("widths", list(itertools.product((1, 2, 4, 8), repeat=3)))
def test_pull_stream_fields_every_varint_width(widths: tuple[int, int, int]) -> None:
    """Each field in each varint width (the unrolled decoder has a branch per field and width): the
    values come back, and every truncation of the fields or the data is a FRAME_ENCODING_ERROR."""
    id_width, offset_width, length_width = widths
    data = b"0123456789"
    fields = (
        _varint_of_width(9, id_width)
        + _varint_of_width(33, offset_width)
        + _varint_of_width(10, length_width)
    )
    wire = bytes([0x0E]) + fields + data + b"\x00"  # OFF and LEN; a PADDING byte follows
    assert pull_stream_fields(wire, 0, 0x0E) == (9, 33, 1 + len(fields), 1 + len(fields) + 10)
    for cut in range(1, len(wire) - 1):
        with pytest.raises(DecodeError) as info:
            pull_stream_fields(wire[:cut], 0, 0x0E)
        assert info.value.code == FEE and info.value.frame_type == 0x0E
    # Without OFF and LEN: offset 0, data to the end of the packet.
    short = bytes([0x08]) + _varint_of_width(9, id_width) + data
    assert pull_stream_fields(short, 0, 0x08) == (9, 0, 1 + id_width, len(short))


@pytest.mark.parametrize("offset_width", [1, 2, 4, 8])
@pytest.mark.parametrize("data_size", [0, 1, 2, 3, 1200])
def test_pull_stream_fields_with_offset_at_a_position(offset_width: int, data_size: int) -> None:
    """A frame with OFF after other frames (the receive fast path decodes a one-byte stream ID, a
    4-byte offset and a 2-byte length at once): the same fields as the general decoder's, with and
    without LEN, for data sizes around the shortest frames the shortcut reads."""
    data = bytes(range(256)) * 5
    data = data[:data_size]
    prefix = b"\x01\x00\x00"  # PING, two PADDING
    offset = 70_000 % (1 << 6 * offset_width)
    for frame_type, length in ((0x0C, b""), (0x0E, _varint_of_width(data_size, 2))):
        wire = prefix + bytes([frame_type, 0x05]) + _varint_of_width(offset, offset_width) + length + data
        expected = (5, offset, len(wire) - data_size, len(wire))
        assert pull_stream_fields(wire, len(prefix), frame_type) == expected
        # And the frame itself as the general decoder reads it.
        (*_, (_, frame)) = parse_frames(wire)
        assert isinstance(frame, f.Stream)
        assert (frame.stream_id, frame.offset, frame.data) == (5, offset, data)
    # A length pointing past the packet is a FRAME_ENCODING_ERROR, whichever decoder reads it.
    wire = prefix + bytes([0x0E, 0x05]) + _varint_of_width(1, 4) + _varint_of_width(data_size + 1, 2) + data
    with pytest.raises(DecodeError) as info:
        pull_stream_fields(wire, len(prefix), 0x0E)
    assert info.value.code == FEE


def _general(payload: bytes, position: int) -> tuple[object, int] | tuple[str, str, int, int]:
    reader = Reader(payload, position)
    try:
        frame = pull_frame(reader, PacketType.ONE_RTT)[1]
    except DecodeError as exc:
        return ("error", str(exc), exc.code, exc.frame_type)
    return frame, reader.position


def _shortcut(payload: bytes, position: int) -> tuple[object, int] | tuple[str, str, int, int]:
    try:
        return pull_one_rtt_frame(payload, position)
    except DecodeError as exc:
        return ("error", str(exc), exc.code, exc.frame_type)


def test_pull_one_rtt_frame_answers_as_pull_frame() -> None:
    # The one-range ACK shortcut against the general decoder: ACKs of one and more ranges, ACK_ECN,
    # every varint width (minimal or not), ranges below zero, truncations, and other frames.
    import random

    def varint(value: int, width: int) -> bytes:
        prefix = {1: 0, 2: 0x4000, 4: 0x80000000, 8: 0xC000000000000000}[width]
        return (prefix | value).to_bytes(width, "big")

    def field(value: int) -> bytes:
        fits = [w for w, limit in ((1, 1 << 6), (2, 1 << 14), (4, 1 << 30), (8, 1 << 62)) if value < limit]
        return varint(value, rng.choice(fits))

    rng = random.Random(2026)
    shortcuts = 0
    for _ in range(20_000):
        largest = rng.choice([0, 1, 63, 64, 16383, 16384, rng.randrange(1 << 40)])
        first = rng.choice([0, largest, largest + 1, rng.randrange(largest + 2)])
        count = rng.choice([0, 0, 0, 1, 2])
        body = bytes([rng.choice([0x02, 0x02, 0x02, 0x03])]) + field(largest) + field(rng.randrange(1 << 20))
        body += field(count) + field(first)
        for _ in range(count):
            body += field(rng.randrange(4)) + field(rng.randrange(4))
        if body[0] == 0x03:
            body += field(rng.randrange(1 << 20)) + field(0) + field(rng.randrange(70))
        prefix = bytes(rng.randrange(3))  # PADDING before it: the frame starts at ``position``
        payload = prefix + body + rng.choice([b"", b"\x01", bytes(3)])
        if rng.random() < 0.2:
            payload = payload[: rng.randrange(len(prefix) + 1, len(payload) + 1)]
        expected = _general(payload, len(prefix))
        assert _shortcut(payload, len(prefix)) == expected, payload.hex()
        shortcuts += count == 0 and expected[0] != "error"
    assert shortcuts > 7_000
    ping_then_max_data = bytes([0x01, 0x10]) + varint(12345, 2)
    assert _shortcut(ping_then_max_data, 1) == _general(ping_then_max_data, 1) == (f.MaxData(12345), 4)


def _parse_one_by_one(payload: bytes, packet_type: PacketType | None) -> object:
    reader = Reader(payload)
    frames = []
    try:
        if reader.eof():
            parse_frames(payload, packet_type)
        while not reader.eof():
            frames.append(pull_frame(reader, packet_type))
    except DecodeError as exc:
        return ("error", str(exc), exc.code, exc.frame_type)
    return frames


def test_parse_frames_answers_as_pull_frame_for_acks_in_every_packet_type() -> None:
    # parse_frames takes the one-range ACK shortcut of 1-RTT packets in Initial, Handshake and 1-RTT
    # packets (not in 0-RTT, where an ACK is refused): same frames and same errors as pull_frame.
    import random

    rng = random.Random(11)
    kinds = [PacketType.INITIAL, PacketType.HANDSHAKE, PacketType.ZERO_RTT, PacketType.ONE_RTT, None]
    for _ in range(5_000):
        largest = rng.choice([0, 1, 63, 64, 16384, rng.randrange(1 << 40)])
        first = rng.choice([0, largest, largest + 1, rng.randrange(largest + 2)])
        count = rng.choice([0, 0, 1])
        body = bytes([rng.choice([0x02, 0x03])]) + _varint_of_width(largest, 8 if largest >> 30 else 4)
        body += _varint_of_width(rng.randrange(64), rng.choice([1, 2])) + _varint_of_width(count, 1)
        body += _varint_of_width(first, 8 if first >> 30 else rng.choice([4, 8]))
        for _ in range(count):
            body += _varint_of_width(rng.randrange(4), 1) + _varint_of_width(rng.randrange(4), 1)
        if body[0] == 0x03:
            body += bytes([rng.randrange(64), 0, rng.randrange(64)])
        payload = rng.choice([b"", b"\x01", bytes(2)]) + body + rng.choice([b"", b"\x01", bytes(3), body])
        if rng.random() < 0.2:
            payload = payload[: rng.randrange(1, len(payload) + 1)]
        for kind in kinds:
            try:
                got: object = parse_frames(payload, kind)
            except DecodeError as exc:
                got = ("error", str(exc), exc.code, exc.frame_type)
            assert got == _parse_one_by_one(payload, kind), (payload.hex(), kind)


def test_pull_one_rtt_frame_new_connection_id_answers_as_pull_frame() -> None:
    # The NEW_CONNECTION_ID shortcut (1-byte sequence number) against the general decoder: every varint
    # width of both numbers, retire_prior_to above the sequence, CID lengths 0 to 21 (bad ones too),
    # truncations and frames after it.
    import random

    rng = random.Random(19)
    shortcuts = 0
    for _ in range(20_000):
        sequence = rng.choice([0, 1, 2, 7, 63, 64, rng.randrange(1 << 20)])
        retire = rng.choice([0, sequence, sequence + 1, rng.randrange(sequence + 2)])
        length = rng.choice([8, 8, 0, 1, 20, 21, 255, rng.randrange(22)])
        cid = bytes(rng.randrange(256) for _ in range(min(length, 21)))
        frame = b"\x18" + _varint_of_width(sequence, rng.choice([1, 1, 2, 4]) if sequence < 64 else 4)
        frame += _varint_of_width(retire, rng.choice([1, 1, 2]) if retire < 64 else 4)
        frame += bytes([length]) + cid + bytes(rng.randrange(256) for _ in range(16))
        prefix = bytes(rng.randrange(3))
        payload = prefix + frame + rng.choice([b"", b"\x01", bytes(3)])
        if rng.random() < 0.2:
            payload = payload[: rng.randrange(len(prefix) + 1, len(payload) + 1)]
        expected = _general(payload, len(prefix))
        assert _shortcut(payload, len(prefix)) == expected, payload.hex()
        shortcuts += isinstance(expected[0], f.NewConnectionId) and payload[len(prefix) + 1] < 0x40
    assert shortcuts > 2_000


def test_pull_stream_fields_answers_as_pull_frame() -> None:
    # The STREAM field decoder (and its one-unpack shortcut for a 1-byte stream ID, a 4-byte offset and
    # a 2-byte length) against the general decoder: every frame type, every varint width, values at
    # the width limits, truncations, and data after the frame.
    import random

    rng = random.Random(13)
    shortcut_shape = 0
    for _ in range(20_000):
        kind = rng.randrange(0x08, 0x10)
        widths = [rng.choice([1, 2, 4, 4, 4, 8]) for _ in range(3)]
        if rng.random() < 0.5:
            widths = [1, 4, 2]
        limits = {1: 1 << 6, 2: 1 << 14, 4: 1 << 30, 8: 1 << 62}
        stream_id = rng.choice([0, 5, limits[widths[0]] - 1, rng.randrange(limits[widths[0]])])
        offset = rng.choice([0, limits[widths[1]] - 1, rng.randrange(limits[widths[1]])])
        data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 3, 40])))
        length = rng.choice([len(data), len(data), len(data) + 1, rng.randrange(limits[widths[2]])])
        frame = bytes([kind]) + _varint_of_width(stream_id, widths[0])
        if kind & 0x04:
            frame += _varint_of_width(offset, widths[1])
        if kind & 0x02:
            frame += _varint_of_width(length, widths[2])
        prefix = bytes(rng.randrange(3))  # PADDING before it: the frame starts at ``position``
        payload = prefix + frame + data + rng.choice([b"", b"\x01", bytes(3)])
        if rng.random() < 0.2:
            payload = payload[: rng.randrange(len(prefix) + 1, len(payload) + 1)]
        expected = _general(payload, len(prefix))
        try:
            stream_id, offset, start, end = pull_stream_fields(payload, len(prefix), kind)
            got: object = (
                f.Stream(stream_id, offset, payload[start:end], bool(kind & 0x01), bool(kind & 0x02)),
                end,
            )
        except DecodeError as exc:
            got = ("error", exc.code, exc.frame_type)
            expected = expected[:1] + expected[2:] if expected[0] == "error" else expected
        assert got == expected, payload.hex()
        shortcut_shape += widths == [1, 4, 2] and kind & 0x04 and expected[0] != "error"
    assert shortcut_shape > 3_000


def test_pull_filling_stream_answers_as_pull_stream_fields() -> None:
    # A data packet's payload: the fields when one STREAM frame fills it (its one-unpack shortcut and
    # the general decoder alike), None when it does not start with one or holds more, and the same
    # errors as pull_stream_fields: every frame type and varint width, truncations, frames after it.
    import random

    rng = random.Random(1452)
    filling = 0
    for _ in range(20_000):
        kind = rng.randrange(0x06, 0x10)
        widths = [1, 4, 2] if rng.random() < 0.5 else [rng.choice([1, 2, 4, 8]) for _ in range(3)]
        limits = {1: 1 << 6, 2: 1 << 14, 4: 1 << 30, 8: 1 << 62}
        stream_id = rng.choice([0, 5, limits[widths[0]] - 1])
        offset = rng.choice([0, limits[widths[1]] - 1, rng.randrange(limits[widths[1]])])
        data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 40])))
        length = rng.choice([len(data), len(data), len(data) + 1, len(data) - 1])
        payload = bytes([kind]) + _varint_of_width(stream_id, widths[0])
        if kind & 0x04:
            payload += _varint_of_width(offset, widths[1])
        if kind & 0x02:
            payload += _varint_of_width(max(length, 0), widths[2])
        payload += data + rng.choice([b"", b"", b"\x01", bytes(3)])
        if rng.random() < 0.2:
            payload = payload[: rng.randrange(0, len(payload) + 1)]
        try:
            got: object = pull_filling_stream(payload)
        except DecodeError as exc:
            got = ("error", exc.code, exc.frame_type)
        expected: object = None
        if payload and 0x08 <= payload[0] <= 0x0F:
            try:
                sid, off, start, end = pull_stream_fields(payload, 0, payload[0])
                expected = (sid, off, start, payload[0]) if end == len(payload) else None
            except DecodeError as exc:
                expected = ("error", exc.code, exc.frame_type)
        assert got == expected, payload.hex()
        filling += isinstance(got, tuple) and got[0] != "error"
    assert filling > 5_000
