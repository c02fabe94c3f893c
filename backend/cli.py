"""Command line: `python -m backend.cli <command>`; the Makefile's targets call these.

run      start embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL are unset, migrate,
         load demo data, serve on HOST:PORT until Ctrl-C
migrate  create roles/database if missing and apply migrations (dbmate)
seed     load the demo data
token    print a dev sign-in bearer token (nothing else on stdout)
bootstrap-operator
         create the operator tenant and trust its identity provider, mapping one claim value
         to platform-admin (idempotent; for production, without dev sign-in)
schema   export graphql/schema.graphql and openapi/openapi.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from backend.settings import PROJECT_ROOT, Settings, SettingsError, load_settings


def _settings(*, serving: bool = True) -> Settings:
    try:
        return load_settings(serving=serving)
    except SettingsError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None


def _services(settings: Settings, *, redis: bool = True) -> object:
    from backend.devservices import EmbeddedServerMissing, ensure_services

    try:
        return ensure_services(settings.data_dir, redis=redis)
    except EmbeddedServerMissing as error:
        print(error, file=sys.stderr)  # one line, not a traceback: in the image the URLs are always set
        raise SystemExit(2) from None


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
    import redis.asyncio as redis_asyncio

    from auth.oidc import JWKSCache, TokenVerifier
    from backend.db.pool import create_pool
    from backend.devidp import jwks_source
    from backend.state import AppState
    from backend.tenants.signin import DatabaseIssuerRegistry, sign_in
    from outbound import outbound_client

    pool = await create_pool(settings.application_database_url, 1, 2)
    redis = redis_asyncio.Redis.from_url(settings.redis_url or "")
    http = outbound_client(settings.outbound_policy(), timeout=settings.oidc_http_timeout_seconds)
    verifier = TokenVerifier(DatabaseIssuerRegistry(pool), JWKSCache(redis, jwks_source(settings, http), 60, 60))
    try:
        yield AppState(settings=settings, pool=pool, redis=redis, http=http, verifier=verifier, sign_in=sign_in)
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
    record = record_server(settings)
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
        record.unlink(missing_ok=True)
        del services


SERVER_RECORD = "server.json"


def record_server(settings: Settings) -> Path:
    """`make run` notes where it serves (and its process id) under DATA_DIR, so `make token`
    signs for that server: a token's issuer names the server's URL, and one for :8000 is
    refused by a server on :8104."""
    path = settings.data_dir / SERVER_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"public_base_url": settings.public_base_url, "pid": os.getpid()}))
    return path


def running_server(settings: Settings) -> str | None:
    """The base URL of the `make run` server using this DATA_DIR, if it is still running."""
    try:
        record = json.loads((settings.data_dir / SERVER_RECORD).read_text())
        os.kill(int(record["pid"]), 0)  # signal 0: only asks whether the process exists
    except (OSError, ValueError, KeyError, TypeError):
        return None
    url = record.get("public_base_url")
    return url if isinstance(url, str) else None


def token(settings: Settings, tenant: str, role: str) -> None:
    from backend import devidp

    if not settings.dev_signin_enabled:
        print("dev sign-in is disabled (DEV_SIGNIN_ENABLED=false)", file=sys.stderr)
        raise SystemExit(2)
    if tenant not in devidp.DEMO_TENANTS:
        print(f"unknown demo tenant {tenant!r}; one of {', '.join(devidp.DEMO_TENANTS)}", file=sys.stderr)
        raise SystemExit(2)
    grantable = devidp.grantable_roles(tenant)
    if role not in grantable:
        print(f"{tenant} cannot grant {role!r}; one of {', '.join(grantable)}", file=sys.stderr)
        raise SystemExit(2)
    # Given PORT or PUBLIC_BASE_URL: a token for that server. Otherwise for the running one.
    if not (os.environ.get("PORT") or os.environ.get("PUBLIC_BASE_URL")):
        running = running_server(settings)
        if running is not None and running != settings.public_base_url:
            settings = dataclasses.replace(settings, public_base_url=running)
    print(f"token for {settings.public_base_url} ({tenant}, {role})", file=sys.stderr)
    print(devidp.mint_token(settings, tenant, role))


def bootstrap_operator(settings: Settings, args: argparse.Namespace) -> None:
    from backend.errors import DomainError
    from backend.tenants.bootstrap import BootstrapRefused, OperatorSpec
    from backend.tenants.bootstrap import bootstrap_operator as make_it_so
    from backend.tenants.schemas import TenantKind

    spec = OperatorSpec(
        slug=args.slug,
        name=args.name,
        issuer=args.issuer,
        audience=args.audience,
        role_claim=args.role_claim,
        admin_value=args.admin_value,
        kind=TenantKind(args.kind),
        ags=args.ags,
    )

    async def main() -> list[str]:
        async with _app_state(settings) as state:
            return await make_it_so(state, spec)  # type: ignore[arg-type]

    try:
        done = asyncio.run(main())
    except (BootstrapRefused, DomainError) as error:
        field = getattr(error, "field", None)
        print(f"bootstrap-operator: {error}" + (f" ({field})" if field else ""), file=sys.stderr)
        raise SystemExit(2) from None
    for line in done:
        print(line, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
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
    operator = sub.add_parser(
        "bootstrap-operator",
        help="create the operator tenant and its platform admins' sign-in (idempotent)",
        description="Create the operator tenant, trust its OIDC issuer and map one claim value to "
        "platform-admin. Safe to run again: what is already so stays.",
    )
    operator.add_argument("--slug", required=True, help="operator tenant slug, e.g. kreis-soest")
    operator.add_argument("--name", required=True, help="its name, e.g. 'Kreis Soest'")
    kinds = ["district", "town", "municipality", "federal", "other"]
    operator.add_argument("--kind", default="district", choices=kinds)
    operator.add_argument("--ags", default=None, help="Amtlicher Gemeindeschlüssel (5 digits for a district)")
    operator.add_argument("--issuer", required=True, help="the issuer URL exactly as in its tokens' iss")
    operator.add_argument("--audience", required=True, help="the aud its access tokens carry for this API")
    operator.add_argument(
        "--role-claim", default="roles", help="claim path of roles or groups, e.g. realm_access.roles"
    )
    operator.add_argument(
        "--admin-value", required=True, help="the claim value that makes a platform admin, e.g. bs-platform-admin"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
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
    elif args.command == "bootstrap-operator":
        if not (os.environ.get("DATABASE_URL") or os.environ.get("APP_DATABASE_URL")):
            _services(settings)  # a local try-out: the embedded PostgreSQL and Redis of `make run`
        bootstrap_operator(_settings(), args)


if __name__ == "__main__":
    main()
