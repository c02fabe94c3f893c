"""The API refuses to start as a role row-level security does not hold for."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import asyncpg
from litestar import Litestar

from backend.db.roles import APP_ROLE, OWNER_ROLE, application_role_problem, with_database, with_user
from backend.main import create_app
from backend.settings import Settings, SettingsError


async def _startup_error(app: Litestar) -> BaseException | None:
    """Run the app's lifespan: the exception startup failed with, or None (then shut down again)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] == "lifespan.startup.failed":
        try:
            await task
        except BaseException as error:  # the test inspects it
            while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]  # litestar runs the lifespans in a task group
            return error
        raise AssertionError("startup failed without an exception")
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await task
    return None


async def test_a_superuser_application_url_stops_the_start(settings: Settings, admin_url: str) -> None:
    error = await _startup_error(create_app(dataclasses.replace(settings, app_database_url=admin_url)))
    assert isinstance(error, SettingsError)
    message = str(error)
    assert "\n" not in message
    assert message.startswith("APP_DATABASE_URL: role ") and "is a superuser" in message and APP_ROLE in message


async def test_the_derived_application_url_starts(settings: Settings) -> None:
    assert settings.app_database_url is None  # as `make test` / `make run`: DATABASE_URL as bs_app
    assert await _startup_error(create_app(settings)) is None


async def _problem(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        return await application_role_problem(conn)
    finally:
        await conn.close()


async def test_owner_members_and_bypassrls_roles_are_refused(admin_url: str) -> None:
    assert await _problem(with_user(admin_url, APP_ROLE)) is None
    owner = await _problem(with_user(admin_url, OWNER_ROLE))
    assert owner and f"is or is a member of the table owner {OWNER_ROLE}" in owner
    suffix = uuid.uuid4().hex[:8]
    member, bypass = f"bs_t_member_{suffix}", f"bs_t_bypass_{suffix}"
    admin = await asyncpg.connect(with_database(admin_url, "postgres"))
    try:
        await admin.execute(f'CREATE ROLE "{member}" LOGIN NOINHERIT IN ROLE "{OWNER_ROLE}"')
        await admin.execute(f'CREATE ROLE "{bypass}" LOGIN BYPASSRLS')
        assert f"role {member} is or is a member of the table owner {OWNER_ROLE}" in (
            await _problem(with_user(admin_url, member)) or ""
        )
        assert f"role {bypass} has BYPASSRLS" in (await _problem(with_user(admin_url, bypass)) or "")
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{member}"')
        await admin.execute(f'DROP ROLE IF EXISTS "{bypass}"')
        await admin.close()
