"""Server's preferred address (RFC 9000 §9.6) on both sides, disable_active_migration (§9, §18.2), and
the qlog record of path changes.

Owns :class:`Migration`, one per connection:

* **Server**: advertises ``Config.preferred_address`` in its transport parameters with a connection ID
  of its own, sequence number 1, and its stateless reset token (§5.1.1, §18.2). That CID is an ordinary
  member of :class:`~rudp.quic.cids.LocalConnectionIds` (routed by the endpoint, retired and replaced
  like any other). Packets arriving at the preferred address need nothing special from this module:
  the endpoint passes each datagram's local address, and a (client address, local address) pair is a
  path of its own (:mod:`rudp.quic.paths`), even when the client probes from the address it already
  uses. The probe is answered on that path (§8.2.2), with a client CID not used from the original
  address (§9.5: one of the client's NEW_CONNECTION_IDs); the client's non-probing packets there move
  the server, which validates the path from its preferred address (§9.3, §9.6.2), and each datagram
  leaves from its path's local address (``QuicConnection.datagram_sources``).
* **Client**: keeps the preferred CID as a spare (§9.6.3: usable on any path); once the handshake is
  confirmed it probes the preferred address of its own address family with that CID (§9.6.1), keeps
  sending everything else to the original address, moves there when the path validates, and stays
  where it is if validation fails (§9.6.1: "MUST continue sending ... to the server's original IP
  address"). ``Config.use_preferred_address=False`` declines.
* **disable_active_migration**: a client whose server sent it refuses ``migrate()`` with
  :class:`~rudp.errors.MigrationDisabled`, unless it moved to the preferred address (§9: the parameter
  "does not prohibit connection migration after a client has acted on a preferred_address"). A server
  that sent it still follows a client whose address changes: §9 lets it either drop such packets or
  validate the new path, and a NAT rebinding (of port or address) looks exactly like an active
  migration, so dropping would break clients behind NATs; it validates.
* **qlog**: every change of the current path (the peer moved, we moved, a fallback after a failed
  validation) and the client's probing are written as ``quic:migration_state_updated`` (qlog QUIC
  events draft, "migration_state_updated") with the remote address; ``ConnectionStats.path_changes``
  counts the changes (owned by :class:`~rudp.quic.paths.Paths`).

The connection calls :meth:`Migration.poll` from ``datagrams_to_send`` (after every input, as the
sans-IO contract runs it), so this module needs no hook in the receive path or the timers.
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Protocol

from rudp.codec.transport_params import PreferredAddress, TransportParameters
from rudp.errors import ConfigError, MigrationDisabled, RudpError, TransportError, TransportErrorCode
from rudp.quic.paths import Address, Path, Paths

if TYPE_CHECKING:
    from rudp.quic.cids import LocalConnectionIds, PeerCid, PeerConnectionIds


class MigrationState(Enum):
    """Where the client's move to the preferred address stands (qlog MigrationState names where they
    exist)."""

    NONE = "none"
    """No preferred address (or a server)."""
    DECLINED = "declined"
    """The server offered one; ``Config.use_preferred_address`` is False, or none of our family."""
    PENDING = "pending"
    """Waiting for the handshake to be confirmed (RFC 9000 §9.6.1)."""
    PROBING = "probing_started"
    """PATH_CHALLENGEs go to the preferred address; everything else still to the original one."""
    MIGRATED = "migration_complete"
    """The preferred address validated: every packet goes there now."""
    FAILED = "probing_abandoned"
    """It never answered: the connection stays on the original address."""


_ACTIVE = (MigrationState.PENDING, MigrationState.PROBING)
"""Bound once (:attr:`Migration.active` is read on every flush; enum lookups are slow in 3.11)."""


class MigrationLog(Protocol):
    """The qlog hook this module writes to (``NullQlog``/``QlogTrace``)."""

    records: bool
    """False for a log that writes nothing (``NullQlog``): no change need be looked for."""

    def migration_state_updated(self, new: str, remote: Address | None, now: float) -> None: ...


def parse_address(spec: str) -> Address:
    """``"192.0.2.1:443"`` or ``"[2001:db8::1]:443"`` as (host, port), the host a literal.

    Raises:
        ValueError: not an IP literal with a port from 1 to 65535.
    """
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{spec!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ipaddress.ip_address(host).version != 6:
            raise ValueError(f"{spec!r}: brackets hold an IPv6 address")
    elif ipaddress.ip_address(host).version != 4:
        raise ValueError(f"{spec!r}: an IPv6 address goes in brackets, [host]:port")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"{spec!r}: the port must be 1..65535")
    return (str(ipaddress.ip_address(host)), number)


def preferred_addresses(specs: list[str] | None) -> tuple[Address | None, Address | None]:
    """The (IPv4, IPv6) preferred addresses of ``Config.preferred_address``.

    Raises:
        ValueError: a bad entry, or two of one family.
    """
    ipv4: Address | None = None
    ipv6: Address | None = None
    for spec in specs or ():
        address = parse_address(spec)
        if ":" in address[0]:
            if ipv6 is not None:
                raise ValueError("at most one IPv6 preferred address")
            ipv6 = address
        else:
            if ipv4 is not None:
                raise ValueError("at most one IPv4 preferred address")
            ipv4 = address
    for found in (ipv4, ipv6):
        if found is not None and ipaddress.ip_address(found[0]).is_unspecified:
            # RFC 9000 §18.2: an all-zero address means "no address of this family".
            raise ValueError(f"{found[0]} is not an address a client can reach")
    return ipv4, ipv6


def check_migration_config(config: Any) -> None:
    """Config validation of the migration fields (called from ``Config.__post_init__``).

    Raises:
        ConfigError: naming the field and the value.
    """
    value = config.preferred_address
    if value is not None:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise ConfigError(
                f'Config.preferred_address must be None or a list such as ["192.0.2.1:443"], not {value!r}'
            )
        try:
            preferred_addresses(list(value))
        except ValueError as exc:
            raise ConfigError(f"Config.preferred_address: {exc}") from None
        if config.connection_id_length == 0:
            # RFC 9000 §18.2: a server using zero-length CIDs must not send a preferred address.
            raise ConfigError("Config.preferred_address needs connection_id_length > 0")
    for name in ("serve_preferred_address", "use_preferred_address", "disable_active_migration"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"Config.{name} must be True or False, not {getattr(config, name)!r}")


_NO_ADDRESSES: Final[tuple[Address | None, Address | None]] = (None, None)


class Migration:
    """The preferred address and migration policy of one connection (see the module docstring).

    The attributes a connection may never change start as class-level defaults (every connection
    builds one; most never migrate): an assignment in a method gives the instance its own value."""

    _parameter: PreferredAddress | None = None
    state = MigrationState.NONE
    target: Address | None = None
    """(client) the preferred address chosen (probed, then used), or None."""
    peer_disabled_migration = False
    """(client) the server sent disable_active_migration."""
    _reserved: PeerCid | None = None
    _probe: Path | None = None
    _logged_key: tuple[int, Path, bool] | None = None
    _logged_state: MigrationState | None = None

    def __init__(self, config: Any, *, is_client: bool) -> None:
        self._is_client = is_client
        self._use_preferred = bool(config.use_preferred_address)
        spec = config.preferred_address
        self._advertised: tuple[Address | None, Address | None] = (
            _NO_ADDRESSES if is_client or not spec else preferred_addresses(spec)
        )

    @property
    def active(self) -> bool:
        """True while :meth:`poll` has work to do (waiting to probe, or probing)."""
        return self.state in _ACTIVE

    # -- server ----------------------------------------------------------------------------------------

    def advertise(self, local_cids: LocalConnectionIds) -> PreferredAddress | None:
        """(server) The preferred_address transport parameter, issuing its CID (sequence 1) the first
        time; None without ``Config.preferred_address``."""
        ipv4, ipv6 = self._advertised
        if self._is_client or (ipv4 is None and ipv6 is None):
            return None
        if self._parameter is None:
            entry = local_cids.issue_preferred()
            self._parameter = PreferredAddress(
                ipaddress.IPv4Address(ipv4[0]) if ipv4 else None,
                ipv4[1] if ipv4 else 0,
                ipaddress.IPv6Address(ipv6[0]) if ipv6 else None,
                ipv6[1] if ipv6 else 0,
                entry.cid,
                entry.reset_token,
            )
        return self._parameter

    # -- client ----------------------------------------------------------------------------------------

    def on_peer_parameters(
        self, params: TransportParameters, peer_cids: PeerConnectionIds, server: Address
    ) -> None:
        """(client) The server's transport parameters arrived: keep its preferred CID as a spare and
        choose the address to move to.

        Raises:
            TransportError: TRANSPORT_PARAMETER_ERROR for a preferred address from a server using a
                zero-length connection ID (RFC 9000 §18.2).
        """
        if not self._is_client:
            return
        self.peer_disabled_migration = params.disable_active_migration
        preferred = params.preferred_address
        if preferred is None:
            return
        if not peer_cids.current.cid:
            raise TransportError(
                TransportErrorCode.TRANSPORT_PARAMETER_ERROR, "preferred_address with a zero-length CID"
            )
        peer_cids.add_preferred(preferred.connection_id, preferred.stateless_reset_token)
        target = _same_family(preferred, server)
        if target is None or target == server or not self._use_preferred:
            self.state = MigrationState.DECLINED
            return
        self.target = target
        self.state = MigrationState.PENDING

    def poll(
        self, now: float, paths: Paths, peer_cids: PeerConnectionIds, *, confirmed: bool, pto: float
    ) -> Path | None:
        """(client) Advance the move: start probing once ``confirmed`` (RFC 9000 §9.6.1), give up when
        the probe's validation failed. Returns the validated preferred path when the connection must
        move to it now (the caller switches paths and resets congestion control, §9.4)."""
        if self.state is MigrationState.PENDING:
            if confirmed and self.target is not None:
                self._start(now, paths, peer_cids, pto)
            return None
        probe = self._probe
        if self.state is not MigrationState.PROBING or probe is None:
            return None
        reserved = self._reserved
        if probe.validated and reserved is not None:
            self.state = MigrationState.MIGRATED
            self._reserved = None
            peer_cids.use(reserved)
            return probe
        if not probe.validating:
            # RFC 9000 §9.6.1: validation failed; everything keeps going to the original address.
            self.state = MigrationState.FAILED
            if reserved is not None:
                peer_cids.release(reserved)
            self._reserved = None
        return None

    def _start(self, now: float, paths: Paths, peer_cids: PeerConnectionIds, pto: float) -> None:
        target = self.target
        reserved = peer_cids.reserve(1)
        if target is None or reserved is None:  # the server retired it already: nothing to probe with
            self.state = MigrationState.FAILED
            return
        self._reserved = reserved
        self._probe = paths.add_probe(target, now, pto, dcid=reserved.cid)
        self.state = MigrationState.PROBING

    def check_migrate(self) -> None:
        """(client) Before ``migrate()``.

        Raises:
            MigrationDisabled: the server sent disable_active_migration and we have not moved to its
                preferred address (RFC 9000 §9).
            RudpError: the preferred address is being probed (the move settles within three PTOs).
        """
        if self.state is MigrationState.PROBING:
            raise RudpError("the server's preferred address is being validated; migrate once it settles")
        if self.peer_disabled_migration and self.state is not MigrationState.MIGRATED:
            raise MigrationDisabled(
                "the server sent disable_active_migration: this connection must keep its local address"
            )

    # -- qlog --------------------------------------------------------------------------------------------

    def log_path_changes(self, paths: Paths, qlog: MigrationLog, now: float) -> None:
        """Write ``quic:migration_state_updated`` for a change of the current path (and the client's
        probing states) since the last call; cheap when nothing changed, nothing without a log (a
        connection's log is chosen once, when it is created)."""
        if not qlog.records:
            return
        state = self.state
        if state is not MigrationState.NONE and state is not self._logged_state:
            self._logged_state = state
            name = _PROBE_LOG_NAMES.get(state)
            if name is not None:
                qlog.migration_state_updated(name, self.target, now)
        current = paths.current
        key = (paths.changes, current, current.validated and not current.validating)
        last = self._logged_key
        if last is not None and key[0] == last[0] and key[1] is last[1] and key[2] == last[2]:
            return
        self._logged_key = key
        if last is None or key[0] == 0:
            return  # no migration yet (the handshake validating the first path is not one)
        if key[0] == last[0] and key[1] is not last[1]:
            new = "migration_abandoned"  # RFC 9000 §9.3.2: back on the last validated path
        else:
            new = "migration_complete" if key[2] else "migration_started"
        qlog.migration_state_updated(new, current.address, now)


_PROBE_LOG_NAMES = {
    MigrationState.PROBING: "probing_started",
    MigrationState.MIGRATED: "probing_successful",  # the path change that follows: migration_complete
    MigrationState.FAILED: "probing_abandoned",
}


def _same_family(preferred: PreferredAddress, server: Address) -> Address | None:
    """RFC 9000 §9.6.3: the preferred address of the family we reach the server with (our socket's)."""
    if ":" in server[0]:
        if preferred.ipv6_address is None or not preferred.ipv6_port:
            return None
        return (str(preferred.ipv6_address), preferred.ipv6_port)
    if preferred.ipv4_address is None or not preferred.ipv4_port:
        return None
    return (str(preferred.ipv4_address), preferred.ipv4_port)


__all__ = [
    "Migration",
    "MigrationState",
    "check_migration_config",
    "parse_address",
    "preferred_addresses",
]
