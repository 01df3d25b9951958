"""TrainBuilder (issue 13 packet trains): the datagrams of a train are byte for byte those
DatagramBuilder writes for the same frames, packet numbers and keys (the per-packet path), with the
same SentPacket records; header protection is batched, across a key update too; misuse is refused."""

from __future__ import annotations

from dataclasses import fields

import pytest

from rudp.codec.buffer import Writer
from rudp.codec.codes import Version
from rudp.codec.frame_codec import write_frame
from rudp.codec.frames import Ack, Frame, MaxData, Padding, Ping, Stream
from rudp.codec.packet import FIXED_BIT, KEY_PHASE_BIT
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import SUITE_HASH, CipherSuite
from rudp.quic.packetizer import DatagramBuilder
from rudp.quic.sent import PacketSpace, SentPacket, open_sent_packet
from rudp.quic.train import TrainBuilder

DCID = bytes(range(8))
NOW = 12.5


def _keys(suite: CipherSuite, version: int) -> PacketProtection:
    return PacketProtection(suite, b"\x42" * (48 if SUITE_HASH[suite] == "sha384" else 32), version)


def _packets() -> list[tuple[int, list[Frame]]]:
    """(packet number, frames) of a train: full stream packets, a FIN, tiny and mixed packets."""
    return [
        (1000, [Stream(4, 0, bytes(range(256)) * 5, False)]),
        (1001, [Stream(4, 1280, b"x" * 1300, False)]),
        (1003, [Stream(4, 2580, b"", True)]),  # a bare FIN: padded to be sampled
        (1004, [MaxData(1 << 20), Stream(8, 70_000, b"yz" * 300, False)]),
        (
            1005,  # first frames of streams (no offset): 1- and 2-byte IDs and lengths
            [
                Ping(),
                Stream(8, 0, b"GET 100\n", True),
                Stream(0x40, 0, b"r" * 100, True),
                Stream(0x3FFF, 0, b"s" * 0x40, False),
                Stream(0x3F, 0, b"t" * 0x3F, True),
                Stream(0x4000, 0, b"u" * 10, False),  # a 4-byte ID: the general encoding
            ],
        ),
        (1006, [Stream(0x3FFF_FFFF, (1 << 40) + 3, b"q" * 64, True), Padding(10)]),
    ]


def _reference(keys: list[PacketProtection], largest_acked: int) -> tuple[list[bytes], list[SentPacket]]:
    datagrams, records = [], []
    for (number, frames), key in zip(_packets(), keys, strict=True):
        builder = DatagramBuilder(1452, NOW)
        phase = KEY_PHASE_BIT if key is not keys[0] else 0
        assert builder.start_packet(
            space=PacketSpace.APPLICATION,
            protection=key,
            first_byte=FIXED_BIT | phase,
            prefix=DCID,
            is_long=False,
            packet_number=number,
            largest_acked=largest_acked,
        )
        for frame in frames:
            builder.push_frame(frame, None)
        builder.end_packet()
        datagrams.append(builder.finish(0))
        records.extend(builder.sent_packets())
    return datagrams, records


def _ignore(acked: bool) -> None:
    """A delivery handler that does nothing."""


def _train(keys: list[PacketProtection], largest_acked: int) -> tuple[list[bytes], list[SentPacket]]:
    builder = TrainBuilder(NOW, DCID, largest_acked)
    records = []
    for (number, frames), key in zip(_packets(), keys, strict=True):
        phase = KEY_PHASE_BIT if key is not keys[0] else 0
        assert builder.start_packet(1452, key, FIXED_BIT | phase, number)
        for frame in frames:
            assert builder.remaining >= 8
            if type(frame) is Stream:  # as the streams write them: by their fields
                builder.push_stream(frame.stream_id, frame.offset, frame.data, frame.fin, _ignore)
            else:
                builder.push_frame(frame, None)
        sent = builder.end_packet()
        assert sent is not None
        records.append(sent)
    return builder.finish(), records


@pytest.mark.parametrize("suite", list(CipherSuite))
@pytest.mark.parametrize("version", [Version.V1, Version.V2])
@pytest.mark.parametrize("key_update", [False, True])
def test_train_bytes_equal_per_packet_bytes(suite: CipherSuite, version: int, key_update: bool) -> None:
    first = _keys(suite, version)
    # A key update after the third packet (RFC 9001 §6): the later packets use the next generation.
    second = first.next_generation() if key_update else first
    order = [first, first, first, second, second, second]
    expected, expected_records = _reference(order, largest_acked=990)
    reference_counts = (first.packets_protected, second.packets_protected)
    got, records = _train(order, largest_acked=990)
    assert got == expected
    assert len({len(datagram) for datagram in got}) > 2  # sizes vary: not one datagram repeated
    for ours, theirs in zip(records, expected_records, strict=True):
        assert (ours.packet_number, ours.size_bytes, ours.ack_eliciting, ours.in_flight) == (
            theirs.packet_number,
            theirs.size_bytes,
            theirs.ack_eliciting,
            theirs.in_flight,
        )
        assert ours.sent_at == NOW and ours.space is PacketSpace.APPLICATION
    # The AEAD ran once per packet: each key's confidentiality count moved by its packets.
    if key_update:
        assert (first.packets_protected, second.packets_protected) == (6, 6)
        assert reference_counts == (3, 3)
    else:
        assert first.packets_protected == 12 and reference_counts[0] == 6


def test_long_packet_numbers_and_no_largest_acked() -> None:
    keys = _keys(CipherSuite.AES_128_GCM_SHA256, Version.V1)
    expected, _ = _reference([keys] * 6, largest_acked=-1)
    got, _ = _train([keys] * 6, largest_acked=-1)
    assert got == expected


def test_frame_too_large_is_refused_and_undone() -> None:
    keys = _keys(CipherSuite.AES_128_GCM_SHA256, Version.V1)
    builder = TrainBuilder(NOW, DCID, None)
    assert builder.start_packet(100, keys, FIXED_BIT, 0)
    room = builder.remaining
    with pytest.raises(ValueError, match="does not fit"):
        builder.push_frame(Stream(4, 0, bytes(room), False))
    assert builder.remaining == room
    for offset in (0, 70_000):  # the general and the usual (8-byte header) STREAM encodings
        with pytest.raises(ValueError, match="does not fit"):
            builder.push_stream(4, offset, bytes(room - 3), False, _ignore)
        assert builder.remaining == room
    builder.push_frame(Ping(), None)  # an ack-eliciting frame that fits...
    room -= 1
    with pytest.raises(ValueError, match="does not fit"):
        builder.push_frame(Padding(room + 1))
    assert builder.remaining == room
    builder.push_frame(Stream(4, 0, bytes(room - 4), False), None)  # type, ID, 2-byte length
    assert builder.remaining == 0
    sent = builder.end_packet()
    assert sent is not None and sent.size_bytes == 100
    (datagram,) = builder.finish()
    assert len(datagram) == 100
    assert builder.finish() == []  # finished packets are handed out once


def test_refused_frame_leaves_the_record_alone() -> None:
    keys = _keys(CipherSuite.AES_128_GCM_SHA256, Version.V1)
    builder = TrainBuilder(NOW, DCID, None)
    assert builder.start_packet(100, keys, FIXED_BIT, 0)
    with pytest.raises(ValueError, match="does not fit"):
        builder.push_frame(Stream(4, 0, bytes(200), False))
    builder.push_frame(Padding(5), None)
    sent = builder.end_packet()
    assert sent is not None and sent.in_flight and not sent.ack_eliciting


def test_misuse() -> None:
    keys = _keys(CipherSuite.AES_128_GCM_SHA256, Version.V1)
    builder = TrainBuilder(NOW, DCID, None)
    with pytest.raises(ValueError, match="no packet is open"):
        builder.push_frame(Ping())
    assert not builder.start_packet(1 + 8 + 1 + 16 + 7, keys, FIXED_BIT, 0)  # no room for a frame
    assert builder.start_packet(1452, keys, FIXED_BIT, 0)
    with pytest.raises(ValueError, match="already open"):
        builder.start_packet(1452, keys, FIXED_BIT, 1)
    assert builder.end_packet() is None  # empty: nothing sent, nothing to finish
    assert builder.finish() == []


def test_ack_first_then_data() -> None:
    # An ACK leads a train's first packet: not ack-eliciting until a data frame follows; a train never
    # pads to 1200 bytes (no source that asks for it writes into one).
    keys = _keys(CipherSuite.AES_128_GCM_SHA256, Version.V1)
    builder = TrainBuilder(NOW, DCID, None)
    assert builder.start_packet(1452, keys, FIXED_BIT, 0)
    builder.push_frame(Ack(ranges=((30, 40),), ack_delay=3), None)
    assert not builder.sent_is_ack_eliciting()
    builder.push_frame(Stream(4, 0, b"data", False), None)
    assert builder.sent_is_ack_eliciting()
    with pytest.raises(ValueError, match="never padded"):
        builder.require_padding()
    sent = builder.end_packet()
    assert sent is not None and sent.largest_acked_in_ack == 40 and sent.ack_eliciting
    assert not builder.sent_is_ack_eliciting()  # nothing open


@pytest.mark.parametrize("largest_acked", [None, 10, 32_700])
def test_packet_number_length_grows_within_a_train(largest_acked: int | None) -> None:
    # RFC 9000 §17.1: a train keeps a packet number length while twice the distance to the largest
    # acknowledged fits it; numbers crossing 1->2, 2->3 and 3->4 bytes (2 * 128 needs 9 bits) get the
    # bytes DatagramBuilder writes for each.
    keys = _keys(CipherSuite.AES_128_GCM_SHA256, Version.V1)
    base = -1 if largest_acked is None else largest_acked
    distances = (1, 2, 126, 127, 128, 129, 300, 32_767, 32_768, 32_769, 1 << 23, (1 << 23) + 1)
    numbers = [base + distance for distance in distances]
    expected = []
    for number in numbers:
        reference = DatagramBuilder(1452, NOW)
        assert reference.start_packet(
            space=PacketSpace.APPLICATION,
            protection=keys,
            first_byte=FIXED_BIT,
            prefix=DCID,
            is_long=False,
            packet_number=number,
            largest_acked=largest_acked,
        )
        reference.push_frame(Stream(4, 100_000 + number, b"d" * 40, False), None)
        reference.end_packet()
        expected.append(reference.finish(0))
    builder = TrainBuilder(NOW, DCID, largest_acked)
    for number in numbers:
        assert builder.start_packet(1452, keys, FIXED_BIT, number)
        builder.push_frame(Stream(4, 100_000 + number, b"d" * 40, False), None)
        assert builder.end_packet() is not None
    got = builder.finish()
    assert got == expected
    assert len({len(datagram) for datagram in got}) == 4  # 1- to 4-byte packet numbers


def test_encoded_ack_is_the_ack_frame_bytes() -> None:
    # TrainBuilder.push_ack (the train's first packet: AckTracker.take_encoded_ack's bytes) writes
    # the packet push_frame(Ack) writes, and records the same: not ack-eliciting, not in flight (RFC
    # 9002 §2), the ACK's largest (ACK-of-ACK pruning) and its delivery handler.
    keys = _keys(CipherSuite.AES_128_GCM_SHA256, Version.V1)
    ack = Ack(ranges=((35, 40), (30, 30), (3, 20)), ack_delay=1234, ecn=None)
    writer = Writer()
    write_frame(writer, ack)
    encoded = bytes(writer.buffer)
    delivered: list[bool] = []
    built = []
    for push in ("frame", "encoded"):
        builder = TrainBuilder(NOW, DCID, 10)
        assert builder.start_packet(1452, keys, FIXED_BIT, 12)
        if push == "frame":
            builder.push_frame(ack, delivered.append)
        else:
            builder.push_ack(encoded, 40, delivered.append)
        assert builder.remaining == 1452 - (1 + len(DCID) + 1 + 16) - len(encoded)
        builder.push_frame(Stream(4, 0, b"data", True), None)
        sent = builder.end_packet()
        assert sent is not None
        assert sent.largest_acked_in_ack == 40 and sent.ack_eliciting and sent.in_flight
        for handler in sent.handlers:
            handler(True)
        built.append(builder.finish())
    assert built[0] == built[1]
    assert delivered == [True, True]
    builder = TrainBuilder(NOW, DCID, 10)
    assert builder.start_packet(40, keys, FIXED_BIT, 12)
    room = builder.remaining
    with pytest.raises(ValueError, match="does not fit"):
        builder.push_ack(bytes(room + 1), 40, delivered.append)
    assert builder.remaining == room
    builder.push_ack(bytes((2, 5, 0, 0, 0)), 5, delivered.append)
    sent = builder.end_packet()
    assert sent is not None and not sent.ack_eliciting and sent.largest_acked_in_ack == 5


def test_open_sent_packet_is_the_constructors_record() -> None:
    """The train's record factory sets every SentPacket field as the constructor does (a field added
    to SentPacket and not to the factory fails here), with a list of handlers of its own."""
    ours = open_sent_packet(7, PacketSpace.APPLICATION, NOW)
    theirs = SentPacket(7, PacketSpace.APPLICATION, NOW, 0, False, False, [])
    for field in fields(SentPacket):
        assert getattr(ours, field.name) == getattr(theirs, field.name), field.name
    assert ours == theirs
    assert ours.handlers is not open_sent_packet(8, PacketSpace.APPLICATION, NOW).handlers
