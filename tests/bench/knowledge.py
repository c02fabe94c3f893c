"""Knowledge search benchmark: GraphQL vs the same SQL through raw asyncpg, on the LeiKa
catalogue (4,813 services) plus 100,000 generated published articles.

    uv run python -m tests.bench.knowledge            # 100,000 articles, 5 rounds of the question set
    uv run python -m tests.bench.knowledge --quick    # 10,000 articles, 1 round

Set-up as in `tests.bench` (stack.py): PostgreSQL/Redis from DATABASE_URL/REDIS_URL or embedded,
a fresh database with the demo data (`make run`'s, the catalogue included); the generated
articles are spread over the three demo tenants, titled and written from catalogue names, and
indexed as the application indexes a published article (then the lexicon is recounted).

The generated articles get their vectors as publishing makes them (timed: "embedding"). Ours:
`knowledgeSearch(query:, tenant: "stadt-soest", first: 10)` over HTTP to a uvicorn server (token
verification, GraphQL, the unit of work, query analysis, both retrievers, fusion, rendering), one
request at a time with httpx; then the same on a server with SEARCH_RETRIEVERS=lexical. Baselines
(issue 15): one bare full-text query per question (websearch_to_tsquery on the GIN index, top 10
by ts_rank; goal: fused p95 ≤ 3×), and the lexical-only server (goal: fused p95 ≤ 1.5×); also the
very statements search sent, replayed (recorded with asyncpg's query logger). Resident memory of
the server before its first search (encoder not loaded) and after. Questions:
tests/eval/questions.jsonl. Results as JSON in bench-results/knowledge.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from auth.principal import Principal
from auth.roles import Role
from backend import devidp, redisclient
from backend.db.pool import create_pool
from backend.db.tenancy import SET_TENANTS, tenant_array_literal
from backend.knowledge import meaning, search, search_repository
from backend.settings import PROJECT_ROOT
from backend.state import AppState, unit_of_work
from tests.bench import stack
from tests.bench.loadgen import _process_cpu_seconds

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


async def _generated_articles(admin_url: str) -> int:
    conn = await asyncpg.connect(admin_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM articles WHERE created_by = 'bench'")
        return count
    finally:
        await conn.close()


def _questions() -> list[str]:
    return [json.loads(line)["query"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


async def record_statements(
    settings: Any, tenants: dict[str, UUID], questions: list[str]
) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    """The statements the search sends for each question (as an operator's agent on a Soest call)."""
    pool = await create_pool(settings.application_database_url, 1, 1)
    redis = redisclient.connect(settings.redis_url or "")  # the search reads the knowledge generation
    state = AppState(settings=settings, pool=pool, redis=redis, http=None, verifier=None, sign_in=None)  # type: ignore[arg-type]
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
        await redis.aclose()
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


async def through_graphql(
    base_url: str, token: str, questions: list[str], rounds: int, pid: int | None = None, cpu: list[float] | None = None
) -> list[float]:
    """Serial searches; with `pid` and `cpu`, the server's CPU seconds over the timed rounds are
    appended to `cpu` (from /proc/<pid>/stat: what load on the machine does not inflate)."""
    samples = []
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False
    ) as client:
        for question in questions[:5]:  # warm-up
            await client.post("/graphql", json={"query": QUERY, "variables": {"q": question, "t": "stadt-soest"}})
        cpu_before = _process_cpu_seconds(pid)
        for _ in range(rounds):
            for question in questions:
                started = time.perf_counter()
                response = await client.post(
                    "/graphql", json={"query": QUERY, "variables": {"q": question, "t": "stadt-soest"}}
                )
                samples.append(time.perf_counter() - started)
                body = response.json()
                assert response.status_code == 200 and "errors" not in body, body
        cpu_after = _process_cpu_seconds(pid)
        if cpu is not None and cpu_before is not None and cpu_after is not None:
            cpu.append(cpu_after - cpu_before)
    return samples


TRIVIAL = "query { __typename }"


async def trivial_graphql(
    base_url: str, token: str, count: int, pid: int | None = None, cpu: list[float] | None = None
) -> list[float]:
    """The floor of any search through GraphQL over HTTP: a query that reads nothing, signed in
    as the searches are (token, the request's generations, parse, validate, execute, JSON)."""
    samples = []
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False
    ) as client:
        for _ in range(20):  # warm-up
            await client.post("/graphql", json={"query": TRIVIAL})
        cpu_before = _process_cpu_seconds(pid)
        for _ in range(count):
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": TRIVIAL})
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200 and "errors" not in response.json(), response.text
        cpu_after = _process_cpu_seconds(pid)
        if cpu is not None and cpu_before is not None and cpu_after is not None:
            cpu.append(cpu_after - cpu_before)
    return samples


def embed_questions(questions: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """The floor of the meaning retriever: one forward pass of the encoder for a question not seen
    before (the search's cache bypassed), wall and this thread's CPU, one BLAS thread as served."""
    meaning.embed(["Aufwärmen"])  # load the encoder (not timed)
    wall, cpu = [], []
    for _ in range(rounds):
        for question in questions:
            started, thread_started = time.perf_counter(), time.thread_time()
            meaning.embed([question])
            cpu.append(time.thread_time() - thread_started)
            wall.append(time.perf_counter() - started)
    return wall, cpu


BARE_FTS = """SELECT doc_id, title, ts_rank(tsv, q) AS rank
FROM knowledge_search, websearch_to_tsquery('kb_german', $1) AS q
WHERE view = 'published' AND tsv @@ q
ORDER BY rank DESC LIMIT 10"""


async def bare_full_text(settings: Any, acting: frozenset[UUID], questions: list[str], rounds: int) -> list[float]:
    """The baseline of issue 15: one bare full-text query per question (websearch_to_tsquery on the
    GIN index, top 10 by ts_rank) on a pool of the application role, tenant setting included."""
    pool = await create_pool(settings.application_database_url, 1, 2)
    samples = []
    try:
        for _ in range(rounds):
            for question in questions:
                started = time.perf_counter()
                async with pool.acquire() as conn, conn.transaction(readonly=True):
                    await conn.execute(SET_TENANTS, tenant_array_literal(acting))
                    await conn.fetch(BARE_FTS, question)
                samples.append(time.perf_counter() - started)
    finally:
        await pool.close()
    return samples


async def embed_articles(admin_url: str, tenants: dict[str, UUID]) -> int:
    """Vectors for the generated articles, as publishing makes them (meaning.refresh per owner)."""
    made = 0
    conn = await asyncpg.connect(admin_url)
    try:
        for owner in tenants.values():
            async with conn.transaction():
                made += await meaning.refresh(conn, owner)
    finally:
        await conn.close()
    return made


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1e3,
        "p95_ms": ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
    }


def _serve_and_search(
    name: str, env: dict[str, str], token: str, questions: list[str], rounds: int
) -> tuple[list[float], dict[str, float]]:
    """Searches through GraphQL on a fresh server; its resident memory before the first search
    (the encoder not loaded yet) and after."""
    server = stack.start_server(name, "backend.main:create_app", stack.free_port(), env)
    try:
        stack.wait_ready(server)
        memory = {"rss_before_mib": rss_mib(server.pid)}
        cpu: list[float] = []
        samples = asyncio.run(through_graphql(server.base_url, token, questions, rounds, server.pid, cpu))
        memory["rss_after_mib"] = rss_mib(server.pid)
        memory["load_average_1min"] = os.getloadavg()[0]  # the machine is shared: say how busy it was
        if cpu:
            memory["server_cpu_ms_per_search"] = cpu[0] * 1e3 / len(samples)
        trivial_cpu: list[float] = []
        trivial = asyncio.run(trivial_graphql(server.base_url, token, len(samples), server.pid, trivial_cpu))
        memory["trivial_graphql"] = _summary(trivial)  # type: ignore[assignment]
        if trivial_cpu:
            memory["server_cpu_ms_per_trivial_query"] = trivial_cpu[0] * 1e3 / len(trivial)
    finally:
        stack.stop_server(server)
    return samples, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--articles", type=int, help="generated articles (default 100,000; --quick 10,000)")
    parser.add_argument(
        "--keep",
        metavar="DATABASE",
        help="keep the world in this database and reuse it when it is there (generated and embedded once)",
    )
    args = parser.parse_args()
    count, rounds = (10_000, 1) if args.quick else (100_000, 5)
    count = args.articles or count
    questions = _questions()
    results: dict[str, Any] = {
        "articles": count,
        "rounds": rounds,
        "questions": len(questions),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "load_generator": "httpx, one request at a time (tests/bench/knowledge.py)",
    }
    with (
        stack.services() as (server_url, redis_url),
        stack.bench_database(server_url, os.environ.get("DB_APP_PASSWORD") or None, args.keep) as database_url,
    ):
        env, settings = stack.demo_environment(database_url, redis_url)
        tenants = asyncio.run(_tenant_ids(database_url))
        generated = asyncio.run(_generated_articles(database_url))
        if generated and generated != count:
            raise SystemExit(f"{args.keep} holds {generated} generated articles, not {count}")
        if not generated:
            print(f"generating {count} articles …", file=sys.stderr)
            started = time.perf_counter()
            asyncio.run(generate_articles(database_url, tenants, count))
            results["generate_seconds"] = time.perf_counter() - started
        print(f"embedding {count} articles …", file=sys.stderr)
        started = time.perf_counter()
        results["embedded"] = asyncio.run(embed_articles(database_url, tenants))
        results["embed_seconds"] = time.perf_counter() - started
        recorded = asyncio.run(record_statements(settings, tenants, questions))
        results["statements_per_search"] = statistics.fmean(len(s) for s in recorded.values())
        token = devidp.mint_token(settings, "kreis-soest", "agent")
        print("GraphQL, both retrievers …", file=sys.stderr)
        fused, memory = _serve_and_search("knowledge", env, token, questions, rounds)
        print("GraphQL, lexical only …", file=sys.stderr)
        lexical, lexical_memory = _serve_and_search(
            "knowledge-lexical", {**env, "SEARCH_RETRIEVERS": "lexical"}, token, questions, rounds
        )
        print("bare full text, recorded statements …", file=sys.stderr)
        acting = frozenset(tenants.values())
        bare = asyncio.run(bare_full_text(settings, acting, questions, rounds))
        replayed = asyncio.run(replay(settings, acting, recorded, rounds))
        embed_wall, embed_cpu = embed_questions(questions, rounds)
    results["memory"] = {"fused_server": memory, "lexical_server": lexical_memory}
    results["graphql"], results["graphql_lexical"] = _summary(fused), _summary(lexical)
    # The first round meets every question for the first time (no cached question vectors).
    results["graphql_first_round"] = _summary(fused[: len(questions)])
    results["bare_fts"], results["raw_sql"] = _summary(bare), _summary(replayed)
    results["ratio_p95_vs_bare_fts"] = results["graphql"]["p95_ms"] / results["bare_fts"]["p95_ms"]
    results["ratio_p95_fused_vs_lexical"] = results["graphql"]["p95_ms"] / results["graphql_lexical"]["p95_ms"]
    results["ratio_p95"] = results["graphql"]["p95_ms"] / results["raw_sql"]["p95_ms"]
    # The floor (decision 035): what a fused search through GraphQL cannot go under in this design.
    results["floor"] = {
        "embed_question": _summary(embed_wall),
        "embed_question_cpu": _summary(embed_cpu),
        "trivial_graphql": memory["trivial_graphql"],
        "server_cpu_ms_per_trivial_query": memory.get("server_cpu_ms_per_trivial_query"),
        "load_average_1min": os.getloadavg()[0],
    }
    results["floor"]["p50_sum_vs_bare_p95"] = (
        results["floor"]["trivial_graphql"]["p50_ms"] + results["floor"]["embed_question"]["p50_ms"]
    ) / results["bare_fts"]["p95_ms"]
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2))
    g, lx, b, r = results["graphql"], results["graphql_lexical"], results["bare_fts"], results["raw_sql"]
    print(f"search over {count} articles + the catalogue, {len(questions)} questions × {rounds} (httpx, serial):")
    print(f"  GraphQL fused        p50 {g['p50_ms']:.1f} ms  p95 {g['p95_ms']:.1f} ms")
    first = results["graphql_first_round"]
    print(f"   … its first round   p50 {first['p50_ms']:.1f} ms  p95 {first['p95_ms']:.1f} ms (new questions)")
    print(f"  GraphQL lexical only p50 {lx['p50_ms']:.1f} ms  p95 {lx['p95_ms']:.1f} ms")
    print(f"  bare full text       p50 {b['p50_ms']:.1f} ms  p95 {b['p95_ms']:.1f} ms")
    print(
        f"  its statements       p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms "
        f"({results['statements_per_search']:.1f} statements per search)"
    )
    print(f"  ratio p95 fused ÷ bare full text {results['ratio_p95_vs_bare_fts']:.2f}x (goal ≤ 3)")
    print(f"  ratio p95 fused ÷ lexical only   {results['ratio_p95_fused_vs_lexical']:.2f}x (goal ≤ 1.5)")
    print(f"  embedding {results['embedded']} articles took {results['embed_seconds']:.1f} s")
    print(
        f"  server CPU per search: fused {memory.get('server_cpu_ms_per_search', float('nan')):.1f} ms, "
        f"lexical only {lexical_memory.get('server_cpu_ms_per_search', float('nan')):.1f} ms (/proc/<pid>/stat; "
        f"load {memory['load_average_1min']:.1f} / {lexical_memory['load_average_1min']:.1f})"
    )
    floor, t, e = results["floor"], results["floor"]["trivial_graphql"], results["floor"]["embed_question"]
    print(
        f"  floor: trivial GraphQL query p50 {t['p50_ms']:.1f} ms  p95 {t['p95_ms']:.1f} ms "
        f"(server CPU {floor['server_cpu_ms_per_trivial_query'] or float('nan'):.2f} ms); one question embedded "
        f"p50 {e['p50_ms']:.1f} ms  p95 {e['p95_ms']:.1f} ms (CPU p50 {floor['embed_question_cpu']['p50_ms']:.1f} ms); "
        f"the floor's p50 alone ÷ bare p95 {(t['p50_ms'] + e['p50_ms']) / b['p95_ms']:.1f}x"
    )
    print(f"  load average (1 min) at the end: {floor['load_average_1min']:.1f}")
    print(
        f"  resident memory of one instance: {memory['rss_before_mib']:.0f} MiB before the encoder loads, "
        f"{memory['rss_after_mib']:.0f} MiB after (lexical only: {lexical_memory['rss_after_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
