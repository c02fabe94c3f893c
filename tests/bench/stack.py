"""What the bench runs against: PostgreSQL/Redis, a throw-away database with demo data, two servers.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, else embedded ones start
under .data/bench/ (as `make run` does under .data/). Each run creates `bs_bench_<random>`,
bootstraps and migrates it with the code `make migrate` runs, loads the demo data like
`make seed`, and drops it at the end. The servers are uvicorn subprocesses on free loopback
ports with identical uvicorn options (warning log level, no access log).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from backend.db.roles import bootstrap, run_migrations, with_database
from backend.settings import PROJECT_ROOT, Settings, load_settings

BENCH_DATA = PROJECT_ROOT / ".data" / "bench"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def services() -> Iterator[tuple[str, str]]:
    """(admin URL of a PostgreSQL server, Redis URL); embedded ones stop when the block ends."""
    from backend.devservices import ensure_services

    handles = ensure_services(BENCH_DATA)
    try:
        yield handles.database_url, handles.redis_url
    finally:
        handles.handles.clear()
        del handles


@contextmanager
def bench_database(server_url: str, app_password: str | None, keep: str | None = None) -> Iterator[str]:
    """A fresh, migrated database; yields its administrative URL and drops it afterwards. With
    `keep`, the database of that name is made if missing (else reused and migrated further) and
    kept: a world of 10^5 articles takes minutes to embed, a bench run on it seconds."""
    name = keep or f"bs_bench_{uuid.uuid4().hex[:10]}"
    url = with_database(server_url, name)
    try:
        asyncio.run(bootstrap(url, app_password))
        run_migrations(url)
        yield url
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(with_database(server_url, "postgres"))
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        if not keep:
            asyncio.run(drop())


def load_demo_data(settings: Settings) -> None:
    """The demo tenants, departments and dev sign-in issuers, as `make seed` loads them."""
    from backend.cli import _app_state
    from backend.demo import load_demo_data as load
    from backend.observability import configure_logging

    configure_logging(settings)

    async def main() -> None:
        async with _app_state(settings) as state:
            await load(state, settings)  # type: ignore[arg-type]

    asyncio.run(main())


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(name: str, factory: str, port: int, env: dict[str, str]) -> Server:
    """`uvicorn <factory> --factory` on 127.0.0.1:<port>, output to .data/bench/logs/<name>.log."""
    log_dir = BENCH_DATA / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    return Server(name, f"http://127.0.0.1:{port}", process, log_path)


def wait_ready(server: Server, path: str = "/ping", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
            with suppress(httpx.HTTPError):
                if client.get(path).status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s:\n{server.log_tail()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


def child_environment(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment for a server, minus settings that would point elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in {"APP_DATABASE_URL", "PORT", "HOST"}}
    # One bench principal sends thousands of requests a second: far past any real client's
    # limit. The limiter still counts every request (its cost is measured); it never refuses.
    env.update({"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_MACHINE_PER_MINUTE": "1000000"})
    env.update(overrides)
    return env


def demo_environment(database_url: str, redis_url: str) -> tuple[dict[str, str], Settings]:
    """The environment bench servers run with (a test-mode app on the bench database, dev sign-in),
    taken over by this process too (benches that also run the app in process read it), and the
    settings it gives, with `make run`'s demo data loaded into the bench database."""
    env = child_environment(
        {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "DEV_SIGNIN_ENABLED": "true",
            "DATA_DIR": str(BENCH_DATA),
        }
    )
    os.environ.update({k: env[k] for k in ("APP_ENV", "DATABASE_URL", "REDIS_URL", "DEV_SIGNIN_ENABLED", "DATA_DIR")})
    settings = load_settings()
    load_demo_data(settings)
    return env, settings
