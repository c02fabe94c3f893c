"""Vectors of bulk-imported articles are made by the background worker (decision 024's second
amendment): an imported article is found by words at once and by meaning once the worker ran;
two workers at once make each vector once; a document queued again costs no forward pass, and a
row queued while a worker holds its batch stays queued for the next round."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx

from backend.db.tenancy import all_tenants_transaction, tenant_transaction
from backend.knowledge import meaning, vector_repository
from backend.knowledge.vector_worker import VectorWorker
from tests.knowledge.conftest import KREIS, SOEST, search
from tests.knowledge.xzufi_messages import leistung, message, suffix
from tests.support.world import World

Client = httpx.AsyncClient


async def _import(client: Client, world: World, text: str) -> dict[str, object]:
    headers = {**world.headers(KREIS, "platform-admin"), "Content-Type": "application/xml"}
    answer = await client.post("/v1/knowledge/xzufi-imports", content=text.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def _articles(db: asyncpg.Pool, operator: UUID, pattern: str) -> dict[str, UUID]:
    async with tenant_transaction(db, [operator], readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT external_id, id FROM articles WHERE tenant_id = $1 AND external_id LIKE $2", operator, pattern
        )
    return {r["external_id"]: r["id"] for r in rows}


async def _vectors(db: asyncpg.Pool, operator: UUID, ids: list[UUID]) -> int:
    async with tenant_transaction(db, [operator], readonly=True) as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM knowledge_vectors WHERE tenant_id = $1 AND doc_id = ANY($2::uuid[])",
                operator,
                ids,
            )
        )


async def _queued(db: asyncpg.Pool, operator: UUID, ids: list[UUID]) -> int:
    async with tenant_transaction(db, [operator], readonly=True) as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM knowledge_vector_queue WHERE tenant_id = $1 AND doc_id = ANY($2::uuid[])",
                operator,
                ids,
            )
        )


def _scope_ids(world: World, town: str) -> set[UUID]:
    """The documents in the matrices this process keeps for calls for `town`."""
    town_id = world.tenant_ids[town]
    return {
        doc for (town_key, _), scope in meaning.SCOPES._scopes.items() if town_key == town_id for doc in scope.doc_ids
    }


async def test_an_imported_article_is_found_by_words_at_once_and_by_meaning_after_the_worker(
    db: asyncpg.Pool, client: Client, world: World
) -> None:
    s = suffix()
    title = f"Zuschuss für Regenwassertonnen {s}"
    summary = "Die Stadt fördert Regentonnen im Garten mit einem Zuschuss."
    report = await _import(client, world, message(leistung(f"VEC-{s}", title, key="99089017000000", summary=summary)))
    assert report["created"] == 1, report
    operator = world.tenant_ids[KREIS]
    article_id = (await _articles(db, operator, f"xzufi:VEC-{s}"))[f"xzufi:VEC-{s}"]
    assert await _vectors(db, operator, [article_id]) == 0  # the import made none: queued
    assert await _queued(db, operator, [article_id]) == 1

    by_words = await search(client, world, (KREIS, "agent"), f"Regenwassertonnen {s}", SOEST)
    assert by_words["nodes"][0]["id"] == str(article_id)  # by words at once
    assert article_id not in _scope_ids(world, SOEST)  # not yet by meaning

    assert await VectorWorker(world.state).drain() >= 1
    assert (await _vectors(db, operator, [article_id]), await _queued(db, operator, [article_id])) == (1, 0)
    await search(client, world, (KREIS, "agent"), f"Regenwassertonnen {s}", SOEST)
    assert article_id in _scope_ids(world, SOEST)  # the worker moved the generation: the matrix reloaded
    async with tenant_transaction(db, [world.tenant_ids[SOEST], operator], readonly=True) as conn:
        scope = await meaning.scope_at(conn, world.tenant_ids[SOEST], [operator], None)
    question = meaning.embed([f"{title}. {summary}"])[0]
    assert scope.nearest(question, 1)[0][1] == article_id  # by meaning: its own text is nearest


async def test_two_workers_make_each_vector_once(db: asyncpg.Pool, client: Client, world: World) -> None:
    await VectorWorker(world.state).drain()  # what other tests queued
    s = suffix()
    count = meaning.BATCH + 6  # two batches: one for each worker
    services = [
        leistung(f"TWO-{s}-{n}", f"Fundsache Nummer {n} {s}", key="99089017000000", summary=f"Gefunden am Ort {n}.")
        for n in range(count)
    ]
    assert (await _import(client, world, message(*services)))["created"] == count
    operator = world.tenant_ids[KREIS]
    ids = list((await _articles(db, operator, f"xzufi:TWO-{s}-%")).values())
    assert len(ids) == count and await _vectors(db, operator, ids) == 0

    made = await asyncio.gather(VectorWorker(world.state).drain(), VectorWorker(world.state).drain())
    assert sum(made) == count, made  # nothing made twice (a worker without the row locks makes a batch twice)
    assert (await _vectors(db, operator, ids), await _queued(db, operator, ids)) == (count, 0)


async def test_a_document_queued_again_costs_no_forward_pass_and_a_row_queued_meanwhile_stays(
    db: asyncpg.Pool, client: Client, world: World
) -> None:
    worker = VectorWorker(world.state)
    await worker.drain()
    s = suffix()
    await _import(client, world, message(leistung(f"AGAIN-{s}", f"Bootsliegeplatz mieten {s}", key="99089017000000")))
    operator = world.tenant_ids[KREIS]
    article_id = (await _articles(db, operator, f"xzufi:AGAIN-{s}"))[f"xzufi:AGAIN-{s}"]
    assert await worker.drain() == 1

    async with tenant_transaction(db, [operator]) as conn:
        await vector_repository.enqueue(conn, operator, [article_id])
    assert await worker.round() == (1, 0)  # taken, nothing stale: no forward pass
    assert await _queued(db, operator, [article_id]) == 0

    # A worker holds its batch while another transaction queues the same document again (a new
    # text published meanwhile): deleting the claimed rows leaves the new one queued.
    async with tenant_transaction(db, [operator]) as conn:
        await vector_repository.enqueue(conn, operator, [article_id])
    async with all_tenants_transaction(world.state.pool) as conn:
        claimed = await vector_repository.claim_queued(conn, meaning.BATCH)
        assert article_id in {c.doc_id for c in claimed}
        async with tenant_transaction(db, [operator]) as other:
            await vector_repository.enqueue(other, operator, [article_id])  # does not wait on the lock
        await vector_repository.forget_queued(conn, claimed)
    assert await _queued(db, operator, [article_id]) == 1
    assert await worker.drain() == 0 and await _queued(db, operator, [article_id]) == 0
