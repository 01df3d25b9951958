"""Config checks every field when it is built; each ConfigError names the field and the bad value."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

import rudp
from rudp.config import DEFAULT_ALPN
from rudp.quic.congestion import NewReno, register_congestion_controller


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_auth", "always"),
        ("handshake_timeout", 0),
        ("handshake_timeout", -1.0),
        ("handshake_timeout", "5"),
        ("congestion", "vegas"),
        ("congestion", 3),
        ("max_streams_bidi", -1),
        ("max_streams_uni", 2**60 + 1),
        ("max_streams_bidi", 1.5),
        ("idle_timeout", -1),
        ("idle_timeout", float("nan")),
        ("keepalive_interval", 0),
        ("alpn", "h3"),
        ("alpn", []),
        ("alpn", [""]),
        ("initial_max_data", 0),
        ("max_datagram_frame_size", 0),
        ("max_datagram_size", 1000),
        ("connection_id_length", 21),
        ("active_connection_id_limit", 1),
        ("max_handshakes", 0),
        ("max_connections", 0),
        ("retry_threshold", -1),
        ("address_token_lifetime", 0),
        ("cipher_suites", []),
        ("stateless_reset_key", b"short"),
        ("server_name", ""),
        ("version", 0xFF),
        ("randbytes", None),
        ("send_buffer_bytes", True),
    ],
)
def test_invalid_field_is_named_with_its_value(field: str, value: Any) -> None:
    with pytest.raises(rudp.ConfigError) as info:
        rudp.Config(**{field: value})
    message = str(info.value)
    assert f"Config.{field}" in message
    assert repr(value) in message or str(value) in message


@pytest.mark.parametrize(("given", "missing"), [("certfile", "keyfile"), ("keyfile", "certfile")])
def test_certificate_and_key_go_together(given: str, missing: str) -> None:
    with pytest.raises(rudp.ConfigError) as info:
        rudp.Config(**{given: "credentials.pem"})
    assert str(info.value) == (
        f"Config.{given} is set (credentials.pem) but Config.{missing} is not: "
        "give both the certificate and its private key"
    )


def test_congestion_name_is_resolved_through_the_registry() -> None:
    with pytest.raises(
        rudp.ConfigError, match=r"Config.congestion: unknown congestion controller 'bbr9'.*newreno"
    ):
        rudp.Config(congestion="bbr9")
    register_congestion_controller("test-config-reno", NewReno)
    assert rudp.Config(congestion="test-config-reno").congestion == "test-config-reno"
    assert rudp.Config(congestion="CUBIC").congestion == "CUBIC"  # names are case-insensitive
    assert rudp.Config(congestion=NewReno).congestion is NewReno  # classes and factories stay allowed
    rudp.Config(congestion=lambda size: NewReno(size))


def test_valid_edges_are_accepted() -> None:
    rudp.Config(max_streams_bidi=0, max_streams_uni=0)  # RFC 9000 §4.6: the peer may open none
    rudp.Config(idle_timeout=0, client_auth="optional", certfile="c.pem", keyfile="k.pem")
    rudp.Config(handshake_timeout=0.001, alpn=("a", "b"), stateless_reset_key=bytes(16))


def test_default_alpn_is_rudp_not_hq_interop() -> None:
    assert DEFAULT_ALPN == "rudp/1"
    assert rudp.Config().alpn == ["rudp/1"]


def test_local_transport_parameters_follow_the_configuration() -> None:
    # Shared between connections of one configuration, rebuilt when a field they come from changes
    # (also in place): every input of the parameters is part of the cache key.
    config = rudp.Config()
    first = config.local_transport_parameters()
    assert config.local_transport_parameters() is first
    assert rudp.Config().local_transport_parameters() == first
    changes: list[tuple[str, Any, str, Any]] = [
        ("idle_timeout", 7.0, "max_idle_timeout", 7000),
        ("initial_max_data", 123_456, "initial_max_data", 123_456),
        ("initial_max_stream_data", 65_432, "initial_max_stream_data_uni", 65_432),
        ("max_streams_bidi", 17, "initial_max_streams_bidi", 17),
        ("max_streams_uni", 19, "initial_max_streams_uni", 19),
        ("ack_delay_exponent", 5, "ack_delay_exponent", 5),
        ("max_ack_delay", 0.04, "max_ack_delay", 40),
        ("active_connection_id_limit", 5, "active_connection_id_limit", 5),
        ("disable_active_migration", True, "disable_active_migration", True),
        ("timer_granularity", 0.002, "min_ack_delay", 2000),
    ]
    for field, value, parameter, expected in changes:
        config = rudp.Config()
        setattr(config, field, value)
        assert getattr(config.local_transport_parameters(), parameter) == expected, field
    config = rudp.Config(datagrams=True, max_datagram_frame_size=1000)
    assert config.local_transport_parameters().max_datagram_frame_size == 1000
    config.datagrams = False
    assert config.local_transport_parameters().max_datagram_frame_size is None
    config = rudp.Config(ack_frequency=True)
    assert config.local_transport_parameters().min_ack_delay is not None
    config.ack_frequency = False
    assert config.local_transport_parameters().min_ack_delay is None


def test_local_transport_parameters_kept_until_a_field_changes() -> None:
    # The instance keeps its parameters (no key built per connection) until any field is assigned:
    # each change after a first call gives what a fresh configuration of those values gives.
    config = rudp.Config()
    first = config.local_transport_parameters()
    for field, value in (("idle_timeout", 9.0), ("max_streams_bidi", 7), ("datagrams", True)):
        setattr(config, field, value)
        again = config.local_transport_parameters()
        assert again == dataclasses.replace(config).local_transport_parameters()  # (a new instance)
        assert again != first and config.local_transport_parameters() is again
        first = again
    copied = copy.copy(config)
    assert copied.local_transport_parameters() is first
    copied.max_streams_uni = 3
    assert copied.local_transport_parameters().initial_max_streams_uni == 3
    assert config.local_transport_parameters() is first
    replaced = dataclasses.replace(config, max_streams_uni=4)
    assert replaced.local_transport_parameters().initial_max_streams_uni == 4
    assert config == copy.copy(config) and "derived" not in repr(config)
