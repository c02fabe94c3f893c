"""The backbone bench's GraphQL and REST reads in process: server CPU per request, A/B, profiles.

    uv run python -m tests.bench.graphql_inprocess measure                # this tree, medians
    uv run python -m tests.bench.graphql_inprocess ab --before /tmp/main  # trees alternated
    uv run python -m tests.bench.graphql_inprocess profile                # cProfile diff

`wrk` against a uvicorn server (`python -m tests.bench`) measures the client, the kernel and
PostgreSQL as well, and on a shared two-core machine its rounds disagree by more than a change
of 50 µs. Here the app is called through ASGI directly (no sockets, no client worth the name),
with the bench's token and queries, and only this process's CPU is counted (PostgreSQL and
Redis run in processes of their own): the app's own work per request.

Set-up as in `tests.bench` (stack.py), but the database `bs_bench_inprocess` is kept between
runs (demo data loaded once). `ab` runs each tree in a child process of its own (PYTHONPATH set
to the tree), the trees alternated `--pairs` times in the same minutes; every child prints the
median of `--rounds` rounds × `--requests` requests per scenario, the scenarios alternated
within each round. `profile` writes cProfile's statistics of the GraphQL and the REST tenant
read and prints the functions whose own time GraphQL spends above REST.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

SCRIPT = os.path.abspath(__file__)
TENANT = "stadt-soest"
ROLE = "agent"
DATABASE = "bs_bench_inprocess"
GQL_TENANT = "query($s:String!){ tenant(tenant:$s){ slug name } }"
GQL_ME = "query { me { subject tenant { slug name } } }"
GQL_TYPENAME = "{ __typename }"
# (method, path, query string, GraphQL body)
SCENARIOS: dict[str, tuple[str, str, bytes, dict[str, Any] | None]] = {
    "ping": ("GET", "/ping", b"", None),
    "tenant_rest": ("GET", f"/v1/tenants/{TENANT}", b"", None),
    "tenant_graphql": ("POST", "/graphql", b"", {"query": GQL_TENANT, "variables": {"s": TENANT}}),
    "me_rest": ("GET", "/v1/me", b"", None),
    "me_graphql": ("POST", "/graphql", b"", {"query": GQL_ME, "variables": {}}),
    "typename_graphql": ("POST", "/graphql", b"", {"query": GQL_TYPENAME, "variables": {}}),
}

Call = Callable[[], Awaitable[bytes]]


def _caller(app: Any, token: str, key: str) -> Call:
    """One request of a scenario through the app's ASGI callable, as uvicorn would send it."""
    method, path, query, body = SCENARIOS[key]
    payload = json.dumps(body).encode() if body is not None else b""
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode())]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }

    async def call() -> bytes:
        delivered = False
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(dict(scope), receive, send)
        return b"".join(chunks)

    return call


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    from backend import devidp
    from backend.main import create_app
    from backend.settings import load_settings
    from tests.support.asgi import lifespan

    settings = load_settings()
    app = create_app(settings)
    token = devidp.mint_token(settings, TENANT, ROLE)
    keys = args.scenarios.split(",")
    async with lifespan(app):
        calls = {key: _caller(app, token, key) for key in keys}
        for key, call in calls.items():
            body = await call()
            if b'"errors"' in body or (b"slug" not in body and b"pong" not in body and b"Query" not in body):
                raise RuntimeError(f"{key}: {body[:300]!r}")
            for _ in range(args.warmup):
                await call()
        if args.profile:
            return await _profiled(calls, args)
        per_round: dict[str, list[float]] = {key: [] for key in keys}
        for _ in range(args.rounds):
            for key, call in calls.items():
                started = time.process_time_ns()
                for _ in range(args.requests):
                    await call()
                per_round[key].append((time.process_time_ns() - started) / 1000 / args.requests)
    return {
        "code": os.environ.get("PYTHONPATH", ""),
        "load": os.getloadavg()[0],
        "median_us": {key: round(statistics.median(v), 1) for key, v in per_round.items()},
        "min_us": {key: round(min(v), 1) for key, v in per_round.items()},
    }


async def _profiled(calls: dict[str, Call], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, call in calls.items():
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.requests):
            await call()
        profiler.disable()
        path = os.path.join(args.out, f"{key}.prof")
        profiler.dump_stats(path)
        out[key] = path
    return out


def _layer(args: argparse.Namespace) -> dict[str, Any]:
    """The GraphQL layer of the tenant read alone: `Pipeline.answer` with the tenant service
    answering a Tenant at once (no unit of work, no SQL, no HTTP), the coroutine driven by hand.
    What GraphQL adds above the service, with far less noise than a whole request."""
    import datetime as dt
    import uuid
    from contextlib import asynccontextmanager

    from backend.api.context import GraphQLContext
    from backend.api.pipeline import Operation
    from backend.gql_schema import create_schema
    from backend.i18n import request_locale
    from backend.settings import load_settings
    from backend.tenants import schemas, service

    now = dt.datetime.now(dt.UTC)
    tenant = schemas.Tenant(
        id=uuid.uuid4(),
        slug=TENANT,
        name="Stadt Soest",
        kind=next(iter(schemas.TenantKind)),
        is_operator=False,
        ags=None,
        federal_state="NW",
        time_zone="Europe/Berlin",
        service_hours=[],
        leitweg_id=None,
        status=next(iter(schemas.TenantStatus)),
        version=1,
        created_at=now,
        updated_at=now,
    )

    async def answered(_uow: Any, _slug: str) -> Any:
        return tenant

    service.tenant = answered  # type: ignore[assignment]

    class Context(GraphQLContext):
        @asynccontextmanager  # type: ignore[arg-type]
        async def uow(self, *, readonly: bool = True) -> Any:
            yield None

    from backend.api.pipeline import Pipeline

    schema = create_schema(load_settings())
    pipeline = Pipeline(schema._schema, schema.limits, schema.execution_context_class, request_locale)
    operation = Operation(query=GQL_TENANT, variables={"s": TENANT})

    class App:
        metrics = None

    def once() -> Any:
        coroutine = pipeline.answer(operation, Context(app=App(), request=None))  # type: ignore[arg-type]
        try:
            coroutine.send(None)
        except StopIteration as done:
            return done.value
        raise RuntimeError("the stubbed answer waited")

    if once() != {"data": {"tenant": {"slug": TENANT, "name": "Stadt Soest"}}}:
        raise RuntimeError(f"unexpected answer {once()!r}")
    for _ in range(args.warmup):
        once()
    rounds = []
    for _ in range(args.rounds):
        started = time.process_time_ns()
        for _ in range(args.requests):
            once()
        rounds.append((time.process_time_ns() - started) / 1000 / args.requests)
    return {
        "code": os.environ.get("PYTHONPATH", ""),
        "load": os.getloadavg()[0],
        "median_us": {"layer": round(statistics.median(rounds), 1)},
        "min_us": {"layer": round(min(rounds), 1)},
    }


def _run_child(code: str, args: argparse.Namespace, env: dict[str, str], profile: bool = False) -> dict[str, Any]:
    command = (
        [
            sys.executable,
            SCRIPT,
            "child",
            "--scenarios",
            args.scenarios,
            "--rounds",
            str(args.rounds),
            "--requests",
            str(args.requests),
            "--warmup",
            str(args.warmup),
            "--out",
            args.out,
        ]
        + (["--profile"] if profile else [])
        + (["--layer"] if args.layer else [])
    )
    done = subprocess.run(
        command, env={**env, "PYTHONPATH": code}, cwd=code, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"child for {code} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _environment() -> Any:
    """Services and the kept database; yields the children's environment."""
    from tests.bench import stack

    @contextmanager
    def managed() -> Any:
        with stack.services() as (server_url, redis_url), stack.bench_database(server_url, None, keep=DATABASE) as url:
            marker = stack.BENCH_DATA / f"{DATABASE}.loaded"
            env = stack.child_environment(
                {
                    "APP_ENV": "test",
                    "DATABASE_URL": url,
                    "REDIS_URL": redis_url,
                    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
                    "DEV_SIGNIN_ENABLED": "true",
                    "DATA_DIR": str(stack.BENCH_DATA),
                    "LOG_LEVEL": "WARNING",
                    "SEARCH_RETRIEVERS": "lexical",
                }
            )
            if not marker.exists():
                from backend.settings import load_settings

                stack.load_demo_data(load_settings(env))
                marker.write_text("demo data loaded\n")
            yield env

    return managed()


@contextmanager
def _no_services() -> Iterator[dict[str, str]]:
    """The layer needs no database: settings that load, pointing nowhere."""
    yield {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": "postgresql://bench@127.0.0.1:9/none",
        "REDIS_URL": "redis://127.0.0.1:9",
        "LOG_LEVEL": "WARNING",
    }


def _print_diff(graphql: str, rest: str, requests: int, top: int) -> None:
    def own(path: str) -> dict[str, float]:
        stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
        return {f"{os.path.basename(f)}:{line} {name}": tt for (f, line, name), (_, _, tt, _, _) in stats.items()}

    g, r = own(graphql), own(rest)
    diff = sorted(((g.get(k, 0.0) - r.get(k, 0.0), k) for k in set(g) | set(r)), reverse=True)
    total = (sum(g.values()) - sum(r.values())) / requests * 1e6
    names = f"{os.path.basename(graphql)} − {os.path.basename(rest)}"
    print(f"{names} own time: {total:.0f} µs per request (profiled); top {top}:")
    for delta, key in diff[:top]:
        print(f"  {delta / requests * 1e6:8.1f} µs  {key}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.graphql_inprocess", description=__doc__)
    parser.add_argument("mode", choices=("measure", "ab", "profile", "child"))
    parser.add_argument("--scenarios", default="ping,tenant_rest,tenant_graphql,typename_graphql")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=2, help="ab: how often each tree runs")
    parser.add_argument("--before", help="ab: the tree to compare with (e.g. an export of main)")
    parser.add_argument("--after", default=os.path.dirname(os.path.dirname(os.path.dirname(SCRIPT))))
    parser.add_argument("--out", default="/tmp")
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--layer", action="store_true", help="measure/ab: the GraphQL layer alone (no database)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--pair", default="tenant_graphql,tenant_rest", help="profile: A,B to diff (A − B)")
    args = parser.parse_args(argv)
    if args.mode == "child" and args.layer:
        print(json.dumps(_layer(args)))
        return
    if args.mode == "child":
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            print(json.dumps(runner.run(_child(args))))
        return
    with _environment() if not args.layer else _no_services() as env:
        if args.mode == "measure":
            print(json.dumps(_run_child(args.after, args, env)))
        elif args.mode == "profile":
            args.scenarios = args.pair
            paths = _run_child(args.after, args, env, profile=True)
            first, second = args.pair.split(",")
            _print_diff(paths[first], paths[second], args.requests, args.top)
        else:
            if not args.before:
                parser.error("ab needs --before")
            for pair in range(args.pairs):
                for label, code in (("before", args.before), ("after", args.after)):
                    result = _run_child(code, args, env)
                    print(json.dumps({"pair": pair + 1, "side": label, **result}), flush=True)


if __name__ == "__main__":
    main()
