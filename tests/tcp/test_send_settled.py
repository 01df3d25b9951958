"""TcpMux.send_settled: True only once every stream byte, FIN and RESET was handed to the transport.

A server closing after its handler returned relies on it: a CLOSE written while bytes still wait in the
mux (for the peer's credit, or a FIN not yet taken) would cut the response short.
"""

from __future__ import annotations

from rudp.config import Config
from rudp.quic.events import StreamOpened
from rudp.tcp import STREAM_WINDOW_FLOOR
from tests.tcp.pair import MuxPair, of_type


def test_bytes_waiting_for_credit_are_not_settled() -> None:
    window = STREAM_WINDOW_FLOOR
    pair = MuxPair(server_config=Config(initial_max_stream_data=window, max_stream_window=window))
    pair.drive()
    client = pair.client
    stream = client.open_stream()
    data = bytes(window * 4)  # four times the peer's window: most of it waits for credit
    assert client.send_stream(stream, data, fin=True) == len(data)
    assert not client.send_settled
    pair.step()
    assert not client.send_settled  # the window's worth went out, the rest waits for CREDIT
    received = bytearray()

    def read(p: MuxPair) -> None:
        if of_type(p.events(p.server), StreamOpened):
            received.extend(p.server.read_stream(stream))

    pair.drive(on_step=read)
    assert bytes(received) == data and pair.server.stream_at_eof(stream)
    assert client.send_settled


def test_a_fin_not_yet_written_is_not_settled() -> None:
    pair = MuxPair()
    pair.drive()
    client = pair.client
    stream = client.open_stream()
    client.send_stream(stream, b"body")
    pair.step()
    assert client.send_settled  # nothing pending: a stream left open is settled
    client.send_stream(stream, b"", fin=True)
    assert not client.send_settled
    pair.step()
    assert client.send_settled


def test_a_reset_not_yet_written_is_not_settled() -> None:
    pair = MuxPair()
    pair.drive()
    client = pair.client
    stream = client.open_stream()
    client.send_stream(stream, b"abandoned")
    client.reset_stream(stream, 7)
    assert not client.send_settled
    pair.step()
    assert client.send_settled
