"""Real PostgreSQL, real Redis, a real OIDC provider, and the app in-process.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, else embedded ones start
under .data/test/. Each test session (and each xdist worker) gets its own database, created
and migrated once with the same code `make migrate` runs. Tests build their own tenants with
unique slugs, so they never depend on each other's rows.

`--frozen-at=MOMENT` (or FROZEN_AT=MOMENT) starts the whole session at that moment with
time-machine, ticking from there (ISO 8601; without an offset it is Europe/Berlin local time).
Tests whose outcome depends on the date or time are marked `clock`; CI runs them at fixed
moments (docs/decisions/018-clock.md).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import pytest_asyncio
import time_machine
from litestar import Litestar

from backend.db.pool import enforce_one_connection
from backend.db.roles import bootstrap, run_migrations, with_database
from backend.main import create_app
from backend.settings import PROJECT_ROOT, Settings
from tests.support.asgi import serve
from tests.support.oidc import OIDCProvider
from tests.support.world import World, build_world, oidc_issuers

TEST_DATA = PROJECT_ROOT / ".data" / "test"

# One connection per unit of work (decision 013): in every test, a unit of work that asks its
# pool for a second connection fails with SecondConnection instead of waiting (and, under load,
# wedging the instance). App processes started by tests (APP_ENV=test) enforce it too.
enforce_one_connection()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--frozen-at",
        default=os.environ.get("FROZEN_AT", ""),
        help="run the session from this moment (ISO 8601; no offset = Europe/Berlin), clock ticking",
    )


def frozen_moment(value: str) -> datetime:
    """A local Berlin time that does not exist (the hour skipped in March) moves on by the gap,
    as zoneinfo reads it: 02:30 becomes 03:30 CEST."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo("Europe/Berlin"))


_travel: time_machine.travel | None = None


def pytest_configure(config: pytest.Config) -> None:
    # Before any fixture: the world, its tokens and the app all start at the chosen moment.
    global _travel
    value = config.getoption("--frozen-at")
    if value:
        _travel = time_machine.travel(frozen_moment(value), tick=True)
        _travel.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _travel
    if _travel is not None:
        _travel.stop()
        _travel = None


def pytest_report_header(config: pytest.Config) -> str | None:
    value = config.getoption("--frozen-at")
    return f"clock: session starts at {frozen_moment(value).isoformat()}" if value else None


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    """(admin PostgreSQL URL of the server, Redis URL)."""
    from backend.devservices import start_postgres, start_redis

    handles = []
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if not database_url:
        database_url, handle = start_postgres(TEST_DATA, "postgres")
        handles.append(handle)
    redis_url = os.environ.get("REDIS_URL", "").strip()
    if not redis_url:
        redis_url, handle = start_redis(TEST_DATA / _worker())
        handles.append(handle)
    yield database_url, redis_url
    del handles


@pytest.fixture(scope="session")
def admin_url(server_urls: tuple[str, str]) -> Iterator[str]:
    """A fresh database for this session, migrated from zero as `make migrate` does."""
    base_url, _ = server_urls
    name = f"bs_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    url = with_database(base_url, name)
    asyncio.run(bootstrap(url))
    run_migrations(url)
    yield url

    async def drop() -> None:
        conn = await asyncpg.connect(with_database(base_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def oidc() -> Iterator[OIDCProvider]:
    with OIDCProvider(oidc_issuers()) as provider:
        yield provider


@pytest.fixture(scope="session")
def settings(admin_url: str, server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="test",
        database_url=admin_url,
        redis_url=server_urls[1],
        public_base_url="http://testserver.local",
        data_dir=Path(tmp_path_factory.mktemp("data")),
        log_level="WARNING",
        # The suite's shared principals make far more requests a minute than any person;
        # tests/test_rate_limits.py sets its own small limits.
        rate_limit_per_minute=1_000_000,
        rate_limit_machine_per_minute=1_000_000,
        rate_limit_unauthenticated_per_minute=1_000_000,  # the suite probes with bad tokens a lot
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest_asyncio.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan, middleware, handlers) over httpx, in the test's event loop."""
    async with serve(app, "http://testserver.local") as http_client:
        yield http_client


@pytest_asyncio.fixture(scope="session")
async def world(client: httpx.AsyncClient, app: Litestar, oidc: OIDCProvider) -> World:
    """Kreis Soest (operator) with clients Stadt Soest and Stadt Geseke, trusting the test IdP."""
    return await build_world(app, oidc)


@pytest_asyncio.fixture(scope="session")
async def db(admin_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of the application role (bs_app), for tests that inspect the database."""
    from backend.db.pool import create_pool
    from backend.db.roles import APP_ROLE, with_user

    pool = await create_pool(with_user(admin_url, APP_ROLE), 1, 4)
    yield pool
    await pool.close()
