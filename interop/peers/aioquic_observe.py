"""Reading what an aioquic connection negotiated, through aioquic's public objects only.

Owns the translation of an aioquic ``QuicConnection`` (the object its protocol factory receives) and the
traces of a ``QuicLogger`` into an :class:`~interop.peers.base.EndpointReport`. Shared by the aioquic
server and client peers.
"""

from __future__ import annotations

from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import HandshakeCompleted
from aioquic.quic.logger import QuicLogger

from interop.peers.base import EndpointReport

_UPDATE_TRIGGERS = frozenset({"local_update", "remote_update"})


def on_handshake(report: EndpointReport, quic: QuicConnection, event: HandshakeCompleted) -> None:
    """Fill ``report`` from aioquic's HandshakeCompleted event and its TLS context."""
    report.handshake_completed = True
    report.alpn = event.alpn_protocol
    report.session_resumed = event.session_resumed
    report.early_data_accepted = event.early_data_accepted
    schedule = quic.tls.key_schedule
    if schedule is not None:
        report.cipher_suite = int(schedule.cipher_suite)


def count_key_updates(logger: QuicLogger, quic: QuicConnection, *, is_client: bool) -> int:
    """Key updates in the trace of ``quic``: our 1-RTT send secret rotated by a key update (not by TLS)."""
    odcid = quic.original_destination_connection_id.hex()
    send_secret = "client_1rtt_secret" if is_client else "server_1rtt_secret"
    updates = 0
    for trace in logger.to_dict()["traces"]:
        if trace["common_fields"]["ODCID"] != odcid:
            continue
        for event in trace["events"]:
            data = event["data"]
            if (
                event["name"] == "security:key_updated"
                and data.get("key_type") == send_secret
                and data.get("trigger") in _UPDATE_TRIGGERS
            ):
                updates += 1
    return updates


__all__ = ["count_key_updates", "on_handshake"]
