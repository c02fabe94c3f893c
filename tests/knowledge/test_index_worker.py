"""The search index of bulk-imported articles is made by the background worker (decision 024's
third amendment): an imported article is found by words once the worker wrote its rows and by
meaning once it made its vector; the lexicon then counts exactly the search rows there are, with
changes and archives that came before the worker; a town's own article stays the town's; an
article another transaction is writing is left queued; two workers make each vector once; a
document queued again costs no forward pass, and a row queued while a worker holds its batch
stays queued for the next round."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx

from backend.db.tenancy import all_tenants_transaction, tenant_transaction
from backend.knowledge import index_repository, meaning
from backend.knowledge.index_worker import IndexWorker
from backend.state import unit_of_work
from tests.knowledge.conftest import GESEKE, KREIS, SOEST, search
from tests.knowledge.test_xzufi_bulk import GESEKE_AGS, KEYS, SOEST_AGS, _import, _operator_world
from tests.knowledge.xzufi_messages import leistung, message, suffix
from tests.support.world import World

Client = httpx.AsyncClient


async def _post(client: Client, world: World, text: str) -> dict[str, object]:
    headers = {**world.headers(KREIS, "platform-admin"), "Content-Type": "application/xml"}
    answer = await client.post("/v1/knowledge/xzufi-imports", content=text.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def _articles(db: asyncpg.Pool, tenants: list[UUID], pattern: str) -> dict[str, UUID]:
    async with tenant_transaction(db, tenants, readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT external_id, id FROM articles WHERE tenant_id = ANY($1::uuid[]) AND external_id LIKE $2",
            tenants,
            pattern,
        )
    return {r["external_id"]: r["id"] for r in rows}


async def _count(db: asyncpg.Pool, tenant: UUID, table: str, ids: list[UUID], where: str = "true") -> int:
    async with tenant_transaction(db, [tenant], readonly=True) as conn:
        return int(
            await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE tenant_id = $1 AND doc_id = ANY($2::uuid[]) AND {where}",
                tenant,
                ids,
            )
        )


def _scope_ids(world: World, town: str) -> set[UUID]:
    """The documents in the matrices this process keeps for calls for `town`."""
    town_id = world.tenant_ids[town]
    return {
        doc for (town_key, _), scope in meaning.SCOPES._scopes.items() if town_key == town_id for doc in scope.doc_ids
    }


async def test_an_imported_article_is_found_by_words_after_the_worker_and_by_meaning_after_its_vector(
    db: asyncpg.Pool, client: Client, world: World
) -> None:
    s = suffix()
    title = f"Zuschuss für Regenwassertonnen {s}"
    summary = "Die Stadt fördert Regentonnen im Garten mit einem Zuschuss."
    report = await _post(client, world, message(leistung(f"VEC-{s}", title, key="99089017000000", summary=summary)))
    assert report["created"] == 1, report
    operator = world.tenant_ids[KREIS]
    article_id = (await _articles(db, [operator], f"xzufi:VEC-{s}"))[f"xzufi:VEC-{s}"]
    assert await _count(db, operator, "knowledge_search", [article_id]) == 0  # the import wrote no index
    assert await _count(db, operator, "knowledge_index_queue", [article_id], "words") == 1
    before = await search(client, world, (KREIS, "agent"), f"Regenwassertonnen {s}", SOEST)
    assert str(article_id) not in [hit["id"] for hit in before["nodes"]]  # not found before the worker

    worker = IndexWorker(world.state)
    assert await worker.drain_words() >= 1
    by_words = await search(client, world, (KREIS, "agent"), f"Regenwassertonnen {s}", SOEST)
    assert by_words["nodes"][0]["id"] == str(article_id)  # by words now
    assert await _count(db, operator, "knowledge_vectors", [article_id]) == 0
    assert article_id not in _scope_ids(world, SOEST)  # not yet by meaning

    assert (await worker.drain()).vectors >= 1
    assert await _count(db, operator, "knowledge_vectors", [article_id]) == 1
    assert await _count(db, operator, "knowledge_index_queue", [article_id]) == 0
    await search(client, world, (KREIS, "agent"), f"Regenwassertonnen {s}", SOEST)
    assert article_id in _scope_ids(world, SOEST)  # the worker moved the generation: the matrix reloaded
    async with tenant_transaction(db, [world.tenant_ids[SOEST], operator], readonly=True) as conn:
        scope = await meaning.scope_at(conn, world.tenant_ids[SOEST], [operator], None)
    question = meaning.embed([f"{title}. {summary}"])[0]
    assert scope.nearest(question, 1)[0][1] == article_id  # by meaning: its own text is nearest


async def test_a_towns_own_imported_article_indexed_by_the_worker_stays_the_towns(
    db: asyncpg.Pool, client: Client, world: World
) -> None:
    """The worker writes under all-tenant row-level security; the rows it writes are the town's
    own, unshared: another town's search, and its row-level security, never see them."""
    s = suffix()
    title = f"Grünschnittsammelstelle Geseke {s}"
    await _post(client, world, message(leistung(f"OWN-{s}", title, key="99001009004002", areas=(GESEKE_AGS,))))
    geseke, soest = world.tenant_ids[GESEKE], world.tenant_ids[SOEST]
    article_id = (await _articles(db, [geseke], f"xzufi:OWN-{s}"))[f"xzufi:OWN-{s}"]
    await IndexWorker(world.state).drain()
    async with tenant_transaction(db, [geseke], readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT view, shared FROM knowledge_search WHERE tenant_id = $1 AND doc_id = $2 ORDER BY view",
            geseke,
            article_id,
        )
    assert [(r["view"], r["shared"]) for r in rows] == [("published", False), ("working", False)]
    found = await search(client, world, (GESEKE, "agent"), f"Grünschnittsammelstelle {s}", GESEKE)
    assert str(article_id) in [hit["id"] for hit in found["nodes"]]
    for who, town in (((SOEST, "agent"), SOEST), ((KREIS, "agent"), SOEST)):
        other = await search(client, world, who, f"Grünschnittsammelstelle {s}", town)
        assert str(article_id) not in [hit["id"] for hit in other["nodes"]]
    async with tenant_transaction(db, [soest, world.tenant_ids[KREIS]], readonly=True) as conn:
        seen = await conn.fetchval("SELECT count(*) FROM knowledge_search WHERE doc_id = $1", article_id)
        vectors = await conn.fetchval("SELECT count(*) FROM knowledge_vectors WHERE doc_id = $1", article_id)
    assert (seen, vectors) == (0, 0)  # row-level security alone keeps them from Soest


RECOUNT = """SELECT tenant_id, shared, lexeme, count(*) AS ndoc FROM (
                 SELECT k.tenant_id, k.shared, u.lexeme FROM knowledge_search k, unnest(k.tsv) u
                 WHERE k.view = 'published' AND k.tenant_id = ANY($1::uuid[])
                 UNION ALL
                 SELECT tenant_id, shared, '' FROM knowledge_search
                 WHERE view = 'published' AND tenant_id = ANY($1::uuid[])) w
             GROUP BY tenant_id, shared, lexeme"""
COUNTED = "SELECT tenant_id, shared, lexeme, ndoc FROM search_lexicon WHERE tenant_id = ANY($1::uuid[]) AND ndoc > 0"


async def test_the_lexicon_equals_a_full_recount_before_and_after_the_worker(world: World) -> None:
    """Decision 035's bounded candidate set decides by the lexicon's counts: they must count the
    search rows there are at every commit. New services in bulk (queued), then — before the worker
    ran — one of them changed (one by one, indexed inline) and one archived; then the worker."""
    ids, admin = await _operator_world(world.state)
    s = suffix()
    first = message(
        leistung(f"L1-{s}", "Hundesteuer anmelden", key=KEYS[0], summary="Hund anmelden.", terms=("Hundemarke",)),
        leistung(f"L2-{s}", "Sperrmüll Soest", key=KEYS[1], areas=(SOEST_AGS,), summary="Abholung."),
        leistung(f"L3-{s}", "Gewerbe anmelden", key=KEYS[2], areas=(GESEKE_AGS,), summary="Gewerbeamt."),
        leistung(f"L4-{s}", "Fundsachen abholen", key=KEYS[3], summary="Fundbüro im Rathaus."),
    )
    assert (await _import(world.state, admin, first, bulk=True)).created == 4
    changed = leistung(f"L1-{s}", "Hundesteuer abmelden", key=KEYS[0], summary="Hund abmelden.", version="2")
    second = message(changed, deletions=[("leistung", f"L4-{s}")])
    report = await _import(world.state, admin, second, bulk=True)
    assert (report.updated, report.archived) == (1, 1), report

    async def counts() -> tuple[set[tuple[object, ...]], set[tuple[object, ...]], int]:
        async with unit_of_work(world.state, admin, readonly=True) as uow:
            recount = {tuple(r) for r in await uow.conn.fetch(RECOUNT, list(ids.values()))}
            counted = {tuple(r) for r in await uow.conn.fetch(COUNTED, list(ids.values()))}
            rows = await uow.conn.fetchval(
                """SELECT count(*) FROM knowledge_search k
                   JOIN articles a ON a.tenant_id = k.tenant_id AND a.id = k.doc_id
                   WHERE a.external_id LIKE $1""",
                f"xzufi:L_-{s}",
            )
        return recount, counted, int(rows)

    recount, counted, rows = await counts()
    assert counted == recount and rows == 3  # L1's two rows (inline), L4's working row (archived)
    await IndexWorker(world.state).drain_words()
    recount, counted, rows = await counts()
    assert counted == recount and rows == 7  # L2 and L3 now too; L4 has no published row
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        views = await uow.conn.fetch(
            """SELECT a.external_id, k.view, k.version, k.title FROM knowledge_search k
               JOIN articles a ON a.tenant_id = k.tenant_id AND a.id = k.doc_id
               WHERE a.external_id = ANY($1::text[]) ORDER BY 1, 2""",
            [f"xzufi:L1-{s}", f"xzufi:L4-{s}"],
        )
    assert [(r["view"], r["title"]) for r in views] == [
        ("published", "Hundesteuer abmelden"),  # the change, not the first text the worker was queued for
        ("working", "Hundesteuer abmelden"),
        ("working", "Fundsachen abholen"),  # archived: no published row came back
    ]


async def test_an_article_another_transaction_is_writing_stays_queued(db: asyncpg.Pool, world: World) -> None:
    ids, admin = await _operator_world(world.state)
    s = suffix()
    text = message(leistung(f"B1-{s}", f"Bootsliegeplatz {s}", key=KEYS[3]), leistung(f"B2-{s}", "Hund", key=KEYS[0]))
    await _import(world.state, admin, text, bulk=True)
    found = await _articles(db, [ids["kreis"]], f"xzufi:B_-{s}")
    busy, free = found[f"xzufi:B1-{s}"], found[f"xzufi:B2-{s}"]
    worker = IndexWorker(world.state)
    async with tenant_transaction(db, [ids["kreis"]]) as writer:  # an editor publishing B1 right now
        await writer.execute(
            "SELECT 1 FROM articles WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE", ids["kreis"], busy
        )
        await worker.drain_words()  # never waits on the article
        pool = world.state.pool  # this task holds one of `db`'s connections
        assert await _count(pool, ids["kreis"], "knowledge_search", [free]) == 2
        assert await _count(pool, ids["kreis"], "knowledge_search", [busy]) == 0
        assert await _count(pool, ids["kreis"], "knowledge_index_queue", [busy], "words") == 1
    await worker.drain_words()
    assert await _count(db, ids["kreis"], "knowledge_search", [busy]) == 2
    assert await _count(db, ids["kreis"], "knowledge_index_queue", [busy], "words") == 0


async def test_two_workers_make_each_vector_once(db: asyncpg.Pool, client: Client, world: World) -> None:
    await IndexWorker(world.state).drain()  # what other tests queued
    s = suffix()
    count = meaning.BATCH + 6  # two batches: one for each worker
    services = [
        leistung(f"TWO-{s}-{n}", f"Fundsache Nummer {n} {s}", key="99089017000000", summary=f"Gefunden am Ort {n}.")
        for n in range(count)
    ]
    assert (await _post(client, world, message(*services)))["created"] == count
    operator = world.tenant_ids[KREIS]
    ids = list((await _articles(db, [operator], f"xzufi:TWO-{s}-%")).values())
    assert len(ids) == count and await _count(db, operator, "knowledge_vectors", ids) == 0

    first, second = IndexWorker(world.state, words_batch=40), IndexWorker(world.state, words_batch=40)
    made = await asyncio.gather(first.drain(), second.drain())
    assert sum(d.words for d in made) == count, made  # each article indexed once
    assert sum(d.vectors for d in made) == count, made  # nothing made twice (without the row locks a batch would be)
    assert await _count(db, operator, "knowledge_vectors", ids) == count
    assert await _count(db, operator, "knowledge_search", ids, "view = 'published'") == count
    assert await _count(db, operator, "knowledge_index_queue", ids) == 0


async def test_a_document_queued_again_costs_no_forward_pass_and_a_row_queued_meanwhile_stays(
    db: asyncpg.Pool, client: Client, world: World
) -> None:
    worker = IndexWorker(world.state)
    await worker.drain()
    s = suffix()
    await _post(client, world, message(leistung(f"AGAIN-{s}", f"Bootsliegeplatz mieten {s}", key="99089017000000")))
    operator = world.tenant_ids[KREIS]
    article_id = (await _articles(db, [operator], f"xzufi:AGAIN-{s}"))[f"xzufi:AGAIN-{s}"]
    drained = await worker.drain()
    assert (drained.words, drained.vectors) == (1, 1)

    async with tenant_transaction(db, [operator]) as conn:
        await index_repository.enqueue(conn, [(operator, article_id)], words=True)
    assert await worker.words_round() == (1, 1)  # taken; its rows are current: nothing written
    assert await worker.vectors_round() == (1, 0)  # taken, nothing stale: no forward pass
    assert await _count(db, operator, "knowledge_index_queue", [article_id]) == 0

    # A worker holds its batch while another transaction queues the same document again (a new
    # text published meanwhile): deleting the claimed rows leaves the new one queued.
    async with tenant_transaction(db, [operator]) as conn:
        await index_repository.enqueue(conn, [(operator, article_id)], words=False)
    async with all_tenants_transaction(world.state.pool) as conn:
        claimed = await index_repository.claim_queued(conn, meaning.BATCH, words=False)
        assert article_id in {c.doc_id for c in claimed}
        async with tenant_transaction(db, [operator]) as other:
            await index_repository.enqueue(other, [(operator, article_id)], words=False)  # does not wait on the lock
        await index_repository.forget_queued(conn, claimed)
    assert await _count(db, operator, "knowledge_index_queue", [article_id]) == 1
    assert (await worker.drain()).vectors == 0 and await _count(
        db, operator, "knowledge_index_queue", [article_id]
    ) == 0
