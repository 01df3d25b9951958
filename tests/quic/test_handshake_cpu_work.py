"""Work a handshake no longer does twice (issue 13, handshake CPU), and what it still does every time:
each test fails if the shortcut changes what goes on the wire or what a connection learns."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import rudp.codec.peer_parameters as cache_module
import rudp.quic.handshake as handshake_module
from rudp.codec.peer_parameters import decode_transport_parameters_cached
from rudp.codec.transport_params import TransportParameters, decode_transport_parameters, with_changes
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.handshake import Handshake
from rudp.quic.pacing import Pacer
from rudp.quic.paths import PathCongestion, Paths
from rudp.quic.rtt import RttEstimator
from rudp.testing.certs import TestPki
from tests.support.sim import make_sim


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bool]]:
    calls: list[tuple[bytes, bool]] = []

    def counting(data: Any, *, from_server: bool) -> TransportParameters:
        calls.append((bytes(data), from_server))
        return decode_transport_parameters(data, from_server=from_server)

    def counting_cached(data: Any, *, from_server: bool) -> TransportParameters:
        calls.append((bytes(data), from_server))
        return decode_transport_parameters_cached(data, from_server=from_server)

    monkeypatch.setattr(handshake_module, "decode_transport_parameters", counting)
    monkeypatch.setattr(handshake_module, "decode_transport_parameters_cached", counting_cached)
    return calls


def test_server_decodes_the_clients_transport_parameters_once(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_decodes(monkeypatch)
    sim = make_sim(pki)
    sim.handshake()
    server_decodes = [data for data, from_server in calls if not from_server]
    client_decodes = [data for data, from_server in calls if from_server]
    assert len(server_decodes) == 1 and len(client_decodes) == 1
    # What the server learnt is what the client sent (its own parameters, CIDs included).
    server_view = sim.server.conn._handshake.peer_params
    assert server_view == decode_transport_parameters(server_decodes[0], from_server=False)
    assert server_view is not None
    sent = sim.conn._handshake.local_params
    assert server_view.initial_source_connection_id == sent.initial_source_connection_id
    assert server_view.max_idle_timeout == sent.max_idle_timeout
    assert server_view == sent  # the client's parameters object is what its ClientHello carried
    # And the client received the server's full parameters (encoded once, by the respond hook).
    client_view = sim.conn._handshake.peer_params
    assert client_view is not None
    local = sim.server.conn._handshake.local_params
    assert client_view.original_destination_connection_id == local.original_destination_connection_id
    assert client_view.stateless_reset_token == local.stateless_reset_token is not None
    assert client_view.version_information == local.version_information is not None


def test_server_decodes_a_returning_clients_parameters_from_the_cache(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client's parameters differ between its connections only in initial_source_connection_id,
    # which it writes first: the server decodes the rest once (peer_parameters), then reuses it.
    full: list[bool] = []

    def counting(data: Any, *, from_server: bool) -> TransportParameters:
        full.append(from_server)
        return decode_transport_parameters(data, from_server=from_server)

    monkeypatch.setattr(cache_module, "decode_transport_parameters", counting)
    cache_module._REST.clear()
    views = []
    for _ in range(2):
        sim = make_sim(pki)
        sim.handshake()
        server_view = sim.server.conn._handshake.peer_params
        assert server_view is not None and server_view == sim.conn._handshake.local_params
        views.append(server_view)
    assert full.count(False) == 1  # the first connection's, in full; the second from the cache
    assert views[0].initial_source_connection_id != views[1].initial_source_connection_id


@pytest.mark.parametrize("qlog", [False, True])
def test_server_builds_its_transport_parameters_only_when_asked_for(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, qlog: bool
) -> None:
    built: list[TransportParameters] = []

    def counting(params: TransportParameters, changes: dict[str, object]) -> TransportParameters:
        built.append(result := with_changes(params, changes))
        return result

    monkeypatch.setattr(handshake_module, "with_changes", counting)
    sim = make_sim(pki, server={"qlog_dir": tmp_path} if qlog else None)
    sim.handshake()
    # They are encoded without the object (encode_with_changes): without qlog none is built during
    # the handshake; a qlog logs them at the start (one). A client's are built when asked for too.
    assert len(built) == (1 if qlog else 0)
    local = sim.server.conn._handshake.local_params  # built now, once
    assert len(built) == (2 if qlog else 1) and sim.server.conn._handshake.local_params is local
    assert local.original_destination_connection_id == sim.conn._handshake.original_dcid
    assert local.initial_source_connection_id is not None and local.stateless_reset_token is not None
    assert sim.conn._handshake.peer_params == local  # what the client received: these very values
    if qlog:
        assert any('"owner":"local"' in path.read_text() for path in tmp_path.glob("*server.sqlog"))


@pytest.mark.parametrize(
    ("local", "peer_ms", "expected"),
    [
        (30.0, 10_000, 10.0),  # RFC 9000 §10.1: the smaller of the two
        (5.0, 10_000, 5.0),
        (5.0, 0, 5.0),  # zero: the peer has no idle timeout
        (0.0, 7_000, 7.0),
        (0.0, 0, None),  # neither side has one
        (0.001, 0, 0.75),  # at least 3 PTOs
    ],
)
def test_idle_timeout_is_the_smaller_non_zero_value_and_at_least_three_ptos(
    local: float, peer_ms: int, expected: float | None
) -> None:
    owner = SimpleNamespace(peer_params=dataclasses.replace(TransportParameters(), max_idle_timeout=peer_ms))
    assert Handshake.idle_timeout(owner, local, 0.25) == expected  # type: ignore[arg-type]
    no_peer = SimpleNamespace(peer_params=None)
    assert Handshake.idle_timeout(no_peer, local, 0.25) == (None if local <= 0 else max(local, 0.75))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("retry", "deadline", "expected"),
    [
        (None, None, None),
        (1.0, None, 1.0),
        (None, 2.0, 2.0),
        (1.0, 2.0, 1.0),
        (3.0, 2.0, 2.0),
        (2.0, 2.0, 2.0),
    ],
)
def test_path_deadline_is_the_earlier_of_retry_and_validation(
    retry: float | None, deadline: float | None, expected: float | None
) -> None:
    paths = Paths(
        ("10.0.0.1", 1),
        validated=False,
        base_size=1200,
        max_size=1500,
        pmtu_discovery=False,
        new_congestion=lambda: PathCongestion(NewReno(1200), RttEstimator(), Pacer(1200)),
        randbytes=lambda n: bytes(n),
    )
    paths.current.challenge_retry_at, paths.current.validation_deadline = retry, deadline
    assert paths.next_deadline() == expected
