"""Packet trains (issue 13): the 1-RTT datagrams a sender builds in one tight loop when stream data is
all it has to send must be exactly what the per-datagram path builds.

Each scenario runs twice on the simulator with seeded randomness (connection IDs, packet-number skips)
and delay-only links, so both runs see the same times: once as shipped, once with the train turned
off (``TrainSender.ready`` answering False). The client uploads; every 1-RTT datagram it sends is
decrypted with the keys it logged (following key updates, RFC 9001 §6) and its frames compared.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rudp.codec.frame_codec import parse_frames
from rudp.codec.frames import Ack, DataBlocked, Datagram, Frame, NewConnectionId, Padding, Ping, Stream
from rudp.crypto.protection import PacketProtection, UnprotectedPacket
from rudp.crypto.suites import AeadLimits, CipherSuite
from rudp.quic.trains import TrainSender
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import Sniffer, make_sim

CID_LENGTH = 8


def _seeded(seed: int) -> Callable[[int], bytes]:
    """Config.randbytes from a seeded generator: the same connection IDs and packet-number skips."""
    return random.Random(seed).randbytes


def _comparable(frame: Frame) -> Frame:
    # A client's stateless reset tokens come from a per-connection random key (not Config.randbytes).
    if isinstance(frame, NewConnectionId):
        return dataclasses.replace(frame, stateless_reset_token=b"")
    return frame


class _Reader:
    """Decrypts the client's 1-RTT datagrams in order, moving to the next key phase when needed."""

    def __init__(self, keylog: Path, suite: CipherSuite) -> None:
        self.keys: list[PacketProtection] = [Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", suite).protection]
        self.generation = 0
        self.largest = -1

    def read(self, datagram: bytes) -> tuple[int, int, list[Frame]]:
        """(key phase generation, packet number, frames) of one 1-RTT datagram."""
        for generation in (self.generation, self.generation + 1):
            while len(self.keys) <= generation:
                self.keys.append(self.keys[-1].next_generation())
            result = self.keys[generation].unprotect(datagram, 1 + CID_LENGTH, self.largest + 1)
            if isinstance(result, UnprotectedPacket):
                self.generation = generation
                self.largest = max(self.largest, result.packet_number)
                frames = [_comparable(frame) for _, frame in parse_frames(result.payload)]
                return generation, result.packet_number, frames
        raise AssertionError("a 1-RTT datagram the client's keys do not open")


@dataclass
class _Run:
    datagrams: list[tuple[int, int, int, list[Frame]]]
    """(size, key generation, packet number, frames) of every 1-RTT datagram the client sent."""
    train_datagrams: int
    received: bytes
    batches: list[list[tuple[int, int, int, list[Frame]]]]
    """The same datagrams, grouped by the ``datagrams_to_send`` call that returned them."""
    train_acks: int = 0
    """Datagrams built by a train that carry an ACK frame (it leads a train's first packet)."""

    def frames(self) -> list[Frame]:
        return [frame for *_, frames in self.datagrams for frame in frames]


def _upload(
    pki: TestPki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    train: bool,
    body: bytes,
    client: Mapping[str, object] | None = None,
    server: Mapping[str, object] | None = None,
    link: LinkConfig | None = None,
    suite: CipherSuite = CipherSuite.AES_128_GCM_SHA256,
    datagrams: int = 0,
) -> _Run:
    with monkeypatch.context() as patch:
        built = [0]
        from_trains: set[int] = set()
        if train:
            original: Callable[..., bool] = TrainSender.build

            def counted(
                self: TrainSender, now: float, path: Any, out: list[Any], ecn: bool, gate: Any
            ) -> bool:
                before = len(out)
                result = original(self, now, path, out, ecn, gate)
                built[0] += len(out) - before
                from_trains.update(id(datagram) for datagram, _ in out[before:])
                return result

            patch.setattr(TrainSender, "build", counted)
        else:
            patch.setattr(TrainSender, "ready", lambda self, now: False)
        keylog = tmp_path / f"keys-{'train' if train else 'plain'}.log"
        common: dict[str, object] = {
            "cipher_suites": [suite],
            "max_datagram_size": 1452,
            "pmtu_discovery": False,
        }
        sim = make_sim(
            pki,
            link=link or LinkConfig(delay=0.01),
            client={**common, "secrets_log": keylog, "randbytes": _seeded(1), **(client or {})},
            server={**common, "randbytes": _seeded(2), **(server or {})},
        )
        sim.handshake()
        reader = _Reader(keylog, suite)
        sent: list[tuple[int, int, int, list[Frame]]] = []
        batches: list[list[tuple[int, int, int, list[Frame]]]] = []
        to_send = sim.client.datagrams_to_send

        train_acks = [0]

        def recorded(now: float) -> list[tuple[bytes, Any]]:
            out = to_send(now)
            batch = [(len(datagram), *reader.read(datagram)) for datagram, _ in out if not datagram[0] & 0x80]
            sent.extend(batch)
            batches.append(batch)
            short = [datagram for datagram, _ in out if not datagram[0] & 0x80]
            for datagram, (*_, frames) in zip(short, batch, strict=True):
                if id(datagram) in from_trains and any(isinstance(frame, Ack) for frame in frames):
                    train_acks[0] += 1
            from_trains.clear()
            return out

        sim.client.datagrams_to_send = recorded  # type: ignore[method-assign]
        stream_id = sim.conn.open_stream()
        sim.client.send(stream_id, body, fin=True)
        for index in range(datagrams):
            sim.conn.send_datagram(bytes([index]) * 300)
        assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=120.0)
        return _Run(sent, built[0], bytes(sim.server.streams[stream_id]), batches, train_acks[0])


def _compare(plain: _Run, trained: _Run, body: bytes) -> None:
    assert plain.received == body and trained.received == body
    assert plain.train_datagrams == 0
    # the train did much of the work (with loss, ACKs, replaced ACKs and probes share many datagrams:
    # at 3 % loss ~half of them go the per-packet way)
    assert trained.train_datagrams > len(trained.datagrams) // 3
    assert len(trained.datagrams) == len(plain.datagrams)
    for index, (ours, theirs) in enumerate(zip(trained.datagrams, plain.datagrams, strict=True)):
        assert ours == theirs, f"datagram {index} differs"
    stream_frames = [frame for frame in trained.frames() if isinstance(frame, Stream)]
    assert max(frame.offset + len(frame.data) for frame in stream_frames) == len(body)
    fins = [frame for frame in stream_frames if frame.fin]
    assert fins and all(frame.offset + len(frame.data) == len(body) for frame in fins)


BODY = random.Random(7).randbytes(600_000)


def test_train_matches_per_datagram_path(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow start: the congestion window and the pacer stop trains mid-way; the FIN ends the last one.
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY)
    _compare(plain, trained, BODY)
    # The ACKs the client owes (the server's window updates) lead trains instead of going apart.
    assert trained.train_acks > 0


@pytest.mark.parametrize("congestion", ["cubic", "bbr"])
def test_train_matches_per_datagram_path_with_other_controllers(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, congestion: str
) -> None:
    # CUBIC: the window and the pacer asked once per train, its send hook (HyStart++) run per packet
    # when the train is recorded; BBR: each packet asks the window and the pacer (its send hook and
    # its own pacing rate may move them), as the per-datagram path does. Loss brings PRR periods.
    client = {"congestion": congestion}
    link = LinkConfig(delay=0.01, loss=0.01, seed=3)
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, client=client, link=link)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=client, link=link)
    _compare(plain, trained, BODY)


def test_train_with_losses(pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Re-sends and PTO probes (not trains: a probe is owed) interleave with trains.
    link = LinkConfig(delay=0.01, loss=0.03, seed=5)
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, link=link)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, link=link)
    _compare(plain, trained, BODY)
    offsets = [frame.offset for frame in trained.frames() if isinstance(frame, Stream)]
    assert offsets != sorted(offsets)  # something was re-sent


def test_train_stops_at_flow_control_limit(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The peer's MAX_DATA runs out mid-train: DATA_BLOCKED goes after the stream frames (RFC 9000 §4.1).
    server = {"initial_max_data": 20_000, "max_connection_window": 40_000, "initial_max_stream_data": 30_000}
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, server=server)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, server=server)
    _compare(plain, trained, BODY)
    assert any(isinstance(frame, DataBlocked) for frame in trained.frames())


def test_train_across_key_updates(pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 9001 §6, §6.6: a small confidentiality limit makes the client update its keys after ~225
    # packets, as soon as allowed, so updates start mid-train; the key phase bit and the keys change
    # at the same packet in both paths.
    client = {"aead_limits": AeadLimits(confidentiality=300, integrity=1000)}
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, client=client)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=client)
    _compare(plain, trained, BODY)
    # An update started inside a batch (a train): one call returned datagrams of two key phases.
    assert any(len({generation for _, generation, _, _ in batch}) == 2 for batch in trained.batches)


def test_train_with_chacha20(pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = CipherSuite.CHACHA20_POLY1305_SHA256
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, suite=suite)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, suite=suite)
    _compare(plain, trained, BODY)


def test_pmtu_probe_goes_before_the_train(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 9000 §14.3: with PMTU discovery searching, probes (PING + PADDING) still leave while trains run.
    options = {"pmtu_discovery": True, "max_pmtu": 4000}
    link = LinkConfig(delay=0.01, mtu=3000)
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, client=options, link=link)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=options, link=link)
    _compare(plain, trained, BODY)
    probes = [
        size
        for size, _, _, frames in trained.datagrams
        if frames and isinstance(frames[0], Ping) and any(isinstance(frame, Padding) for frame in frames)
    ]
    assert probes and max(probes) > 1452
    assert max(size for size, *_ in trained.datagrams) > 1452  # the found size is used by later trains


def test_train_yields_to_queued_datagrams(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 9221 §5: DATAGRAM frames queued with the stream data keep their share ahead of it; no train
    # starts while one waits, and the datagrams go out in the same packets either way.
    options = {"datagrams": True}
    runs = [
        _upload(
            pki, tmp_path, monkeypatch, train=train, body=BODY, client=options, server=options, datagrams=40
        )
        for train in (False, True)
    ]
    plain, trained = runs
    _compare(plain, trained, BODY)
    assert sum(isinstance(frame, Datagram) for frame in trained.frames()) == 40


def test_no_train_while_writing_a_qlog(pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A qlog records each datagram's frames as the per-datagram path builds them: no trains then, and
    # the same datagrams as without the log.
    options = {"qlog_dir": tmp_path / "qlog"}
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY[:100_000])
    logged = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY[:100_000], client=options)
    assert logged.train_datagrams == 0
    assert logged.received == BODY[:100_000]
    assert logged.datagrams == plain.datagrams
    assert list((tmp_path / "qlog").iterdir())  # the log was written


# -- PMTU discovery on (the default configuration) ------------------------------------------------------

DEFAULT_PMTU = {"pmtu_discovery": True, "max_datagram_size": 1350}
"""Config's defaults for the client: 1350-byte base size, PMTU discovery on (max_pmtu 16384)."""


@pytest.mark.parametrize("base", [1350, 1200])
def test_train_at_a_found_size_matches_per_datagram_path(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: int
) -> None:
    # A 1500-byte Ethernet path (1472-byte UDP payloads): the search finds 1452 > the base size, and
    # trains then use that size, with the same probes of larger sizes in between. With the smallest
    # base a window's last datagram shrinks to what the window leaves (as the per-datagram budget
    # does) where that is at least the base size.
    client = {**DEFAULT_PMTU, "max_datagram_size": base}
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, client=client)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=client)
    _compare(plain, trained, BODY)
    sizes = [size for size, *_ in trained.datagrams]
    assert sizes.count(1452) > len(sizes) // 2
    assert sizes.count(base) > 10  # before the search found 1452
    if base == 1200:
        assert any(base < size < 1452 for size in sizes)  # a window's last datagram, shrunk to fit


@pytest.mark.parametrize("congestion", ["cubic", "bbr"])
def test_train_at_a_found_size_under_loss(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, congestion: str
) -> None:
    # Loss: PRR periods (CUBIC) and BBR make each packet ask datagram_budget and the window again.
    client = {**DEFAULT_PMTU, "congestion": congestion}
    link = LinkConfig(delay=0.01, loss=0.01, seed=3)
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, client=client, link=link)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=client, link=link)
    _compare(plain, trained, BODY)
    sizes = [size for size, *_ in trained.datagrams]
    assert sizes.count(1452) > len(sizes) // 2


def test_train_after_a_pmtu_black_hole(pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 8899 §4.3: after the search settled at 1452 the path stops carrying datagrams above 1400;
    # the losses of large datagrams bring the size back to the base, trains follow it, and the search
    # (its probes) starts again below the size that failed. Same datagrams either way.
    def black_hole(datagram: bytes, index: int) -> bool:
        return index > 150 and len(datagram) > 1400

    link = LinkConfig(delay=0.01, drop_filter=black_hole)
    plain = _upload(pki, tmp_path, monkeypatch, train=False, body=BODY, client=DEFAULT_PMTU, link=link)
    trained = _upload(pki, tmp_path, monkeypatch, train=True, body=BODY, client=DEFAULT_PMTU, link=link)
    _compare(plain, trained, BODY)
    sizes = [size for size, *_ in trained.datagrams]
    first_small = max(index for index, size in enumerate(sizes) if size > 1400) + 1
    assert sizes[:first_small].count(1452) > 20  # large datagrams were sent (and then lost)
    assert sizes[first_small:] and max(sizes[first_small:]) <= 1400
    assert sizes[first_small:].count(1350) > 20  # back at the base size


def test_train_at_a_found_size_asks_the_window_once(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once the search has found a size above the base size, a train's packets no longer ask the datagram
    # budget, the window and the pacer one by one (the fast path, as at the base size).
    from rudp.quic.sending import Sender

    budget_calls = [0]
    in_train = [False]
    train_packets = [0]
    found: list[bool] = []
    budget: Callable[..., int] = Sender.datagram_budget
    build: Callable[..., bool] = TrainSender.build

    def counted_budget(self: Sender, path: Any) -> int:
        if in_train[0]:
            budget_calls[0] += 1
        return budget(self, path)

    def watched_build(self: TrainSender, now: float, path: Any, out: list[Any], ecn: bool, gate: Any) -> bool:
        if path.pmtud.current != 1452:
            return build(self, now, path, out, ecn, gate)
        found.append(True)
        before = len(out)
        in_train[0] = True
        try:
            return build(self, now, path, out, ecn, gate)
        finally:
            in_train[0] = False
            train_packets[0] += len(out) - before

    monkeypatch.setattr(Sender, "datagram_budget", counted_budget)
    monkeypatch.setattr(TrainSender, "build", watched_build)
    sim = make_sim(pki, link=LinkConfig(delay=0.01), client=dict(DEFAULT_PMTU))
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, BODY, fin=True)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=120.0)
    assert bytes(sim.server.streams[stream_id]) == BODY
    assert found and train_packets[0] > 100
    assert budget_calls[0] == 0
