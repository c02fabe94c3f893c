"""Telephony benchmarks, as ratios against baselines measured in the same run.

    uv run python -m tests.bench.telephony            # 10^4 numbers, 10^5 call records
    uv run python -m tests.bench.telephony --quick    # smoke run (10^4 numbers, 10^4 records)

Set-up as in `tests.bench` (stack.py): PostgreSQL/Redis from DATABASE_URL/REDIS_URL or embedded,
a fresh database with the demo data plus 10^4 extra service numbers (blocks and full numbers of
the three demo tenants), dropped at the end.

(1) Resolve, in process, on one asyncio client: `cache.routing_for` + `decide` (one Redis GET of
    the generation, then the compiled table) vs a bare `GET` of the same Redis key on the same
    client, sample by sample in turn. Goal: ≤ 1.2×.
(2) The REST routing decision (`GET /v1/routing`, telephony system token) vs `GET /ping` on the
    same uvicorn server, closed loop at fixed concurrency (loadgen.py), in alternating rounds;
    the figure is the median of the rounds' p99 ratios. Goal: p99 ≤ 1.5×.
(3) Ingest: `call_import.import_calls` (parse, normalise, resolve, COPY into staging, idempotent
    insert) vs a bare COPY of the same rows, already as tuples, into the same staging table.
    Goal: ≥ 0.3× the rows/s. Then the same file again (all duplicates): no slower than fresh.
    Also vs a COPY of those tuples straight into `calls` (rolled back): what the table alone
    costs, which bounds the first ratio (see issue #3's notes).
Results as JSON in bench-results/telephony.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import redis.asyncio as redis_asyncio

from auth.principal import Principal
from auth.roles import Scope
from backend import devidp
from backend.db.pool import create_pool
from backend.db.roles import APP_ROLE, with_user
from backend.db.tenancy import SET_TENANTS, tenant_array_literal
from backend.settings import PROJECT_ROOT
from backend.state import AppState, unit_of_work
from backend.telephony import cache, call_import, calls, imports, repository
from tests.bench import stack
from tests.bench.loadgen import Target, run

OUTPUT = PROJECT_ROOT / "bench-results" / "telephony.json"
NUMBERS = 10_000
ROUNDS = 5  # alternating load rounds of ping and routing (a p99 of 2000 requests each)


async def _tenant_ids(admin_url: str) -> dict[str, UUID]:
    conn = await asyncpg.connect(admin_url)
    try:
        return {r["slug"]: r["id"] for r in await conn.fetch("SELECT slug, id FROM tenants")}
    finally:
        await conn.close()


async def _add_numbers(admin_url: str, tenants: dict[str, UUID]) -> list[str]:
    """10^4 numbers: per tenant a set of blocks under its own area code, and full numbers in them."""
    owners = [tenants["kreis-soest"], tenants["stadt-soest"], tenants["stadt-geseke"]]
    rows, dialled = [], []
    for i in range(NUMBERS):
        owner = owners[i % 3]
        area = ("30", "40", "89")[i % 3]
        if i % 10 == 0:
            number, kind = f"+49{area}{7000 + i // 10:04d}", "block"
        else:
            number, kind = f"+49{area}{5_000_000 + i:07d}", "number"
            dialled.append(number)
        rows.append((owner, uuid.uuid4(), number, kind, "central", "service_hours"))
    conn = await asyncpg.connect(with_user(admin_url, APP_ROLE))
    try:
        async with conn.transaction():
            await conn.execute(SET_TENANTS, tenant_array_literal(owners))
            await conn.execute(
                "CREATE TEMP TABLE bench_numbers (tenant_id uuid, id uuid, number text, kind text, "
                "purpose text, routing_window text) ON COMMIT DROP"
            )
            await conn.copy_records_to_table("bench_numbers", records=rows)
            await conn.execute(
                """INSERT INTO service_numbers (tenant_id, id, number, kind, purpose, routing_window, valid)
                   SELECT tenant_id, id, number, kind, purpose, routing_window, daterange('2016-01-01', NULL)
                   FROM bench_numbers"""
            )
    finally:
        await conn.close()
    return dialled


async def _timed(repeat: int, action: Any) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[int(len(ordered) * 0.99) - 1] * 1e6,
        "mean_us": statistics.fmean(ordered) * 1e6,
    }


async def resolve_vs_redis_get(
    settings: Any, tenants: dict[str, UUID], dialled: list[str], repeat: int
) -> dict[str, Any]:
    pool = await create_pool(settings.application_database_url, 1, 2)
    redis = redis_asyncio.Redis.from_url(settings.redis_url)
    state = AppState(settings=settings, pool=pool, redis=redis, http=httpx.AsyncClient(), verifier=None, sign_in=None)  # type: ignore[arg-type]
    acting = frozenset(tenants.values())
    key = cache.generation_key(state)
    try:
        await cache.routing_changed(state)
        compiled, source = await cache.routing_for(state, acting, dialled[0])
        assert source == "cache" and len(compiled.table.numbers) >= NUMBERS
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        picks = [random.choice(dialled) for _ in range(repeat)]
        numbers = iter(picks * 2)

        async def ours() -> None:
            number = next(numbers)
            table, _ = await cache.routing_for(state, acting, number)
            assert table.decide(number, None, at, acting).ours

        async def bare() -> None:
            await redis.get(key)

        await _timed(repeat, ours)  # warm: every pick's decision computed once, as in service
        # Alternating sample by sample, so both see the same machine state (a block of one
        # then a block of the other skews by whatever else the two cores were doing).
        bare_samples, ours_samples = [], []
        for _ in range(repeat):
            bare_samples += await _timed(1, bare)
            ours_samples += await _timed(1, ours)
        result = {"bare_redis_get": _summary(bare_samples), "resolve": _summary(ours_samples)}
        result["ratio_p50"] = result["resolve"]["p50_us"] / result["bare_redis_get"]["p50_us"]
        return result
    finally:
        await state.http.aclose()
        await redis.aclose()
        await pool.close()


async def http_routing_vs_ping(server: stack.Server, token: str, args: argparse.Namespace) -> dict[str, Any]:
    auth = {"authorization": f"Bearer {token}"}
    targets = [
        Target("ping", server.base_url, "GET", "/ping", server_pid=server.pid),
        Target(
            "routing",
            server.base_url,
            "GET",
            "/v1/routing?dialled=%2B4929425000&caller=%2B492942123456",
            auth,
            server_pid=server.pid,
            check=lambda r: r.status_code == 200 and r.json()["ours"] is True,
        ),
    ]
    # Alternating rounds (ping, routing, ping, …): the ratio of each round's p99s, and the
    # median of those, so one noisy stretch on the shared cores does not decide the figure.
    rounds: dict[str, list[Any]] = {target.name: [] for target in targets}
    for _ in range(ROUNDS):
        for target in targets:
            rounds[target.name].append(
                await run(
                    target,
                    concurrency=args.concurrency,
                    requests=args.requests // ROUNDS,
                    warmup=args.warmup,
                    time_limit=args.time_limit,
                )
            )
    results: dict[str, Any] = {}
    for name, runs in rounds.items():
        results[name] = {
            "rps": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "p99_ms_by_round": [r.p99_ms for r in runs],
            "errors": sum(r.errors for r in runs),
            "server_cpu_us_per_request": statistics.median(r.server_cpu_us_per_request or 0.0 for r in runs),
        }
    pairs = list(zip(rounds["ping"], rounds["routing"], strict=True))
    results["ratio_p99_by_round"] = [routing.p99_ms / ping.p99_ms for ping, routing in pairs]
    results["ratio_p99"] = statistics.median(results["ratio_p99_by_round"])
    results["ratio_p50"] = statistics.median(routing.p50_ms / ping.p50_ms for ping, routing in pairs)
    return results


def _csv(rows: int) -> bytes:
    start = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    dialled = ("02921 103-0", "02921 30-0", "02942 500-12", "115")
    lines = ["external_id,dialled,caller,queue,offered_at,answered_at,ended_at,agent,wait_seconds"]
    batch = uuid.uuid4().hex[:8]
    for i in range(rows):
        offered = start + timedelta(milliseconds=300 * i)
        answered, ended = offered + timedelta(seconds=20), offered + timedelta(seconds=200)
        lines.append(
            f"{batch}-{i},{dialled[i % 4]},+492942{100000 + i},q,{offered.isoformat()},"
            f"{answered.isoformat()},{ended.isoformat()},a{i % 9},"
        )
    return ("\n".join(lines) + "\n").encode()


class _RollBack(Exception):
    pass


async def _copy_into_calls(admin_url: str, system: Principal, records: list[tuple[Any, ...]]) -> float:
    """As the administrative role: PostgreSQL refuses COPY into a table with row-level security
    for everyone else. Indexes, foreign keys and the billing trigger all still apply."""
    columns = ["id", "source_tenant_id", *repository.STAGING_COLUMNS[1:]]
    rows = [(uuid.uuid4(), system.tenant_id, *r[1:3], f"{r[3]}-copy", *r[4:]) for r in records]
    conn = await asyncpg.connect(admin_url)
    try:
        async with conn.transaction():
            started = time.perf_counter()
            await conn.copy_records_to_table("calls", records=rows, columns=columns)
            elapsed = time.perf_counter() - started
            raise _RollBack
    except _RollBack:
        return elapsed
    finally:
        await conn.close()


async def ingest(settings: Any, admin_url: str, tenants: dict[str, UUID], rows: int) -> dict[str, Any]:
    pool = await create_pool(settings.application_database_url, 1, 2)
    redis = redis_asyncio.Redis.from_url(settings.redis_url)
    state = AppState(settings=settings, pool=pool, redis=redis, http=httpx.AsyncClient(), verifier=None, sign_in=None)  # type: ignore[arg-type]
    system = Principal(
        issuer="bench",
        subject="bench-telephony",
        tenant_id=tenants["kreis-soest"],
        tenant_slug="kreis-soest",
        scopes=frozenset({Scope.CALLS_WRITE}),
        client_id="bench-telephony",
        acting_tenant_ids=frozenset(tenants.values()),
    )
    body = _csv(rows)
    try:
        await cache.cached_routing(state)  # warm, as a running instance is
        timings = {}
        for name in ("fresh", "all_duplicates"):
            started = time.perf_counter()
            async with unit_of_work(state, system) as uow:
                report = await call_import.import_calls(uow, body, "text/csv")
            timings[name] = time.perf_counter() - started
            assert report.error_count == 0, report.errors[:3]
        # Baseline: the same rows, already as tuples, COPYed into the same staging table.
        async with unit_of_work(state, system) as uow:
            compiled = await cache.cached_routing(state)
            assert compiled is not None
            records = list(
                call_import._staging_rows(
                    compiled, system.acting_tenant_ids, calls.call_source(system), imports.parse(body, "text/csv"), []
                )
            )
            await repository.create_import_staging(uow.conn)
            started = time.perf_counter()
            await repository.copy_into_staging(uow.conn, records)
            timings["bare_copy"] = time.perf_counter() - started  # the staging table drops at commit
        # A second baseline, for the owner's decision on the goal: the same rows COPYed straight
        # into `calls` (no idempotency, no resolving: only what the table itself costs, with its
        # indexes, foreign keys and billing trigger). Rolled back.
        timings["copy_into_calls"] = await _copy_into_calls(admin_url, system, records)
        rates = {name: rows / seconds for name, seconds in timings.items()}
        return {
            "rows": rows,
            "seconds": timings,
            "rows_per_second": rates,
            "ratio_fresh_vs_copy": rates["fresh"] / rates["bare_copy"],
            "ratio_fresh_vs_copy_into_calls": rates["fresh"] / rates["copy_into_calls"],
            "ratio_duplicates_vs_fresh": rates["all_duplicates"] / rates["fresh"],
        }
    finally:
        await state.http.aclose()
        await redis.aclose()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    args.requests, args.warmup, args.time_limit = (1000, 50, 60.0) if args.quick else (10000, 300, 120.0)
    rows = 10_000 if args.quick else 100_000
    results: dict[str, Any] = {"numbers": NUMBERS, "cpus": os.cpu_count(), "quick": args.quick}
    with (
        stack.services() as (server_url, redis_url),
        stack.bench_database(server_url, os.environ.get("DB_APP_PASSWORD") or None) as database_url,
    ):
        env, settings = stack.demo_environment(database_url, redis_url)
        tenants = asyncio.run(_tenant_ids(database_url))
        dialled = asyncio.run(_add_numbers(database_url, tenants))
        print("(1) in-process resolve vs bare Redis GET …", file=sys.stderr)
        repeat = 3000 if args.quick else 30000
        results["resolve"] = asyncio.run(resolve_vs_redis_get(settings, tenants, dialled, repeat))
        print("(2) REST routing vs /ping …", file=sys.stderr)
        server = stack.start_server("telephony", "backend.main:create_app", stack.free_port(), env)
        try:
            stack.wait_ready(server)
            token = devidp.mint_token(settings, "kreis-soest", "telephony")
            results["http"] = asyncio.run(http_routing_vs_ping(server, token, args))
        finally:
            stack.stop_server(server)
        print("(3) ingest …", file=sys.stderr)
        results["ingest"] = asyncio.run(ingest(settings, database_url, tenants, rows))
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2))
    r, h, i = results["resolve"], results["http"], results["ingest"]
    print(
        f"(1) resolve p50 {r['resolve']['p50_us']:.0f} µs vs Redis GET {r['bare_redis_get']['p50_us']:.0f} µs "
        f"→ {r['ratio_p50']:.2f}x (goal ≤ 1.2)"
    )
    print(
        f"(2) /v1/routing p99 {h['routing']['p99_ms']:.2f} ms vs /ping {h['ping']['p99_ms']:.2f} ms "
        f"→ {h['ratio_p99']:.2f}x (goal ≤ 1.5; median of {ROUNDS} alternating rounds: "
        f"{', '.join(f'{r:.2f}' for r in h['ratio_p99_by_round'])}); p50 {h['ratio_p50']:.2f}x; "
        f"{h['routing']['rps']:.0f} vs {h['ping']['rps']:.0f} req/s"
    )
    print(
        f"(3) import {i['rows_per_second']['fresh']:.0f} rows/s vs bare COPY {i['rows_per_second']['bare_copy']:.0f}"
        f" → {i['ratio_fresh_vs_copy']:.2f}x (goal ≥ 0.3); all-duplicate re-import "
        f"{i['rows_per_second']['all_duplicates']:.0f} rows/s ({i['ratio_duplicates_vs_fresh']:.2f}x fresh); "
        f"vs a COPY straight into calls {i['rows_per_second']['copy_into_calls']:.0f} rows/s "
        f"→ {i['ratio_fresh_vs_copy_into_calls']:.2f}x"
    )


if __name__ == "__main__":
    main()
