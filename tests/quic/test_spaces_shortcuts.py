"""Packet number spaces' shortcuts (issue 13, server handshake CPU): the key usage told of a suite once
per suite, and one shared record of skipped numbers for the spaces that skip none; each against the
general behaviour."""

from __future__ import annotations

import itertools
import os
import random

import pytest

from rudp.crypto.suites import CipherSuite
from rudp.quic.key_limits import KeyUsage
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import PacketNumberSpace, PacketSpaces
from rudp.tls.engine import EncryptionLevel


@pytest.mark.parametrize("interval", [None, 1000])
def test_spaces_tell_the_usage_each_new_suite_as_every_install_would(interval: int | None) -> None:
    """PacketSpaces.install tells KeyUsage of a suite only when it differs from the last: the limits and
    thresholds are those of telling it on every install (set_suite depends on the suite alone)."""
    spaces = PacketSpaces(1, random.Random(1).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
    spaces.usage = KeyUsage(interval=interval)
    reference = KeyUsage(interval=interval)
    suites = [CipherSuite.AES_128_GCM_SHA256] * 3 + [CipherSuite.CHACHA20_POLY1305_SHA256] * 2
    suites += [CipherSuite.AES_256_GCM_SHA384, CipherSuite.AES_128_GCM_SHA256]
    levels = itertools.cycle([EncryptionLevel.HANDSHAKE, EncryptionLevel.APPLICATION])
    for suite, level in zip(suites, levels, strict=False):
        size = 48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32
        spaces.install(level, read=True, suite=suite, secret=os.urandom(size))
        reference.set_suite(suite)
        state = (spaces.usage.limits, spaces.usage.update_at, spaces.usage.urgent_at, spaces.usage.close_at)
        assert state == (reference.limits, reference.update_at, reference.urgent_at, reference.close_at)


def test_a_space_that_skips_no_numbers_remembers_none() -> None:
    """Initial and Handshake spaces skip no packet numbers (RFC 9000 §21.4 is done in the Application
    space): they share one empty record that can hold nothing; the Application space has its own."""
    spaces = PacketSpaces(1, random.Random(0).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
    other = PacketSpaces(1, random.Random(1).randbytes, max_ack_delay=0.025, ack_delay_exponent=3)
    initial = spaces[PacketSpace.INITIAL]
    for _ in range(2000):
        initial.advance()
        spaces.application.advance()
    assert initial.next_pn == 2000 and list(initial.skipped) == []
    assert initial.never_sent_in(((0, 5000),)) is None
    assert spaces.application.skipped and spaces.application.skipped is not other.application.skipped
    assert PacketNumberSpace(PacketSpace.APPLICATION, random.Random(0).randbytes).skipped.maxlen == 0
