"""Role passwords and the owner's migration credentials: set by `make migrate`, never shown."""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from backend.db import roles
from backend.db.roles import bootstrap, owner_url, run_migrations, scram_verifier, with_database


def _verifies(secret: str, password: str) -> bool:
    """`secret` (pg_authid.rolpassword) is `password`'s SCRAM-SHA-256 secret."""
    method, rest = secret.split("$", 1)
    iterations, salt = rest.split("$", 1)[0].split(":")
    return method == "SCRAM-SHA-256" and scram_verifier(password, base64.b64decode(salt), int(iterations)) == secret


@pytest.fixture
async def superuser(server_urls: tuple[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(with_database(server_urls[0], "postgres"))
    yield conn
    await conn.close()


@pytest.mark.parametrize("password", ["plain-ascii", 'it\'s "quoted" \\ 100%', "Grüße\u00a0\ufb01x\u00ad"])
async def test_scram_secret_is_the_one_postgresql_computes(superuser: asyncpg.Connection, password: str) -> None:
    role = f"bs_t_scram_{uuid.uuid4().hex[:8]}"
    statement = await superuser.fetchval(
        "SELECT format('CREATE ROLE %I PASSWORD %L', $1::text, $2::text)", role, password
    )
    try:
        await superuser.execute("SET password_encryption = 'scram-sha-256'")
        await superuser.execute(statement)
        stored = await superuser.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    finally:
        await superuser.execute(f'DROP ROLE IF EXISTS "{role}"')
    assert _verifies(stored, password)
    assert not _verifies(stored, password + "x")


async def test_bootstrap_sets_the_owner_and_app_passwords(
    server_urls: tuple[str, str], superuser: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Roles are cluster-wide and other sessions log in as bs_owner/bs_app: use throwaway names.
    suffix = uuid.uuid4().hex[:8]
    owner, app, database = f"bs_t_owner_{suffix}", f"bs_t_app_{suffix}", f"bs_t_roles_{suffix}"
    monkeypatch.setattr(roles, "OWNER_ROLE", owner)
    monkeypatch.setattr(roles, "APP_ROLE", app)
    try:
        await bootstrap(with_database(server_urls[0], database), app_password="app'pw", owner_password="owner'pw")
        rows = await superuser.fetch(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1::text[])", [owner, app]
        )
        secrets = {r["rolname"]: r["rolpassword"] for r in rows}
        assert secrets.keys() == {owner, app}
        assert _verifies(secrets[owner], "owner'pw") and _verifies(secrets[app], "app'pw")
        assert (
            await superuser.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database)
            == owner
        )
    finally:
        await superuser.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await superuser.execute(f'DROP ROLE IF EXISTS "{owner}"')
        await superuser.execute(f'DROP ROLE IF EXISTS "{app}"')


async def test_a_failed_migration_names_the_exit_code_and_error_but_not_the_password(
    server_urls: tuple[str, str], superuser: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"bs_t_fail_{uuid.uuid4().hex[:8]}"
    url = with_database(server_urls[0], database)
    password = "Sup3r/secret:pw@x"  # reserved URL characters: percent-encoded in the URL
    monkeypatch.setenv("DB_OWNER_PASSWORD", password)
    calls: list[dict[str, Any]] = []
    real_run = subprocess.run

    def spy(args: list[str], **kwargs: Any) -> Any:
        calls.append({"args": args, "env": kwargs.get("env") or {}})
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    try:
        await bootstrap(url)  # no password: the shared bs_owner keeps its own (trust auth here)
        with pytest.raises(Exception) as failure:
            run_migrations(url, "rollback")  # nothing applied yet: dbmate refuses
    finally:
        await superuser.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    message = str(failure.value)
    assert "exit code" in message and "can't rollback" in message
    for shown in (password, "Sup3r", "postgres://"):
        assert shown not in message
    (call,) = calls
    assert not any("Sup3r" in arg for arg in call["args"])  # not on dbmate's command line (ps)
    assert "Sup3r" in call["env"]["DATABASE_URL"]


def test_owner_url() -> None:
    assert (
        owner_url("postgresql://postgres:admin@db:5432/bs", "o:p")
        == "postgres://bs_owner:o%3Ap@db:5432/bs?sslmode=disable"
    )
    # an administrative URL that already is the owner's keeps its password
    assert (
        owner_url("postgresql://bs_owner:own%40pw@db/bs?sslmode=require")
        == "postgres://bs_owner:own%40pw@db/bs?sslmode=require"
    )
    assert owner_url("postgresql://postgres:admin@db/bs") == "postgres://bs_owner@db/bs?sslmode=disable"
