"""Every example in examples/ runs as its docstring says (as a subprocess, with a timeout)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 60


def _run(*args: str | Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_every_example_has_a_docstring_saying_how_to_run_it() -> None:
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        text = script.read_text()
        assert text.startswith('"""') and f"python examples/{script.name}" in text, script.name


@pytest.mark.parametrize("name", ["rpc_messages.py", "download.py", "resume_0rtt.py", "asyncio_echo.py"])
def test_self_contained_example(name: str) -> None:
    result = _run(EXAMPLES / name)
    assert result.returncode == 0, result.stderr
    if name == "download.py":
        # Exactly three lines: what is served, the download's size/time/rate, the checksum verdict; no
        # progress redraws (stderr is not a terminal here), no temporary paths, nothing on stderr.
        lines = result.stdout.splitlines()
        assert len(lines) == 3, result.stdout
        served = r"serving 8\.00 MB of random bytes at https://127\.0\.0\.1:\d+/big\.bin"
        assert re.fullmatch(served, lines[0]), lines[0]
        assert re.fullmatch(r"/big\.bin: 8\.00 MB in \d+\.\d\d s \(\d+\.\d MB/s\)", lines[1]), lines[1]
        assert lines[2] == "sha256 ok: the download matches the served file"
        assert result.stderr == ""
    elif name == "resume_0rtt.py":
        assert "resumed=True, 0-RTT accepted=True" in result.stdout
    elif name == "asyncio_echo.py":
        # asyncio streams code on rudp.start_server/open_connection, over both transports.
        for transport in ("quic", "tcp"):
            assert f"{transport}: sent 'hello', got 'echo: hello'" in result.stdout
            assert f"{transport}: sent 'world', got 'echo: world'" in result.stdout
            assert f"{transport}: closed (TLS_" in result.stdout
        assert result.stdout.count("server: 127.0.0.1 finished") == 2
        assert result.stderr == ""
    else:
        assert "{'result': 42}" in result.stdout and "refused locally" in result.stdout


def test_echo_server_and_client(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", "0", "--certs", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # blocks until the server prints its port (or exits)
        match = re.search(r"port (\d+)", line)
        assert match, line + (server.stderr.read() if server.stderr else "")
        port = match.group(1)
        for transport in ("quic", "tcp"):
            result = _run(
                EXAMPLES / "echo_client.py",
                "--port",
                port,
                "--certs",
                tmp_path,
                "--transport",
                transport,
                "hello",
                "world",
            )
            assert result.returncode == 0, result.stderr
            assert "'hello' -> 'hello'" in result.stdout and "'world' -> 'world'" in result.stdout
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        errors = server.stderr.read() if server.stderr else ""
        for pipe in (server.stdout, server.stderr):  # closed here, not by the garbage collector
            if pipe is not None:
                pipe.close()
    assert server.returncode in (0, -15), errors
    assert os.path.exists(tmp_path / "ca.pem")
