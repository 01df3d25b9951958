"""qlog of a lossy transfer: JSON-SEQ records (RFC 7464), the expected events, consistent packet numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import make_sim

DROPPED = {30, 31, 32, 60}  # client-to-server datagrams the link drops


def _read_seq(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\x1e") and raw.endswith(b"\n")
    records = raw.split(b"\x1e")[1:]
    for record in records:
        assert record.endswith(b"\n")  # RFC 7464 §2.2: RS, JSON text, LF
    return [json.loads(record) for record in records]


def _packet_numbers(events: list[dict[str, Any]], name: str, packet_type: str = "1RTT") -> list[int]:
    return [
        event["data"]["header"]["packet_number"]
        for event in events
        if event["name"] == name and event["data"]["header"]["packet_type"] == packet_type
    ]


def _acked(events: list[dict[str, Any]], name: str) -> set[int]:
    """Packet numbers covered by the 1-RTT ACK frames of ``name`` events."""
    out: set[int] = set()
    for event in events:
        if event["name"] != name or event["data"]["header"]["packet_type"] != "1RTT":
            continue
        for frame in event["data"]["frames"]:
            if frame["frame_type"] == "ack":
                for pair in frame["acked_ranges"]:
                    out.update(range(pair[0], pair[-1] + 1))
    return out


def _dropper() -> Callable[[bytes, int], bool]:
    todo = sorted(DROPPED)

    def drop(data: bytes, index: int) -> bool:
        if todo and index >= todo[0] and len(data) <= 1472:
            todo.pop(0)
            return True
        return False

    return drop


@pytest.mark.parametrize("congestion", ["newreno", "cubic"])
def test_qlog_of_a_lossy_transfer(pki: TestPki, tmp_path: Path, congestion: str) -> None:
    # The drops are chosen by datagram index on each link; a drop that would hit a PMTU probe (lost
    # anyway, above the link's MTU) moves to the next datagram, so exactly len(DROPPED) datagrams
    # carrying 1-RTT packets are dropped whatever the sending pattern.
    link = LinkConfig(delay=0.02, drop_filter=_dropper())
    s2c = LinkConfig(delay=0.02, drop_filter=_dropper())
    # ECN off: the exact loss pattern below depends on the packet sizes (ACK_ECN counts change them).
    options = {"qlog_dir": tmp_path, "congestion": congestion, "timer_granularity": 0.0001, "ecn": False}
    sim = make_sim(pki, link=link, s2c=s2c, client=options, server={"qlog_dir": tmp_path, "ecn": False})
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(400_000))
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=30)
    sim.conn.close()
    sim.pair.run_for(2.0)

    odcid = sim.conn.original_dcid.hex()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{odcid}_client.sqlog", f"{odcid}_server.sqlog"]
    client = _read_seq(tmp_path / f"{odcid}_client.sqlog")
    server = _read_seq(tmp_path / f"{odcid}_server.sqlog")
    for header, role in ((client[0], "client"), (server[0], "server")):
        assert header["file_schema"] == "urn:ietf:params:qlog:file:sequential"
        assert header["serialization_format"] == "application/qlog+json-seq"
        assert header["trace"]["vantage_point"]["type"] == role
        assert header["trace"]["common_fields"]["group_id"] == odcid
        assert header["trace"]["event_schemas"] == ["urn:ietf:params:qlog:events:quic-13"]
    client, server = client[1:], server[1:]
    names = {event["name"] for event in client}
    assert {
        "transport:packet_sent",
        "transport:packet_received",
        "recovery:metrics_updated",
        "recovery:packet_lost",
        "recovery:congestion_state_updated",
        "connectivity:connection_state_updated",
        "transport:parameters_set",
    } <= names
    times = [event["time"] for event in client]
    assert times == sorted(times)
    initiators = [e["data"]["initiator"] for e in client if e["name"] == "transport:parameters_set"]
    assert initiators == ["local", "remote"]
    states = [e["data"]["new"] for e in client if e["name"] == "connectivity:connection_state_updated"]
    assert states[0] == "attempted" and "handshake_confirmed" in states and states[-1] == "closed"
    metrics = [e["data"] for e in client if e["name"] == "recovery:metrics_updated"]
    assert any("congestion_window" in m for m in metrics) and any("smoothed_rtt" in m for m in metrics)
    assert any("bytes_in_flight" in m for m in metrics)
    congestion_states = [e["data"]["new"] for e in client if e["name"] == "recovery:congestion_state_updated"]
    assert congestion_states[0] == "slow_start" and "recovery" in congestion_states

    # Packet numbers agree across the two vantage points.
    sent = _packet_numbers(client, "transport:packet_sent")
    assert sent == sorted(set(sent))
    received_by_server = set(_packet_numbers(server, "transport:packet_received"))
    lost = set(_packet_numbers(client, "recovery:packet_lost"))
    assert received_by_server <= set(sent)
    assert lost and lost <= set(sent) and not lost & received_by_server  # nothing reordered: truly lost
    closes = {
        event["data"]["header"]["packet_number"]
        for event in client
        if event["name"] == "transport:packet_sent"
        and any(frame["frame_type"] == "connection_close" for frame in event["data"]["frames"])
    }
    # PMTU probes above the link's MTU (1472 bytes by default) never arrive, and are no loss.
    too_big = {
        event["data"]["header"]["packet_number"]
        for event in client
        if event["name"] == "transport:packet_sent" and event["data"]["raw"]["length"] > 1472
    }
    # Every 1-RTT packet reached the server except the dropped datagrams' (and late closes, ignored
    # by a draining server).
    assert len(set(sent) - received_by_server - closes - too_big) == len(DROPPED)
    acked_by_server = _acked(server, "transport:packet_sent")
    assert acked_by_server <= received_by_server and not lost & acked_by_server
    assert _acked(client, "transport:packet_received") <= acked_by_server
    stream_bytes = sum(
        frame["raw"]["length"]
        for event in server
        if event["name"] == "transport:packet_received"
        for frame in event["data"]["frames"]
        if frame["frame_type"] == "stream"
    )
    assert stream_bytes == 400_000
