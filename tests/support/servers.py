"""Real app processes under uvicorn, for tests that need more than one instance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import time_machine

from backend.settings import PROJECT_ROOT, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class AppProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def app_process(settings: Settings, extra_env: dict[str, str] | None = None) -> Iterator[AppProcess]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "PUBLIC_BASE_URL": url,
        "DATA_DIR": str(settings.data_dir),
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    log_file = tempfile.NamedTemporaryFile(prefix="app-", suffix=".log", delete=False)  # noqa: SIM115
    # When the session's clock is moved (--frozen-at, time-machine), the instance starts at our
    # "now" and ticks from there: tokens, deadlines and "today" agree with the tests.
    launcher = ["-m"]
    if time_machine.escape_hatch.is_travelling():
        env["HARNESS_NOW"] = repr(time.time())
        launcher = [str(Path(__file__).with_name("travelled.py"))]
    process = subprocess.Popen(
        [
            sys.executable,
            *launcher,
            "uvicorn",
            "backend.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90  # a cold start on a busy 2-core CI machine can take 30 s and more
        while True:
            if process.poll() is not None:
                raise RuntimeError("app process exited:\n" + Path(log_file.name).read_text())
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("app process not ready:\n" + Path(log_file.name).read_text())
            time.sleep(0.1)
        yield AppProcess(url=url, process=process, log_path=Path(log_file.name))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
