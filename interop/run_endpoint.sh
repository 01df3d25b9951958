#!/usr/bin/env bash
# rudp as a QUIC Interop Runner endpoint: ROLE, TESTCASE, REQUESTS, SSLKEYLOGFILE, QLOGDIR, and WWW,
# DOWNLOADS, CERTS, HOST, PORT overriding /www, /downloads, /certs, :: and 443.
# Exit 0 success, 1 failure, 127 unsupported test case. The logic is interop/endpoint.py.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi
cd "$repo" && exec "$python" -m interop.endpoint
