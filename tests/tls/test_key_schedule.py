"""Key schedule vectors, transcript hash rules and the key log format."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.crypto.hkdf import hash_by_name, hkdf_expand_label, hkdf_extract
from rudp.tls import Direction, EncryptionLevel, keylog_file
from rudp.tls.framing import HandshakeType, frame
from rudp.tls.key_schedule import KeySchedule, Transcript, hmac_verify_data, resumption_psk
from rudp.tls.keylog import keylog_from_environment
from tests.tls.pki import Pki
from tests.tls.support import client_config, make_pair, server_config


def test_hkdf_expand_label_rfc9001_appendix_a() -> None:
    sha256 = hash_by_name("sha256")
    salt = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    initial = hkdf_extract(sha256, salt, bytes.fromhex("8394c8f03e515708"))
    assert initial.hex() == "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"
    client = hkdf_expand_label(sha256, initial, b"client in", b"", 32)
    assert client.hex() == "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
    server = hkdf_expand_label(sha256, initial, b"server in", b"", 32)
    assert server.hex() == "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"
    assert hkdf_expand_label(sha256, client, b"quic key", b"", 16).hex() == "1f369613dd76d5467730efcbe3b1a22d"


def test_key_schedule_rfc8448_simple_handshake() -> None:
    """The early and handshake secrets of RFC 8448 §3 (Simple 1-RTT Handshake)."""
    schedule = KeySchedule("sha256")
    assert schedule.secret.hex() == "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"
    shared = bytes.fromhex("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
    schedule.enter_handshake(shared)
    assert schedule.secret.hex() == "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"
    schedule.enter_main()
    assert schedule.secret.hex() == "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"


def test_transcript_after_hello_retry_request() -> None:
    ch1, hrr, ch2 = frame(1, b"hello one"), frame(2, b"retry"), frame(1, b"hello two")
    transcript = Transcript()
    transcript.add(ch1)
    transcript.restart_after_retry("sha384")
    transcript.add(hrr)
    transcript.add(ch2)
    synthetic = frame(HandshakeType.message_hash, hashlib.sha384(ch1).digest())
    assert transcript.digest() == hashlib.sha384(synthetic + hrr + ch2).digest()
    assert transcript.digest(b"x") == hashlib.sha384(synthetic + hrr + ch2 + b"x").digest()


def test_transcript_defers_the_hash_choice() -> None:
    transcript = Transcript()
    transcript.add(b"abc")
    assert transcript.digest(b"d", name="sha384") == hashlib.sha384(b"abcd").digest()
    transcript.set_hash("sha256")
    transcript.add(b"e")
    assert transcript.digest() == hashlib.sha256(b"abce").digest()


def test_finished_is_an_hmac_of_the_transcript() -> None:
    import hmac

    base = bytes(range(32))
    transcript_hash = hashlib.sha256(b"messages").digest()
    finished_key = hkdf_expand_label(hash_by_name("sha256"), base, b"finished", b"", 32)
    expected = hmac.digest(finished_key, transcript_hash, "sha256")
    assert hmac_verify_data("sha256", base, transcript_hash) == expected


def test_keylog_lines(pki: Pki) -> None:
    lines: dict[str, list[str]] = {"client": [], "server": []}
    pair = make_pair(
        client_config(pki, keylog=lines["client"].append), server_config(pki, keylog=lines["server"].append)
    )
    pair.run()
    client_random = pair.client.sent[0][1][6:38].hex()
    assert sorted(lines["client"]) == sorted(lines["server"])
    labels = [line.split(" ")[0] for line in lines["client"]]
    assert labels == [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ]
    secrets = {line.split(" ")[0]: line.split(" ")[2] for line in lines["client"]}
    assert all(line.split(" ")[1] == client_random for line in lines["client"])
    keys = {(k.level, k.direction): k.secret.hex() for k in pair.client.keys}
    assert secrets["CLIENT_HANDSHAKE_TRAFFIC_SECRET"] == keys[EncryptionLevel.HANDSHAKE, Direction.WRITE]
    assert secrets["SERVER_TRAFFIC_SECRET_0"] == keys[EncryptionLevel.APPLICATION, Direction.READ]


def test_keylog_early_secret_and_file(pki: Pki, tmp_path: Path) -> None:
    from rudp.tls import TicketStore

    path = tmp_path / "keys.log"
    server_cfg = server_config(pki, early_data=True)
    store = TicketStore()
    make_pair(client_config(pki, ticket_store=store), server_cfg).run()
    pair = make_pair(
        client_config(pki, ticket_store=store, early_data=True, keylog=keylog_file(path)), server_cfg, seed=5
    )
    pair.run()
    assert pair.server.engine.early_data_accepted
    lines = path.read_text().splitlines()
    assert lines[0].startswith("CLIENT_EARLY_TRAFFIC_SECRET ")
    assert len(lines) == 5
    early = next(k for k in pair.client.keys if k.level == EncryptionLevel.EARLY_DATA)
    assert lines[0].endswith(" " + early.secret.hex())
    assert keylog_from_environment({}) is None
    assert keylog_from_environment({"SSLKEYLOGFILE": str(path)}) is not None


def _reference_schedule(hash_name: str, psk: bytes | None, shared: bytes, th: bytes) -> list[bytes]:
    """RFC 8446 §7.1 spelled out with the general HKDF functions (no prepared HMAC keys)."""
    algorithm = hash_by_name(hash_name)
    size = algorithm.digest_size
    zero = bytes(size)
    empty = hashlib.new(hash_name).digest()
    out = []
    secret = hkdf_extract(algorithm, zero, psk or zero)
    for ikm in (shared, zero):
        out.append(hkdf_expand_label(algorithm, secret, b"c e traffic", th, size))
        derived = hkdf_expand_label(algorithm, secret, b"derived", empty, size)
        secret = hkdf_extract(algorithm, derived, ikm)
        out.append(secret)
        out.extend(hkdf_expand_label(algorithm, secret, label, th, size) for label in (b"c hs traffic", b"x"))
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["sha256", "sha384"]),
    st.none() | st.binary(min_size=1, max_size=80),
    st.binary(min_size=1, max_size=66),
    st.binary(max_size=48),
)
def test_key_schedule_matches_the_general_hkdf_path(
    hash_name: str, psk: bytes | None, shared: bytes, th: bytes
) -> None:
    """The schedule's prepared HMAC keys (per stage, and the constant no-PSK "derived" secret) give
    the bytes of plain HKDF-Extract / HKDF-Expand-Label, twice in a row (the shared constants)."""
    for _ in range(2):
        schedule = KeySchedule(hash_name, psk)
        got = []
        for stage in range(2):
            got.append(schedule.derive(b"c e traffic", th))
            if stage == 0:
                schedule.enter_handshake(shared)
            else:
                schedule.enter_main()
            got.append(schedule.secret)
            got.extend(schedule.derive(label, th) for label in (b"c hs traffic", b"x"))
        assert got == _reference_schedule(hash_name, psk, shared, th)


def test_derive_rejects_a_context_longer_than_255_bytes_as_hkdf_expand_label_does() -> None:
    schedule = KeySchedule("sha256")
    for derive in (
        lambda: schedule.derive(b"c hs traffic", bytes(256)),
        lambda: hkdf_expand_label(hash_by_name("sha256"), schedule.secret, b"c hs traffic", bytes(256), 32),
    ):
        try:
            derive()
        except ValueError:
            continue
        raise AssertionError("no ValueError")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["sha256", "sha384"]), st.binary(min_size=1, max_size=48), st.binary(max_size=255))
def test_resumption_psk_is_hkdf_expand_label(hash_name: str, secret: bytes, nonce: bytes) -> None:
    """RFC 8446 §4.6.1: the ticket PSK, one prepared block, is HKDF-Expand-Label(secret,
    "resumption", nonce, Hash.length) of the general path."""
    algorithm = hash_by_name(hash_name)
    expected = hkdf_expand_label(algorithm, secret, b"resumption", nonce, algorithm.digest_size)
    assert resumption_psk(hash_name, secret, nonce) == expected


def test_resumption_psk_refuses_a_nonce_longer_than_255_bytes() -> None:
    try:
        resumption_psk("sha256", bytes(32), bytes(256))
    except ValueError:
        return
    raise AssertionError("no ValueError")


def test_hash_length_and_main_stage_without_argument() -> None:
    for name, size in (("sha256", 32), ("sha384", 48)):
        schedule = KeySchedule(name, b"p" * size)
        assert schedule.hash_length == size
        schedule.enter_handshake(b"s" * 32)
        handshake_secret = schedule.secret
        schedule.enter_main()
        derived = hkdf_expand_label(
            hash_by_name(name), handshake_secret, b"derived", hashlib.new(name).digest(), size
        )
        assert schedule.secret == hkdf_extract(hash_by_name(name), derived, bytes(size))
