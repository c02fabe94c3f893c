"""Command line: `python -m backend.cli <command>`; the Makefile's targets call these.

run      start embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL are unset, migrate,
         load demo data, serve on HOST:PORT until Ctrl-C
migrate  create roles/database if missing and apply migrations (dbmate)
seed     load the demo data
token    print a dev sign-in bearer token (nothing else on stdout)
schema   export graphql/schema.graphql and openapi/openapi.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.settings import PROJECT_ROOT, Settings, SettingsError, load_settings


def _settings(*, serving: bool = True) -> Settings:
    try:
        return load_settings(serving=serving)
    except SettingsError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None


def _services(settings: Settings, *, redis: bool = True) -> object:
    from backend.devservices import ensure_services

    return ensure_services(settings.data_dir, redis=redis)


def migrate(settings: Settings) -> None:
    from backend.db.roles import MigrationError, bootstrap, run_migrations

    admin_url = os.environ["DATABASE_URL"]
    asyncio.run(bootstrap(admin_url, settings.db_app_password, settings.db_owner_password))
    try:
        run_migrations(admin_url, owner_password=settings.db_owner_password)
    except MigrationError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None


@asynccontextmanager
async def _app_state(settings: Settings) -> AsyncIterator[object]:
    import httpx
    import redis.asyncio as redis_asyncio

    from auth.oidc import HttpJWKSSource, JWKSCache, TokenVerifier
    from backend.db.pool import create_pool
    from backend.state import AppState
    from backend.tenants.signin import DatabaseIssuerRegistry

    pool = await create_pool(settings.application_database_url, 1, 2)
    redis = redis_asyncio.Redis.from_url(settings.redis_url or "")
    http = httpx.AsyncClient()
    verifier = TokenVerifier(DatabaseIssuerRegistry(pool), JWKSCache(redis, HttpJWKSSource(http), 60, 60))
    try:
        yield AppState(settings=settings, pool=pool, redis=redis, http=http, verifier=verifier)
    finally:
        await http.aclose()
        await redis.aclose()
        await pool.close()


def seed(settings: Settings) -> None:
    from backend.demo import load_demo_data

    async def main() -> None:
        async with _app_state(settings) as state:
            await load_demo_data(state, settings)  # type: ignore[arg-type]

    asyncio.run(main())


def export_schema(settings: Settings) -> None:
    from backend.contracts import graphql_sdl, openapi_document

    (PROJECT_ROOT / "graphql" / "schema.graphql").write_text(graphql_sdl())
    (PROJECT_ROOT / "openapi" / "openapi.json").write_text(
        json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    )
    print("exported graphql/schema.graphql and openapi/openapi.json", file=sys.stderr)


def run(settings: Settings) -> None:
    import uvicorn

    services = _services(settings)
    settings = _settings()  # again: DATABASE_URL / REDIS_URL may point at embedded services now
    migrate(settings)
    seed(settings)
    base = settings.public_base_url
    print(
        f"""
Bürgerservice backend is running on {base}
  GraphiQL         {base}/graphql
  API docs         {base}/docs   (OpenAPI document: {base}/docs/openapi.json)
  Demo sign-in     {base}/dev-signin   or: make token TENANT=stadt-soest ROLE=agent
  Health           {base}/healthz  {base}/readyz
  Data folder      {settings.data_dir}
Press Ctrl-C to stop (embedded PostgreSQL and Redis stop with it).
""",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            "backend.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        del services


def token(settings: Settings, tenant: str, role: str) -> None:
    from backend import devidp

    if not settings.dev_signin_enabled:
        print("dev sign-in is disabled (DEV_SIGNIN_ENABLED=false)", file=sys.stderr)
        raise SystemExit(2)
    if tenant not in devidp.DEMO_TENANTS:
        print(f"unknown demo tenant {tenant!r}; one of {', '.join(devidp.DEMO_TENANTS)}", file=sys.stderr)
        raise SystemExit(2)
    try:
        print(devidp.mint_token(settings, tenant, role))
    except ValueError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="backend.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    sub.add_parser("migrate")
    sub.add_parser("seed")
    sub.add_parser("schema")
    token_parser = sub.add_parser("token")
    token_parser.add_argument("--tenant", required=True)
    token_parser.add_argument("--role", required=True)
    args = parser.parse_args(argv)
    # Migrations need the database only: the migration Job gets no Redis URL and no sealing key.
    serving = args.command != "migrate"
    settings = _settings(serving=serving)
    if args.command == "run":
        run(settings)
    elif args.command == "migrate":
        _services(settings, redis=False)
        migrate(_settings(serving=False))
    elif args.command == "seed":
        _services(settings)
        seed(_settings())
    elif args.command == "schema":
        export_schema(settings)
    elif args.command == "token":
        token(settings, args.tenant, args.role)


if __name__ == "__main__":
    main()
