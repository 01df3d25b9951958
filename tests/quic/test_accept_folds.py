"""Once-per-connection helpers folded into their callers (issue 13, server handshake CPU: fewer
distinct functions touched per accepted connection). Each folded form against the general method it
replaces, called on an equal object: a fold that drifts from it fails here."""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rudp
from rudp.codec.frames import NewConnectionId
from rudp.crypto.suites import AeadLimits, CipherSuite
from rudp.errors import DatagramError
from rudp.quic.cids import LocalConnectionIds, PeerConnectionIds
from rudp.quic.congestion.base import minimum_window
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.congestion.undo import LOST_RING_SIZE, SpuriousLossDetector, Undoable
from rudp.quic.connection import QuicConnection, _new_path_congestion
from rudp.quic.ecn import EcnFeedback
from rudp.quic.key_limits import KeyUsage, _thresholds
from rudp.quic.pmtud import LADDER, SEARCH_GRANULARITY, PmtuDiscovery
from rudp.quic.qlog import NullQlog
from rudp.quic.qlog_trace import open_qlog
from rudp.quic.sent import PacketSpace, SentPacket
from rudp.quic.spaces import SKIPPED_REMEMBERED, PacketNumberSpace, PacketSpaces
from rudp.testing.certs import TestPki
from rudp.tls.engine import EncryptionLevel

_PMTUD_STATE = ("searching", "next_probe_at", "current", "base", "enabled", "_ceiling", "_ceiling_failed")


def _pmtud_state(pmtud: PmtuDiscovery) -> tuple[Any, ...]:
    return tuple(getattr(pmtud, name) for name in _PMTUD_STATE)


_SIZES = sorted({1200, 1201, 1252, 1263, 1264, 1265, 1280, 1350, 1400, 1452, 1500, 4096, 9000, 65527}
                | {size + delta for size in LADDER for delta in (-SEARCH_GRANULARITY, -1, 0, 1)})


@pytest.mark.parametrize("enabled", [True, False])
def test_a_new_pmtu_search_is_settled_as_the_general_settle_leaves_it(enabled: bool) -> None:
    """PmtuDiscovery.__init__ computes ``searching`` and ``next_probe_at`` without :meth:`_settle`:
    the same values as calling it on the new search, for every base and ceiling around the ladder and
    the granularity (and both on the search's later course: the first probe size)."""
    for base, ceiling in itertools.product([1200, 1252, 1350, 1452], _SIZES):
        folded = PmtuDiscovery(base, ceiling, enabled=enabled)
        general = PmtuDiscovery(base, ceiling, enabled=enabled)
        general._settle()
        assert _pmtud_state(folded) == _pmtud_state(general), (base, ceiling)
        assert folded.probe_size(1.0) == general.probe_size(1.0)
        assert _pmtud_state(folded) == _pmtud_state(general), (base, ceiling)


def test_limit_to_lowers_the_ceiling_as_set_ceiling_does() -> None:
    """PmtuDiscovery.limit_to folds set_ceiling in: the same state as lowering the base and current
    size and then calling set_ceiling, for sizes below, at and above the ceiling, on a new search and
    on one whose ceiling failed (a black hole)."""
    for ceiling, size, failed in itertools.product([1200, 1300, 1500, 9000], _SIZES, [False, True]):
        folded = PmtuDiscovery(1200, ceiling)
        general = PmtuDiscovery(1200, ceiling)
        if failed:
            for pmtud in (folded, general):
                pmtud.current = 1400
                pmtud.on_black_hole()
        folded.limit_to(size)
        general.base = min(general.base, size)
        general.current = min(general.current, size)
        general.set_ceiling(size)
        assert _pmtud_state(folded) == _pmtud_state(general), (ceiling, size, failed)


def _counting_bytes() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


@pytest.mark.parametrize("reset_key", [None, b"k" * 32])
def test_the_first_cid_reset_token_is_the_general_one(reset_key: bytes | None) -> None:
    """LocalConnectionIds.__init__ derives sequence 0's token inline: what :meth:`_reset_token` gives
    (the HMAC under the endpoint's key; without one, the next random bytes)."""
    ids = LocalConnectionIds(b"\x05" * 8, reset_key, _counting_bytes(), 8)
    reference = LocalConnectionIds(b"\x05" * 8, reset_key, _counting_bytes(), 8)
    reference._randbytes = _counting_bytes()  # (the same stream again, from its start)
    assert ids.active[0].reset_token == reference._reset_token(b"\x05" * 8)
    assert ids.active[0].sent


def test_set_initial_replaces_the_cid_as_use_does() -> None:
    """PeerConnectionIds.set_initial folds _use in: the same current CID and reset token generation
    (unchanged: sequence 0 keeps its token), before and after the token is known."""
    for token in (None, b"t" * 16):
        folded, general = PeerConnectionIds(b"a", 8), PeerConnectionIds(b"a", 8)
        for ids in (folded, general):
            ids.set_reset_token(token)
        folded.set_initial(b"bb")
        general._use(type(general.current)(0, b"bb", general.current.reset_token))
        assert folded.current == general.current
        assert folded.reset_token_generation == general.reset_token_generation
        assert folded.reset_tokens() == general.reset_tokens()


@pytest.mark.parametrize("interval", [None, 1, 1000, 10**12])
def test_key_usage_thresholds_are_set_as_set_thresholds_sets_them(interval: int | None) -> None:
    folded = KeyUsage(interval=interval)
    general = KeyUsage(interval=interval)
    general._set_thresholds()
    expected = _thresholds(general.limits.confidentiality, interval)
    assert (folded.urgent_at, folded.update_at, folded.close_at) == expected
    assert (general.urgent_at, general.update_at, general.close_at) == expected


def test_ecn_feedback_counts_every_space_in_a_list_of_its_own() -> None:
    feedback = EcnFeedback()
    assert list(feedback.received) == list(PacketSpace)
    assert all(counts == [0, 0, 0] for counts in feedback.received.values())
    assert len({id(counts) for counts in feedback.received.values()}) == len(PacketSpace)


@pytest.mark.parametrize("size", [1200, 1350, 7360, 7361, 9000])
def test_the_minimum_window_is_two_datagrams(size: int) -> None:
    assert NewReno(size).minimum_window_bytes == minimum_window(size)


def test_a_path_without_qlog_drives_the_controller_itself(tmp_path: Path) -> None:
    """_new_path_congestion skips NullQlog.observe: the controller is what observe would return; a
    qlog that logs still gets to wrap it."""
    config = rudp.Config()
    qlog = NullQlog()
    congestion = _new_path_congestion(config, qlog)
    assert qlog.observe(congestion.controller) is congestion.controller
    assert type(congestion.controller) is NewReno
    logged = rudp.Config(qlog_dir=tmp_path)
    trace = open_qlog(logged, is_client=False)
    assert type(trace) is not NullQlog
    controller = _new_path_congestion(logged, trace).controller
    assert type(controller) is type(trace.observe(NewReno(1200))) is not NewReno


def test_a_connection_without_datagrams_has_no_queue_and_refuses_them(pki: TestPki) -> None:
    """Without ``Config.datagrams`` no DatagramQueue is built: send_datagram refuses as before (as it
    does with them before the peer's parameters are known), nothing is queued or expired."""
    for enabled in (False, True):
        config = rudp.Config(cafile=pki.ca_file, server_name="localhost", datagrams=enabled)
        conn = QuicConnection.client(config, server_address=("127.0.0.1", 4433), now=0.0)
        assert (conn._datagram_queue is None) is not enabled
        assert conn.queued_datagrams == 0 and conn.stats.datagrams_expired == 0
        with pytest.raises(DatagramError):
            conn.send_datagram(b"x")
        assert conn.datagrams_to_send(0.0) and conn.queued_datagrams == 0


def test_the_skipped_numbers_record_is_made_at_the_first_skip_as_the_eager_one() -> None:
    """The Application space's skipped-number record (RFC 9000 §21.4) is the shared empty one until
    the first skip: the same numbers, skips and record as a space that owns its record from the
    start, packet by packet and in trains."""
    lazy = PacketNumberSpace(PacketSpace.APPLICATION, random.Random(7).randbytes, skip_numbers=True)
    eager = PacketNumberSpace(PacketSpace.APPLICATION, random.Random(7).randbytes, skip_numbers=True)
    eager.skipped = deque(maxlen=SKIPPED_REMEMBERED)
    assert not lazy.skipped and lazy.skipped.maxlen == 0
    rng = random.Random(8)
    for _ in range(3000):
        if rng.random() < 0.5:
            lazy.advance()
            eager.advance()
        else:
            count = rng.randrange(1, 40)
            assert lazy.take_numbers(count) == eager.take_numbers(count)
        assert lazy.next_pn == eager.next_pn and list(lazy.skipped) == list(eager.skipped)
    assert len(lazy.skipped) == SKIPPED_REMEMBERED and lazy.skipped.maxlen == SKIPPED_REMEMBERED
    assert PacketNumberSpace(PacketSpace.APPLICATION, random.Random(7).randbytes).skipped.maxlen == 0


def _lost(numbers: range) -> list[SentPacket]:
    return [SentPacket(n, PacketSpace.APPLICATION, float(n), 1200, True, True) for n in numbers]


def test_the_lost_ring_is_made_at_the_first_loss_as_the_eager_one() -> None:
    """SpuriousLossDetector's ring of lost packets is the shared empty one until the first loss: the
    same records, undos and thresholds as a detector that owns its ring from the start."""
    rng = random.Random(9)
    lazy, eager = SpuriousLossDetector(NewReno(1200)), SpuriousLossDetector(NewReno(1200))
    eager.lost = deque(maxlen=LOST_RING_SIZE)
    assert not lazy.lost and lazy.lost.maxlen == 0
    assert not lazy.on_ack(PacketSpace.APPLICATION, ((0, 10),), None, 0.1, 1.0)  # (nothing lost yet)
    number = 0
    for step in range(400):
        if rng.random() < 0.4:
            count = rng.randrange(1, 12)
            for detector in (lazy, eager):
                detector.on_packets_lost(_lost(range(number, number + count)), None)
            number += count + rng.randrange(0, 3)
        else:
            high = rng.randrange(0, number + 1)
            ranges = ((max(0, high - rng.randrange(0, 20)), high),)
            now = float(step)
            assert lazy.on_ack(PacketSpace.APPLICATION, ranges, high + 2, 0.1, now) == eager.on_ack(
                PacketSpace.APPLICATION, ranges, high + 2, 0.1, now
            )
        assert list(lazy.lost) == list(eager.lost)
        assert (lazy.packet_threshold, lazy.time_threshold, lazy.spurious_losses) == (
            eager.packet_threshold, eager.time_threshold, eager.spurious_losses
        )
    assert lazy.lost.maxlen == LOST_RING_SIZE and len(lazy.lost) == LOST_RING_SIZE


def test_owed_retirements_are_written_oldest_first_and_again_after_a_loss() -> None:
    """PeerConnectionIds keeps its owed RETIRE_CONNECTION_ID sequences in a list: written in the order
    owed (a queue), a lost one owed again at the end."""
    ids = PeerConnectionIds(b"a", 8)
    for sequence in range(1, 6):
        ids.on_new_connection_id(NewConnectionId(sequence, 0, bytes([sequence]) * 8, bytes([sequence]) * 16))
    ids.on_new_connection_id(NewConnectionId(6, 5, b"\x06" * 8, b"\x06" * 16))  # retire prior to 5
    written: list[tuple[int, Callable[[bool], None]]] = []

    class Sink:
        remaining = 1200

        def push_frame(self, frame: Any, handler: Callable[[bool], None]) -> None:
            written.append((frame.sequence, handler))

    ids.write_frames(Sink())  # type: ignore[arg-type]
    assert [sequence for sequence, _ in written] == [1, 2, 3, 4, 0] and not ids.has_data()
    written[1][1](False)  # sequence 2's frame was lost
    written[3][1](False)
    written.clear()
    ids.write_frames(Sink())  # type: ignore[arg-type]
    assert [sequence for sequence, _ in written] == [2, 4]


def test_a_detector_drives_only_a_controller_that_can_undo() -> None:
    """SpuriousLossDetector looks up whether the controller's class is Undoable (once per class): the
    controller itself when ``isinstance(controller, Undoable)``, None otherwise, first and later."""

    class Plain:
        congestion_events = 0

    for controller in (NewReno(1200), Plain(), NewReno(1350), Plain()):
        detector = SpuriousLossDetector(controller)
        expected = controller if isinstance(controller, Undoable) else None
        assert detector._controller is expected
        assert detector.snapshot() == (None if expected is None else controller.undo_snapshot())  # type: ignore[attr-defined]


@pytest.mark.parametrize("wanted", [False, True])
def test_new_peer_parameters_announce_streams_only_to_an_opener_that_waits(wanted: bool) -> None:
    """apply_peer_parameters calls _announce_streams_available only when an application waits to open
    a stream: the same events and state as calling it whenever the credit grows."""
    from rudp.quic.events import StreamsAvailable
    from rudp.quic.streams.manager import StreamManager
    from tests.quic.streams.helpers import manager, params

    def opened(streams: StreamManager) -> StreamManager:
        streams.apply_peer_parameters(params(streams_bidi=1, streams_uni=0))  # remembered 0-RTT values
        streams.open_stream(True)
        if wanted:
            for bidi in (True, False):
                with pytest.raises(rudp.StreamLimitReached):
                    streams.open_stream(bidi)
        return streams

    folded, general = opened(manager(is_client=True)), opened(manager(is_client=True))
    folded.apply_peer_parameters(params(streams_bidi=3, streams_uni=2))
    general._peer = params(streams_bidi=3, streams_uni=2)  # (the general rule, step by step)
    for bidi, count in ((True, 3), (False, 2)):
        if general._open_credit[bidi].raise_limit(count):
            general._announce_streams_available(bidi)
    assert list(folded.events) == list(general.events)
    assert (StreamsAvailable(True) in folded.events) is wanted
    assert folded.opener_blocked == general.opener_blocked is False
    assert folded._streams_wanted == general._streams_wanted


@pytest.mark.parametrize("before", [None, *CipherSuite])
@pytest.mark.parametrize("limits", [None, AeadLimits(confidentiality=1000, integrity=2000)])
def test_spaces_tell_a_usage_of_a_suite_unless_telling_changes_nothing(
    before: CipherSuite | None, limits: AeadLimits | None
) -> None:
    """PacketSpaces counts a usage that holds the Initial suite's limits as told of that suite (no
    set_suite call for the usual AES-128-GCM): the same limits and thresholds as telling it of every
    suite installed, for a usage told of any suite before, or with its own limits."""
    for suites in itertools.permutations(CipherSuite, 2):
        usage, reference = KeyUsage(limits=limits), KeyUsage(limits=limits)
        if before is not None:
            usage.set_suite(before)
            reference.set_suite(before)
        spaces = PacketSpaces(
            1, random.Random(1).randbytes, max_ack_delay=0.025, ack_delay_exponent=3, usage=usage
        )
        for suite in (*suites, suites[0]):
            size = 48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32
            spaces.install(EncryptionLevel.HANDSHAKE, read=True, suite=suite, secret=bytes(size))
            reference.set_suite(suite)
            state = (usage.limits, usage.update_at, usage.urgent_at, usage.close_at)
            assert state == (reference.limits, reference.update_at, reference.urgent_at, reference.close_at)
