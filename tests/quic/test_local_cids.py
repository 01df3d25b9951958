"""The connection IDs we issue: retired ones are replaced (RFC 9000 §5.1.1), never beyond the limit."""

from __future__ import annotations

import itertools
import os

import pytest

from rudp.codec.frames import RetireConnectionId
from rudp.errors import TransportError
from rudp.quic.cids import LocalConnectionIds, stateless_reset_token


def _ids() -> LocalConnectionIds:
    counter = itertools.count(1)
    return LocalConnectionIds(b"\x00" * 8, b"k" * 32, lambda n: next(counter).to_bytes(n, "big"), 8)


def test_a_retired_id_is_replaced_and_the_active_set_stays_at_the_limit() -> None:
    ids = _ids()
    ids.issue_up_to(4)
    ids.changes.clear()
    in_use = ids.active[0].cid
    for sequence in range(1, 50):  # the peer retires every spare ID, one after the other
        ids.on_retire(RetireConnectionId(sequence), in_use)
        assert len(ids.active) == 4
    assert sum(1 for added, _ in ids.changes if added) == 49
    assert sum(1 for added, _ in ids.changes if not added) == 49
    assert ids.has_data_to_send()  # the replacements go out as NEW_CONNECTION_ID


def test_before_the_handshake_nothing_is_issued_on_retire() -> None:
    ids = _ids()
    with pytest.raises(TransportError):
        ids.on_retire(RetireConnectionId(1), b"")  # never issued
    assert len(ids.active) == 1


def test_reset_tokens_derive_from_the_endpoint_key_else_are_random() -> None:
    # RFC 9000 §10.3.2: a server endpoint's static key derives each token (it can send the reset
    # later for a CID it no longer holds); without a key (a client's connection) tokens are random.
    keyed = _ids()
    keyed.issue_up_to(4)
    assert all(e.reset_token == stateless_reset_token(b"k" * 32, e.cid) for e in keyed.active.values())
    randoms = iter(os.urandom(16) for _ in range(100))
    cids = itertools.count(1)

    def randbytes(n: int) -> bytes:
        return next(randoms) if n == 16 else next(cids).to_bytes(n, "big")

    unkeyed = LocalConnectionIds(b"\x00" * 8, None, randbytes, 8)
    unkeyed.issue_up_to(4)
    tokens = [e.reset_token for e in unkeyed.active.values()]
    assert len(set(tokens)) == 4 and all(len(t) == 16 for t in tokens)
    assert all(e.reset_token != stateless_reset_token(b"k" * 32, e.cid) for e in unkeyed.active.values())


def test_connections_of_an_endpoint_share_its_reset_keys_hmac_and_more_keys_than_the_cache_holds() -> None:
    # The prepared HMAC of a reset key is shared (bounded cache: a few endpoint keys, never a peer's);
    # past the bound every key still derives its own tokens (RFC 9000 §10.3.2).
    from rudp.quic.cids import _reset_prf

    first = LocalConnectionIds(b"\x01" * 8, b"k" * 32, os.urandom, 8)
    second = LocalConnectionIds(b"\x02" * 8, b"k" * 32, os.urandom, 8)
    assert first._reset_prf is second._reset_prf
    limit = _reset_prf.cache_info().maxsize
    assert limit is not None
    keys = [bytes([n]) * 32 for n in range(limit + 3)]
    for _ in range(2):  # the second round evicts and rebuilds
        for key in keys:
            ids = LocalConnectionIds(b"\x03" * 8, key, os.urandom, 8)
            ids.issue_up_to(3)
            assert all(e.reset_token == stateless_reset_token(key, e.cid) for e in ids.active.values())
    assert _reset_prf.cache_info().currsize <= limit


class _Sink:
    def __init__(self, room: int) -> None:
        self.remaining = room
        self.handlers: list[object] = []

    def push_frame(self, frame: object, handler: object = None) -> None:
        self.remaining -= 60
        self.handlers.append(handler)


def test_has_data_is_the_look_at_every_cid_whatever_happens() -> None:
    # has_data answers False at once while no CID was issued or lost since it last found none: the
    # answer must always be the general one (any active CID neither sent nor in flight).
    import random

    rng = random.Random(5)
    ids = _ids()
    in_flight: list[object] = []
    for step in range(3000):
        general = any(not e.sent and not e.in_flight for e in ids.active.values())
        assert ids.has_data() == general, step
        action = rng.randrange(5)
        if action == 0:
            ids.issue_up_to(rng.randrange(1, 6))
        elif action == 1 and ids.has_data():
            sink = _Sink(rng.choice((60, 130, 1000)))
            ids.write_frames(sink)
            in_flight += sink.handlers
        elif action == 2 and in_flight:
            handler = in_flight.pop(rng.randrange(len(in_flight)))
            handler(rng.random() < 0.5)  # type: ignore[operator]
        elif action == 3:
            spare = [seq for seq in ids.active if seq != 0]
            if spare:
                ids.on_retire(RetireConnectionId(rng.choice(spare)), ids.active[0].cid)


def test_a_servers_batch_of_ids_equals_issuing_them_one_at_a_time() -> None:
    # The shortcut (one HMAC call for the batch's reset tokens) against the one-at-a-time path it
    # replaces: same CIDs (drawn in the same order), sequences, tokens and routing changes.
    batch = _ids()
    batch.issue_up_to(8)
    single = _ids()
    for limit in range(2, 9):  # one new ID per call: the general loop's single steps
        single.issue_up_to(limit)
    assert [(e.sequence, e.cid, e.reset_token, e.sent) for e in batch.active.values()] == [
        (e.sequence, e.cid, e.reset_token, e.sent) for e in single.active.values()
    ]
    for entry in batch.active.values():
        assert entry.reset_token == stateless_reset_token(b"k" * 32, entry.cid)
    assert list(batch.changes) == list(single.changes)
    assert batch.has_data_to_send() and single.has_data_to_send()
    batch.issue_up_to(8)  # nothing more to issue
    assert len(batch.active) == 8


def test_a_clients_ids_draw_each_random_token_after_its_cid() -> None:
    # The fallback: no endpoint key, random tokens drawn between the CIDs (the same draws as before).
    draws: list[int] = []

    def randbytes(n: int) -> bytes:
        draws.append(n)
        return os.urandom(n)

    ids = LocalConnectionIds(b"\x00" * 8, None, randbytes, 8)
    draws.clear()
    ids.issue_up_to(4)
    assert draws == [8, 16] * 3
    assert len(ids.active) == 4 and ids.has_data_to_send()


def test_a_lost_new_connection_id_is_sent_again_and_an_acked_one_never() -> None:
    from rudp.codec.frames import NewConnectionId

    class Sink:
        remaining = 1500

        def __init__(self) -> None:
            self.frames: list[tuple[object, object]] = []

        def push_frame(self, frame: object, handler: object = None) -> None:
            self.frames.append((frame, handler))

    ids = _ids()
    ids.issue_up_to(3)
    sink = Sink()
    ids.write_frames(sink)  # type: ignore[arg-type]
    assert [type(f) for f, _ in sink.frames] == [NewConnectionId, NewConnectionId]
    assert not ids.has_data_to_send()
    (_, lost), (_, acked) = sink.frames
    lost(False)  # type: ignore[operator]
    acked(True)  # type: ignore[operator]
    assert ids.has_data_to_send()
    again = Sink()
    ids.write_frames(again)  # type: ignore[arg-type]
    assert [f.sequence for f, _ in again.frames] == [1]  # type: ignore[attr-defined]
