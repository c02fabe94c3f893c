"""`make bench`: what the backbone costs, as ratios against baselines measured in the same run.

    uv run python -m tests.bench            # full run (3000 requests per scenario after 300 warm-up)
    uv run python -m tests.bench --quick    # smoke run (a few hundred requests)

Set-up (see stack.py): PostgreSQL/Redis from DATABASE_URL/REDIS_URL or embedded under
.data/bench/, a fresh database `bs_bench_<random>` bootstrapped, migrated and loaded with the
demo data, dropped at the end. Two servers, each a uvicorn subprocess with the same options:

- ours: `backend.main:create_app` (APP_ENV=test, dev sign-in on, LOG_LEVEL=WARNING), the real
  app with middleware, token verification, dependency injection, RLS transaction;
- baseline: `tests.bench.baseline:create_app`, bare litestar with `/ping` and
  `/bare/tenants/{slug}`, which sends the same SQL as our tenant read on a pool of the same
  role and size, but without auth or middleware.

Scenarios, all in one run, each pair back to back so that both sides see the same machine:
  (a) /ping: ours vs baseline — framework + our middleware;
  (b) GET /v1/tenants/stadt-soest (bearer token of a Stadt Soest agent) vs /bare/tenants/…
      — token verification, DI, unit of work and error handling around the same SQL;
  (c) GraphQL `me { subject tenant { slug name } }` vs GET /v1/me, and GraphQL
      `tenant(slug:)` vs GET /v1/tenants/stadt-soest — the GraphQL layer on top of the same service.

Where the load comes from: this process, an asyncio + httpx client (HTTP/1.1 keep-alive, fixed
concurrency, see loadgen.py). It is a separate process from both servers: on a 2-core machine
the client, the server under test, PostgreSQL and Redis compete for the cores anyway, but a
client in the server's process would share its event loop and GIL and distort exactly the
per-request cost we want to see. Only the server of the running scenario is busy; the other one
idles. The client's own cost is in every latency (it is the same for both sides of a ratio),
so on such a machine the cheapest scenarios (/ping) are partly client-bound and their ratios
understate the difference; the server-CPU-per-request column (from /proc) does not have that
problem and is reported next to the ratios.

Output: a table on stdout, ratios ours ÷ baseline for throughput (below 1 = we are slower)
and p50 latency (above 1 = we are slower), and everything as JSON in bench-results/backbone.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx

from auth.permissions import Operation, reachable_tenants
from auth.principal import Principal
from auth.roles import Role, Scope
from backend import devidp
from backend.settings import PROJECT_ROOT, load_settings
from tests.bench import stack
from tests.bench.loadgen import Result, Target, run

TENANT = "stadt-soest"
ROLE = "agent"
OUTPUT = PROJECT_ROOT / "bench-results" / "backbone.json"
GQL_ME = "query { me { subject tenant { slug name } } }"
GQL_TENANT = "query($s:String!){ tenant(slug:$s){ slug name } }"

# (key, label) in the order they run; pairs are adjacent.
SCENARIOS = (
    ("ping_ours", "(a) GET /ping                      ours"),
    ("ping_baseline", "(a) GET /ping                      baseline"),
    ("tenant_rest", "(b) GET /v1/tenants/stadt-soest    ours REST"),
    ("tenant_baseline", "(b) GET /bare/tenants/stadt-soest  baseline"),
    ("me_rest", "(c) GET /v1/me                     ours REST"),
    ("me_graphql", "(c) GraphQL me { … }               ours GraphQL"),
    ("tenant_graphql", "(c) GraphQL tenant(slug:) { … }    ours GraphQL"),
)
# (label, ours, baseline): ratio = ours ÷ baseline.
RATIOS = (
    ("/ping: our app ÷ bare litestar", "ping_ours", "ping_baseline"),
    ("tenant read: REST ÷ bare (same SQL)", "tenant_rest", "tenant_baseline"),
    ("me: GraphQL ÷ REST", "me_graphql", "me_rest"),
    ("tenant read: GraphQL ÷ REST", "tenant_graphql", "tenant_rest"),
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 requests after 50 warm-up")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, help="measured requests per scenario (default 3000, quick 300)")
    parser.add_argument("--warmup", type=int, help="warm-up requests per scenario (default 300, quick 50)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per scenario at most")
    parser.add_argument("--output", default=str(OUTPUT), help="JSON results file")
    args = parser.parse_args(argv)
    args.requests = args.requests or (300 if args.quick else 3000)
    args.warmup = args.warmup if args.warmup is not None else (50 if args.quick else 300)
    return args


def _principal_from_me(me: dict[str, Any]) -> Principal:
    """The principal our app builds for the token, as /v1/me reports it."""
    tenant = me["tenant"]
    return Principal(
        issuer=str(me["issuer"]),
        subject=str(me["subject"]),
        tenant_id=UUID(tenant["id"]),
        tenant_slug=tenant["slug"],
        roles=frozenset(Role(r) for r in me["roles"]),
        scopes=frozenset(Scope(s) for s in me["scopes"]),
        acting_tenant_ids=frozenset(UUID(t) for t in me["actingTenantIds"]),
    )


def _json_ok(marker: bytes) -> Callable[[httpx.Response], bool]:
    def check(response: httpx.Response) -> bool:
        return response.status_code == 200 and marker in response.content and b'"errors"' not in response.content

    return check


def _graphql_body(query: str, variables: dict[str, str] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


def _targets(ours: stack.Server, baseline: stack.Server, token: str) -> dict[str, Target]:
    auth = {"authorization": f"Bearer {token}"}
    gql = {**auth, "content-type": "application/json"}
    slug_marker = f'"slug":"{TENANT}"'.encode()
    pong = _json_ok(b"pong")
    tenant_ok = _json_ok(slug_marker)
    return {
        "ping_ours": Target("ping_ours", ours.base_url, "GET", "/ping", server_pid=ours.pid, check=pong),
        "ping_baseline": Target(
            "ping_baseline", baseline.base_url, "GET", "/ping", server_pid=baseline.pid, check=pong
        ),
        "tenant_rest": Target(
            "tenant_rest", ours.base_url, "GET", f"/v1/tenants/{TENANT}", auth, server_pid=ours.pid, check=tenant_ok
        ),
        "tenant_baseline": Target(
            "tenant_baseline",
            baseline.base_url,
            "GET",
            f"/bare/tenants/{TENANT}",
            server_pid=baseline.pid,
            check=tenant_ok,
        ),
        "me_rest": Target("me_rest", ours.base_url, "GET", "/v1/me", auth, server_pid=ours.pid, check=tenant_ok),
        "me_graphql": Target(
            "me_graphql",
            ours.base_url,
            "POST",
            "/graphql",
            gql,
            _graphql_body(GQL_ME),
            server_pid=ours.pid,
            check=tenant_ok,
        ),
        "tenant_graphql": Target(
            "tenant_graphql",
            ours.base_url,
            "POST",
            "/graphql",
            gql,
            _graphql_body(GQL_TENANT, {"s": TENANT}),
            server_pid=ours.pid,
            check=tenant_ok,
        ),
    }


def _preflight(targets: dict[str, Target]) -> None:
    """One request per scenario, with the response shown when it is not what the scenario expects."""
    for target in targets.values():
        with httpx.Client(base_url=target.base_url, timeout=10.0, trust_env=False) as client:
            response = client.request(target.method, target.path, headers=target.headers, content=target.body)
        if not target.check(response):
            raise RuntimeError(f"{target.name}: unexpected response {response.status_code}: {response.text[:500]}")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _report(results: dict[str, Result], args: argparse.Namespace) -> list[dict[str, object]]:
    print()
    print(
        f"concurrency {args.concurrency}, {args.requests} requests per scenario after {args.warmup} warm-up, "
        f"at most {args.time_limit:.0f} s each, {os.cpu_count()} CPUs"
    )
    header = (
        f"{'scenario':<46} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU µs/req':>14} {'cli CPU µs/req':>14} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for key, label in SCENARIOS:
        r = results[key]
        note = " (time limit)" if r.timed_out else ""
        print(
            f"{label:<46} {r.rps:>8.0f} {r.p50_ms:>7.2f} {r.p95_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{_fmt(r.server_cpu_us_per_request, '.0f'):>14} {r.client_cpu_us_per_request:>14.0f} "
            f"{r.errors:>6}{note}"
        )
    print()
    print("ratios ours ÷ baseline: throughput (<1 = slower), p50 latency (>1 = slower), server CPU per request")
    ratios: list[dict[str, object]] = []
    for label, ours, base in RATIOS:
        a, b = results[ours], results[base]
        entry = {
            "label": label,
            "ours": ours,
            "baseline": base,
            "throughput": _ratio(a.rps, b.rps),
            "p50_latency": _ratio(a.p50_ms, b.p50_ms),
            "server_cpu_per_request": _ratio(a.server_cpu_us_per_request, b.server_cpu_us_per_request),
        }
        ratios.append(entry)
        print(
            f"  {label:<40} throughput {_fmt(entry['throughput'], '.2f')}x   "
            f"p50 {_fmt(entry['p50_latency'], '.2f')}x   "
            f"server CPU/req {_fmt(entry['server_cpu_per_request'], '.2f')}x"
        )
    return ratios


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


async def _measure(targets: dict[str, Target], args: argparse.Namespace) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for key, label in SCENARIOS:
        print(f"  running {label.strip()} …", file=sys.stderr, flush=True)
        results[key] = await run(
            targets[key],
            concurrency=args.concurrency,
            requests=args.requests,
            warmup=args.warmup,
            time_limit=args.time_limit,
        )
    return results


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    started = time.monotonic()
    ours_port, baseline_port = stack.free_port(), stack.free_port()
    while baseline_port == ours_port:
        baseline_port = stack.free_port()
    public_base_url = f"http://127.0.0.1:{ours_port}"
    servers: list[stack.Server] = []
    print("bench: starting PostgreSQL/Redis, creating and migrating a database …", file=sys.stderr, flush=True)
    with (
        stack.services() as (server_url, redis_url),
        stack.bench_database(server_url, os.environ.get("DB_APP_PASSWORD") or None) as database_url,
    ):
        env = stack.child_environment(
            {
                "APP_ENV": "test",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "PUBLIC_BASE_URL": public_base_url,
                "DEV_SIGNIN_ENABLED": "true",
                "DATA_DIR": str(stack.BENCH_DATA),
                "LOG_LEVEL": "WARNING",
            }
        )
        settings = load_settings(env)
        print("bench: loading demo data …", file=sys.stderr, flush=True)
        stack.load_demo_data(settings)
        token = devidp.mint_token(settings, TENANT, ROLE)
        try:
            ours = stack.start_server("ours", "backend.main:create_app", ours_port, env)
            servers.append(ours)
            stack.wait_ready(ours)
            me = httpx.get(f"{ours.base_url}/v1/me", headers={"authorization": f"Bearer {token}"}, trust_env=False)
            if me.status_code != 200:
                raise RuntimeError(f"GET /v1/me: {me.status_code} {me.text[:500]}")
            principal = _principal_from_me(me.json())
            readable = reachable_tenants(principal, Operation.TENANT_READ)
            baseline = stack.start_server(
                "baseline",
                "tests.bench.baseline:create_app",
                baseline_port,
                {
                    **env,
                    "BENCH_ACTING_TENANT_IDS": ",".join(sorted(str(t) for t in principal.acting_tenant_ids)),
                    "BENCH_READ_TENANT_IDS": ",".join(sorted(str(t) for t in readable)),
                },
            )
            servers.append(baseline)
            stack.wait_ready(baseline)
            targets = _targets(ours, baseline, token)
            _preflight(targets)
            print(
                f"bench: servers ready after {time.monotonic() - started:.0f} s; measuring …",
                file=sys.stderr,
                flush=True,
            )
            with _event_loop_runner() as runner:
                results = runner.run(_measure(targets, args))
        except BaseException:
            for server in servers:
                tail = server.log_tail()
                if tail:
                    print(f"--- {server.name} log ({server.log_path}) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            for server in servers:
                stack.stop_server(server)
    ratios = _report(results, args)
    errors = sum(r.errors for r in results.values())
    document = {
        "benchmark": "backbone",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {
            "quick": args.quick,
            "concurrency": args.concurrency,
            "requests": args.requests,
            "warmup": args.warmup,
            "time_limit_seconds": args.time_limit,
            "client": "asyncio + httpx, HTTP/1.1 keep-alive, separate process from the servers",
            "tenant": TENANT,
            "role": ROLE,
        },
        "scenarios": {key: {"label": " ".join(label.split()), **asdict(results[key])} for key, label in SCENARIOS},
        "ratios": ratios,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    output = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as handle:
        json.dump(document, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    print(f"\nwrote {os.path.relpath(output, PROJECT_ROOT)} ({document['wall_seconds']} s in total)")
    if errors:
        print(f"bench: {errors} requests failed", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
