"""Audited reads of private numbers (decision 037): what the audit row costs per read.

    uv run python -m tests.bench.staff_data            # 5 rounds of 10 s each
    uv run python -m tests.bench.staff_data --quick    # 5 rounds of 3 s

Set-up as in `tests.bench` (stack.py): a fresh database with the demo data plus one person of
Stadt Soest with a private number. Three targets on the same uvicorn server, driven by `wrk`
(one thread, 8 connections) in alternating rounds: `GET /ping`, the person's record
(`GET …/directory/people/{id}`, a read-only transaction) and the person's private number
(`GET …/private-number`, a read-write transaction that inserts the audit row). The figures are
the medians of the rounds' ratios private-number ÷ person (the audit's cost) and ÷ /ping, and
the server's CPU time per request from /proc. Results as JSON in bench-results/staff_data.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import uuid
from typing import Any

import asyncpg

from backend import devidp
from backend.settings import PROJECT_ROOT
from tests.bench import stack
from tests.bench.wrk import WrkTarget, ensure_wrk, run_wrk

OUTPUT = PROJECT_ROOT / "bench-results" / "staff_data.json"
ROUNDS = 5


async def _add_person(admin_url: str) -> uuid.UUID:
    conn = await asyncpg.connect(admin_url)
    try:
        tenant = await conn.fetchval("SELECT id FROM tenants WHERE slug = 'stadt-soest'")
        person = uuid.uuid4()
        await conn.execute(
            """INSERT INTO directory_people (tenant_id, id, family_name, phone)
               VALUES ($1, $2, 'Privat', '+492921109999')""",
            tenant,
            person,
        )
        await conn.execute(
            "INSERT INTO directory_private_numbers (tenant_id, person_id, number) VALUES ($1, $2, '+491712345678')",
            tenant,
            person,
        )
        return person
    finally:
        await conn.close()


def measure(wrk: str, server: stack.Server, token: str, person: uuid.UUID, seconds: float) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    path = f"/v1/tenants/stadt-soest/directory/people/{person}"
    targets = [
        WrkTarget("ping", server.base_url, "GET", "/ping", {}, None, b"", server.pid),
        WrkTarget("person", server.base_url, "GET", path, auth, None, b'"familyName"', server.pid),
        WrkTarget(
            "private_number", server.base_url, "GET", path + "/private-number", auth, None, b'"number"', server.pid
        ),
    ]
    rounds: dict[str, list[Any]] = {t.name: [] for t in targets}
    for target in targets:  # warm-up: the token's sign-in, the pool
        run_wrk(wrk, target, connections=8, seconds=1)
    for _ in range(ROUNDS):
        for target in targets:
            rounds[target.name].append(run_wrk(wrk, target, connections=8, seconds=seconds))
    results: dict[str, Any] = {}
    for name, runs in rounds.items():
        results[name] = {
            "rps": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "errors": sum(r.errors for r in runs),
            "server_cpu_us_per_request": statistics.median(r.server_cpu_us_per_request or 0.0 for r in runs),
        }
    triples = list(zip(rounds["ping"], rounds["person"], rounds["private_number"], strict=True))
    results["ratio_p50_private_to_person"] = statistics.median(n.p50_ms / p.p50_ms for _, p, n in triples)
    results["ratio_p99_private_to_person"] = statistics.median(n.p99_ms / p.p99_ms for _, p, n in triples)
    results["ratio_p50_private_to_ping"] = statistics.median(n.p50_ms / g.p50_ms for g, _, n in triples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    wrk = ensure_wrk()
    if wrk is None:
        sys.exit("the staff-data bench needs wrk (apt-get install wrk)")
    results: dict[str, Any] = {"cpus": os.cpu_count(), "quick": args.quick, "client": "wrk"}
    with (
        stack.services() as (server_url, redis_url),
        stack.bench_database(server_url, os.environ.get("DB_APP_PASSWORD") or None) as database_url,
    ):
        env, settings = stack.demo_environment(database_url, redis_url)
        person = asyncio.run(_add_person(database_url))
        server = stack.start_server("staff_data", "backend.main:create_app", stack.free_port(), env)
        try:
            stack.wait_ready(server)
            token = devidp.mint_token(settings, "kreis-soest", "agent")
            results["http"] = measure(wrk, server, token, person, 3.0 if args.quick else 10.0)
        finally:
            stack.stop_server(server)
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2))
    h = results["http"]
    cpu = {name: h[name]["server_cpu_us_per_request"] for name in ("ping", "person", "private_number")}
    print(
        f"private number (audited) ÷ person record: p50 {h['ratio_p50_private_to_person']:.2f}x, "
        f"p99 {h['ratio_p99_private_to_person']:.2f}x; ÷ /ping p50 {h['ratio_p50_private_to_ping']:.2f}x "
        f"(wrk, median of {ROUNDS} alternating rounds); "
        f"{h['private_number']['rps']:.0f} vs {h['person']['rps']:.0f} vs {h['ping']['rps']:.0f} req/s; "
        f"server CPU {cpu['private_number']:.0f} vs {cpu['person']:.0f} vs {cpu['ping']:.0f} µs/request; "
        f"errors {h['private_number']['errors']}/{h['person']['errors']}"
    )


if __name__ == "__main__":
    main()
