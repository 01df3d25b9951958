"""Packet trains' runs (issue 13): whole packets of one stream's data taken at once.

``TrainSender._stream_run`` takes as many packets as the window, the pacer, the keys and the packet
number length let the train build, each one STREAM frame cut to fill it, in one call per piece
(``StreamOutput.take_run``, ``SendStream.take_full_frames``, ``SendBuffer.take_run``,
``PacketNumberSpace.take_numbers``, ``TrainBuilder.stream_run``). Each piece is held to what the
per-packet path does, and a whole upload to the datagrams of the same train without runs. And the
ledger's work per acknowledged packet (``SentPackets.remove_acked``) against a model.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rudp.quic.rangeset import RangeSet
from rudp.quic.sent import PacketSpace, SentPacket, SentPackets
from rudp.quic.spaces import PacketNumberSpace
from rudp.quic.streams.send import SendStream
from rudp.quic.trains import TrainSender
from rudp.testing.certs import TestPki
from tests.quic.test_packet_train import BODY, _upload


def _stream(rng: random.Random, credit: int) -> SendStream:
    stream = SendStream(4, credit=credit, buffer_bytes=1 << 20)
    for _ in range(rng.randrange(1, 6)):  # several chunks: frames across chunk boundaries
        stream.write(rng.randbytes(rng.randrange(20_000, 200_000)), fin=False)
    return stream


def test_take_full_frames_equals_next_chunk_again_and_again() -> None:
    """The frames taken at once are the cut frames next_chunk gives one by one (data, offsets, the
    stream's and the connection's credit), all of them up to ``most``; after them, next_chunk goes on
    where they ended. Fails with the count one frame off or a frame across a chunk boundary wrong."""
    rng = random.Random(5)
    runs = 0
    for _ in range(300):
        seed, credit = rng.randrange(1 << 30), rng.randrange(30_000, 900_000)
        ours, theirs = _stream(random.Random(seed), credit), _stream(random.Random(seed), credit)
        connection = rng.randrange(20_000, 900_000)
        first = rng.randrange(0x4000, 0x8000)  # the general path sends the first bytes
        for stream in (ours, theirs):
            assert stream.next_chunk(first + 8, connection) is not None
        connection -= first
        size, most = rng.randrange(0x100, 1500), rng.randrange(1, 80)
        start, length, data = ours.take_full_frames(size, connection, most)
        expected = []
        left = connection
        while len(expected) < most:
            built = theirs.next_chunk(size, left)
            if built is None or not built[4]:  # not cut: the run stops before such a frame
                if built is not None:
                    theirs = _replay(seed, credit, first, connection, size, expected)
                break
            expected.append((built[0], built[1]))
            left -= built[3]
        assert [(start + index * length, chunk) for index, chunk in enumerate(data)] == expected
        runs += bool(data)
        assert ours.credit.used == theirs.credit.used
        assert ours.buffer.next_offset == theirs.buffer.next_offset
        assert ours.state is theirs.state
        assert ours.next_chunk(size, connection - length * len(data)) == theirs.next_chunk(size, left)
    assert runs > 200


def _replay(
    seed: int, credit: int, first: int, connection: int, size: int, frames: list[tuple[int, bytes]]
) -> SendStream:
    """A stream that sent its first bytes and then ``frames`` (the one frame not cut is not sent)."""
    stream = _stream(random.Random(seed), credit)
    stream.next_chunk(first + 8, connection + first)
    for _ in frames:
        built = stream.next_chunk(size, connection)
        assert built is not None
        connection -= built[3]
    return stream


def test_take_full_frames_leaves_other_cases_alone() -> None:
    """Nothing is taken (and nothing changes) before the stream sent anything, while a range waits to
    be re-sent, at a 2-byte offset or with a packet too small or too large for the usual header."""
    stream = SendStream(4, credit=1 << 20, buffer_bytes=1 << 20)
    stream.write(bytes(300_000), fin=True)
    assert stream.take_full_frames(1400, 1 << 20, 10) == (0, 0, [])  # Ready: the first frame moves it
    stream.next_chunk(1000, 1 << 20)
    assert stream.take_full_frames(1400, 1 << 20, 10) == (0, 0, [])  # a 2-byte offset
    stream.next_chunk(0x4000, 1 << 20)
    sent = stream.buffer.next_offset
    assert sent > 0x4000
    assert stream.take_full_frames(0xFF, 1 << 20, 10) == (0, 0, [])
    assert stream.take_full_frames(0x4000, 1 << 20, 10) == (0, 0, [])
    stream.on_frame_lost(2000, 3000, False)
    assert stream.take_full_frames(1400, 1 << 20, 10) == (0, 0, [])
    assert stream.buffer.next_offset == stream.credit.used == sent
    stream.next_chunk(1400, 1 << 20)  # the lost range goes
    start, length, data = stream.take_full_frames(1400, 1 << 20, 10)
    assert (start, length, len(data)) == (sent, 1392, 10)
    assert stream.buffer.next_offset == stream.credit.used == sent + 13920


def test_take_numbers_equals_advance() -> None:
    """Numbers taken at once are those of next_pn and advance one by one, skips included (RFC 9000
    §21.4): the same skipped numbers and the same next number."""
    ours = PacketNumberSpace(PacketSpace.APPLICATION, random.Random(3).randbytes, skip_numbers=True)
    theirs = PacketNumberSpace(PacketSpace.APPLICATION, random.Random(3).randbytes, skip_numbers=True)
    rng = random.Random(4)
    for _ in range(500):
        count = rng.randrange(0, 70)
        expected = []
        for _ in range(count):
            expected.append(theirs.next_pn)
            theirs.advance()
        assert ours.take_numbers(count) == expected
        assert ours.next_pn == theirs.next_pn
    assert list(ours.skipped) == list(theirs.skipped) and len(ours.skipped) > 10


@pytest.mark.parametrize("found", [False, True])
def test_runs_give_the_datagrams_of_a_train_without_them(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, found: bool
) -> None:
    """An upload whose trains take runs sends exactly the datagrams of one whose trains build every
    packet alone (sizes, packet numbers, key phases, frames), with the fixed size or the one PMTU
    discovery found (a large-datagram watch on each packet), and most packets came from runs."""
    client = {"max_datagram_size": 1350, "pmtu_discovery": True} if found else {}
    taken = [0]
    original = TrainSender._stream_run

    def counted(self: TrainSender, *args: object) -> object:
        run = original(self, *args)  # type: ignore[arg-type]
        taken[0] += len(run)
        return run

    with monkeypatch.context() as patch:
        patch.setattr(TrainSender, "_stream_run", lambda self, *args: [])
        alone = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=client)
    with monkeypatch.context() as patch:
        patch.setattr(TrainSender, "_stream_run", counted)
        runs = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=client)
    assert runs.received == alone.received == BODY
    assert runs.batches == alone.batches
    assert taken[0] > len(runs.datagrams) // 2
    largest = max(size for size, *_ in runs.datagrams)
    assert largest > 1350 if found else largest == 1452  # found: above the base, watched


def test_remove_acked_matches_a_model() -> None:
    """SentPackets.remove_acked, its runs kept as it pops (the sender's work per acknowledged packet):
    random flights with never-sent numbers and ACKs of overlapping, reordered ranges pop exactly the
    outstanding packets they cover, in ascending order, record them (and nothing else) as acknowledged
    and count the ack-eliciting ones out. Fails with a run's end or the eliciting count off. (Once no
    outstanding packet is left below the numbers covered, none of those is kept: every one is below
    the oldest outstanding packet, which trim_acked would drop.)"""
    rng = random.Random(11)
    for _ in range(200):
        ledger = SentPackets()
        outstanding: dict[int, bool] = {}
        acknowledged: set[int] = set()
        number = 0
        for _ in range(rng.randrange(1, 8)):
            for _ in range(rng.randrange(1, 40)):
                number += 1 + (rng.random() < 0.1)  # now and then a number never sent
                eliciting = rng.random() < 0.9
                ledger.add(SentPacket(number, PacketSpace.APPLICATION, 0.0, 100, eliciting, True))
                outstanding[number] = eliciting
            for _ in range(rng.randrange(1, 4)):
                edges = sorted(rng.sample(range(number + 1), min(number + 1, 2 * rng.randrange(1, 4))))
                ranges = tuple((low, high) for low, high in zip(edges[::2], edges[1::2], strict=False))[::-1]
                if not ranges:
                    continue
                popped = ledger.remove_acked(ranges)
                covered = sorted(n for n in outstanding if any(low <= n <= high for low, high in ranges))
                assert [packet.packet_number for packet in popped] == covered
                for n in covered:
                    del outstanding[n]
                acknowledged.update(covered)
                if not ledger.holes:
                    assert all(n > max(acknowledged, default=-1) for n in outstanding)
                    acknowledged.clear()
                assert ledger.ack_eliciting_in_flight == sum(outstanding.values())
                assert all(ledger.acked_between(n - 1, n + 1) for n in acknowledged)
                expected = RangeSet()
                for n in acknowledged:
                    expected.add(n, n + 1)
                assert ledger.acked == expected
