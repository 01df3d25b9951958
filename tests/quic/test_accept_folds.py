"""Once-per-connection helpers folded into their callers (issue 13, server handshake CPU: fewer
distinct functions touched per accepted connection). Each folded form against the general method it
replaces, called on an equal object: a fold that drifts from it fails here."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rudp
from rudp.errors import DatagramError
from rudp.quic.cids import LocalConnectionIds, PeerConnectionIds
from rudp.quic.congestion.base import minimum_window
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.connection import QuicConnection, _new_path_congestion
from rudp.quic.ecn import EcnFeedback
from rudp.quic.key_limits import KeyUsage, _thresholds
from rudp.quic.pmtud import LADDER, SEARCH_GRANULARITY, PmtuDiscovery
from rudp.quic.qlog import NullQlog
from rudp.quic.qlog_trace import open_qlog
from rudp.quic.sent import PacketSpace
from rudp.testing.certs import TestPki

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
