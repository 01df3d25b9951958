"""The qlog of a real (simulated, lossy) connection opens in qvis and stays valid for the current drafts.

``qvis_problems`` restates, as checks, what qvis (github.com/quiclog/qvis, visualizations/src) does
with a file, so a failure names the step at which qvis would reject or misdraw the trace:

* FileLoader picks the parser by extension (``.sqlog`` is JSON-SEQ) or, for ``.qlog``/``.json``, by
  sniffing ``qlog_version`` and ``qlog_format`` in the first characters;
* TextSequenceJSONToQlog splits on RS, takes the first record as the header and rejects it without
  ``qlog_version``, ``qlog_format == "JSON-SEQ"`` and ``trace``;
* QlogLoader accepts only the draft-02 version aliases ("0.3" among them);
* QlogLoaderV2 takes ``vantage_point.type``, ``common_fields``, splits traces by a per-event
  ``group_id`` (all events or none), re-sorts (with an alert) events out of time order, and alerts on
  the draft-01 fields ``header.packet_size``, ``header.payload_length`` and ``packet_type``;
* DirectEventParser reads ``time`` with parseFloat, the category and type from ``name``
  ("category:type"), and treats any ``time_format`` but "relative"/"delta" as absolute times;
* the sequence diagram pairs ``transport:packet_sent`` of one side with ``transport:packet_received``
  of the other on (``header.packet_type``, ``header.packet_number``) and estimates latency from
  ``recovery:metrics_updated`` ``latest_rtt``/``smoothed_rtt``;
* the congestion graph sums ``raw.length`` of sent packets (packets without it are skipped), plots
  the truthy ``bytes_in_flight``, ``congestion_window``, ``min_rtt``, ``smoothed_rtt`` and
  ``latest_rtt`` of ``recovery:metrics_updated`` (RTTs in ms), matches ``recovery:packet_lost`` to a
  sent packet by type and number, and draws the peer's limits from a ``transport:parameters_set``
  with ``owner == "remote"``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from rudp.quic.qlog import CURRENT_DRAFT_NAMES
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import START, make_sim

QVIS_VERSIONS = ("draft-02", "draft-02-RC1", "qlog-03-WIP", "0.3")  # QlogSchema02 Defaults.versionAliases
QVIS_PACKET_TYPES = {
    "initial",
    "handshake",
    "0RTT",
    "1RTT",
    "retry",
    "version_negotiation",
    "stateless_reset",
    "unknown",
}
NO_PACKET_NUMBER = {"retry", "version_negotiation", "stateless_reset"}
CONGESTION_METRICS = ("congestion_window", "bytes_in_flight", "smoothed_rtt", "latest_rtt", "min_rtt")
NAME = re.compile(r"^[A-Za-z0-9._~-]+:[A-Za-z0-9._~-]+$")  # main schema: namespace ":" type
ONE_WAY_DELAY_MS = 20
DROPPED = {25, 26, 40}  # client-to-server datagrams the link drops


def read_records(path: Path) -> list[Any]:
    """The JSON texts of a JSON-SEQ file (RFC 7464: RS, JSON text, LF)."""
    raw = path.read_bytes()
    assert raw.startswith(b"\x1e"), "a JSON-SEQ file starts with RS"
    records = raw.split(b"\x1e")[1:]
    assert all(record.endswith(b"\n") for record in records)
    return [json.loads(record) for record in records]


def category_and_type(event: dict[str, Any]) -> tuple[str, str]:
    """DirectEventParser: ``name`` is "category:type" (or just "type")."""
    parts = str(event.get("name", "")).split(":")
    return (parts[0], parts[1]) if len(parts) > 1 else ("unknown", parts[0])


def lookup(events: list[dict[str, Any]], category: str, kind: str) -> list[dict[str, Any]]:
    """QlogConnection.lookup(category, type)."""
    return [event for event in events if category_and_type(event) == (category, kind)]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def file_problems(path: Path) -> list[str]:
    """qvis's loader and the current drafts' file and event rules, for one trace file."""
    problems: list[str] = []
    if not path.name.endswith(".sqlog"):
        problems.append(f"{path.name}: qvis maps only .sqlog/.qlogseq to JSON-SEQ")
    start = path.read_bytes()[:256].decode("utf-8", "replace")
    for key in ("file_schema", "serialization_format", "qlog_version", "qlog_format"):
        if f'"{key}"' not in start:
            problems.append(f"{key} is not in the first 256 bytes")
    header, *events = read_records(path)
    if header.get("qlog_version") not in QVIS_VERSIONS:
        problems.append(f"qlog_version {header.get('qlog_version')!r} is not one qvis loads")
    if header.get("qlog_format") != "JSON-SEQ":
        problems.append(f"qlog_format {header.get('qlog_format')!r} is not JSON-SEQ")
    if header.get("file_schema") != "urn:ietf:params:qlog:file:sequential":
        problems.append("file_schema is not the QlogFileSeq URN")
    if header.get("serialization_format") != "application/qlog+json-seq":
        problems.append("serialization_format is not application/qlog+json-seq")
    trace = header.get("trace")
    if not isinstance(trace, dict):
        return [*problems, "the header has no trace"]
    if "events" in trace or "event_fields" in trace:
        problems.append("a JSON-SEQ header's trace carries no events (nor draft-01 event_fields)")
    if trace.get("vantage_point", {}).get("type") not in ("client", "server"):
        problems.append("vantage_point.type is neither client nor server")
    schemas = trace.get("event_schemas")
    if not schemas or not all(isinstance(uri, str) and uri.startswith("urn:") for uri in schemas):
        problems.append("event_schemas does not list absolute URIs")
    common = trace.get("common_fields", {})
    time_format = common.get("time_format")
    reference = common.get("reference_time")
    if time_format not in ("relative_to_epoch", "relative_to_previous_event"):
        problems.append(f"time_format {time_format!r} is not a current-draft value")
    if not isinstance(reference, dict) or not {"clock_type", "epoch"} <= reference.keys():
        problems.append("reference_time is not a ReferenceTime {clock_type, epoch}")
    elif reference["clock_type"] == "monotonic" and reference["epoch"] != "unknown":
        problems.append("a monotonic clock's epoch must be 'unknown'")
    if time_format in ("relative", "delta", "relative_to_previous_event"):
        problems.append("qvis would not read these times as they are written")  # we write absolute ones
    grouped = [event for event in events if "group_id" in event]
    if grouped and len(grouped) != len(events):
        problems.append("qvis splits by group_id only if every event has one")
    previous = -math.inf
    for index, event in enumerate(events):
        where = f"event {index} {event.get('name')!r}"
        if not {"time", "name", "data"} <= event.keys() or not isinstance(event["data"], dict):
            problems.append(f"{where}: needs time, name and a data object")
            continue
        if not is_number(event["time"]):
            problems.append(f"{where}: time is not a number")
            continue
        if event["time"] < previous:
            problems.append(f"{where}: time goes back (qvis re-sorts and alerts)")
        previous = event["time"]
        if not NAME.match(event["name"]):
            problems.append(f"{where}: name is not namespace:type")
        data = event["data"]
        header_fields = data.get("header", {})
        if "packet_type" in data or "packet_size" in header_fields or "payload_length" in header_fields:
            problems.append(f"{where}: draft-01 fields that qvis flags as non-compliant")
    return problems


def packet_key(event: dict[str, Any]) -> tuple[str, str]:
    header = event["data"]["header"]
    return header["packet_type"], str(header["packet_number"])


def view_problems(client: list[dict[str, Any]], server: list[dict[str, Any]]) -> list[str]:
    """What the sequence diagram and the congestion graph need (events without their header)."""
    problems: list[str] = []
    for role, events in (("client", client), ("server", server)):
        for kind in ("packet_sent", "packet_received"):
            found = lookup(events, "transport", kind)
            if not found:
                problems.append(f"{role}: no transport:{kind} (the sequence diagram needs both)")
            for event in found:
                data = event["data"]
                header = data.get("header", {})
                if header.get("packet_type") not in QVIS_PACKET_TYPES:
                    problems.append(f"{role} {kind}: packet_type {header.get('packet_type')!r}")
                elif (
                    header.get("packet_type") not in NO_PACKET_NUMBER and header.get("packet_number") is None
                ):
                    problems.append(f"{role} {kind}: no header.packet_number")
                frames = data.get("frames")
                if not isinstance(frames, list) or not all(
                    isinstance(f.get("frame_type"), str) for f in frames
                ):
                    problems.append(f"{role} {kind}: frames is not a list of frames")
                raw = data.get("raw", {}).get("length")
                if not (is_number(raw) and raw > 0):
                    problems.append(f"{role} {kind}: no raw.length (the congestion graph skips it)")
    if problems:
        return problems

    # Sequence diagram: each arrow joins a packet_sent to the other side's packet_received.
    for sender, receiver, names in ((client, server, "client->server"), (server, client, "server->client")):
        sent = {packet_key(e) for e in lookup(sender, "transport", "packet_sent")}
        received = {packet_key(e) for e in lookup(receiver, "transport", "packet_received")}
        if not received <= sent:
            problems.append(f"{names}: received packets nobody sent: {sorted(received - sent)[:5]}")
    first_initial = next(
        (
            packet_key(e)
            for e in lookup(server, "transport", "packet_received")
            if packet_key(e)[0] == "initial"
        ),
        None,
    )
    if first_initial is None:
        problems.append("the server received no Initial (qvis aligns the two traces on it)")

    # Congestion graph (client side, the sender of the bulk data).
    updates = [e["data"] for e in lookup(client, "recovery", "metrics_updated")]
    for update in updates:
        for key, value in update.items():
            if not is_number(value):
                problems.append(f"metrics_updated {key} = {value!r} is not a number")
    for key in CONGESTION_METRICS:
        if not any(update.get(key) for update in updates):
            problems.append(f"no metrics_updated plots {key}")
    if not any(update.get("latest_rtt") or update.get("smoothed_rtt") for update in updates):
        problems.append("no RTT for the sequence diagram's latency estimate")
    sent = {packet_key(e) for e in lookup(client, "transport", "packet_sent")}
    lost = lookup(client, "recovery", "packet_lost")
    if not lost:
        problems.append("no recovery:packet_lost on a lossy link")
    for event in lost:
        if packet_key(event) not in sent:
            problems.append(f"lost packet {packet_key(event)} was never sent (qvis ignores it)")
    remote = [
        e["data"] for e in lookup(client, "transport", "parameters_set") if e["data"].get("owner") == "remote"
    ]
    if not remote or not is_number(remote[0].get("initial_max_data")):
        problems.append("no transport:parameters_set with owner 'remote' and initial_max_data")
    if not all(
        e["data"].get("initiator") in ("local", "remote")
        for e in lookup(client, "transport", "parameters_set")
    ):
        problems.append("parameters_set without the current draft's initiator")
    return problems


def relative_times(header: dict[str, Any], events: list[dict[str, Any]]) -> list[float]:
    """DirectEventParser.relativeTime for a trace whose time_format qvis reads as absolute."""
    assert header["trace"]["common_fields"]["time_format"] not in ("relative", "delta")
    first = float(events[0]["time"])
    return [float(event["time"]) - first for event in events]


def lossy_transfer(pki: TestPki, directory: Path) -> tuple[Path, Path]:
    link = LinkConfig(delay=ONE_WAY_DELAY_MS / 1000, drop_filter=lambda data, index: index in DROPPED)
    sim = make_sim(pki, link=link, client={"qlog_dir": directory}, server={"qlog_dir": directory})
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(200_000))
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=30)
    sim.conn.close()
    sim.pair.run_for(2.0)
    odcid = sim.conn.original_dcid.hex()
    return directory / f"{odcid}_client.sqlog", directory / f"{odcid}_server.sqlog"


def test_trace_of_a_lossy_connection_opens_in_qvis(pki: TestPki, tmp_path: Path) -> None:
    client_path, server_path = lossy_transfer(pki, tmp_path)
    assert file_problems(client_path) == []
    assert file_problems(server_path) == []
    client_header, *client = read_records(client_path)
    server_header, *server = read_records(server_path)
    assert client_header["trace"]["vantage_point"]["type"] == "client"
    assert server_header["trace"]["vantage_point"]["type"] == "server"
    assert view_problems(client, server) == []
    # qvis's multiplexing view reads STREAM frames' draft-02 ``length``; it equals draft 13's raw.length.
    stream_frames = [
        frame
        for event in lookup(server, "transport", "packet_received")
        for frame in event["data"]["frames"]
        if frame["frame_type"] == "stream"
    ]
    assert stream_frames and all(frame["length"] == frame["raw"]["length"] for frame in stream_frames)
    assert sum(frame["length"] for frame in stream_frames) == 200_000

    # Times and RTTs are milliseconds: the first event is the client's creation at the simulated
    # clock's start, the minimum RTT is the link's two one-way delays, and the handshake (one round
    # trip at least) comes before the server's first 1-RTT packet in qvis's relative time.
    assert client[0]["time"] == START * 1000
    updates = lookup(client, "recovery", "metrics_updated")
    min_rtt = min(e["data"]["min_rtt"] for e in updates if "min_rtt" in e["data"])
    assert 2 * ONE_WAY_DELAY_MS <= min_rtt < 2 * ONE_WAY_DELAY_MS + 10
    times = relative_times(client_header, client)
    first_1rtt = next(
        time
        for time, event in zip(times, client, strict=True)
        if event["name"] == "transport:packet_received" and event["data"]["header"]["packet_type"] == "1RTT"
    )
    assert times[0] == 0 and 2 * ONE_WAY_DELAY_MS <= first_1rtt < times[-1]


def test_checker_rejects_a_trace_qvis_cannot_open(pki: TestPki, tmp_path: Path) -> None:
    """The same trace as draft 13 alone would write it (no qlog_version/qlog_format, ``quic:`` names)."""
    client_path, server_path = lossy_transfer(pki, tmp_path)
    rewritten: list[Path] = []
    for path in (client_path, server_path):
        header, *events = read_records(path)
        del header["qlog_version"], header["qlog_format"]
        for event in events:
            event["name"] = CURRENT_DRAFT_NAMES.get(event["name"], event["name"])
        out = path.with_name("draft13_" + path.name)
        out.write_text("".join("\x1e" + json.dumps(record) + "\n" for record in (header, *events)))
        rewritten.append(out)
    problems = file_problems(rewritten[0])
    assert "qlog_version None is not one qvis loads" in problems
    assert "qlog_format None is not JSON-SEQ" in problems
    client, server = (read_records(path)[1:] for path in rewritten)
    assert set(CURRENT_DRAFT_NAMES.values()) >= {e["name"] for e in client}
    assert "client: no transport:packet_sent (the sequence diagram needs both)" in view_problems(
        client, server
    )
