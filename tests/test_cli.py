"""The ``rudp`` command line: version, serve + get (files intact, both transports, errors), demo."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rudp.cli import main

TIMEOUT = 60


def _rudp(*args: str | Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rudp", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("rudp ")


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(2_000_000))
    (root / "index.html").write_bytes(b"<h1>hello</h1>\n")
    (root / "sub").mkdir()
    (root / "sub" / "small.txt").write_bytes(b"small file\n")
    (tmp_path / "secret.txt").write_bytes(b"outside the root")
    return root


@pytest.fixture
def server(www: Path) -> Iterator[tuple[int, str]]:
    """``rudp serve`` on a free port, UDP and TCP, with its throwaway certificate: (port, CA path)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rudp",
            "serve",
            "--www",
            str(www),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--transport",
            "both",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ca_line, port_line = process.stdout.readline(), process.stdout.readline()
        ca = re.search(r"--ca (\S+)", ca_line)
        port = re.search(r"port (\d+)", port_line)
        assert ca and port, ca_line + port_line
        yield int(port.group(1)), ca.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    errors = process.stderr.read() if process.stderr else ""
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    # SIGTERM: a clean shutdown, reported as a shell reports the signal (128 + 15).
    assert process.returncode == 143, errors


@pytest.mark.parametrize("alpn", ["h3", "hq-interop"])
@pytest.mark.parametrize("transport", ["quic", "tcp"])
def test_serve_and_get_download_files_intact(
    server: tuple[int, str], www: Path, tmp_path: Path, transport: str, alpn: str
) -> None:
    """One ``rudp serve`` answers HTTP/3 and hq-interop, the client's ALPN choosing."""
    port, ca = server
    out = tmp_path / f"out-{transport}-{alpn}"
    base = f"https://127.0.0.1:{port}"
    result = _rudp(
        "get",
        f"{base}/big.bin",
        f"{base}/sub/small.txt",
        f"{base}/",
        "--ca",
        ca,
        "--output",
        out,
        "--transport",
        transport,
        "--alpn",
        alpn,
    )
    assert result.returncode == 0, result.stderr
    for name, source in (
        ("big.bin", "big.bin"),
        ("small.txt", "sub/small.txt"),
        ("index.html", "index.html"),
    ):
        assert (
            hashlib.sha256((out / name).read_bytes()).digest()
            == hashlib.sha256((www / source).read_bytes()).digest()
        )
    assert "GET /big.bin: 2000000 bytes" in result.stderr
    assert f"{transport} 127.0.0.1 port {port}: {alpn}" in result.stderr


def test_get_to_stdout_missing_file_and_traversal(server: tuple[int, str]) -> None:
    port, _ = server
    base = f"https://127.0.0.1:{port}"
    result = _rudp("get", f"{base}/index.html", "--insecure", "--quiet")
    assert result.returncode == 0 and result.stdout == "<h1>hello</h1>\n"
    result = _rudp("get", f"{base}/missing.txt", f"{base}/../secret.txt", "--insecure")  # HTTP/3
    assert result.returncode == 1
    assert "GET /missing.txt: the server answered 404" in result.stderr
    assert "GET /../secret.txt: the server answered 404" in result.stderr
    assert "outside the root" not in result.stdout
    hq = ("--alpn", "hq-interop")
    result = _rudp("get", f"{base}/missing.txt", f"{base}/../secret.txt", "--insecure", *hq)
    assert result.returncode == 1
    assert "refused by the server (code 0x194)" in result.stderr
    assert "outside the root" not in result.stdout


def test_get_resumes_with_session_file(server: tuple[int, str], tmp_path: Path) -> None:
    port, ca = server
    session = tmp_path / "session.bin"
    url = f"https://127.0.0.1:{port}/index.html"
    first = _rudp("get", url, "--ca", ca, "--session-file", session)
    assert first.returncode == 0, first.stderr
    assert session.exists() and "resumed" not in first.stderr
    second = _rudp("get", url, "--ca", ca, "--session-file", session, "--0rtt")
    assert second.returncode == 0, second.stderr
    assert "resumed" in second.stderr and second.stdout == "<h1>hello</h1>\n"


def test_get_without_server_fails_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _rudp("get", f"https://127.0.0.1:{port}/x", "--insecure", timeout=30)
    assert result.returncode == 1
    assert "refused" in result.stderr or "did not complete" in result.stderr


def test_bad_arguments() -> None:
    assert _rudp("get", "ftp://example.com/x", "--insecure").returncode == 2
    bad_cc = _rudp("get", "https://127.0.0.1:1/x", "--insecure", "--cc", "no-such-cc")
    assert bad_cc.returncode == 2
    assert "choose from" in bad_cc.stderr and "cubic" in bad_cc.stderr and "newreno" in bad_cc.stderr


def test_help_lists_choices_and_defaults() -> None:
    serve_help = " ".join(_rudp("serve", "--help").stdout.split())
    assert "(default: 4433)" in serve_help and "(default: quic)" in serve_help
    assert "{bbr,cubic,newreno}" in serve_help and "(default: newreno)" in serve_help
    get_help = " ".join(_rudp("get", "--help").stdout.split())
    assert "{bbr,cubic,newreno}" in get_help and "{quic,tcp}" in get_help
    assert "{h3,hq-interop}" in get_help and "(default: h3)" in get_help


def test_get_leaves_no_file_for_a_missing_path(server: tuple[int, str], tmp_path: Path) -> None:
    port, ca = server
    out = tmp_path / "out"
    base = f"https://127.0.0.1:{port}"
    result = _rudp("get", f"{base}/missing.txt", f"{base}/index.html", "--ca", ca, "-o", out)
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]  # no missing.txt, no .part files
    assert (out / "index.html").read_text() == "<h1>hello</h1>\n"


def test_serve_exits_130_on_ctrl_c(tmp_path: Path) -> None:
    import signal

    (tmp_path / "index.html").write_text("hi")
    process = subprocess.Popen(
        [sys.executable, "-m", "rudp", "serve", "--www", str(tmp_path), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert any("serving" in line for line in lines), lines
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


class _FakeRich:
    """Stands in for rich.progress.Progress: records tasks and console lines."""

    def __init__(self) -> None:
        self.tasks: dict[int, str] = {}
        self.printed: list[str] = []
        self.console = self

    def add_task(self, name: str, total: object = None) -> int:
        self.tasks[len(self.tasks) + len(self.printed) + 1] = name
        return max(self.tasks)

    def update(self, task: int, completed: int) -> None:
        if task not in self.tasks:
            raise AssertionError("a finished task was redrawn")

    def remove_task(self, task: int) -> None:
        del self.tasks[task]

    def print(self, text: str, **_: object) -> None:
        self.printed.append(text)

    def start(self) -> None: ...

    def stop(self) -> None: ...


def test_rich_bars_give_way_to_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    from rudp.cli import Progress

    progress = Progress(quiet=False)
    fake = _FakeRich()
    progress._rich = fake
    with progress:
        update = progress.callback("/big.bin")
        update(1000)
        progress.done("/big.bin", 2000, 0.5)
        progress.message("quic 127.0.0.1 port 4433: hq-interop")
    assert fake.tasks == {}  # the bar is gone: nothing left to redraw after the summary
    assert fake.printed[0].startswith("GET /big.bin: 2000 bytes") and "hq-interop" in fake.printed[1]
    assert capsys.readouterr().err == ""  # every line went through rich, above the live display


def test_demo_exits_zero_and_prints_table() -> None:
    result = _rudp("demo", "--size-mb", "1", "--requests", "50")
    assert result.returncode == 0, result.stderr
    for label in ("QUIC (rudp)", "TCP+TLS 1.3", "handshake", "throughput", "request latency p50"):
        assert label in result.stdout
    assert "sha256-verified" in result.stdout


def test_serve_refuses_a_bad_preferred_address(www: Path) -> None:
    result = _rudp("serve", "--www", www, "--port", "0", "--preferred-address", "10.0.0.1")
    assert result.returncode == 2
    assert "preferred_address" in result.stderr and "host:port" in result.stderr
