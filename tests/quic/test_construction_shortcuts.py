"""Shortcuts of a connection's construction (issue 13, server handshake CPU): objects shared while they
hold nothing (a path's challenge and response records, a space's empty keys, the qlog that logs
nothing) and defaults kept on the class until a connection changes them (migration); each against the
general behaviour, with the case that leaves the shared object."""

from __future__ import annotations

import os
import random
from collections import deque

import rudp
from rudp.crypto.suites import CipherSuite
from rudp.quic.congestion import NewReno
from rudp.quic.keys import KeyPair
from rudp.quic.pacing import Pacer
from rudp.quic.paths import MAX_CHALLENGES, MAX_PATH_RESPONSES, Path, PathCongestion
from rudp.quic.pmtud import PmtuDiscovery
from rudp.quic.preferred import Migration, MigrationState
from rudp.quic.qlog import NullQlog
from rudp.quic.qlog_trace import open_qlog
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import PacketSpaces
from rudp.tls.engine import EncryptionLevel


def _path() -> Path:
    congestion = PathCongestion(NewReno(1200), RttEstimator(), Pacer(1200))
    return Path(("10.0.0.1", 5000), validated=False, pmtud=PmtuDiscovery(1200, 1200), congestion=congestion)


def test_paths_share_their_empty_records_until_the_first_challenge_or_response() -> None:
    """A new path's PATH_CHALLENGE and PATH_RESPONSE records are one shared deque that can hold
    nothing; the first of each gives the path its own, bounded as the general one (the latest kept)."""
    first, second = _path(), _path()
    assert first.responses is second.responses and first.challenges is second.challenges
    assert not first.has_frames() and not first.on_response(b"12345678")
    first.stop_validation()  # (clearing the shared record changes nothing)
    datas = [os.urandom(8) for _ in range(MAX_PATH_RESPONSES + 3)]
    for data in datas:
        first.owe_response(data)
    general: deque[bytes] = deque(datas, maxlen=MAX_PATH_RESPONSES)
    assert list(first.responses) == list(general) and first.has_frames()
    assert not second.responses and not second.has_frames() and second.responses.maxlen == 0
    # Challenges: recorded as they are written, the latest MAX_CHALLENGES answerable.
    sent: list[bytes] = []

    class Sink:
        remaining = 1200
        now = 0.0

        def push_frame(self, frame: object) -> None:
            sent.append(frame.data)  # type: ignore[attr-defined]

        def require_padding(self) -> None:
            pass

    for _ in range(MAX_CHALLENGES + 2):
        first.challenge_again()
        first.write_frames(Sink(), os.urandom)  # type: ignore[arg-type]
    challenges = sent[-(MAX_CHALLENGES + 2) :]
    assert list(first.challenges) == challenges[-MAX_CHALLENGES:]
    assert not second.challenges and not second.on_response(challenges[-1])
    assert not first.on_response(challenges[0]) and first.on_response(challenges[-1]) and first.validated


def test_spaces_share_one_empty_key_pair_that_installing_never_changes() -> None:
    spaces = PacketSpaces(1, random.Random(0).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
    other = PacketSpaces(1, random.Random(1).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
    empty = spaces[PacketSpace.HANDSHAKE].keys
    assert empty == KeyPair() and empty is other[PacketSpace.INITIAL].keys
    suite = CipherSuite.AES_128_GCM_SHA256
    spaces.install(EncryptionLevel.HANDSHAKE, read=True, suite=suite, secret=os.urandom(32))
    spaces.install(EncryptionLevel.EARLY_DATA, read=False, suite=suite, secret=os.urandom(32))
    spaces.install_initial(os.urandom(8), is_client=False)
    assert spaces.read_keys(EncryptionLevel.HANDSHAKE) is not None
    assert spaces.write_keys(EncryptionLevel.EARLY_DATA) is not None
    assert spaces.write_keys(EncryptionLevel.HANDSHAKE) is None
    assert empty == KeyPair() and other.read_keys(EncryptionLevel.HANDSHAKE) is None
    assert other.write_keys(EncryptionLevel.EARLY_DATA) is None
    assert other.read_keys(EncryptionLevel.INITIAL) is None


def test_connections_without_qlog_share_the_null_qlog() -> None:
    config = rudp.Config()
    shared = open_qlog(config, is_client=False)
    assert type(shared) is NullQlog and open_qlog(config, is_client=True) is shared
    assert not vars(shared)  # (it holds nothing to share)


def test_migration_defaults_stay_on_the_class_until_a_connection_changes_them() -> None:
    """Migration's never-changed attributes are class defaults: a change is the instance's own."""
    server = Migration(rudp.Config(), is_client=False)
    client = Migration(rudp.Config(), is_client=True)
    other = Migration(rudp.Config(), is_client=True)
    assert server.state is MigrationState.NONE and not server.active and server.target is None
    assert server.advertise(None) is None  # type: ignore[arg-type]  # (no preferred_address configured)
    client.state = MigrationState.PENDING  # (as on_peer_parameters does)
    client.target = ("10.0.0.9", 443)
    assert other.state is MigrationState.NONE and other.target is None and Migration.target is None
    assert Migration(rudp.Config(preferred_address=["10.0.0.9:443"]), is_client=False)._advertised == (
        ("10.0.0.9", 443),
        None,
    )


def test_lifecycles_share_a_closing_record_until_they_end() -> None:
    """A live connection's Closing is one shared, unchanged object; terminating gives a connection its
    own (the frame, the period), as a fresh Closing would have recorded them."""
    from rudp.codec.frames import ConnectionClose
    from rudp.quic.closing import Closing
    from rudp.quic.events import ConnectionTerminated
    from rudp.quic.state import Lifecycle, State

    events: list[object] = []
    first, second = Lifecycle(events.append, lambda: 0.1), Lifecycle(events.append, lambda: 0.1)
    shared = first.closing
    assert second.closing is shared and shared.until is None and not shared.period_pending
    frame = ConnectionClose(0, b"bye", application=True)
    first.terminate(ConnectionTerminated(0, "bye", False, True), 5.0, state=State.CLOSING, frame=frame)
    general = Closing()
    general.start(frame)
    general.begin_period(5.0 + 3 * 0.1)
    assert first.closing is not shared and first.closing.until == general.until
    assert first.closing.take_frame() == general.take_frame() == frame
    first.closing.on_datagram_received()
    assert second.closing is shared and shared.until is None and shared.take_frame() is None
    second.terminate(ConnectionTerminated(0, "", False, True), None)  # (closed at once)
    assert second.closing is not shared and second.state is State.CLOSED
    assert shared.until is None and not shared.period_pending and shared.take_frame() is None
