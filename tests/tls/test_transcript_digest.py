"""The transcript keeps its last Transcript-Hash until the next message (RFC 8446 §4.4.1), and the
Finished HMAC's precomputed "finished" label block: both against the general computation."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from rudp.crypto.hkdf import hash_by_name, hkdf_expand_label
from rudp.tls.framing import HandshakeType, frame
from rudp.tls.key_schedule import KeySchedule, Transcript, hmac_verify_data


@pytest.mark.parametrize("name", ["sha256", "sha384"])
def test_repeated_digests_follow_every_message(name: str) -> None:
    transcript = Transcript()
    transcript.set_hash(name)
    seen = b""
    for index in range(6):
        expected = hashlib.new(name, seen).digest()
        assert transcript.digest() == expected
        assert transcript.digest() == expected  # (the kept one)
        assert transcript.digest(b"extra") == hashlib.new(name, seen + b"extra").digest()
        assert transcript.digest() == expected  # an extra does not replace the kept digest
        message = frame(HandshakeType.finished, bytes([index]) * (index + 1))
        transcript.add(message)
        seen += message
    assert transcript.digest() == hashlib.new(name, seen).digest()


def test_a_digest_before_the_hash_is_chosen_is_not_kept() -> None:
    transcript = Transcript()
    transcript.add(b"one")
    assert transcript.digest(name="sha384") == hashlib.sha384(b"one").digest()
    transcript.set_hash("sha256")
    assert transcript.digest() == hashlib.sha256(b"one").digest()
    transcript.add(b"two")
    assert transcript.digest() == hashlib.sha256(b"onetwo").digest()


def test_a_retry_replaces_the_kept_digest() -> None:
    ch1, hrr = frame(HandshakeType.client_hello, b"first"), frame(HandshakeType.server_hello, b"retry")
    transcript = Transcript()
    transcript.set_hash("sha256")
    transcript.add(ch1)
    before = transcript.digest()
    assert before == hashlib.sha256(ch1).digest()
    transcript.restart_after_retry("sha256")
    synthetic = frame(HandshakeType.message_hash, hashlib.sha256(ch1).digest())
    assert transcript.digest() == hashlib.sha256(synthetic).digest() != before
    transcript.add(hrr)
    assert transcript.digest() == hashlib.sha256(synthetic + hrr).digest()


@pytest.mark.parametrize("name", ["sha256", "sha384"])
def test_finished_from_the_precomputed_block_equals_hkdf_expand_label(name: str) -> None:
    size = hash_by_name(name).digest_size
    for seed in range(4):
        base = bytes((seed + i) & 0xFF for i in range(size))
        transcript_hash = hashlib.new(name, bytes([seed])).digest()
        finished_key = hkdf_expand_label(hash_by_name(name), base, b"finished", b"", size)
        expected = hmac.digest(finished_key, transcript_hash, name)
        assert hmac_verify_data(name, base, transcript_hash) == expected


@pytest.mark.parametrize("name", ["sha256", "sha384"])
def test_derive_with_a_hash_length_context_and_others_equals_hkdf_expand_label(name: str) -> None:
    # the label heads kept with the length byte of a Hash.length context (the transcript hashes), and
    # the general path for other context lengths
    size = hash_by_name(name).digest_size
    for length in (size, 0, 1, size - 1, size + 1, 32, 48, 255):
        context = bytes(range(length))
        for label in (b"c hs traffic", b"s ap traffic", b"res master", b"odd label"):
            schedule = KeySchedule(name)
            expected = hkdf_expand_label(hash_by_name(name), schedule.secret, label, context, size)
            assert schedule.derive(label, context) == expected
            assert schedule.derive(label, context) == expected
