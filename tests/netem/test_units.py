"""Unit tests of the emulator's pure parts: settings, the impairment engine, checksums, NAT, pcap.

These need no root and run everywhere.
"""

from __future__ import annotations

import ipaddress
import math
import random
import struct

import pytest

from rudp.netem import BurstLoss, GilbertElliott, ImpairmentError, Impairments, periodic_blackhole
from rudp.netem.channel import Channel
from rudp.netem.impairments import parse_probability, parse_rate, parse_size, parse_time
from rudp.netem.nat import Nat, NatConfig
from rudp.netem.packet import checksum, corrupt, fix_transport_checksum, transport_checksum_ok
from rudp.netem.pcap import PcapError, PcapWriter, read_pcap
from rudp.netem.stats import DirectionStats

CLIENT, SERVER = "10.77.1.1", "10.77.2.1"


def naive_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes, version: int = 4) -> bytearray:
    """A well-formed UDP/IP packet with correct checksums."""
    udp = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    if version == 4:
        s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0, s, d))
        ip[10:12] = naive_checksum(bytes(ip)).to_bytes(2, "big")
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    else:
        s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
        ip = bytearray(struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, s, d))
        pseudo = ip[8:40] + struct.pack("!IxxxB", len(udp), 17)
    udp[6:8] = (naive_checksum(bytes(pseudo + udp)) or 0xFFFF).to_bytes(2, "big")
    return ip + udp


def test_parsers() -> None:
    assert parse_time("20ms") == pytest.approx(0.02)
    assert parse_time("1.5s") == 1.5
    assert parse_time("250us") == pytest.approx(250e-6)
    assert parse_rate("50mbit") == 50e6
    assert parse_rate("800kbit") == 800e3
    assert parse_size("64kb") == 64000
    assert parse_size("1MiB") == 1 << 20
    assert parse_probability("2%") == pytest.approx(0.02)
    assert parse_probability("0.1") == 0.1
    for bad in ("fast", "20 parsecs"):
        with pytest.raises(ImpairmentError):
            parse_time(bad)
    with pytest.raises(ImpairmentError):
        parse_probability("150%")


def test_impairments_validate_and_round_trip() -> None:
    with pytest.raises(ImpairmentError):
        Impairments(loss=1.5)
    with pytest.raises(ImpairmentError):
        Impairments(delay=-1)
    with pytest.raises(ImpairmentError):
        Impairments(drop_list=frozenset({0}))
    with pytest.raises(ImpairmentError):
        BurstLoss(0.1, 3, 2)
    imp = Impairments(
        delay=0.01,
        loss=0.1,
        gilbert_elliott=GilbertElliott(0.01, 0.3),
        burst=BurstLoss(0.01, 2, 4),
        blackhole_periods=periodic_blackhole(1.0, 0.5, 1.5, 2),
        drop_list=frozenset({1, 3}),
        rate_bps=1e6,
    )
    assert imp.blackhole_periods == ((1.0, 1.5), (3.0, 3.5))
    assert Impairments.from_dict(imp.to_dict()) == imp
    with pytest.raises(ImpairmentError):
        Impairments.from_dict({"latency": 1})


def run_channel(imp: Impairments, n: int, spacing: float = 0.001, size: int = 1000, seed: int = 1) -> tuple:
    stats = DirectionStats()
    ch = Channel(imp, stats, random.Random(seed), 0.0)
    verdicts = [ch.process(size, i * spacing) for i in range(n)]
    return verdicts, stats


def test_channel_delay_jitter_keeps_order() -> None:
    verdicts, stats = run_channel(Impairments(delay=0.02, jitter=0.005), 500)
    times = [v.deliver_at[0] for v in verdicts]
    assert times == sorted(times)
    for i, t in enumerate(times):
        assert t - i * 0.001 >= 0.015 - 1e-9
    assert stats.delayed == 500
    verdicts, _ = run_channel(Impairments(delay=0.02, jitter=0.005, jitter_reorders=True), 500)
    times = [v.deliver_at[0] for v in verdicts]
    assert times != sorted(times)


def test_channel_loss_rate_and_causes() -> None:
    n, p = 20000, 0.1
    _, stats = run_channel(Impairments(loss=p), n)
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(stats.dropped["loss"] - n * p) < 4 * sigma
    _, stats = run_channel(Impairments(drop_list=frozenset({1, 2, 5})), 10)
    assert stats.dropped == {"drop_list": 3}


def test_channel_bursty_loss() -> None:
    verdicts, stats = run_channel(Impairments(burst=BurstLoss(0.01, 5, 5)), 20000)
    lost = [v.cause == "burst" for v in verdicts]
    runs = []
    length = 0
    for x in [*lost, False]:
        if x:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    assert runs and all(r % 5 == 0 for r in runs[:-1])  # the last burst may be cut by the end
    verdicts, stats = run_channel(Impairments(gilbert_elliott=GilbertElliott(0.01, 0.25)), 20000)
    # Stationary loss = p / (p + r) = 3.8 %, in bursts of mean length 1/r = 4.
    rate = stats.dropped["burst"] / 20000
    assert 0.02 < rate < 0.06


def test_channel_blackhole_and_reconfigure() -> None:
    stats = DirectionStats()
    ch = Channel(Impairments(blackhole_periods=((0.1, 0.2),)), stats, random.Random(0), 0.0)
    fates = [ch.process(100, t / 100).cause for t in range(30)]
    assert fates[:10] == [None] * 10 and fates[10:20] == ["blackhole"] * 10 and fates[20:] == [None] * 10
    ch.configure(Impairments(blackhole=True), 1.0)
    assert ch.process(100, 1.0).cause == "blackhole"
    ch.configure(Impairments(drop_list=frozenset({2})), 2.0)
    assert [ch.process(100, 2.0).cause for _ in range(3)] == [None, "drop_list", None]


def test_channel_rate_and_drop_tail_queue() -> None:
    # 1000-byte packets every 0.1 ms (80 Mbit/s offered) into an 8 Mbit/s link with a 10-packet queue.
    imp = Impairments(rate_bps=8e6, queue_packets=10)
    verdicts, stats = run_channel(imp, 10000, spacing=0.0001)
    delivered = [v.deliver_at[0] for v in verdicts if v.cause is None]
    span = delivered[-1] - delivered[0]
    assert len(delivered) * 1000 * 8 / span == pytest.approx(8e6, rel=0.02)
    assert stats.dropped["queue"] == 10000 - len(delivered)
    assert stats.queue_peak_bytes == 10 * 1000
    _, stats = run_channel(Impairments(rate_bps=8e6, queue_bytes=5000), 1000, spacing=0.0001)
    assert stats.queue_peak_bytes <= 5000 and stats.dropped["queue"] > 800


def test_channel_duplicate_and_reorder() -> None:
    verdicts, stats = run_channel(Impairments(duplicate=0.5), 1000)
    assert sum(len(v.deliver_at) for v in verdicts) == 1000 + stats.duplicated
    assert 400 < stats.duplicated < 600
    verdicts, stats = run_channel(Impairments(delay=0.01, reorder=0.1, reorder_delay=0.005), 1000)
    times = [v.deliver_at[0] for v in verdicts]
    assert times != sorted(times) and 50 < stats.reordered < 150


def test_checksums_match_reference() -> None:
    rng = random.Random(5)
    for n in (0, 1, 2, 19, 20, 1500):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert checksum(data) == naive_checksum(data)
        assert checksum(memoryview(bytearray(data))) == naive_checksum(data)
    for version, src, dst in ((4, CLIENT, SERVER), (6, "fd77:0:0:1::1", "fd77:0:0:2::1")):
        pkt = udp_packet(src, dst, 1234, 443, b"hello world", version)
        assert transport_checksum_ok(pkt)
        good = bytes(pkt)
        pkt[-1] ^= 0xFF
        assert not transport_checksum_ok(pkt)
        fix_transport_checksum(pkt, 17, 20 if version == 4 else 40)
        assert transport_checksum_ok(pkt) and pkt != good


def test_corrupt_touches_only_udp_payload() -> None:
    rng = random.Random(3)
    for fix in (True, False):
        pkt = udp_packet(CLIENT, SERVER, 1000, 2000, bytes(200))
        before = bytes(pkt)
        corrupt(pkt, 4, rng, fix)
        assert pkt[:28] != before[:28] if fix else pkt[:28] == before[:28]  # only the checksum may change
        assert pkt[:26] == before[:26]
        assert pkt[28:] != before[28:]
        assert transport_checksum_ok(pkt) is fix


def test_nat_rebinding_translates_both_ways() -> None:
    nat = Nat(CLIENT, NatConfig(port=True, address=True), random.Random(1), 0.0)
    out = udp_packet(CLIENT, SERVER, 5000, 443, b"x")
    assert not nat.outbound(out)  # transparent before the first rebinding
    nat.rebind()
    assert nat.external_address == "10.77.1.2"
    out = udp_packet(CLIENT, SERVER, 5000, 443, b"x")
    assert nat.outbound(out)
    assert out[12:16] == ipaddress.IPv4Address("10.77.1.2").packed
    mapped = int.from_bytes(out[20:22], "big")
    assert mapped != 5000
    assert checksum(out[:20]) == 0 and transport_checksum_ok(out)
    reply = udp_packet(SERVER, "10.77.1.2", 443, mapped, b"y")
    assert nat.inbound(reply) is True
    assert reply[16:20] == ipaddress.IPv4Address(CLIENT).packed
    assert int.from_bytes(reply[22:24], "big") == 5000
    assert checksum(reply[:20]) == 0 and transport_checksum_ok(reply)
    stale = udp_packet(SERVER, CLIENT, 443, 5000, b"old binding")
    assert nat.inbound(stale) is None
    unrelated = udp_packet(SERVER, "10.77.9.9", 443, 5000, b"z")
    assert nat.inbound(unrelated) is False


def test_nat_scheduled_rebind() -> None:
    nat = Nat(CLIENT, NatConfig(rebind_at=(1.0, 2.0), port=True), random.Random(1), 10.0)
    nat.tick(10.5)
    assert nat.epoch == 0
    nat.tick(12.5)
    assert nat.epoch == 2 and nat.external_address == CLIENT


def test_pcap_round_trip(tmp_path: pytest.TempPathFactory) -> None:
    path = str(tmp_path / "x.pcap")  # type: ignore[operator]
    with PcapWriter(path) as w:
        for i in range(5):
            w.write(udp_packet(CLIENT, SERVER, 1, 2, bytes(i)), 100.0 + i)
    records = list(read_pcap(path))
    assert len(records) == 5
    assert records[1][0] - records[0][0] == pytest.approx(1.0, abs=1e-6)
    assert records[4][1] == bytes(udp_packet(CLIENT, SERVER, 1, 2, bytes(4)))
    with open(path, "r+b") as f:
        f.write(b"\x00\x00\x00\x00")
    with pytest.raises(PcapError):
        list(read_pcap(path))
