"""A real browser over rudp.h3 (issue 15): headless Chromium loads a page served by ``serve_asgi`` over
QUIC, the page's script downloads a multi-megabyte file, hashes it with WebCrypto, uploads it back and
POSTs both SHA-256 values to the server; the test compares them with the file's and then reads
Chromium's net log (``--log-net-log``) to confirm that one QUIC v1 session with HTTP/3 to our
host:port carried the download and that Chromium never opened TCP to it.

Chromium is forced onto QUIC for the origin (``--origin-to-force-quic-on``; no Alt-Svc, no TCP
listener) and accepts the test certificate by its SPKI pin (``--ignore-certificate-errors-spki-list``).
It comes from apt (Debian package ``chromium``; ``.ci/run`` installs it). Without /usr/bin/chromium
the browser test skips locally and fails under RUDP_REQUIRE_NETEM=1 (as CI runs), like the netem
fixture. The net-log checker also runs on made-up logs (a TCP-carried request, a truncated file) so it
is shown to look.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import rudp
import rudp.h3
from rudp.testing.certs import TestPki

from .conftest import pattern

CHROMIUM = Path("/usr/bin/chromium")
SIZE = 5_000_000
REPORT_TIMEOUT = 25.0
HOST = "127.0.0.1"

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>rudp h3</title></head><body><p id="out">pending</p><script>
const hex = (buf) => Array.from(new Uint8Array(buf)).map((b) => b.toString(16).padStart(2, "0")).join("");
(async () => {
  const out = document.getElementById("out");
  let report;
  try {
    const response = await fetch("/blob", {cache: "no-store"});
    const body = await response.arrayBuffer();
    const sha256 = hex(await crypto.subtle.digest("SHA-256", body));
    const upload = await fetch("/upload", {method: "POST", body: body, cache: "no-store"});
    report = {status: response.status, size: body.byteLength, sha256: sha256,
              upload_status: upload.status, upload_sha256: await upload.text()};
  } catch (e) {
    report = {error: String(e)};
  }
  out.textContent = JSON.stringify(report);
  await fetch("/report", {method: "POST", body: JSON.stringify(report)});
})();
</script></body></html>
"""


def chromium_available() -> str | None:
    """None if the browser can run here, else why not."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not found (Debian package chromium)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Require Chromium (skip locally, fail under RUDP_REQUIRE_NETEM=1 as in CI)."""
    reason = chromium_available()
    if reason is None:
        return CHROMIUM
    if os.environ.get("RUDP_REQUIRE_NETEM") == "1":
        pytest.fail(f"RUDP_REQUIRE_NETEM=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def spki_pin(cert_file: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's SPKI lists want it."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class BrowserApp:
    """The ASGI application Chromium talks to: the page, the file, an upload hasher, the report sink."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.report: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.requests: list[str] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests.append(f"{scope['method']} {scope['path']} (HTTP/{scope['http_version']})")
        digest = hashlib.sha256()
        body = b""
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            if scope["path"] == "/report":
                body += chunk
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == "/":
            await self._reply(send, 200, PAGE, b"text/html; charset=utf-8")
        elif path == "/blob":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/octet-stream"),
                        (b"content-length", str(len(self.data)).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            for start in range(0, len(self.data), 64 * 1024):
                chunk = self.data[start : start + 64 * 1024]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/upload":
            await self._reply(send, 200, digest.hexdigest().encode(), b"text/plain")
        elif path == "/report":
            if not self.report.done():
                try:
                    self.report.set_result(json.loads(body))
                except ValueError as exc:
                    self.report.set_exception(exc)
            await self._reply(send, 204, b"", b"text/plain")
        else:
            await self._reply(send, 404, b"not found", b"text/plain")

    @staticmethod
    async def _reply(send: Any, status: int, body: bytes, content_type: bytes) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
        )
        await send({"type": "http.response.body", "body": body})


def chromium_args(binary: Path, tmp: Path, port: int, pin: str) -> list[str]:
    return [
        str(binary),
        "--headless=new",
        "--no-sandbox",  # we run as root in CI
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        # No internet here: resolve nothing but our address, so nothing waits on DNS.
        f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {HOST}",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-quic",
        f"--origin-to-force-quic-on={HOST}:{port}",
        f"--ignore-certificate-errors-spki-list={pin}",
        f"--log-net-log={tmp / 'netlog.json'}",
        f"https://{HOST}:{port}/",
    ]


def load_netlog(path: Path) -> dict[str, Any]:
    """Chromium's JSON net log; a killed browser leaves it unterminated, so close it if needed."""
    text = path.read_text(encoding="utf-8", errors="replace").rstrip()
    for suffix in ("", "}", "]}"):
        with contextlib.suppress(ValueError):
            loaded: dict[str, Any] = json.loads(text + suffix)
            return loaded
    stripped = text.rstrip(",\n ")
    cut = stripped.rfind("\n{")  # drop a half-written last event
    loaded = json.loads(stripped[:cut].rstrip(",\n ") + "]}")
    return loaded


class NetLog:
    """Named access to a net log's events (the log numbers event and source types in its constants)."""

    def __init__(self, log: dict[str, Any]) -> None:
        constants = log["constants"]
        self.event_names = {number: name for name, number in constants["logEventTypes"].items()}
        self.source_names = {number: name for name, number in constants["logSourceType"].items()}
        self.events: list[dict[str, Any]] = log.get("events", [])

    def iter(self, name: str | None = None, source_id: int | None = None) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if name is not None and self.event_names.get(event["type"]) != name:
                continue
            if source_id is not None and event["source"]["id"] != source_id:
                continue
            yield event

    def source_type(self, event: dict[str, Any]) -> str:
        return str(self.source_names.get(event["source"]["type"], "?"))


TCP_SOURCES = {"SOCKET", "TCP_CONNECT_JOB", "SSL_CONNECT_JOB", "TRANSPORT_CONNECT_JOB", "CONNECT_JOB"}


def check_netlog(log: NetLog, port: int, path: str, size: int) -> tuple[list[str], dict[str, Any]]:
    """Problems with "QUIC (v1, h3) to HOST:port carried GET path, size bytes, and no TCP went there",
    and what was seen."""
    problems: list[str] = []
    seen: dict[str, Any] = {}
    url = f"https://{HOST}:{port}{path}"
    requests = [
        e["source"]["id"]
        for e in log.iter("URL_REQUEST_START_JOB")
        if e.get("phase") == 1 and (e.get("params") or {}).get("url") == url
    ]
    if not requests:
        return [f"no URL_REQUEST for {url}"], seen
    sessions = {
        e["params"]["source_dependency"]["id"]
        for request in requests
        for e in log.iter("HTTP_STREAM_REQUEST_BOUND_TO_QUIC_SESSION", request)
    }
    if not sessions:
        problems.append(f"{url} was not bound to a QUIC session")
    for session in sorted(sessions):
        begin = next((e for e in log.iter("QUIC_SESSION", session) if e.get("phase") == 1), None)
        params = (begin or {}).get("params") or {}
        seen["session"] = {"host": params.get("host"), "port": params.get("port")}
        if (params.get("host"), params.get("port")) != (HOST, port):
            problems.append(f"QUIC session {session} is to {params.get('host')}:{params.get('port')}")
        versions = {e["params"]["version"] for e in log.iter("QUIC_SESSION_VERSION_NEGOTIATED", session)}
        seen["versions"] = sorted(versions)
        if versions != {"RFCv1"}:
            problems.append(f"QUIC versions negotiated: {sorted(versions)} (want RFCv1)")
        settings = [e["params"] for e in log.iter("HTTP3_SETTINGS_RECEIVED", session)]
        seen["h3_settings"] = settings
        if not settings:
            problems.append("no HTTP/3 SETTINGS received on the session")
        data = sum(
            int((e.get("params") or {}).get("payload_length", 0))
            for e in log.iter("HTTP3_DATA_FRAME_RECEIVED", session)
        )
        seen["h3_data_bytes"] = data
        if data < size:
            problems.append(f"HTTP/3 DATA frames carried {data} bytes, fewer than {size}")
        seen["packets_received"] = sum(1 for _ in log.iter("QUIC_SESSION_PACKET_RECEIVED", session))
    headers = [
        e["params"]["headers"]
        for r in requests
        for e in log.iter("HTTP_TRANSACTION_READ_RESPONSE_HEADERS", r)
    ]
    seen["response_headers"] = headers
    if not any(h and h[0].endswith(" 200") and f"content-length: {size}" in h for h in headers):
        problems.append(f"no 200 response with content-length {size} for {url}: {headers}")
    target = f"{HOST}:{port}"
    tcp = [
        f"{log.source_type(e)}/{log.event_names.get(e['type'])}"
        for e in log.events
        if log.source_type(e) in TCP_SOURCES and target in json.dumps(e.get("params") or {})
    ]
    if tcp:
        problems.append(f"TCP towards {target}: {sorted(set(tcp))}")
    return problems, seen


async def test_chromium_fetches_over_h3(chromium: Path, pki: TestPki, tmp_path: Path) -> None:
    data = pattern(SIZE, seed=15)
    expected = hashlib.sha256(data).hexdigest()
    app = BrowserApp(data)
    config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file, qlog_dir=str(tmp_path / "qlog"))
    server = await rudp.h3.serve_asgi(app, HOST, 0, config=config)
    port = server.port
    stderr_path = tmp_path / "chromium-stderr.txt"
    proc: asyncio.subprocess.Process | None = None
    try:
        with stderr_path.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *chromium_args(chromium, tmp_path, port, spki_pin(pki.cert_file)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own process group: the renderer etc. go with it
            )
        try:
            report = await asyncio.wait_for(asyncio.shield(app.report), REPORT_TIMEOUT)
        except TimeoutError:
            tail = stderr_path.read_text(errors="replace")[-3000:]
            pytest.fail(
                f"no report from the page within {REPORT_TIMEOUT} s; requests seen: {app.requests}; "
                f"chromium exit status {proc.returncode}; its stderr ends:\n{tail}"
            )
    finally:
        if proc is not None:
            await stop(proc)
        server.close()
        await server.wait_closed()

    assert report == {
        "status": 200,
        "size": SIZE,
        "sha256": expected,
        "upload_status": 200,
        "upload_sha256": expected,
    }, f"the page reported {report}; requests seen: {app.requests}"
    assert "GET /blob (HTTP/3)" in app.requests and "POST /upload (HTTP/3)" in app.requests

    log = NetLog(load_netlog(tmp_path / "netlog.json"))
    problems, seen = check_netlog(log, port, "/blob", SIZE)
    assert not problems, f"{problems}; seen {seen}"


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the browser (it then closes its net log), SIGKILL its process group if it lingers."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # helpers of the group we created, if any outlived it


# The checker on made-up logs, so a pass above means it looked.

CONSTANTS = {
    "logEventTypes": {
        name: number
        for number, name in enumerate(
            [
                "URL_REQUEST_START_JOB",
                "HTTP_STREAM_REQUEST_BOUND_TO_QUIC_SESSION",
                "QUIC_SESSION",
                "QUIC_SESSION_VERSION_NEGOTIATED",
                "HTTP3_SETTINGS_RECEIVED",
                "HTTP3_DATA_FRAME_RECEIVED",
                "HTTP_TRANSACTION_READ_RESPONSE_HEADERS",
                "TCP_CONNECT",
            ]
        )
    },
    "logSourceType": {"URL_REQUEST": 1, "QUIC_SESSION": 13, "SOCKET": 8},
}


def made_up_log(port: int, *, quic: bool) -> dict[str, Any]:
    ev = CONSTANTS["logEventTypes"]
    request = {"id": 5, "type": 1}
    session = {"id": 7, "type": 13}
    socket = {"id": 9, "type": 8}
    events: list[dict[str, Any]] = [
        {
            "type": ev["URL_REQUEST_START_JOB"],
            "phase": 1,
            "source": request,
            "params": {"url": f"https://{HOST}:{port}/blob", "method": "GET"},
        },
    ]
    if quic:
        events += [
            {
                "type": ev["QUIC_SESSION"],
                "phase": 1,
                "source": session,
                "params": {"host": HOST, "port": port},
            },
            {
                "type": ev["QUIC_SESSION_VERSION_NEGOTIATED"],
                "phase": 0,
                "source": session,
                "params": {"version": "RFCv1"},
            },
            {"type": ev["HTTP3_SETTINGS_RECEIVED"], "phase": 0, "source": session, "params": {}},
            {
                "type": ev["HTTP3_DATA_FRAME_RECEIVED"],
                "phase": 0,
                "source": session,
                "params": {"payload_length": 1000, "stream_id": 0},
            },
            {
                "type": ev["HTTP_STREAM_REQUEST_BOUND_TO_QUIC_SESSION"],
                "phase": 0,
                "source": request,
                "params": {"source_dependency": session},
            },
        ]
    else:
        events.append(
            {
                "type": ev["TCP_CONNECT"],
                "phase": 1,
                "source": socket,
                "params": {"address_list": [f"{HOST}:{port}"]},
            }
        )
    events.append(
        {
            "type": ev["HTTP_TRANSACTION_READ_RESPONSE_HEADERS"],
            "phase": 0,
            "source": request,
            "params": {"headers": ["HTTP/1.1 200", "content-length: 1000"]},
        }
    )
    return {"constants": CONSTANTS, "events": events}


def test_netlog_check_accepts_quic() -> None:
    problems, seen = check_netlog(NetLog(made_up_log(4433, quic=True)), 4433, "/blob", 1000)
    assert problems == [], problems
    assert seen["versions"] == ["RFCv1"] and seen["h3_data_bytes"] == 1000


def test_netlog_check_sees_tcp() -> None:
    problems, _ = check_netlog(NetLog(made_up_log(4433, quic=False)), 4433, "/blob", 1000)
    assert any("not bound to a QUIC session" in p for p in problems), problems
    assert any("TCP towards 127.0.0.1:4433" in p for p in problems), problems
    problems, _ = check_netlog(NetLog(made_up_log(4433, quic=True)), 4433, "/blob", 2000)
    assert "HTTP/3 DATA frames carried 1000 bytes, fewer than 2000" in problems, problems
    problems, _ = check_netlog(NetLog(made_up_log(4433, quic=True)), 4434, "/blob", 1000)
    assert problems == ["no URL_REQUEST for https://127.0.0.1:4434/blob"], problems


def test_load_netlog_closes_a_truncated_log(tmp_path: Path) -> None:
    whole = json.dumps(made_up_log(4433, quic=True))
    for cut in (whole[:-1], whole[:-2], whole[:-2] + ",\n" + '{"type": 1, "pha'):
        (tmp_path / "log.json").write_text(cut)
        assert load_netlog(tmp_path / "log.json")["constants"] == CONSTANTS
