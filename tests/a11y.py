"""`make a11y`: axe-core in Debian's chromium against every page we serve (issue 18 §5, decision 021).

Starts the server as `make run` does (embedded PostgreSQL and Redis under .data/a11y unless
DATABASE_URL/REDIS_URL are set, demo data) on a free port, runs tests/tools/a11y.mjs, prints the
violations per page and fails on any of critical or serious impact. Needs Debian's chromium
(`apt-get install chromium`; another binary: CHROMIUM=/path). Not part of `make test`: it takes
~40 s and a browser the suite does not otherwise need.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx

from backend.settings import PROJECT_ROOT
from tests.support.npmtools import run_node

PAGES = ("/graphql", "/docs", "/dev-signin", "/problems", "/problems/not-found")
BLOCKING = {"critical", "serious"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "APP_ENV": "development"}
    env.setdefault("DATA_DIR", str(PROJECT_ROOT / ".data" / "a11y"))
    env.pop("PUBLIC_BASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "run"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: stopped with everything it started
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server did not start:\n{server.stderr.read().decode() if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    _stop(server)
    raise SystemExit("the server did not answer /healthz within 120 s")


def _stop(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def audit(base: str, pages: tuple[str, ...] = PAGES) -> dict[str, list[dict[str, object]]]:
    done = run_node("a11y.mjs", base, *pages, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"axe run failed:\n{done.stderr}")
    report: dict[str, list[dict[str, object]]] = json.loads(done.stdout)
    return report


def main() -> int:
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not shutil.which(chromium):
        print(f"make a11y needs Debian's chromium ({chromium}): apt-get install chromium", file=sys.stderr)
        return 2
    port = _free_port()
    server = _serve(port)
    try:
        report = audit(f"http://127.0.0.1:{port}")
    finally:
        _stop(server)
    blocking = 0
    for page, violations in report.items():
        counts: dict[str, int] = {}
        for violation in violations:
            counts[str(violation["impact"])] = counts.get(str(violation["impact"]), 0) + int(str(violation["nodes"]))
        print(f"{page}: " + (", ".join(f"{n} {impact}" for impact, n in sorted(counts.items())) or "no violations"))
        for violation in violations:
            print(f"  {violation['impact']:<9} {violation['id']} ×{violation['nodes']}: {violation['help']}")
            if violation["impact"] in BLOCKING:
                blocking += 1
                for target in violation["targets"]:  # type: ignore[attr-defined]
                    print(f"            {target}")
    if blocking:
        print(f"make a11y: {blocking} critical or serious violation(s)", file=sys.stderr)
        return 1
    print("make a11y: no critical or serious violation on", ", ".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
