"""Migration that never stalls (RFC 9000 §8, §9): a download while the client's NAT keeps rebinding it to
new ports and new IP addresses, with and without loss, with PMTU discovery probing, plus a client that
migrates on purpose in the middle of a PMTU search; and where PATH_RESPONSEs go.

Every download test hashes the data delivered and measures, on the simulated clock, the longest time
the client's application went without receiving a new byte: it must stay within one RTT plus one PTO.

A run is a pure function of its seed: the link draws its losses from the seed, and both endpoints draw
their randomness (connection IDs, packet-number skips, PATH_CHALLENGE data, TLS randoms and key shares)
from ``Config.randbytes`` seeded with it too. What stays random (the test PKI, the ECDSA signature in
the handshake, the stream's content) changed no datagram size or time in the runs checked (one seed, 13
certificates: identical traces).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from rudp.codec.frames import PathChallenge, PathResponse, Ping
from rudp.crypto.suites import CipherSuite
from rudp.quic.sent import PacketSpace
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import EndpointWrapper, Recorder, Sim, Sniffer, make_sim

MIB = 1 << 20
DELAY = 0.01
"""One-way delay of the simulated link (RTT 20 ms)."""
MAX_ACK_DELAY = 0.025


@dataclass
class Rebinder(EndpointWrapper):
    """Wraps the client's sim endpoint: its NAT gives it a new address (a new port, or a new IP address
    and port) as it sends every ``every``-th datagram, so that datagram already comes from the new
    address, as a rebinding NAT does. The old mapping is gone at once: datagrams still in flight to it
    are dropped (as unroutable) by the simulator."""

    side: ClassVar[str] = "client"
    every: int
    change_ip: bool
    sent: int = 0
    rebindings: int = 0
    addresses: list[tuple[str, int]] = field(default_factory=list)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        out = self.inner.datagrams_to_send(now)
        before, self.sent = self.sent, self.sent + len(out)
        if out and self.sent // self.every > before // self.every:
            self.rebindings += 1
            n = self.rebindings
            host = f"10.{1 + n // 250}.{n % 250}.7" if self.change_ip else self.sim.pair.client_addr[0]
            addr = (host, 20000 + n % 40000)
            self.addresses.append(addr)
            self.sim.pair.rebind_client(addr)  # the batch leaves from the new address
        return out


def _check_amplification(sim: Sim) -> None:
    """RFC 9000 §8.1, §9.3: no unvalidated path of the server got more than 3x what came from it."""
    for conn in sim.server.connections:
        for path in conn._paths:
            if not path.validated:
                assert path.sent_bytes <= 3 * path.received_bytes, path


def _download(
    sim: Sim, size: int, max_time: float, on_progress: Callable[[int], None] | None = None
) -> tuple[bytes, bytes, float]:
    """Fetch ``size`` bytes from the server on one stream; return (sent, received, longest gap).
    ``on_progress`` is told the bytes received each time more arrived."""
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"GET /big\r\n")
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=5)
    data = os.urandom(size)
    sim.server.send(stream_id, data)
    received = 0
    last_progress = sim.clock.now
    longest_gap = 0.0

    def progress() -> bool:
        nonlocal received, last_progress, longest_gap
        now_received = len(sim.client.streams.get(stream_id, b""))
        if now_received > received:
            longest_gap = max(longest_gap, sim.clock.now - last_progress)
            received, last_progress = now_received, sim.clock.now
            if on_progress is not None:
                on_progress(received)
        _check_amplification(sim)
        return stream_id in sim.client.finished

    done = sim.pair.drive(until=progress, max_time=max_time)
    got = bytes(sim.client.streams.get(stream_id, b""))
    assert done, (
        f"download stalled: {len(got)} of {size} bytes after {max_time} s, "
        f"nothing new for {sim.clock.now - last_progress:.3f} s"
    )
    return data, got, longest_gap


def _seeded(options: dict[str, object], role: str, seed: int) -> dict[str, object]:
    """``options`` with ``randbytes`` drawn from ``seed`` (one stream per endpoint)."""
    return {**options, "randbytes": random.Random(f"{role}/{seed}").randbytes}


def _stall_bound(sim: Sim) -> float:
    """One RTT plus one PTO (RFC 9002 §6.2.1: smoothed + 4 * rttvar + max_ack_delay; rttvar is at most
    half the RTT on this jitter-free link, the RTT at least the link's)."""
    rtt = max(2 * DELAY, sim.conn.stats.smoothed_rtt, sim.server.conn.stats.smoothed_rtt)
    return rtt + (rtt + 4 * rtt / 2 + MAX_ACK_DELAY)


@pytest.mark.parametrize(
    ("every", "change_ip", "loss", "mtu", "seed"),
    [
        pytest.param(40, True, 0.0, 16384, 7, id="ip-every-40"),
        pytest.param(40, False, 0.0, 16384, 7, id="port-every-40"),
        pytest.param(25, True, 0.01, 16384, 7, id="ip-every-25-lossy"),
        pytest.param(60, True, 0.0, 1472, 7, id="ip-every-60-ethernet"),
        # 3% loss: these seeds stalled until the idle timeout in about half the runs when the only
        # datagram from a new address was a non-ack-eliciting ACK of one data packet and the
        # server's PATH_CHALLENGE to it (all its anti-amplification allowance) was lost: nothing of
        # the client's was in flight, so it never spoke again (RFC 9000 §13.2.4, now a PING).
        pytest.param(25, True, 0.03, 16384, 0, id="ip-every-25-3pct-seed0"),
        pytest.param(25, True, 0.03, 16384, 3, id="ip-every-25-3pct-seed3"),
        # Seeds that stalled at 41f8370 (found by a sweep of seeds 0-59 per variant; a change elsewhere,
        # congestion control for one, reshuffles every trajectory, so a seed pins its scenario only
        # for the code it was found on), each for a cause fixed in rudp.quic.acks and sending:
        # the client's ACK was lost and its PTO probes carried only PINGs, so the server, at its
        # minimum window, waited for its own PTO (0.217 s; RFC 9002 §6.2.4);
        pytest.param(25, False, 0.03, 16384, 2, id="port-every-25-3pct-seed2"),
        # the client's first packet from its new address (an ACK) was lost, then its earlier
        # ACK + PING was declared lost: nothing of the client's in flight, so no PTO, and silence
        # until the idle timeout (a lost keep-alive PING is now replaced at once);
        pytest.param(25, False, 0.03, 16384, 5, id="port-every-25-3pct-seed5"),
        # the same with a PTO probe's PING lost instead, and the IP address changing.
        pytest.param(25, True, 0.03, 16384, 53, id="ip-every-25-3pct-seed53"),
    ],
)
def test_repeated_nat_rebinding_during_a_download_never_stalls(
    pki: TestPki, every: int, change_ip: bool, loss: float, mtu: int, seed: int
) -> None:
    link = LinkConfig(delay=DELAY, loss=loss, mtu=mtu, seed=seed)
    options = {"max_pmtu": 16384}
    client, server = _seeded(options, "client", seed), _seeded(options, "server", seed)
    sim = make_sim(pki, link=link, client=client, server=server)
    sim.handshake()
    sim.pair.run_for(0.2)
    rebinder = Rebinder(sim, every, change_ip)
    rebinder.install()
    data, got, gap = _download(sim, 10 * MIB, max_time=120)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert rebinder.rebindings >= 15  # 19 to 40 in the cases below (every 40: 19 since 41f8370)
    sim.pair.run_for(0.1)  # the client's last datagrams (maybe from a new address) arrive
    server_conn = sim.server.conn
    assert server_conn.peer_address == sim.pair.client_addr
    assert server_conn.stats.path_changes >= rebinder.rebindings // 2
    # With loss a hole in the stream also waits for its repair (loss detection after up to 9/8 RTT,
    # then the retransmission's trip), whatever the rebindings: twice the bound. It cannot hold when
    # the retransmission is lost too: each further loss of the same bytes costs one more detection,
    # by PTO when nothing after it is acknowledged (a sweep of both 3% variants, seeds 0-42 at
    # 41f8370 with the fixes: 2 of 85 runs, 0.22 and 0.34 s, no rebinding near either); the seeds
    # here have no such double loss.
    bound = _stall_bound(sim) if not loss else 2 * _stall_bound(sim)
    assert gap <= bound, f"delivery stalled for {gap:.3f} s (bound {bound:.3f} s)"
    assert sim.client.terminated is None and sim.server.terminated is None


def test_client_migration_during_a_pmtu_search_never_stalls(pki: TestPki) -> None:
    link = LinkConfig(delay=DELAY, mtu=16384, seed=3)
    sim = make_sim(pki, link=link, client={"max_pmtu": 16384}, server={"max_pmtu": 16384})
    sim.handshake()
    sim.pair.run_for(0.2)
    migrated: list[float] = []
    server_sizes: list[int] = []

    class MigrateOnce(Rebinder):
        def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
            server_sizes.append(sim.server.conn.stats.max_datagram_size)
            if not migrated and sim.server.conn.stats.max_datagram_size > 4000:
                # The server's PMTU search is under way: the client moves to a new address on purpose.
                migrated.append(now)
                sim.conn.migrate(now)
                sim.pair.rebind_client(("10.0.9.9", 6000))
            return self.inner.datagrams_to_send(now)

    MigrateOnce(sim, 1, True).install()
    data, got, gap = _download(sim, 6 * MIB, max_time=60)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert migrated, "the PMTU search never got under way"
    server_conn = sim.server.conn
    assert server_conn.peer_address == ("10.0.9.9", 6000)
    assert gap <= _stall_bound(sim), f"delivery stalled for {gap:.3f} s"
    # The new path starts at the base size and searches again once validated (RFC 9000 §14.3).
    after = server_sizes[len(server_sizes) // 2 :]
    assert min(server_sizes) == 1350 and after[-1] > 4000


Sent = list[tuple[bytes, tuple[str, int]]]


def _responses(sniffer: Sniffer, sent: Sent) -> Sent:
    return [
        (frame.data, dst)
        for datagram, dst in sent
        for frame in sniffer.frames(datagram) or []
        if isinstance(frame, PathResponse)
    ]


def _spoofing_sim(pki: TestPki, tmp_path: Path) -> tuple[Sim, Sniffer, Sniffer, Recorder]:
    keylog = tmp_path / "keys.log"
    suite = CipherSuite.AES_128_GCM_SHA256
    client = {"secrets_log": keylog, "cipher_suites": [suite]}
    sim = make_sim(pki, link=LinkConfig(delay=DELAY), client=client)
    sim.handshake()
    sim.pair.run_for(0.2)
    recorder = Recorder(sim)
    recorder.install()
    client_sniffer = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", suite)
    server_sniffer = Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", suite)
    return sim, client_sniffer, server_sniffer, recorder


def test_a_probe_is_answered_at_once_on_its_own_path_without_migrating(pki: TestPki, tmp_path: Path) -> None:
    sim, client_sniffer, server_sniffer, recorder = _spoofing_sim(pki, tmp_path)
    server_conn = sim.server.conn
    prober = ("10.7.7.7", 7777)
    # A probing packet (PATH_CHALLENGE only, RFC 9000 §9.1) from another address: a copy of the client's
    # next packet, which the client then really sends (the server drops that one as a duplicate).
    number = sim.conn._spaces[PacketSpace.APPLICATION].next_pn
    packet = client_sniffer.forge(server_conn.local_cids()[0], number, [PathChallenge(b"probe-01")])
    sim.pair.server.receive_datagram(packet, prober, sim.clock.now)
    sim.conn.ping()
    sim.pair.flush()
    # RFC 9000 §8.2.2: answered at once, on the path the challenge came on, within 3x what came from it.
    to_prober = [datagram for datagram, dst in recorder.sent if dst == prober]
    assert len(to_prober) == 1 and len(to_prober[0]) <= 3 * len(packet)
    assert _responses(server_sniffer, recorder.sent) == [(b"probe-01", prober)]
    assert server_conn.peer_address == sim.pair.client_addr  # a probe does not move the connection
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"still here")
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=2)


def test_a_failed_validation_does_not_strand_the_responses_it_owed(pki: TestPki, tmp_path: Path) -> None:
    sim, client_sniffer, server_sniffer, recorder = _spoofing_sim(pki, tmp_path)
    server_conn = sim.server.conn
    spoofed = ("10.9.9.9", 666)
    number = sim.conn._spaces[PacketSpace.APPLICATION].next_pn
    frames = [PathChallenge(b"spoof-01"), Ping()]  # non-probing: the server moves to the address
    packet = client_sniffer.forge(server_conn.local_cids()[0], number, frames)
    sim.pair.c2s.update(drop_filter=lambda data, index: True)  # the client is unheard meanwhile
    sim.pair.server.receive_datagram(packet, spoofed, sim.clock.now)
    sim.conn.ping()
    assert server_conn.peer_address == spoofed
    sim.pair.run_for(3.0)
    assert server_conn.peer_address == sim.pair.client_addr and server_conn.path_validation_failures == 1
    # The response went to the address its challenge came from, at once; none went to the client
    # after the fall back (RFC 9000 §8.2.2), and nothing sent to the spoofed address exceeded 3x.
    assert _responses(server_sniffer, recorder.sent) == [(b"spoof-01", spoofed)]
    assert recorder.sent[0][1] == spoofed
    assert sum(len(d) for d, dst in recorder.sent if dst == spoofed) <= 3 * len(packet)
    sim.pair.c2s.update(drop_filter=None)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"still here")
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=5)


def _challenges(sniffer: Sniffer, sent: Sent, dst: tuple[str, int]) -> list[int]:
    """The sizes of the datagrams to ``dst`` that carry a PATH_CHALLENGE."""
    return [
        len(datagram)
        for datagram, to in sent
        if to == dst and any(isinstance(frame, PathChallenge) for frame in sniffer.frames(datagram) or [])
    ]


def test_challenges_within_a_small_allowance_go_unpadded_and_again(pki: TestPki, tmp_path: Path) -> None:
    # A NAT rebinding whose only datagram from the new address is small: 3x of it is far below 1200
    # bytes, so no challenge can be expanded (RFC 9000 §8.2.1). Padded to the allowance, one challenge
    # would spend it all, and if it were lost nothing could follow (idle timeout). Unpadded, two leave
    # at once (§8.2.1: several MAY be sent), and once the peer sends again from there (its PTO probe)
    # a retry follows after a PTO, all within 3x (§8.1).
    sim, client_sniffer, server_sniffer, recorder = _spoofing_sim(pki, tmp_path)
    server_conn = sim.server.conn
    moved = ("10.9.9.8", 667)
    number = sim.conn._spaces[PacketSpace.APPLICATION].next_pn
    packet = client_sniffer.forge(server_conn.local_cids()[0], number, [Ping()])
    sim.pair.c2s.update(drop_filter=lambda data, index: True)  # the client is unheard meanwhile
    sim.pair.server.receive_datagram(packet, moved, sim.clock.now)
    assert server_conn.peer_address == moved
    sim.pair.flush()
    first = _challenges(server_sniffer, recorder.sent, moved)
    assert len(first) == 2 and sum(first) <= 3 * len(packet) < 1200
    sim.pair.run_for(0.05)
    probe = client_sniffer.forge(server_conn.local_cids()[0], number + 1, [Ping()])
    sim.pair.server.receive_datagram(probe, moved, sim.clock.now)
    sim.pair.run_for(1.0)
    assert len(_challenges(server_sniffer, recorder.sent, moved)) >= 3  # sent again after a PTO
    assert sum(len(d) for d, dst in recorder.sent if dst == moved) <= 3 * (len(packet) + len(probe))


@dataclass
class DropToAddress(EndpointWrapper):
    """Wraps the server's sim endpoint: of the datagrams it sends to ``address``, those whose rank
    (0: the first) is in ``drops`` are lost."""

    address: tuple[str, int]
    drops: frozenset[int]
    sent: int = 0

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        out = []
        for datagram, addr in self.inner.datagrams_to_send(now):
            if addr == self.address:
                self.sent += 1
                if self.sent - 1 in self.drops:
                    continue
            out.append((datagram, addr))
        return out


def _download_across_a_rebinding(pki: TestPki, drops: tuple[int, ...]) -> float:
    """A download of 256 KiB whose client moves to a new port halfway (while it is not sending); the
    server's datagrams to the new port ranked in ``drops`` are lost. Returns the longest gap."""
    moved = ("10.0.0.1", 30001)
    size = 256 * 1024
    options = {"randbytes": random.Random("rebinding/1").randbytes}
    sim = make_sim(pki, link=LinkConfig(delay=DELAY, seed=1), client=options, server=options)
    sim.handshake()
    sim.pair.run_for(0.2)
    dropper = DropToAddress(sim, moved, frozenset(drops))
    dropper.install()

    def rebind_at_half(received: int) -> None:
        if received >= size // 2 and sim.pair.client_addr != moved:
            sim.pair.rebind_client(moved)

    data, got, gap = _download(sim, size, max_time=10, on_progress=rebind_at_half)
    assert got == data, drops
    assert sim.server.conn.peer_address == moved, drops
    assert dropper.sent > max(drops, default=0), drops  # the losses happened
    return gap


def test_a_rebinding_whose_first_datagrams_back_are_lost_never_stalls(pki: TestPki) -> None:
    # One NAT rebinding in the middle of a download, at a moment the client is not sending, and every
    # combination of losses among the server's first five datagrams to the new port. Its allowance
    # there is 3x the client's small ACKs and PINGs (RFC 9000 §8.1): two unpadded challenges and an
    # ACK, then two retries a PTO apart. With the challenges and the retries lost (drops {0, 1, 3, 4}),
    # the one datagram that arrived was the bare ACK of the client's PING: the client, nothing in
    # flight, fell silent; the server, its allowance spent, could not challenge again; the validation
    # failed after 2 s, the server went back to the dead port, and the download stood still until
    # the idle timeout (likely the rare 10 s stall of tests/aio/test_rebinding.py). Every datagram on a path
    # under validation now carries a PATH_CHALLENGE (§8.2.1), so any of them that arrives is answered.
    # _download checks the anti-amplification limit all along.
    gaps = {
        drops: _download_across_a_rebinding(pki, drops)
        for count in range(6)
        for drops in itertools.combinations(range(5), count)
    }
    worst = max(gaps, key=gaps.__getitem__)
    # Losses in a row cost PTOs (0.24 s for drops {0, 1, 2, 3}), far from the 2 s validation timeout.
    assert gaps[worst] < 0.5, f"drops {worst}: delivery stalled for {gaps[worst]:.3f} s"
