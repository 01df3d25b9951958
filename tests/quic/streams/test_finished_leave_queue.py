"""A stream whose STREAM frame carried its FIN leaves the send queue at once (issue 13: small
requests and responses, one frame each): the same frames, in the same order, with the same states
and credit as the general path, where the stream's next turn finds nothing and drops it, with
loss, re-sending of lost frames (the FIN among them) and packets too small for every stream."""

from __future__ import annotations

import pytest

from rudp.quic.streams import StreamManager, output
from rudp.quic.streams.send import SendStream

from .helpers import Link, manager, params


def _pair() -> tuple[StreamManager, StreamManager]:
    client = manager(is_client=True, local=params(streams_bidi=100), peer=params(streams_bidi=100))
    server = manager(is_client=False, local=params(streams_bidi=100), peer=params(streams_bidi=100))
    return client, server


def _wanting(m: StreamManager) -> list[int]:
    """The queued streams that have something to send (the general path may still hold finished ones
    that its next turn drops)."""
    return [
        sid
        for sid in m._queue
        if (entry := m._streams.get(sid)) is not None
        and entry.send is not None
        and (entry.send.wants_to_send(1) or entry.send.has_unsent_data)
    ]


def _run(seed: int, loss: float, capacity: int) -> tuple[object, ...]:
    client, server = _pair()
    link = Link(client, server, loss=loss, seed=seed, capacity=capacity)
    for i in range(40):  # small requests, each all in one frame with its FIN
        client.send(client.open_stream(), b"GET %d\n" % i, fin=True)
    client.send(client.open_stream(), b"x" * 5000, fin=True)  # a stream of several frames
    unfinished = client.open_stream()
    client.send(unfinished, b"no FIN yet")
    for i in range(10):
        server.send(server.open_stream(), b"push %d" % i, fin=True)
    for step in range(300):
        if not link.step():
            break
        if step == 3:
            client.send(unfinished, b", now", fin=True)
    states = [
        {
            sid: (e.send.state if e.send else None, e.recv.state if e.recv else None)
            for sid, e in m._streams.items()
        }
        for m in (client, server)
    ]
    return (
        link.sent_frames,
        states,
        _wanting(client),
        _wanting(server),
        client._conn_send.used,
        server._conn_send.used,
    )


@pytest.mark.parametrize("capacity", [200, 1200])
@pytest.mark.parametrize("loss", [0.0, 0.25])
@pytest.mark.parametrize("seed", range(4))
def test_same_frames_and_states_as_the_general_path(
    monkeypatch: pytest.MonkeyPatch, seed: int, loss: float, capacity: int
) -> None:
    asked = [0]
    next_chunk = SendStream.next_chunk

    def counted(self: SendStream, max_size: int, credit: int) -> tuple[int, bytes, bool, int, bool] | None:
        asked[0] += 1
        return next_chunk(self, max_size, credit)

    monkeypatch.setattr(SendStream, "next_chunk", counted)
    fast = _run(seed, loss, capacity)
    fast_asked, asked[0] = asked[0], 0
    monkeypatch.setattr(output, "FINISHED_LEAVE_QUEUE", False)
    general = _run(seed, loss, capacity)
    assert fast == general
    assert fast[0]  # frames were sent
    # The general path asked each finished stream once more for a frame (nothing), 50 of them or more.
    assert fast_asked <= asked[0] - 50
