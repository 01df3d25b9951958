"""The network cases' machinery: the tap's impairments do what they say, and each check fails when what
it verifies did not happen (a loss case without loss, a blackhole that never began, a server flight too
small for the amplification limit to matter, a server beyond three times, missing handshakes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket

import pytest

from interop.cases import CASES_BY_NAME, DIRECTIONS, Environment, Observation, run_case
from interop.ecn_link import CE, ECT_0, ECT_1, NOT_ECT
from interop.impair import Impairer, Impairment, flip_bit
from interop.network import (
    amplification_budget,
    amplification_respected,
    ecn_marked_and_acknowledged,
    handshakes,
)
from interop.peers.base import VERSION_1, ClientConnectionResult, EndpointReport
from interop.tap import WireTap, initial_scids
from tests.interop.conftest import TEST_SEED

RUDP_RUDP = DIRECTIONS[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fates(impairer: Impairer, direction: str, count: int, size: int = 100) -> list[str]:
    fates = []
    for _ in range(count):
        impairer.apply(direction, bytes(size))  # type: ignore[arg-type]
        fates.append(impairer.last_fate)
    return fates


def test_same_seed_same_fates_and_per_direction_streams() -> None:
    spec = Impairment(drop_to_server=0.3, drop_to_client=0.3)
    first, again, other = Impairer(spec, 7), Impairer(spec, 7), Impairer(spec, 8)
    a = _fates(first, "to_server", 200)
    assert _fates(again, "to_server", 200) == a
    assert _fates(other, "to_server", 200) != a
    # interleaving the other direction does not shift this one's stream
    mixed = Impairer(spec, 7)
    interleaved = []
    for _ in range(200):
        mixed.apply("to_client", bytes(100))
        mixed.apply("to_server", bytes(100))
        interleaved.append(mixed.last_fate)
    assert interleaved == a
    assert 30 < a.count("dropped") < 90  # about 30 %


def test_burst_caps_the_hits_in_a_row() -> None:
    impairer = Impairer(Impairment(drop_to_server=1.0, burst=3), 1)
    burst = ["dropped"] * 3 + ["delivered"]
    assert _fates(impairer, "to_server", 8) == burst + burst
    assert impairer.count("to_server", "dropped") == 6
    assert impairer.summary() == {"seed": 1, "to_server_delivered": 2, "to_server_dropped": 6}


def test_corruption_flips_exactly_one_bit() -> None:
    data = bytes(range(256)) * 4
    for seed in range(20):
        corrupted = flip_bit(data, random.Random(seed))
        assert len(corrupted) == len(data)
        assert sum(bin(a ^ b).count("1") for a, b in zip(data, corrupted, strict=True)) == 1
    impairer = Impairer(Impairment(corrupt_to_client=1.0, burst=1), 3)
    out = impairer.apply("to_client", data)
    assert out is not None and out != data and impairer.last_fate == "corrupted"
    assert impairer.apply("to_client", data) == data  # the burst of one is over


def test_drop_list_and_oversized() -> None:
    impairer = Impairer(Impairment(drop_list_to_server=(2, 3)), 0)
    assert _fates(impairer, "to_server", 4) == ["delivered", "dropped", "dropped", "delivered"]
    assert impairer.apply("to_server", bytes(1473)) is None and impairer.last_fate == "oversized"
    assert impairer.apply("to_server", bytes(1472)) is not None
    assert Impairer(Impairment(max_datagram=None), 0).apply("to_client", bytes(9000)) is not None


def test_blackhole_starts_after_bytes_and_ends_after_its_time() -> None:
    clock = FakeClock()
    impairer = Impairer(Impairment(blackhole_after=1000, blackhole_seconds=2.0), 0, clock)
    assert _fates(impairer, "to_client", 10) == ["delivered"] * 10  # 1000 bytes delivered
    assert impairer.blackhole_started is None
    assert _fates(impairer, "to_client", 1) == ["blackholed"]
    clock.now = 1.9
    assert _fates(impairer, "to_server", 1) == ["blackholed"]
    clock.now = 2.0
    assert _fates(impairer, "to_server", 1) + _fates(impairer, "to_client", 1) == ["delivered"] * 2
    assert impairer.blackhole_ended and impairer.delivered_after_blackhole["to_client"] == 1
    clock.now = 3.0
    assert _fates(impairer, "to_client", 1) == ["delivered"]  # only one blackout


def test_initial_scids_reads_the_server_initial() -> None:
    initial = bytes([0xC0]) + VERSION_1.to_bytes(4, "big") + bytes([2]) + b"dd" + bytes([3]) + b"sss"
    initial += bytes([0, 2]) + b"xy"  # token length 0, payload length 2
    handshake = bytes([0xE0]) + VERSION_1.to_bytes(4, "big") + bytes([2]) + b"dd" + bytes([3]) + b"sss"
    assert initial_scids(initial + handshake + bytes([1]) + b"z") == [b"sss"]
    assert initial_scids(handshake + bytes([1]) + b"z") == []


History = list[tuple[str, int, tuple[str, ...], str]]


def _observation(history: History) -> Observation:
    tap = WireTap(("127.0.0.1", 1))
    tap.history = history  # type: ignore[assignment]
    return Observation([], [], tap, {})


_CLIENT_HELLO = ("to_server", 1200, ("initial",), "delivered")
_CLIENT_HANDSHAKE = ("to_server", 50, ("handshake",), "delivered")
_SERVER_1000 = ("to_client", 1000, ("handshake",), "delivered")


def test_amplification_budget_follows_the_runners_walk() -> None:
    within: History = [
        _CLIENT_HELLO,
        *[("to_client", 1200, ("handshake",), "delivered")] * 3,
        ("to_server", 1200, ("initial", "handshake"), "dropped"),  # never reached the server
        _CLIENT_HANDSHAKE,
        *[("to_client", 1200, ("handshake",), "delivered")] * 5,
    ]
    budget = amplification_budget(within)
    assert (budget.client_bytes, budget.server_bytes, budget.validated, budget.exceeded_at) == (
        1200,
        3600,
        True,
        None,
    )
    assert amplification_respected(_observation(within)) == []


def test_amplification_check_catches_an_excess_and_a_small_flight() -> None:
    beyond: History = [_CLIENT_HELLO, *[_SERVER_1000] * 9, _CLIENT_HANDSHAKE]
    assert amplification_respected(_observation(beyond)) == [
        "the server sent 4000 bytes to an unvalidated address that had sent 1200: more than 3 times"
    ]
    small: History = [_CLIENT_HELLO, *[_SERVER_1000] * 2, _CLIENT_HANDSHAKE]
    assert amplification_respected(_observation(small)) == [
        "the server's Handshake datagrams carried only 2000 bytes against 1200 from the client:"
        " the limit was never in the way (no long certificate chain?)"
    ]
    assert "no Handshake packet from the client reached the server" in amplification_respected(
        _observation([_CLIENT_HELLO])
    )


def test_handshakes_counts_server_initial_scids() -> None:
    obs = _observation([])
    obs.clients = [ClientConnectionResult(EndpointReport("rudp", "client"))] * 3
    obs.tap.server_initial_scids = {b"a", b"b"}
    assert handshakes(obs) == ["the server's Initial packets carried 2 source connection IDs, want 3"]


async def test_loss_check_needs_losses(interop_env: Environment) -> None:
    case = dataclasses.replace(CASES_BY_NAME["transferloss"], impairment=Impairment())
    result = await run_case(case, RUDP_RUDP, interop_env, seed=TEST_SEED)
    assert result.problems == [
        f"the tap left every datagram {direction} undropped (seed {TEST_SEED}): the case tested nothing"
        for direction in ("to_server", "to_client")
    ]


async def test_blackhole_check_needs_a_blackout(interop_env: Environment) -> None:
    case = dataclasses.replace(CASES_BY_NAME["blackhole"], impairment=Impairment())
    result = await run_case(case, RUDP_RUDP, interop_env, seed=TEST_SEED)
    assert result.problems == ["the blackout never started"]


async def test_amplification_check_needs_the_long_chain(interop_env: Environment) -> None:
    case = dataclasses.replace(CASES_BY_NAME["amplificationlimit"], long_chain=False)
    result = await run_case(case, RUDP_RUDP, interop_env, seed=TEST_SEED)
    assert len(result.problems) == 1 and "the limit was never in the way" in result.problems[0]


async def test_impaired_results_record_seed_and_counts(interop_env: Environment) -> None:
    result = await run_case(CASES_BY_NAME["transferloss"], RUDP_RUDP, interop_env, seed=TEST_SEED)
    assert result.ok, result.problems
    assert result.seed == TEST_SEED
    counts = result.wire["impairment"]
    assert counts["seed"] == TEST_SEED and counts["to_server_dropped"] > 0 and counts["to_client_dropped"] > 0
    assert (await run_case(CASES_BY_NAME["handshake"], RUDP_RUDP, interop_env)).seed is None


def _ecn_observation(
    marks: dict[tuple[str, int], int], state: str, peer_counts: tuple[int, ...]
) -> Observation:
    tap = WireTap(("127.0.0.1", 1), ecn=True)
    tap.ecn_marks.update(marks)  # type: ignore[arg-type]
    client = EndpointReport("rudp", "client", ecn_state=state, ecn_peer_counts=peer_counts)
    server = EndpointReport("rudp", "server", ecn_state="capable", ecn_peer_counts=(5, 0, 0))
    return Observation([ClientConnectionResult(client)], [server], tap, {})


def test_ecn_check_needs_marks_no_ce_and_ack_ecn() -> None:
    good = _ecn_observation({("to_server", ECT_0): 9, ("to_client", ECT_0): 40}, "capable", (30, 0, 0))
    assert ecn_marked_and_acknowledged(good) == []
    bad = _ecn_observation({("to_server", NOT_ECT): 9, ("to_client", CE): 2}, "failed", (0, 0, 0))
    assert ecn_marked_and_acknowledged(bad) == [
        "no ECT-marked datagram to_server (seen: Not-ECT 9)",
        "no ECT-marked datagram to_client (seen: CE 2)",
        "2 datagrams to_client arrived marked CE",
        "connection 0: the server (rudp) sent no ACK_ECN counts",
        "connection 0: client (rudp) ECN state failed",
    ]
    # The runner wants every packet marked, with one codepoint per direction.
    mixed = _ecn_observation(
        {
            ("to_server", ECT_0): 9,
            ("to_server", NOT_ECT): 1,
            ("to_client", ECT_0): 4,
            ("to_client", ECT_1): 3,
        },
        "capable",
        (30, 0, 0),
    )
    assert ecn_marked_and_acknowledged(mixed) == [
        "1 datagrams to_server not marked ECT",
        "both ECT(0) and ECT(1) datagrams to_client (4, 3)",
    ]


def _receive_mark(sock: socket.socket) -> tuple[bytes, int, tuple[str, int]]:
    data, ancillary, _flags, addr = sock.recvmsg(2048, socket.CMSG_SPACE(4))
    marks = [payload[0] & 3 for level, kind, payload in ancillary if level == socket.IPPROTO_IP]
    return data, marks[0] if marks else NOT_ECT, addr


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    sock.settimeout(5.0)
    return sock


async def _through_tap(ecn: bool) -> tuple[list[int], WireTap]:
    """Send marked datagrams both ways through a tap; the marks that arrived, and the tap."""
    loop = asyncio.get_running_loop()
    with _udp_socket() as server, _udp_socket() as client:
        async with WireTap(server.getsockname(), ecn=ecn) as tap:
            arrived = []
            for mark in (ECT_0, CE):
                client.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, mark)
                client.sendto(b"\x40" + bytes(30), ("127.0.0.1", tap.port))
                _data, got, upstream = await loop.run_in_executor(None, _receive_mark, server)
                arrived.append(got)
            server.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, ECT_1)
            server.sendto(b"\x41" + bytes(30), upstream)
            arrived.append((await loop.run_in_executor(None, _receive_mark, client))[1])
    return arrived, tap


async def test_the_ecn_tap_forwards_marks_and_counts_them() -> None:
    arrived, tap = await _through_tap(ecn=True)
    assert arrived == [ECT_0, CE, ECT_1]
    assert tap.ecn_marks == {("to_server", ECT_0): 1, ("to_server", CE): 1, ("to_client", ECT_1): 1}
    assert tap.summary()["ecn"] == {"to_client_ECT(1)": 1, "to_server_CE": 1, "to_server_ECT(0)": 1}
    bleached, _tap = await _through_tap(ecn=False)  # asyncio's transports: what every other case gets
    assert bleached == [NOT_ECT, NOT_ECT, NOT_ECT]


async def test_every_initial_probe_carries_the_client_hello(interop_env: Environment) -> None:
    # The ClientHello and the first probe are dropped: only the second probe of the first PTO reaches
    # aioquic, which closes the connection unless that probe carries the ClientHello too.
    case = dataclasses.replace(CASES_BY_NAME["handshake"], impairment=Impairment(drop_list_to_server=(1, 2)))
    result = await run_case(case, DIRECTIONS[0], interop_env, seed=TEST_SEED)
    assert result.ok, result.problems


async def test_a_peers_timeout_is_not_the_cases_deadline(
    interop_env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def handshake_timed_out(*_args: object) -> Observation:
        raise TimeoutError("the handshake did not complete within 10 s")

    monkeypatch.setattr("interop.cases._exercise", handshake_timed_out)
    result = await run_case(CASES_BY_NAME["handshakeloss"], RUDP_RUDP, interop_env, seed=1)
    assert result.problems == ["TimeoutError: the handshake did not complete within 10 s"]
