"""`make bench`: what the backbone costs, as ratios against baselines measured in the same run.

    uv run python -m tests.bench            # full run (3000 requests per scenario after 300 warm-up)
    uv run python -m tests.bench --quick    # smoke run (a few hundred requests)

Set-up (see stack.py): PostgreSQL/Redis from DATABASE_URL/REDIS_URL or embedded under
.data/bench/, a fresh database `bs_bench_<random>` bootstrapped, migrated and loaded with the
demo data, dropped at the end. Three servers, each a uvicorn subprocess with the same options:

- ours: `backend.main:create_app` (APP_ENV=test, dev sign-in on, LOG_LEVEL=WARNING), the real
  app with middleware, token verification, dependency injection, RLS transaction;
- baseline: `tests.bench.baseline:create_app`, bare litestar with `/ping` and
  `/bare/tenants/{slug}`, which sends the same SQL as our tenant read on a pool of the same
  role and size, but without auth or middleware;
- strawberry: ours with GRAPHQL_SHORT_PATHS=false (strawberry's own GraphQL pipeline), for (c)
  and (d) once more.

Scenarios, all in one run, each pair back to back so that both sides see the same machine:
  (a) /ping: ours vs baseline — framework + our middleware;
  (b) GET /v1/tenants/stadt-soest (bearer token of a Stadt Soest agent) vs /bare/tenants/…
      — token verification, DI, unit of work and error handling around the same SQL;
  (c) GraphQL `me { subject tenant { slug name } }` vs GET /v1/me, and GraphQL
      `tenant(tenant:)` vs GET /v1/tenants/stadt-soest — the GraphQL layer on top of the same service;
  (d) GraphQL `tickets(tenant:, first: 50) { nodes { <all 25 Ticket fields> } pageInfo {…} }`
      vs GET /v1/tickets?tenant=stadt-soest&first=50, over 60 tickets the bench creates first —
      the GraphQL layer where it has the most fields to produce (decision 020).
(c) and (d) once more against a third server, the same app with GRAPHQL_SHORT_PATHS=false:
strawberry's own HTTP view, extension runner and field-by-field execution, so every run shows the
GraphQL layer before and after decisions 020, 032 and 033 side by side.
Goals (issue 13): GraphQL ÷ REST throughput ≥ 0.8× for the tenant read, ≥ 0.7× for the list.
The statements each GraphQL request sends are counted in-process (asyncpg's query logger on an
app built from the same settings) and printed next to REST's.

Where the load comes from: `wrk` when it is installed (or apt can install it; see wrk.py): one
thread, 8 connections, rounds of 10 s (3 with --quick), every scenario once per round in the
order below, so the two sides of each ratio alternate. `wrk` is server-bound where the Python
client is not. Without it (or with BENCH_NO_WRK=1): this process, an asyncio + httpx client
(HTTP/1.1 keep-alive, fixed concurrency, see loadgen.py); the output names which one produced
each figure. Either is a separate process from both servers: on a 2-core machine
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
import dataclasses
import json
import os
import platform
import statistics
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
from backend.main import create_app
from backend.settings import PROJECT_ROOT, Settings, load_settings
from tests.bench import stack
from tests.bench.loadgen import Result, Target, run
from tests.bench.wrk import CLIENT_PYTHON, CLIENT_WRK, WrkTarget, ensure_wrk, run_wrk

TENANT = "stadt-soest"
ROLE = "agent"
OUTPUT = PROJECT_ROOT / "bench-results" / "backbone.json"
GQL_ME = "query { me { subject tenant { slug name } } }"
GQL_TENANT = "query($s:String!){ tenant(tenant:$s){ slug name } }"
TICKET_FIELDS = (
    "id tenantId number departmentId departmentName status priority subject leikaKey articleId callId source "
    "assignee createdAt updatedAt deadlineStartedAt dueAt deadlineRule calendarVersion answeredAt closedAt "
    "personalDataErasedAt slaState changeSeq version"
)
GQL_TICKETS = (
    "query Tickets($t: String!, $n: Int!) { tickets(tenant: $t, first: $n) "
    f"{{ nodes {{ {TICKET_FIELDS} }} pageInfo {{ endCursor hasNextPage }} }} }}"
)
TICKETS = 60
PAGE = 50
REST_TICKETS = f"/v1/tickets?tenant={TENANT}&first={PAGE}"

# (key, label) in the order they run; the two sides of every ratio are adjacent (REST's tenant
# read sits between its two partners), so on a shared machine both see the same neighbours.
SCENARIOS = (
    ("ping_ours", "(a) GET /ping                      ours"),
    ("ping_baseline", "(a) GET /ping                      baseline"),
    ("tenant_baseline", "(b) GET /bare/tenants/stadt-soest  baseline"),
    ("tenant_rest", "(b) GET /v1/tenants/stadt-soest    ours REST"),
    ("tenant_graphql", "(c) GraphQL tenant(tenant:) { … }  ours GraphQL"),
    ("tenant_graphql_strawberry", "(c) GraphQL tenant(tenant:) { … }  strawberry's"),
    ("me_rest", "(c) GET /v1/me                     ours REST"),
    ("me_graphql", "(c) GraphQL me { … }               ours GraphQL"),
    ("tickets_rest", "(d) GET /v1/tickets?…&first=50     ours REST"),
    ("tickets_graphql", "(d) GraphQL tickets(first: 50) {25} ours GraphQL"),
    ("tickets_graphql_strawberry", "(d) GraphQL tickets(first: 50) {25} strawberry's"),
)
# (label, ours, baseline): ratio = ours ÷ baseline.
RATIOS = (
    ("/ping: our app ÷ bare litestar", "ping_ours", "ping_baseline"),
    ("tenant read: REST ÷ bare (same SQL)", "tenant_rest", "tenant_baseline"),
    ("me: GraphQL ÷ REST", "me_graphql", "me_rest"),
    ("tenant read: GraphQL ÷ REST", "tenant_graphql", "tenant_rest"),
    ("50-ticket list: GraphQL ÷ REST", "tickets_graphql", "tickets_rest"),
    ("tenant read: strawberry's GraphQL ÷ REST", "tenant_graphql_strawberry", "tenant_rest"),
    ("50-ticket list: strawberry's GraphQL ÷ REST", "tickets_graphql_strawberry", "tickets_rest"),
)
# Issue 13's goals, ours ÷ baseline throughput at least this.
GOALS = {"tenant read: GraphQL ÷ REST": 0.8, "50-ticket list: GraphQL ÷ REST": 0.7}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 requests after 50 warm-up")
    parser.add_argument("--concurrency", type=int, default=16, help="Python client: connections")
    parser.add_argument("--connections", type=int, default=8, help="wrk: connections (one thread)")
    parser.add_argument("--seconds", type=float, help="wrk: seconds per round (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="wrk: rounds of every scenario (default 2, quick 1)")
    parser.add_argument("--requests", type=int, help="measured requests per scenario (default 3000, quick 300)")
    parser.add_argument("--warmup", type=int, help="warm-up requests per scenario (default 300, quick 50)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per scenario at most")
    parser.add_argument("--output", default=str(OUTPUT), help="JSON results file")
    args = parser.parse_args(argv)
    args.requests = args.requests or (300 if args.quick else 3000)
    args.warmup = args.warmup if args.warmup is not None else (50 if args.quick else 300)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
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


def _graphql_body(query: str, variables: dict[str, object] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


def _markers() -> dict[str, bytes]:
    """What each scenario's response must contain (besides status 200 and no `"errors"`)."""
    slug = f'"slug":"{TENANT}"'.encode()
    # The last page's cursor is there only when a full page came back.
    full_page = b'"nextCursor":"'
    return {
        "ping_ours": b"pong",
        "ping_baseline": b"pong",
        "tenant_rest": slug,
        "tenant_baseline": slug,
        "me_rest": slug,
        "me_graphql": slug,
        "tenant_graphql": slug,
        "tenant_graphql_strawberry": slug,
        "tickets_rest": full_page,
        "tickets_graphql": b'"hasNextPage":true',
        "tickets_graphql_strawberry": b'"hasNextPage":true',
    }


def _targets(ours: stack.Server, baseline: stack.Server, reference: stack.Server, token: str) -> dict[str, Target]:
    auth = {"authorization": f"Bearer {token}"}
    gql = {**auth, "content-type": "application/json"}
    shapes: dict[str, tuple[stack.Server, str, str, dict[str, str], bytes | None]] = {
        "ping_ours": (ours, "GET", "/ping", {}, None),
        "ping_baseline": (baseline, "GET", "/ping", {}, None),
        "tenant_rest": (ours, "GET", f"/v1/tenants/{TENANT}", auth, None),
        "tenant_baseline": (baseline, "GET", f"/bare/tenants/{TENANT}", {}, None),
        "me_rest": (ours, "GET", "/v1/me", auth, None),
        "me_graphql": (ours, "POST", "/graphql", gql, _graphql_body(GQL_ME)),
        "tenant_graphql": (ours, "POST", "/graphql", gql, _graphql_body(GQL_TENANT, {"s": TENANT})),
        "tickets_rest": (ours, "GET", REST_TICKETS, auth, None),
        "tickets_graphql": (ours, "POST", "/graphql", gql, _graphql_body(GQL_TICKETS, {"t": TENANT, "n": PAGE})),
        "tenant_graphql_strawberry": (reference, "POST", "/graphql", gql, _graphql_body(GQL_TENANT, {"s": TENANT})),
        "tickets_graphql_strawberry": (
            reference,
            "POST",
            "/graphql",
            gql,
            _graphql_body(GQL_TICKETS, {"t": TENANT, "n": PAGE}),
        ),
    }
    markers = _markers()
    return {
        key: Target(
            key, server.base_url, method, path, headers, body, server_pid=server.pid, check=_json_ok(markers[key])
        )
        for key, (server, method, path, headers, body) in shapes.items()
    }


def _create_tickets(ours: stack.Server, token: str) -> None:
    """TICKETS tickets of Stadt Soest (the list pages over them), spread over its departments."""
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=ours.base_url, headers=auth, timeout=10.0, trust_env=False) as client:
        found = client.post(
            "/graphql",
            json={"query": "query($s:String!){ tenant(slug:$s){ departments { id } } }", "variables": {"s": TENANT}},
        ).json()
        departments = [d["id"] for d in found["data"]["tenant"]["departments"]]
        for n in range(TICKETS):
            response = client.post(
                "/v1/tickets",
                json={
                    "tenantSlug": TENANT,
                    "subject": f"Rückruf zum Anwohnerparkausweis {n}",
                    "concern": "Bürgerin fragt nach dem Stand ihres Antrags.",
                    "citizen": {"consent": True, "name": "Erika Mustermann", "callbackNumber": "02921 1030"},
                    "departmentId": departments[n % len(departments)],
                    "leikaKey": "99050012104000",
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"creating a ticket: {response.status_code} {response.text[:500]}")


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


def _report(results: dict[str, Result], args: argparse.Namespace, client: str) -> list[dict[str, object]]:
    print()
    if client == CLIENT_WRK:
        print(
            f"load generator: wrk, 1 thread, {args.connections} connections, {args.rounds} round(s) of "
            f"{args.seconds:g} s per scenario, alternating; {os.cpu_count()} CPUs"
        )
    else:
        print(
            f"load generator: {client}, concurrency {args.concurrency}, {args.requests} requests per scenario "
            f"after {args.warmup} warm-up, at most {args.time_limit:.0f} s each, {os.cpu_count()} CPUs"
        )
    header = (
        f"{'scenario':<48} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU µs/req':>14} {'failed':>6}  client"
    )
    print(header)
    print("-" * len(header))
    for key, label in SCENARIOS:
        r = results[key]
        note = " (time limit)" if r.timed_out else ""
        print(
            f"{label:<48} {r.rps:>8.0f} {r.p50_ms:>7.2f} {r.p95_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{_fmt(r.server_cpu_us_per_request, '.0f'):>14} {r.errors:>6}  {client}{note}"
        )
    print()
    print("ratios ours ÷ baseline: throughput (<1 = slower), p50 latency (>1 = slower), server CPU per request")
    ratios: list[dict[str, object]] = []
    for label, ours, base in RATIOS:
        a, b = results[ours], results[base]
        entry: dict[str, object] = {
            "label": label,
            "ours": ours,
            "baseline": base,
            "client": client,
            "throughput": _ratio(a.rps, b.rps),
            "p50_latency": _ratio(a.p50_ms, b.p50_ms),
            "server_cpu_per_request": _ratio(a.server_cpu_us_per_request, b.server_cpu_us_per_request),
        }
        goal = GOALS.get(label)
        verdict = ""
        if goal is not None:
            throughput = entry["throughput"]
            entry["goal"] = goal
            met = isinstance(throughput, float) and throughput >= goal
            entry["goal_met"] = met
            verdict = f"   goal ≥ {goal:.1f}x: {'met' if met else 'NOT met'}"
        ratios.append(entry)
        print(
            f"  {label:<40} throughput {_fmt(entry['throughput'], '.2f')}x   "  # type: ignore[arg-type]
            f"p50 {_fmt(entry['p50_latency'], '.2f')}x   "  # type: ignore[arg-type]
            f"server CPU/req {_fmt(entry['server_cpu_per_request'], '.2f')}x{verdict}"  # type: ignore[arg-type]
            f"   [{client}]"
        )
    return ratios


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


async def _measure_python(targets: dict[str, Target], args: argparse.Namespace) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for key, label in SCENARIOS:
        print(f"  running {label.strip()} (python client) …", file=sys.stderr, flush=True)
        results[key] = await run(
            targets[key],
            concurrency=args.concurrency,
            requests=args.requests,
            warmup=args.warmup,
            time_limit=args.time_limit,
        )
    return results


def _combine(rounds: list[Result]) -> Result:
    """Rounds of one scenario as one figure: all requests over all seconds, median percentiles."""
    done = sum(r.requests for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    cpu = [r.server_cpu_us_per_request for r in rounds]
    return Result(
        name=rounds[0].name,
        requests=done,
        errors=sum(r.errors for r in rounds),
        seconds=seconds,
        rps=done / seconds if seconds else 0.0,
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p95_ms=statistics.median(r.p95_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        mean_ms=sum(r.mean_ms * r.requests for r in rounds) / done if done else float("nan"),
        server_cpu_us_per_request=(
            None if None in cpu else sum(c * r.requests for c, r in zip(cpu, rounds, strict=True)) / done  # type: ignore[operator]
        )
        if done
        else None,
        client_cpu_us_per_request=float("nan"),
        timed_out=False,
    )


def _measure_wrk(wrk: str, targets: dict[str, Target], args: argparse.Namespace) -> dict[str, Result]:
    """Every scenario once per round, in SCENARIOS order: the sides of each ratio alternate."""
    markers = _markers()
    rounds: dict[str, list[Result]] = {key: [] for key, _ in SCENARIOS}
    for number in range(1, args.rounds + 1):
        for key, label in SCENARIOS:
            t = targets[key]
            print(f"  round {number}: {label.strip()} (wrk) …", file=sys.stderr, flush=True)
            target = WrkTarget(key, t.base_url, t.method, t.path, t.headers, t.body, markers[key], t.server_pid)
            result = run_wrk(wrk, target, connections=args.connections, seconds=args.seconds)
            print(f"    {result.rps:.0f} req/s, {result.errors} failed checks", file=sys.stderr, flush=True)
            rounds[key].append(result)
    return {key: _combine(results) for key, results in rounds.items()}


# Sign-in looks up issuers and acting tenants when its memo is cold: not the request's cost.
SIGN_IN_LOOKUPS = ("auth_issuer_bindings(", "auth_client_tenant_ids(", "auth_settled_client_tenant_ids(")
POOL_RESET = "SELECT pg_advisory_unlock_all()"


async def _count_statements(settings: Settings, token: str) -> dict[str, list[str]]:
    """The statements one REST and one GraphQL ticket-list request send, counted in-process on
    an app built from the same settings (asyncpg's query logger on each pooled connection)."""
    from tests.support.asgi import serve

    pool_size = 2
    app = create_app(dataclasses.replace(settings, db_pool_min=pool_size, db_pool_max=pool_size))
    seen: list[str] = []
    auth = {"authorization": f"Bearer {token}"}
    requests = {
        "tickets_rest": ("GET", REST_TICKETS, None),
        "tickets_graphql": ("POST", "/graphql", _graphql_body(GQL_TICKETS, {"t": TENANT, "n": PAGE})),
        "tenant_rest": ("GET", f"/v1/tenants/{TENANT}", None),
        "tenant_graphql": ("POST", "/graphql", _graphql_body(GQL_TENANT, {"s": TENANT})),
    }
    counted: dict[str, list[str]] = {}
    async with serve(app, settings.public_base_url) as client:
        pool = app.state.app_state.pool
        connections = [await pool.acquire() for _ in range(pool_size)]
        for conn in connections:
            conn.add_query_logger(lambda record: seen.append(" ".join(record.query.split())))
        for conn in connections:
            await pool.release(conn)
        for key, (method, path, body) in requests.items():
            for _warm in range(2):  # the first warms sign-in's memo
                seen.clear()
                response = await client.request(
                    method, path, headers={**auth, "content-type": "application/json"}, content=body
                )
                if response.status_code != 200 or b'"errors"' in response.content:
                    raise RuntimeError(f"{key}: {response.status_code} {response.text[:300]}")
                for _ in range(3):  # loggers are called with loop.call_soon
                    await asyncio.sleep(0)
            counted[key] = [
                q for q in seen if not q.startswith(POOL_RESET) and not any(f in q for f in SIGN_IN_LOOKUPS)
            ]
    return counted


def _report_statements(counted: dict[str, list[str]]) -> dict[str, object]:
    print()
    print("SQL statements per request (in-process count; transaction control included):")
    summary: dict[str, object] = {}
    for key, statements in counted.items():
        reads = [q for q in statements if q.upper().startswith(("SELECT", "WITH")) and "set_config" not in q]
        summary[key] = {"statements": len(statements), "reads": len(reads), "sql": statements}
        print(f"  {key:<16} {len(statements):>2} statements, {len(reads)} entity read(s)")
        for q in reads:
            print(f"      {q[:110]}")
    return summary


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    started = time.monotonic()
    ours_port, baseline_port, reference_port = stack.free_port(), stack.free_port(), stack.free_port()
    while len({ours_port, baseline_port, reference_port}) < 3:
        baseline_port, reference_port = stack.free_port(), stack.free_port()
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
                # No scenario searches: the sentence encoder would load in a thread of the
                # measured server (~4 s of CPU, ~30 s on a busy machine), its CPU counted in the
                # first rounds' figures and its GIL slowing their requests (decision 033).
                "SEARCH_RETRIEVERS": "lexical",
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
            # The same app with GRAPHQL_SHORT_PATHS=false: strawberry's own view, extension runner
            # and field-by-field execution, the "before" of decisions 020, 032 and 033 in this run.
            reference = stack.start_server(
                "strawberry", "backend.main:create_app", reference_port, {**env, "GRAPHQL_SHORT_PATHS": "false"}
            )
            servers.append(reference)
            stack.wait_ready(baseline)
            stack.wait_ready(reference)
            _create_tickets(ours, token)
            targets = _targets(ours, baseline, reference, token)
            _preflight(targets)
            with _event_loop_runner() as runner:
                counted = runner.run(_count_statements(settings, token))
            wrk = ensure_wrk()
            client = CLIENT_WRK if wrk else CLIENT_PYTHON
            print(
                f"bench: servers ready after {time.monotonic() - started:.0f} s; measuring with {client} …",
                file=sys.stderr,
                flush=True,
            )
            if wrk:
                results = _measure_wrk(wrk, targets, args)
            else:
                with _event_loop_runner() as runner:
                    results = runner.run(_measure_python(targets, args))
        except BaseException:
            for server in servers:
                tail = server.log_tail()
                if tail:
                    print(f"--- {server.name} log ({server.log_path}) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            for server in servers:
                stack.stop_server(server)
    ratios = _report(results, args, client)
    statements = _report_statements(counted)
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
            "client": client,
            "wrk_connections": args.connections,
            "wrk_seconds": args.seconds,
            "wrk_rounds": args.rounds,
            "tenant": TENANT,
            "role": ROLE,
        },
        "scenarios": {key: {"label": " ".join(label.split()), **asdict(results[key])} for key, label in SCENARIOS},
        "ratios": ratios,
        "sql_statements": statements,
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
