"""Knowledge search benchmark: GraphQL vs the same SQL through raw asyncpg, on the LeiKa
catalogue (4,813 services) plus 100,000 generated published articles.

    uv run python -m tests.bench.knowledge            # 100,000 articles, 5 rounds of the question set
    uv run python -m tests.bench.knowledge --quick    # 10,000 articles, 1 round

Set-up as in `tests.bench` (stack.py): PostgreSQL/Redis from DATABASE_URL/REDIS_URL or embedded,
a fresh database with the demo data (`make run`'s, the catalogue included); the generated
articles are spread over the three demo tenants, titled and written from catalogue names, and
indexed as the application indexes a published article (then the lexicon is recounted).

Ours: `knowledgeSearch(query:, tenant: "stadt-soest", first: 10)` over HTTP to a uvicorn server
(token verification, GraphQL, the unit of work, query analysis, rendering the hits), one request
at a time. Baseline: the very statements that search sent for the same question (recorded with
asyncpg's query logger), replayed on a pool of the application role inside one transaction
with the tenant setting, also one at a time. Goal: p95 ≤ 1.2×. Questions: tests/eval/questions.jsonl.
Results as JSON in bench-results/knowledge.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from auth.principal import Principal
from auth.roles import Role
from backend import devidp
from backend.db.pool import create_pool
from backend.db.tenancy import SET_TENANTS, tenant_array_literal
from backend.knowledge import search, search_repository
from backend.settings import PROJECT_ROOT, load_settings
from backend.state import AppState, unit_of_work
from tests.bench import stack

OUTPUT = PROJECT_ROOT / "bench-results" / "knowledge.json"
QUESTIONS = PROJECT_ROOT / "tests" / "eval" / "questions.jsonl"
QUERY = """query($q: String!, $t: String) { knowledgeSearch(query: $q, tenant: $t, first: 10) {
  confident nodes { id leikaKey title snippet relevance } pageInfo { endCursor } } }"""
FILLER = (
    "Bürgerbüro",
    "Antrag",
    "Unterlagen",
    "Gebühr",
    "Termin",
    "Frist",
    "Nachweis",
    "Formular",
    "online",
    "persönlich",
    "Bescheid",
    "Zuständigkeit",
    "Öffnungszeiten",
    "Auskunft",
    "Beratung",
    "Verfahren",
)


async def _tenant_ids(admin_url: str) -> dict[str, UUID]:
    conn = await asyncpg.connect(admin_url)
    try:
        return {r["slug"]: r["id"] for r in await conn.fetch("SELECT slug, id FROM tenants")}
    finally:
        await conn.close()


async def generate_articles(admin_url: str, tenants: dict[str, UUID], count: int) -> None:
    """`count` published local articles from catalogue names, indexed like the application does."""
    owners = [tenants["stadt-soest"], tenants["stadt-geseke"], tenants["kreis-soest"]]
    conn = await asyncpg.connect(admin_url)
    try:
        async with conn.transaction():
            await conn.execute(
                """CREATE TEMP TABLE gen ON COMMIT DROP AS
                   WITH svc AS (SELECT row_number() OVER (ORDER BY leika_key) - 1 AS n, leika_key, name
                                FROM leika_services WHERE tenant_id = $2)
                   SELECT ($1::uuid[])[1 + g % 3] AS tenant_id, gen_random_uuid() AS id, svc.leika_key,
                          left(svc.name, 150) || ' – Hinweis ' || g AS title,
                          'Was Sie zu ' || svc.name || ' wissen müssen.' AS summary,
                          svc.name || '. ' || ($3::text[])[1 + g % 16] || ' und ' || ($3::text[])[1 + (g / 16) % 16]
                            || ' im ' || ($3::text[])[1 + (g / 256) % 16] || '. Weitere Angaben folgen.' AS body
                   FROM generate_series(1, $4) AS g JOIN svc ON svc.n = g % (SELECT count(*) FROM svc)""",
                owners,
                tenants["kreis-soest"],
                list(FILLER),
                count,
            )
            await conn.execute(
                """INSERT INTO articles (tenant_id, id, kind, status, latest_version, published_version, created_by)
                   SELECT tenant_id, id, 'local', 'published', 1, 1, 'bench' FROM gen"""
            )
            await conn.execute(
                """INSERT INTO article_versions (tenant_id, article_id, version, status, title, summary, leika_key,
                                                 sections, author, author_tenant_id)
                   SELECT tenant_id, id, 1, 'published', title, summary, leika_key,
                          jsonb_build_object('description', body), 'bench', tenant_id FROM gen"""
            )
            for view in ("published", "working"):
                await conn.execute(
                    """INSERT INTO knowledge_search (tenant_id, view, doc_id, source, shared, article_kind, leika_key,
                                                     status, version, title, summary, body, title_words,
                                                     tsv_a, tsv_b, tsv_c, tsv_d, tsv)
                       SELECT g.tenant_id, $1, g.id, 'article', false, 'local', g.leika_key, 'published', 1, g.title,
                              g.summary, g.body, greatest(1, length(t.a)), t.a, t.b, t.c, t.d,
                              setweight(t.a, 'A') || setweight(t.b, 'B') || setweight(t.c, 'C')
                                || setweight(t.d, 'D')
                       FROM gen g CROSS JOIN LATERAL (
                           SELECT to_tsvector('kb_german', g.title) AS a, ''::tsvector AS b,
                                  to_tsvector('kb_german', g.summary) AS c, to_tsvector('kb_german', g.body) AS d) t""",
                    view,
                )
            for owner in owners:
                await search_repository.rebuild_lexicon(conn, owner, shared=False)
            await conn.execute("ANALYZE knowledge_search")
    finally:
        await conn.close()


def _questions() -> list[str]:
    return [json.loads(line)["query"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


async def record_statements(
    settings: Any, tenants: dict[str, UUID], questions: list[str]
) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    """The statements the search sends for each question (as an operator's agent on a Soest call)."""
    pool = await create_pool(settings.application_database_url, 1, 1)
    state = AppState(settings=settings, pool=pool, redis=None, http=None, verifier=None, sign_in=None)  # type: ignore[arg-type]
    agent = Principal(
        issuer="bench",
        subject="bench-agent",
        tenant_id=tenants["kreis-soest"],
        tenant_slug="kreis-soest",
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset(tenants.values()),
    )
    recorded: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    try:
        for question in questions:
            statements: list[tuple[str, tuple[Any, ...]]] = []
            async with unit_of_work(state, agent, readonly=True) as uow:

                def log(record: Any, into: list[tuple[str, tuple[Any, ...]]] = statements) -> None:
                    into.append((record.query, tuple(record.args)))

                uow.conn.add_query_logger(log)
                try:
                    await search.search(uow, question, "stadt-soest", 10)
                finally:
                    uow.conn.remove_query_logger(log)
            recorded[question] = statements
    finally:
        await pool.close()
    return recorded


async def replay(
    settings: Any, acting: frozenset[UUID], recorded: dict[str, list[tuple[str, tuple[Any, ...]]]], rounds: int
) -> list[float]:
    pool = await create_pool(settings.application_database_url, 1, 2)
    samples = []
    try:
        for _ in range(rounds):
            for statements in recorded.values():
                started = time.perf_counter()
                async with pool.acquire() as conn, conn.transaction(readonly=True):
                    await conn.execute(SET_TENANTS, tenant_array_literal(acting))
                    for query, args in statements:
                        await conn.fetch(query, *args)
                samples.append(time.perf_counter() - started)
    finally:
        await pool.close()
    return samples


async def through_graphql(base_url: str, token: str, questions: list[str], rounds: int) -> list[float]:
    samples = []
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False
    ) as client:
        for question in questions[:5]:  # warm-up
            await client.post("/graphql", json={"query": QUERY, "variables": {"q": question, "t": "stadt-soest"}})
        for _ in range(rounds):
            for question in questions:
                started = time.perf_counter()
                response = await client.post(
                    "/graphql", json={"query": QUERY, "variables": {"q": question, "t": "stadt-soest"}}
                )
                samples.append(time.perf_counter() - started)
                body = response.json()
                assert response.status_code == 200 and "errors" not in body, body
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1e3,
        "p95_ms": ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, rounds = (10_000, 1) if args.quick else (100_000, 5)
    questions = _questions()
    results: dict[str, Any] = {
        "articles": count,
        "rounds": rounds,
        "questions": len(questions),
        "cpus": os.cpu_count(),
        "quick": args.quick,
    }
    with (
        stack.services() as (server_url, redis_url),
        stack.bench_database(server_url, os.environ.get("DB_APP_PASSWORD") or None) as database_url,
    ):
        env = stack.child_environment(
            {
                "APP_ENV": "test",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "LOG_LEVEL": "WARNING",
                "DEV_SIGNIN_ENABLED": "true",
                "DATA_DIR": str(stack.BENCH_DATA),
            }
        )
        os.environ.update(
            {k: env[k] for k in ("APP_ENV", "DATABASE_URL", "REDIS_URL", "DEV_SIGNIN_ENABLED", "DATA_DIR")}
        )
        settings = load_settings()
        stack.load_demo_data(settings)
        tenants = asyncio.run(_tenant_ids(database_url))
        print(f"generating {count} articles …", file=sys.stderr)
        started = time.perf_counter()
        asyncio.run(generate_articles(database_url, tenants, count))
        results["generate_seconds"] = time.perf_counter() - started
        recorded = asyncio.run(record_statements(settings, tenants, questions))
        results["statements_per_search"] = statistics.fmean(len(s) for s in recorded.values())
        server = stack.start_server("knowledge", "backend.main:create_app", stack.free_port(), env)
        try:
            stack.wait_ready(server)
            token = devidp.mint_token(settings, "kreis-soest", "agent")
            print("GraphQL …", file=sys.stderr)
            ours = asyncio.run(through_graphql(server.base_url, token, questions, rounds))
        finally:
            stack.stop_server(server)
        print("raw asyncpg …", file=sys.stderr)
        bare = asyncio.run(replay(settings, frozenset(tenants.values()), recorded, rounds))
    results["graphql"], results["raw_sql"] = _summary(ours), _summary(bare)
    results["ratio_p95"] = results["graphql"]["p95_ms"] / results["raw_sql"]["p95_ms"]
    results["ratio_p50"] = results["graphql"]["p50_ms"] / results["raw_sql"]["p50_ms"]
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2))
    g, r = results["graphql"], results["raw_sql"]
    print(f"search over {count} articles + the catalogue, {len(questions)} questions × {rounds}:")
    print(f"  GraphQL   p50 {g['p50_ms']:.1f} ms  p95 {g['p95_ms']:.1f} ms")
    print(
        f"  raw SQL   p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  "
        f"({results['statements_per_search']:.1f} statements per search)"
    )
    print(f"  ratio p95 {results['ratio_p95']:.2f}x (goal ≤ 1.2), p50 {results['ratio_p50']:.2f}x")


if __name__ == "__main__":
    main()
