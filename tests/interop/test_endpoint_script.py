"""interop/run_endpoint.sh, the QUIC Interop Runner endpoint, as server and as client against itself.

Real processes and sockets: the server script listens on ``::`` with ``PORT=0`` (it prints the port it
got), the client script fetches ``REQUESTS`` into a temporary ``DOWNLOADS`` and each download is compared
with the served file by SHA-256. The client's own report (``RUDP_ENDPOINT_REPORT``) must show the case's
feature: resumption, 0-RTT accepted, ChaCha20, a key update, a migration, ALPN h3, ECN validated.

Only the retry case changes what the server does, so one server (TESTCASE=transfer) serves every other
case and a second one (TESTCASE=retry) the retry case. The runner's network cases (loss, corruption,
blackhole, rebinding, amplification, goodput, crosstraffic) differ from ``transfer`` only in what the
runner's simulator does to the packets; on loopback they are transfers that must succeed under that name.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from interop.endpoint import SUPPORTED, UNSUPPORTED, EndpointSettings, endpoint_settings
from rudp.testing.certs import make_test_pki


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


IPV6 = _ipv6_loopback()
"""Containers without IPv6: the server listens on 127.0.0.1 and the ipv6 case runs over IPv4."""
SCRIPT = Path(__file__).resolve().parents[2] / "interop" / "run_endpoint.sh"
SIZES = {"small.bin": 1024, "medium.bin": 64 * 1024, "large.bin": 1536 * 1024}
TIMEOUT = 30


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EndpointServer:
    """run_endpoint.sh as a server process; :attr:`port` is the one it printed."""

    def __init__(self, testcase: str, www: Path, certs: Path, extra: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            **(extra or {}),
            "ROLE": "server",
            "TESTCASE": testcase,
            "WWW": str(www),
            "CERTS": str(certs),
            "HOST": "::" if IPV6 else "127.0.0.1",
            "PORT": "0",
            "PYTHON": sys.executable,
        }
        self.process = subprocess.Popen(
            [str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening on port "):
            self.process.kill()
            _out, err = self.process.communicate()
            raise AssertionError(f"server did not start: {line!r} {err}")
        self.port = int(line.split()[-1])

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status (0 for a clean stop) and stderr."""
        self.process.terminate()
        _out, err = self.process.communicate(timeout=TIMEOUT)
        return self.process.returncode, err


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """www/ with random files, certs/ with cert.pem and priv.key (the runner's names)."""
    root = tmp_path_factory.mktemp("endpoint")
    www, certs = root / "www", root / "certs"
    www.mkdir()
    certs.mkdir()
    for name, size in SIZES.items():
        (www / name).write_bytes(os.urandom(size))
    pki = make_test_pki(root / "pki")
    (certs / "cert.pem").write_bytes(pki.cert_file.read_bytes())
    (certs / "priv.key").write_bytes(pki.key_file.read_bytes())
    return root


def _server(testcase: str, tree: Path, extra: dict[str, str] | None = None) -> Iterator[EndpointServer]:
    server = EndpointServer(testcase, tree / "www", tree / "certs", extra)
    try:
        yield server
    finally:
        status, err = server.stop()
        assert status == 0, err


@pytest.fixture(scope="module")
def server(tree: Path) -> Iterator[EndpointServer]:
    yield from _server("transfer", tree)


@pytest.fixture(scope="module")
def retry_server(tree: Path) -> Iterator[EndpointServer]:
    yield from _server("retry", tree)


@pytest.fixture(scope="module")
def v2_server(tree: Path) -> Iterator[EndpointServer]:
    """v2: the server prefers QUIC v2 and switches v1 clients that offer it (RFC 9368, RFC 9369 §4)."""
    yield from _server("v2", tree)


@pytest.fixture(scope="module")
def migration_server(tree: Path) -> Iterator[EndpointServer]:
    """connectionmigration: the server advertises a preferred address on 127.0.0.2 (issue 12)."""
    yield from _server("connectionmigration", tree, {"PREFERRED_ADDRESS": "127.0.0.2"})


def _client(
    testcase: str, urls: list[str], downloads: Path, report: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **(extra or {}),
        "ROLE": "client",
        "TESTCASE": testcase,
        "REQUESTS": " ".join(urls),
        "DOWNLOADS": str(downloads),
        "RUDP_ENDPOINT_REPORT": str(report),
        "PYTHON": sys.executable,
    }
    return subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


FEATURE = {
    "resumption": lambda r: [c["session_resumed"] for c in r] == [False, True],
    "zerortt": lambda r: [c["zero_rtt_accepted"] for c in r] == [False, True],
    "chacha20": lambda r: all(c["cipher_suite"] == "TLS_CHACHA20_POLY1305_SHA256" for c in r),
    "keyupdate": lambda r: all(c["key_updates"] >= 1 for c in r),
    "connectionmigration": lambda r: all(c["path_changes"] >= 1 for c in r),
    "http3": lambda r: all(c["alpn"] == "h3" for c in r),
    "ecn": lambda r: all(c["ecn_state"] == "capable" for c in r),
    "v2": lambda r: all(c["version"] == 0x6B3343CF for c in r),
}


@pytest.mark.parametrize("testcase", sorted(SUPPORTED))
def test_client_against_server(
    testcase: str, tree: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fixtures = {"retry": "retry_server", "connectionmigration": "migration_server", "v2": "v2_server"}
    fixture = fixtures.get(testcase, "server")
    server: EndpointServer = request.getfixturevalue(fixture)
    host = "[::1]" if testcase == "ipv6" and IPV6 else "127.0.0.1"
    urls = [f"https://{host}:{server.port}/{name}" for name in SIZES]
    downloads, report = tmp_path / "downloads", tmp_path / "report.json"
    result = _client(testcase, urls, downloads, report)
    assert result.returncode == 0, result.stderr
    for name in SIZES:
        assert _sha(downloads / name) == _sha(tree / "www" / name), name
    assert sorted(p.name for p in downloads.iterdir()) == sorted(SIZES)  # no partial files left
    connections = json.loads(report.read_text())
    expected = {
        "multiconnect": 3,
        "handshakeloss": 3,
        "handshakecorruption": 3,
        "resumption": 2,
        "zerortt": 2,
    }
    assert len(connections) == expected.get(testcase, 1)
    assert all(c["alpn"] == ("h3" if testcase == "http3" else "hq-interop") for c in connections)
    assert FEATURE.get(testcase, lambda r: True)(connections), connections


def test_v2_client_fails_when_the_server_keeps_v1(server: EndpointServer, tmp_path: Path) -> None:
    """The v2 client offers v2 to a server of another case (which keeps v1): the files arrive, but
    the case's feature did not happen, so the client exits 1."""
    urls = [f"https://127.0.0.1:{server.port}/{name}" for name in SIZES]
    report = tmp_path / "report.json"
    result = _client("v2", urls, tmp_path / "downloads", report)
    assert result.returncode == 1, result.stderr
    assert "the server did not switch" in result.stderr
    assert [c["version"] for c in json.loads(report.read_text())] == [1]


def test_missing_file_fails(server: EndpointServer, tmp_path: Path) -> None:
    result = _client("transfer", [f"https://127.0.0.1:{server.port}/nope.bin"], tmp_path, tmp_path / "r")
    assert result.returncode == 1
    assert not (tmp_path / "nope.bin").exists()


RUNNER_CASES = frozenset(
    {
        *("handshake", "transfer", "multiconnect", "chacha20", "retry", "resumption", "zerortt"),
        *("keyupdate", "v2", "rebind-port", "rebind-addr", "connectionmigration", "transferloss"),
        *("handshakeloss", "blackhole", "transfercorruption", "handshakecorruption"),
        *("amplificationlimit", "ipv6", "goodput", "crosstraffic", "http3", "ecn"),
    }
)
"""The runner's QUIC cases issue 15 lists: each one supported, or answered 127 with a reason."""


def test_every_runner_case_is_supported_or_explained() -> None:
    assert SUPPORTED | set(UNSUPPORTED) == RUNNER_CASES
    assert not SUPPORTED & set(UNSUPPORTED)
    assert all(len(reason) > 40 for reason in UNSUPPORTED.values())


@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("testcase", [*sorted(UNSUPPORTED), "no-such-case"])
def test_unsupported_cases_exit_127(role: str, testcase: str, tmp_path: Path) -> None:
    env = {**os.environ, "ROLE": role, "TESTCASE": testcase, "PYTHON": sys.executable}
    result = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 127, result.stderr
    assert UNSUPPORTED.get(testcase, "not a test case rudp knows") in result.stderr


def _secrets(keylog: Path) -> dict[str, set[str]]:
    """Client random of each logged secret, by label (NSS key log format: LABEL client_random secret)."""
    found: dict[str, set[str]] = {}
    for line in keylog.read_text().splitlines():
        label, client_random, _secret = line.split()
        found.setdefault(label, set()).add(client_random)
    return found


def test_keylog_and_qlog_of_both_roles(tree: Path, tmp_path: Path) -> None:
    """SSLKEYLOGFILE and QLOGDIR, as the runner sets them for each side: both ends log the secrets of
    the same connection (the runner decrypts its pcaps with either file) and write a qlog of it."""
    logs = {role: tmp_path / role for role in ("server", "client")}
    extra = {
        role: {"SSLKEYLOGFILE": str(path / "keys.log"), "QLOGDIR": str(path / "qlog")}
        for role, path in logs.items()
    }
    for path in logs.values():
        path.mkdir()
    server = EndpointServer("transfer", tree / "www", tree / "certs", extra["server"])
    try:
        urls = [f"https://127.0.0.1:{server.port}/small.bin"]
        result = _client("handshake", urls, tmp_path / "dl", tmp_path / "r.json", extra["client"])
        assert result.returncode == 0, result.stderr
    finally:
        status, err = server.stop()  # the server's qlog is complete once it has stopped
    assert status == 0, err
    secrets = {role: _secrets(path / "keys.log") for role, path in logs.items()}
    for labels in secrets.values():
        assert {"SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"} <= set(labels)
        assert len(labels["SERVER_HANDSHAKE_TRAFFIC_SECRET"]) == 1  # one connection
    assert secrets["client"] == secrets["server"]  # the same connection, the same secrets' labels
    for role, path in logs.items():
        qlogs = list((path / "qlog").iterdir())
        assert len(qlogs) == 1, (role, qlogs)
        assert qlogs[0].stat().st_size > 0


def test_defaults_are_the_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WWW", "DOWNLOADS", "CERTS", "HOST", "PORT", "QLOGDIR"):
        monkeypatch.delenv(name, raising=False)
    assert endpoint_settings() == EndpointSettings(
        www=Path("/www"),
        downloads=Path("/downloads"),
        certs=Path("/certs"),
        host="::",
        port=443,
        qlog_dir=None,
    )
    monkeypatch.setenv("WWW", "/srv/w")
    monkeypatch.setenv("PORT", "4433")
    monkeypatch.setenv("HOST", "127.0.0.1")
    changed = endpoint_settings()
    assert (changed.www, changed.port, changed.host, changed.certs) == (
        Path("/srv/w"),
        4433,
        "127.0.0.1",
        Path("/certs"),
    )


def test_connectionmigration_client_fails_without_a_preferred_address(
    server: EndpointServer, tmp_path: Path
) -> None:
    # The transfer server advertises none: the client cannot do the case's move and says so (issue 12).
    urls = [f"https://127.0.0.1:{server.port}/small.bin"]
    result = _client("connectionmigration", urls, tmp_path / "downloads", tmp_path / "report.json")
    assert result.returncode == 1
    assert "no move to a preferred address" in result.stderr
