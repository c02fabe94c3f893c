"""Run a Python snippet in a fresh interpreter that has no network: every socket connect and name
look-up fails, and there is no cache or home to download to (models must load from their wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("no network in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


def run_offline(script: str, home: Path) -> str:
    """The snippet's standard output; fails the test with its standard error if it failed."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    done = subprocess.run(  # our own interpreter and script
        [sys.executable, "-c", _NO_NETWORK + script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
