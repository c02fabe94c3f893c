"""Directory benchmark: the forwarding decision with 10^4 people, as a ratio against /ping.

    uv run python -m tests.bench.directory            # 10^4 people, 5 rounds of 10 s each
    uv run python -m tests.bench.directory --quick    # 10^4 people, 5 rounds of 3 s

Set-up as in `tests.bench` (stack.py): a fresh database with the demo data plus 10^4 people of
Stadt Soest (each responsible for a LeiKa key of its own, half split by surname, each with a
substitute and a weekly absence), dropped at the end. `GET /v1/forwarding` (the operator's
agent token) vs `GET /ping` on the same uvicorn server, driven by `wrk` (one thread, 8
connections), in alternating rounds; the figure is the median of the rounds' p99 ratios.
Goal (issue 16): p99 ≤ 1.5×. Before the load, the same decision in process counts its
PostgreSQL statements and Redis commands (asyncpg's query logger, a counting Redis client),
the steady state after a warm-up. `--profile` also writes a cProfile of 500 decisions in
process to bench-results/directory.prof. Results as JSON in bench-results/directory.json.

The floor (issue 16): what every authenticated route pays — sign-in, the framework, rendering —
measured as `/v1/forwarding` with the decision replaced by its first answer (`floor_app`, same
bytes out, no decision made). Over HTTP a second server runs that app and its p99 joins the
alternating rounds (`authenticated_floor`); in process, 8 callers drive the ASGI apps directly
(no HTTP client) and the CPU µs per request of `/ping`, the floor and the decision are timed in
alternating batches (`in_process_cpu_us`). `--keep NAME` keeps the database with its 10^4 people
and reuses it (the set-up takes most of a quick run).

Below the floor, what sign-in alone costs (decision 040's fourth amendment): an authenticated
route that returns a constant (`/bench/signed-in` on the floor server: the same sign-in as the
forwarding route — token memo, the generation counters' MGET, the rate limit — then `"pong"`,
as `/ping` answers), in the same alternating rounds (`signed_in_constant`) and in process.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import json
import os
import statistics
import sys
import time as time_module
import uuid
from datetime import time
from typing import Any

import asyncpg
from litestar import Litestar, Request, get
from redis import Redis as SyncRedis

from backend import devidp
from backend.directory import compiled, service
from backend.http.auth import signed_in
from backend.main import create_app
from backend.settings import PROJECT_ROOT, Settings, load_settings
from tests.bench import stack
from tests.bench.wrk import WrkTarget, ensure_wrk, run_wrk
from tests.support.asgi import lifespan, raw_get, serve

OUTPUT = PROJECT_ROOT / "bench-results" / "directory.json"
PEOPLE = 10_000
ROUNDS = 5
KEY = "99108012000000"  # the one the decision asks for


async def _add_people(admin_url: str) -> None:
    """10^4 people of Stadt Soest, responsibilities, substitutes and absences, by COPY."""
    conn = await asyncpg.connect(admin_url)
    try:
        tenant = await conn.fetchval("SELECT id FROM tenants WHERE slug = 'stadt-soest'")
        department = await conn.fetchval("SELECT id FROM departments WHERE tenant_id = $1 LIMIT 1", tenant)
        if await conn.fetchval("SELECT count(*) FROM directory_people WHERE tenant_id = $1", tenant) >= PEOPLE:
            return  # a kept database (--keep) has them already
        ids = [uuid.uuid4() for _ in range(PEOPLE)]
        people = [
            (
                tenant,
                pid,
                "Frau" if i % 2 else "Herr",
                f"Vorname{i}",
                f"Person{i:05d}",
                "Sachbearbeitung",
                department,
                f"+49292110{i:05d}",
                [],
                True,
            )
            for i, pid in enumerate(ids)
        ]
        await conn.copy_records_to_table(
            "directory_people",
            records=people,
            columns=[
                "tenant_id",
                "id",
                "salutation",
                "given_name",
                "family_name",
                "function",
                "department_id",
                "phone",
                "languages",
                "active",
            ],
        )
        duties: list[tuple[Any, ...]] = []
        for i, pid in enumerate(ids):
            key = KEY if i < 2 else f"99{i:012d}"
            low, high = (("A", "K"), ("L", "Z"))[i % 2] if i % 4 < 2 else (None, None)
            duties.append((tenant, uuid.uuid4(), pid, key, low, high))
        await conn.copy_records_to_table(
            "directory_responsibilities",
            records=duties,
            columns=["tenant_id", "id", "person_id", "leika_key", "surname_from", "surname_to"],
        )
        await conn.copy_records_to_table(
            "directory_substitutes",
            records=[(tenant, pid, 1, ids[(i + 1) % PEOPLE]) for i, pid in enumerate(ids)],
            columns=["tenant_id", "person_id", "position", "substitute_id"],
        )
        await conn.copy_records_to_table(
            "absence_weekly",
            records=[(tenant, uuid.uuid4(), pid, 1 + i % 5, time(12), time(13), "") for i, pid in enumerate(ids)],
            columns=["tenant_id", "id", "person_id", "weekday", "starts", "ends", "note"],
        )
    finally:
        await conn.close()


FORWARDING = f"/v1/forwarding?tenant=stadt-soest&leikaKey={KEY}&surname=Schulte"


async def count_round_trips(settings: Settings, token: str, profile: bool) -> dict[str, Any]:
    """Statements and Redis commands of one decision in the steady state, in process."""
    # As the bench's servers (stack.child_environment): the limiter counts, never refuses.
    app = create_app(dataclasses.replace(settings, rate_limit_per_minute=1_000_000))
    statements: list[str] = []
    async with serve(app, "http://bench") as client:
        state = app.state.app_state
        pool = state.pool
        # Holding every connection at once reaches each of them; loggers survive release.
        held = [await pool.acquire() for _ in range(settings.db_pool_min)]
        for conn in held:
            conn.add_query_logger(lambda record: statements.append(" ".join(record.query.split())))
        for conn in held:
            await pool.release(conn)
        commands: list[str] = []
        execute = state.redis.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            if str(args[0]).upper() != "MGET":  # the generation read, counted as a round trip below
                commands.append(str(args[0]))
            return await execute(*args, **options)

        state.redis.execute_command = counted  # type: ignore[method-assign]
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(3):  # warm-up: sign-in, the compiled directory
            assert (await client.get(FORWARDING, headers=auth)).status_code == 200
        for _ in range(3):
            await asyncio.sleep(0)
        statements.clear()
        commands.clear()
        counter_reads = state.generation_reads.round_trips  # on the client's own connection (read_counters)
        decisions = 20
        for _ in range(decisions):
            response = await client.get(FORWARDING, headers=auth)
            assert response.status_code == 200, response.text
        for _ in range(3):  # loggers are called with loop.call_soon
            await asyncio.sleep(0)
        ran = [q for q in statements if not q.startswith("SELECT pg_advisory_unlock_all()")]
        result = {
            "statements_per_decision": len(ran) / decisions,
            "pool_resets_per_decision": (len(statements) - len(ran)) / decisions,
            "redis_commands_per_decision": (len(commands) + state.generation_reads.round_trips - counter_reads)
            / decisions,
            "statements": sorted(set(ran))[:20],
        }
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(500):
                assert (await client.get(FORWARDING, headers=auth)).status_code == 200
            profiler.disable()
            OUTPUT.parent.mkdir(exist_ok=True)  # a fresh checkout has no bench-results/ yet
            profiler.dump_stats(str(OUTPUT.with_suffix(".prof")))
        result["decision_alone_us"] = _decision_alone(state, profile)
    return result


def _decision_alone(state: Any, profile: bool) -> float:
    """The decision's own work on the held town in a warm loop (no sign-in, no framework):
    CPU µs per decision, median of 5 batches of 2,000 (decision 040's amendment); `--profile`
    writes their cProfile to bench-results/directory-decision.prof."""
    local = compiled._local(state)  # the town the requests above compiled
    town = next(t for t in local.towns.values() if t.snapshot.tenant.slug == "stadt-soest")
    batches = []
    for _ in range(5):
        started = time_module.process_time()
        for _ in range(2_000):
            service._decision(town.snapshot, town.live, KEY, "Schulte", None, None)
        batches.append((time_module.process_time() - started) / 2_000 * 1e6)
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(2_000):
            service._decision(town.snapshot, town.live, KEY, "Schulte", None, None)
        profiler.disable()
        profiler.dump_stats(str(OUTPUT.with_name("directory-decision.prof")))
    return statistics.median(batches)


def _with_constant_decision() -> None:
    """Replace the decision by its first answer (the floor): the route still signs in, resolves
    its dependencies and parameters and renders the same answer, but decides nothing."""
    decide = service.forwarding_decision
    answers: list[Any] = []

    async def constant(*args: Any, **kwargs: Any) -> Any:
        if not answers:
            answers.append(await decide(*args, **kwargs))
        return answers[0]

    service.forwarding_decision = constant  # type: ignore[assignment]


SIGNED_IN = "/bench/signed-in"


@get(SIGNED_IN, include_in_schema=False)
async def signed_in_constant(request: Request[Any, Any, Any]) -> str:
    """An authenticated route that decides nothing: sign-in (and its rate-limit count), then
    what `/ping` answers. Only on the bench's apps."""
    await signed_in(request)
    return "pong"


def floor_app() -> Litestar:
    """uvicorn factory of the floor server: the app with the decision replaced by a constant,
    and the authenticated constant route."""
    _with_constant_decision()
    app = create_app(load_settings())
    app.register(signed_in_constant)
    return app


async def _asgi_get(app: Litestar, target: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """One GET straight into the ASGI app (no HTTP client, no sockets); the body."""
    status, body = await raw_get(app, target, headers)
    if status != 200:
        raise RuntimeError(f"{target}: {status} {body[:300]!r}")
    return body


async def in_process_cpu(settings: Settings, token: str, batches: int = 5, per_caller: int = 250) -> dict[str, Any]:
    """CPU µs per request of `/ping`, the authenticated constant, the floor and the decision, 8
    concurrent callers straight
    into the ASGI apps, alternating batches; the median batch of each. Includes the callers' own
    few µs, the same for all three."""
    # As the bench's servers: the limiter never refuses, no access log lines (LOG_LEVEL WARNING).
    settings = dataclasses.replace(settings, rate_limit_per_minute=1_000_000, log_level="WARNING")
    app = create_app(settings)
    app.register(signed_in_constant)
    decide = service.forwarding_decision
    _with_constant_decision()
    floor = service.forwarding_decision
    service.forwarding_decision = decide  # type: ignore[assignment]
    auth = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"bench")]
    targets = {
        "ping": ("/ping", [(b"host", b"bench")]),
        "signed_in_constant": (SIGNED_IN, auth),
        "floor": (FORWARDING, auth),
        "forwarding": (FORWARDING, auth),
    }
    figures: dict[str, list[float]] = {name: [] for name in targets}
    shares: list[float] = []
    async with lifespan(app):

        async def caller(target: str, headers: list[tuple[bytes, bytes]]) -> None:
            for _ in range(per_caller):
                await _asgi_get(app, target, headers)

        async def batch(name: str) -> float:
            service.forwarding_decision = floor if name == "floor" else decide  # type: ignore[assignment]
            target, headers = targets[name]
            reads = app.state.app_state.generation_reads.round_trips
            started = time_module.process_time()
            await asyncio.gather(*(caller(target, headers) for _ in range(8)))
            spent = (time_module.process_time() - started) / (8 * per_caller) * 1e6
            if name == "forwarding":  # how many requests share a generation read (decision 040)
                shares.append((app.state.app_state.generation_reads.round_trips - reads) / (8 * per_caller))
            return spent

        for name in targets:  # warm-up: sign-in, the compiled town, the floor's answer
            await batch(name)
        same = await _asgi_get(app, FORWARDING, auth)
        service.forwarding_decision = floor  # type: ignore[assignment]
        assert len(await _asgi_get(app, FORWARDING, auth)) == len(same), "the floor renders another answer"
        for _ in range(batches):
            for name in targets:
                figures[name].append(await batch(name))
        service.forwarding_decision = decide  # type: ignore[assignment]
    medians = {name: statistics.median(runs) for name, runs in figures.items()}
    return {
        **medians,
        "batches": figures,
        "counter_reads_per_request": statistics.median(shares),
        "load_1min": os.getloadavg()[0],
    }


def _mget_calls(redis_url: str) -> int:
    """How many MGETs Redis has run (the generation counters' read; nothing else on the bench's
    servers sends MGET), for the reads per request over HTTP."""
    client = SyncRedis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return int(stats.get("cmdstat_mget", {}).get("calls", 0))


def measure(
    wrk: str, server: stack.Server, floor: stack.Server, token: str, seconds: float, redis_url: str
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    targets = [
        WrkTarget("ping", server.base_url, "GET", "/ping", {}, None, b"", server.pid),
        WrkTarget(
            "forwarding",
            server.base_url,
            "GET",
            FORWARDING,
            auth,
            None,
            b'"options"',
            server.pid,
        ),
        WrkTarget("floor", floor.base_url, "GET", FORWARDING, auth, None, b'"options"', floor.pid),
        WrkTarget("signed_in_constant", floor.base_url, "GET", SIGNED_IN, auth, None, b"pong", floor.pid),
    ]
    rounds: dict[str, list[Any]] = {t.name: [] for t in targets}
    reads: dict[str, list[float]] = {t.name: [] for t in targets}
    for target in targets:  # warm-up: the compiled directory, the token's sign-in
        run_wrk(wrk, target, connections=8, seconds=1)
    for _ in range(ROUNDS):
        for target in targets:
            calls = _mget_calls(redis_url)
            run = run_wrk(wrk, target, connections=8, seconds=seconds)
            rounds[target.name].append(run)
            reads[target.name].append((_mget_calls(redis_url) - calls) / max(1, run.requests))
    results: dict[str, Any] = {}
    for name, runs in rounds.items():
        results[name] = {
            "rps": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "errors": sum(r.errors for r in runs),
            "server_cpu_us_per_request": statistics.median(r.server_cpu_us_per_request or 0.0 for r in runs),
            "generation_reads_per_request": statistics.median(reads[name]),
        }
    pairs = list(zip(rounds["ping"], rounds["forwarding"], strict=True))
    results["ratio_p99_by_round"] = [f.p99_ms / p.p99_ms for p, f in pairs]
    results["ratio_p99"] = statistics.median(results["ratio_p99_by_round"])
    results["ratio_p50"] = statistics.median(f.p50_ms / p.p50_ms for p, f in pairs)
    floors = list(zip(rounds["ping"], rounds["floor"], strict=True))
    results["floor_ratio_p99_by_round"] = [f.p99_ms / p.p99_ms for p, f in floors]
    results["floor_ratio_p99"] = statistics.median(results["floor_ratio_p99_by_round"])
    signed = list(zip(rounds["ping"], rounds["signed_in_constant"], strict=True))
    results["signed_in_ratio_p99_by_round"] = [s.p99_ms / p.p99_ms for p, s in signed]
    results["signed_in_ratio_p99"] = statistics.median(results["signed_in_ratio_p99_by_round"])
    results["load_1min"] = os.getloadavg()[0]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile 500 decisions in process")
    parser.add_argument("--no-load", action="store_true", help="only the in-process figures (and profile)")
    parser.add_argument("--keep", metavar="NAME", help="keep the database with its people in NAME and reuse it")
    args = parser.parse_args()
    wrk = ensure_wrk()
    if wrk is None:
        sys.exit("the directory bench needs wrk (apt-get install wrk)")
    results: dict[str, Any] = {"people": PEOPLE, "cpus": os.cpu_count(), "quick": args.quick, "client": "wrk"}
    with (
        stack.services() as (server_url, redis_url),
        stack.bench_database(server_url, os.environ.get("DB_APP_PASSWORD") or None, args.keep) as database_url,
    ):
        env, settings = stack.demo_environment(database_url, redis_url)
        asyncio.run(_add_people(database_url))
        token = devidp.mint_token(settings, "kreis-soest", "agent")
        results["in_process"] = asyncio.run(count_round_trips(settings, token, args.profile))
        print(
            f"in process: {results['in_process']['statements_per_decision']:.1f} PostgreSQL statements, "
            f"{results['in_process']['redis_commands_per_decision']:.1f} Redis commands per decision; "
            f"the decision alone {results['in_process']['decision_alone_us']:.0f} µs CPU (warm loop)"
        )
        cpu = results["in_process_cpu_us"] = asyncio.run(in_process_cpu(settings, token))
        print(
            f"in process, CPU µs per request (8 callers, median of 5 alternating batches, load "
            f"{cpu['load_1min']:.2f}): /ping {cpu['ping']:.0f}, signed_in_constant {cpu['signed_in_constant']:.0f}, "
            f"authenticated_floor {cpu['floor']:.0f}, "
            f"/v1/forwarding {cpu['forwarding']:.0f} "
            f"({cpu['counter_reads_per_request']:.2f} generation reads per request)"
        )
        if args.no_load:
            print("\n".join(results["in_process"]["statements"]))
            return
        server = stack.start_server("directory", "backend.main:create_app", stack.free_port(), env)
        floor: stack.Server | None = None
        try:
            # One after the other, with time: two cold starts at once on a loaded 2-core machine
            # took longer than a minute.
            stack.wait_ready(server, timeout=180)
            floor = stack.start_server("directory-floor", "tests.bench.directory:floor_app", stack.free_port(), env)
            stack.wait_ready(floor, timeout=180)
            results["http"] = measure(wrk, server, floor, token, 3.0 if args.quick else 10.0, redis_url)
        finally:
            stack.stop_server(server)
            if floor is not None:
                stack.stop_server(floor)
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2))
    h = results["http"]
    print(
        f"/v1/forwarding p99 {h['forwarding']['p99_ms']:.2f} ms vs /ping {h['ping']['p99_ms']:.2f} ms "
        f"→ {h['ratio_p99']:.2f}x (goal ≤ 1.5; wrk, median of {ROUNDS} alternating rounds: "
        f"{', '.join(f'{r:.2f}' for r in h['ratio_p99_by_round'])}); p50 {h['ratio_p50']:.2f}x; "
        f"{h['forwarding']['rps']:.0f} vs {h['ping']['rps']:.0f} req/s; server CPU "
        f"{h['forwarding']['server_cpu_us_per_request']:.0f} vs {h['ping']['server_cpu_us_per_request']:.0f} µs/request"
        f"; load {h['load_1min']:.2f}"
    )
    print(
        f"authenticated_floor (the same route, the decision replaced by its answer) p99 "
        f"{h['floor']['p99_ms']:.2f} ms → {h['floor_ratio_p99']:.2f}x /ping "
        f"({', '.join(f'{r:.2f}' for r in h['floor_ratio_p99_by_round'])}); server CPU "
        f"{h['floor']['server_cpu_us_per_request']:.0f} µs/request"
    )
    print(
        f"signed_in_constant (an authenticated route answering what /ping answers) p99 "
        f"{h['signed_in_constant']['p99_ms']:.2f} ms → {h['signed_in_ratio_p99']:.2f}x /ping "
        f"({', '.join(f'{r:.2f}' for r in h['signed_in_ratio_p99_by_round'])}); server CPU "
        f"{h['signed_in_constant']['server_cpu_us_per_request']:.0f} µs/request"
    )
    print(
        "generation reads (MGET) per request over HTTP: "
        + ", ".join(
            f"{name} {h[name]['generation_reads_per_request']:.2f}"
            for name in ("forwarding", "floor", "signed_in_constant")
        )
    )


if __name__ == "__main__":
    main()
