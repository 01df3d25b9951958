"""Compatible version negotiation between QUIC v1 and v2 (RFC 9368, RFC 9369 §4).

Owns :class:`VersionNegotiation`: the connection's Original Version (the version of the client's first
flight), the versions this endpoint prefers, the version_information it sends, the server's choice of
a Negotiated Version, and the validation of the peer's version_information (RFC 9368 §4). The version
the packets use is the packet number spaces' (:attr:`~rudp.quic.spaces.PacketSpaces.version`, the keys
depend on it); this object decides when it changes and changes it through
:meth:`~rudp.quic.spaces.PacketSpaces.switch_version`.

The exchange (RFC 9368 §2.3, RFC 9369 §4.1): a client starts with its Original Version and lists in
its version_information the versions that first flight is compatible with. A server that prefers one
of them selects it after reading the client's transport parameters and answers in it from its first
CRYPTO frame on, its version_information naming it as Chosen Version. The client learns the
Negotiated Version from the first server Initial whose long-header Version differs from the original
one (and that opens with that version's Initial keys), and switches too. Both then check the other's
version_information; a mismatch is a VERSION_NEGOTIATION_ERROR.
"""

from __future__ import annotations

from rudp.codec.codes import SUPPORTED_VERSIONS, Version
from rudp.codec.packet import PacketHeader
from rudp.codec.transport_params import TransportParameters, VersionInformation
from rudp.crypto.protection import PacketProtection
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.keys import KeyPair
from rudp.quic.spaces import PacketSpaces
from rudp.tls.engine import EncryptionLevel

_TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR
_VNE = TransportErrorCode.VERSION_NEGOTIATION_ERROR

COMPATIBLE: frozenset[tuple[int, int]] = frozenset({(Version.V1, Version.V2), (Version.V2, Version.V1)})
"""(from, to) pairs whose first flights convert (RFC 9369 §4: v1 and v2 are compatible both ways)."""


def compatible(original: int, other: int) -> bool:
    """True if a first flight of ``original`` can be converted to ``other`` (identity included)."""
    return original == other or (original, other) in COMPATIBLE


_OFFERED: dict[tuple[int, tuple[int, ...] | None], tuple[int, ...]] = {}
"""Available Versions by (original version, preference list): a few constants, so each connection
does not filter the list again (bounded by _MAX_OFFERED)."""
_MAX_OFFERED = 64


def _offered(original: int, preferred: tuple[int, ...] | None) -> tuple[int, ...]:
    """RFC 9368 §3: a client's Available Versions list every version its first flight is compatible
    with, by descending preference, the Chosen Version included. Without a preference list the client
    prefers the version it started with and offers the other compatible ones after it."""
    key = (original, None if preferred is None else tuple(preferred))  # (a list given: hashable)
    found = _OFFERED.get(key)
    if found is None:
        order = preferred if preferred is not None else (original, *SUPPORTED_VERSIONS)
        offered = [v for v in order if compatible(original, v)]
        if original not in offered:
            offered.insert(0, original)
        found = tuple(dict.fromkeys(offered))
        if len(_OFFERED) < _MAX_OFFERED:
            _OFFERED[key] = found
    return found


_SERVER_INFORMATION: dict[int, VersionInformation] = {}
"""A server's version_information by the version it chose (immutable, the same for every connection
in that version; bounded by _MAX_OFFERED)."""


class VersionNegotiation:
    """The version story of one connection (see the module docstring)."""

    __slots__ = (
        "_candidate",
        "_is_client",
        "_offered",
        "_preferred",
        "_spaces",
        "original",
        "original_initial_read",
    )

    def __init__(self, spaces: PacketSpaces, *, is_client: bool, preferred: tuple[int, ...] | None) -> None:
        self._spaces = spaces
        self._is_client = is_client
        self.original = spaces.version
        """The Original Version: the one of the client's first flight (RFC 9368 §2)."""
        self._preferred = preferred
        # RFC 9368 §3: a client's Available Versions (a server's answer is built from its own list)
        self._offered = _offered(self.original, preferred) if is_client else ()
        self._candidate: tuple[int, KeyPair] | None = None
        self.original_initial_read: PacketProtection | None = None
        """(server, after switching) The client's Initial keys of the Original Version, kept until a
        Handshake packet of the Negotiated Version arrives (RFC 9369 §4.1)."""

    @property
    def switched(self) -> bool:
        """True once the connection moved from its Original Version to another one."""
        return self._spaces.version != self.original

    def local_information(self) -> VersionInformation:
        """Our version_information (RFC 9368 §3): a client's offer, or a server's choice with the
        versions this server deployment fully supports."""
        if self._is_client:
            return VersionInformation(self.original, self._offered)
        version = self._spaces.version
        found = _SERVER_INFORMATION.get(version)
        if found is None:
            found = VersionInformation(version, tuple(SUPPORTED_VERSIONS))
            if len(_SERVER_INFORMATION) < _MAX_OFFERED:  # (our own versions: a few)
                _SERVER_INFORMATION[version] = found
        return found

    # -- server (RFC 9368 §2.3, §4) ---------------------------------------------------------------------

    def choose(self, client: TransportParameters, initial_dcid: bytes) -> bool:
        """(server) Validate the client's version_information and, if this server prefers another
        version the client's first flight is compatible with, switch to it; True if switched."""
        info = client.version_information
        if info is None:
            return False  # RFC 9368 §4: servers MAY complete the handshake without it
        if 0 in info.available_versions or info.chosen_version not in info.available_versions:
            raise TransportError(_TPE, "malformed version_information")  # RFC 9368 §4: parse failure
        if info.chosen_version != self.original:
            # RFC 9368 §4: the Chosen Version must be the version the first flight came in.
            chosen = info.chosen_version
            raise TransportError(_VNE, f"client chose {chosen:#x} in a {self.original:#x} packet")
        if self._preferred is None:
            return False  # no preference: keep the client's choice
        target = next(
            (
                v
                for v in self._preferred
                if v in info.available_versions and v in SUPPORTED_VERSIONS and compatible(self.original, v)
            ),
            self.original,
        )
        if target == self._spaces.version:
            return False
        # RFC 9369 §4.1: the client's Initials may still come in the original version; keep its keys.
        self.original_initial_read = self._spaces.read_keys(EncryptionLevel.INITIAL)
        self._spaces.switch_version(target, KeyPair.initial(initial_dcid, target, is_client=False))
        return True

    def on_handshake_packet(self) -> None:
        """(server) A Handshake packet of the Negotiated Version opened: the Original Version's
        Initial keys may go (RFC 9369 §4.1)."""
        self.original_initial_read = None

    # -- the other version's Initials (RFC 9369 §4.1) ------------------------------------------------------

    def keys_for(self, header: PacketHeader, initial_dcid: bytes) -> PacketProtection | None:
        """Read keys for an Initial in a version other than the one in use, or None (drop it).

        A server that switched still reads the client's Original Version Initials. A client learns
        the Negotiated Version from the first server Initial in another version it offered, as long as
        no server CRYPTO data was read in the original one (no Handshake keys yet): its keys are those
        of the new version, kept aside until the packet opens (:meth:`on_opened`)."""
        version = header.version
        if not self._is_client:
            return self.original_initial_read if version == self.original else None
        if (
            self.switched
            or version is None
            or version not in self._offered
            or self._spaces.read_keys(EncryptionLevel.HANDSHAKE) is not None
        ):
            return None
        keys = KeyPair.initial(initial_dcid, version, is_client=True)
        self._candidate = (version, keys)
        return keys.read

    def on_opened(self, header: PacketHeader) -> None:
        """(client) A server Initial opened with the candidate keys: switch to its version."""
        candidate = self._candidate
        self._candidate = None
        if self._is_client and candidate is not None and header.version == candidate[0]:
            self._spaces.switch_version(*candidate)

    # -- both (RFC 9368 §4) ------------------------------------------------------------------------------

    def validate_server(self, server: TransportParameters) -> None:
        """(client) The server's version_information must name the version in use, one we offered.
        Without one the handshake may complete: this client never reacts to Version Negotiation
        packets within a connection (RFC 9368 §4, §8)."""
        info = server.version_information
        if info is None:
            if self.switched:
                raise TransportError(_VNE, "server switched versions without version_information")
            return
        if 0 in info.available_versions:
            raise TransportError(_TPE, "malformed version_information")  # RFC 9368 §4: parse failure
        if info.chosen_version not in self._offered:
            raise TransportError(_VNE, f"server chose {info.chosen_version:#x}, which we did not offer")
        if info.chosen_version != self._spaces.version:
            raise TransportError(
                _VNE, f"server chose {info.chosen_version:#x} but speaks {self._spaces.version:#x}"
            )
