"""Makes the search index of queued articles — their search rows, lexicon counts and sentence
vectors — in every app instance (decisions 005, 024's second and third amendments, 026, 035).

The XZuFi import's bulk path commits new articles, their versions, provenance and received
objects, and queues the articles (`knowledge_index_queue`) instead of indexing them in the
import's transaction: the German analysis of four fields, two search rows with their GIN entries
and the lexicon were more than half of what PostgreSQL spent on a new service, and the encoder
~15 ms CPU a text. So an imported article is found by words once this worker has written its rows
(seconds), and by meaning once it has made its vector — the words first: a round with words to
make does them before any vectors. Publishing one article (the editor's workflow) still indexes
it in its own transaction (`service._index`), found at once.

Words: a round claims up to `WORDS_BATCH` rows needing them (`FOR UPDATE SKIP LOCKED`: two
instances take different rows), locks their articles as a writer does (skipping any another
transaction is writing: those rows stay queued, and that writer indexes the article itself), and
writes what is missing or out of date: both rows of an article published at its latest version
and never indexed in one statement with the lexicon counted (`add_published_documents`), anything
else through the one-by-one upsert that keeps the counts. The lexicon therefore counts exactly the
search rows there are at every commit. The rows then wait for their vector.

Vectors: a round claims one encoder batch (64) of rows whose words are made, makes the vectors
still stale by the vectors' own check (no vector, another encoder, another text — so a row queued
twice, or for an article published meanwhile, costs a look-up, not a forward pass), stores them
and deletes the claimed rows, in one transaction: a crash leaves the rows queued. After the
vectors commit, the `knowledge` generation moves and every instance reloads its matrices
(decision 009) — not after every batch while the queue drains, since each move makes every
instance read all vectors of a town again. Words need no move: a search reads rows and lexicon.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import structlog

from backend import generations
from backend.background import giving_way, worker_lifespan
from backend.db.tenancy import all_tenants_transaction
from backend.knowledge import catalogue_repository, index_repository, meaning, repository, search_repository, service
from backend.knowledge.schemas import Article, ArticleKind, ArticleVersion
from backend.state import AppState

log = structlog.get_logger("knowledge.index")

WORDS_BATCH = 256  # articles a words round indexes in one transaction (~0.5–1 ms each)
# A words round gives up waiting on a lexicon row after this and leaves its rows queued: it holds
# article locks meanwhile, and a writer that counts words of several articles in one transaction
# (the import's one-by-one path) and then wants one of those articles must not be the one
# PostgreSQL aborts as a deadlock (it checks after deadlock_timeout, 1 s by default).
LOCK_TIMEOUT = "300ms"


@dataclass
class Drained:
    words: int = 0  # articles indexed by words
    vectors: int = 0  # vectors made
    words_seconds: float = 0.0
    vectors_seconds: float = 0.0


@dataclass
class IndexWorker:
    app: AppState
    every_seconds: float = 2.0  # how soon a queued article is looked at when the queue was empty
    publish_seconds: float = 5.0  # while draining, the generation moves at most this often
    words_batch: int = WORDS_BATCH

    async def words_round(self) -> tuple[int, int]:
        """One batch of words: (queued rows claimed, rows done). Rows whose article another
        transaction is writing are claimed but not done: they stay for a later round. (0, 0)
        also when another instance is writing words: one at a time, the others make vectors."""
        async with all_tenants_transaction(self.app.pool) as conn:
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            if not await index_repository.try_words_lock(conn):
                return 0, 0
            claimed = await index_repository.claim_queued(conn, self.words_batch, words=True)
            if not claimed:
                return 0, 0
            keys = sorted({(c.tenant_id, c.doc_id) for c in claimed})
            read = {(a.tenant_id, a.id): a for a in await index_repository.find_articles(conn, keys)}
            documents = await _documents(conn, list(read.values()))  # the analysis, before any lock
            # Locked as a writer locks them, then written at once: the worker holds articles for
            # one round trip before it counts words. An article changed since it was read (a
            # writer indexed it meanwhile) or held by a writer now stays queued.
            locked = await index_repository.lock_articles(conn, keys)
            current = {(a.tenant_id, a.id) for a in locked if read.get((a.tenant_id, a.id)) == a}
            await _write(conn, [d for d in documents if (d.article.tenant_id, d.article.id) in current])
            # Rows of articles that are not there (never were) are done too: nothing to index.
            done = [c for c in claimed if (c.tenant_id, c.doc_id) in current or (c.tenant_id, c.doc_id) not in read]
            await index_repository.words_made(conn, done)
        return len(claimed), len(done)

    async def vectors_round(self) -> tuple[int, int]:
        """One encoder batch: (queued rows taken, vectors made)."""
        made = 0
        async with all_tenants_transaction(self.app.pool) as conn:
            claimed = await index_repository.claim_queued(conn, meaning.BATCH, words=False)
            if not claimed:
                return 0, 0
            by_tenant: dict[UUID, list[UUID]] = {}
            for row in claimed:
                by_tenant.setdefault(row.tenant_id, []).append(row.doc_id)
            for tenant_id, doc_ids in by_tenant.items():
                made += await meaning.refresh(conn, tenant_id, sorted(set(doc_ids)))
            await index_repository.forget_queued(conn, claimed)
        return len(claimed), made

    async def drain_words(self, stop: asyncio.Event | None = None) -> int:
        """Words rounds until none is queued (or only rows someone else is writing are left);
        returns the articles indexed. What a test or the demo runs before searching."""
        total = 0
        while stop is None or not stop.is_set():
            claimed, done = await self.words_round()
            total += done
            if not claimed or not done:
                break
        return total

    async def drain(self, stop: asyncio.Event | None = None) -> Drained:
        """Rounds until the queue is empty (or `stop`, or only rows someone else is writing are
        left); all words queued before each vector batch. The generation moves after the last
        vector batch, and every `publish_seconds` on the way."""
        drained = Drained()
        unpublished = 0
        last = time.monotonic()
        while stop is None or not stop.is_set():
            began = time.perf_counter()
            drained.words += await self.drain_words(stop)
            drained.words_seconds += time.perf_counter() - began
            began = time.perf_counter()
            taken, made = await self.vectors_round()
            drained.vectors += made
            drained.vectors_seconds += time.perf_counter() - began
            unpublished += made
            if unpublished and (not taken or time.monotonic() - last >= self.publish_seconds):
                await generations.bump(self.app, "knowledge")
                unpublished, last = 0, time.monotonic()
            if not taken:
                break
        if unpublished:
            await generations.bump(self.app, "knowledge")
        return drained

    async def run(self, stop: asyncio.Event) -> None:
        metrics = self.app.metrics
        while not stop.is_set():
            try:
                drained = await giving_way(lambda: self.drain(stop), "knowledge-index")
                if drained.words or drained.vectors:
                    log.info("knowledge_indexed", words=drained.words, vectors=drained.vectors)
                metrics.worker_rounds.labels("knowledge-index", "ok").inc()
                metrics.worker_last_success.labels("knowledge-index").set(time.time())
            except asyncpg.LockNotAvailableError:  # a writer held a lexicon row: the rows stay queued
                log.info("knowledge_index_round_yielded")
            except Exception as error:  # keep running; the rows stay queued for the next round
                log.error("knowledge_index_round_failed", error_type=type(error).__name__)
                metrics.worker_rounds.labels("knowledge-index", "failed").inc()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_seconds)


@dataclass(frozen=True, slots=True)
class _Document:
    article: Article
    row: search_repository.SearchDocument
    fresh: bool  # published at its latest version and never indexed: both rows in one statement


async def _documents(conn: asyncpg.Connection, articles: list[Article]) -> list[_Document]:
    """The search rows the articles lack or have out of date, made as `service._index` makes them."""
    articles = [a for a in articles if a.kind is not ArticleKind.LOCAL_VERSION]  # never indexed on their own
    if not articles:
        return []
    indexed = await index_repository.indexed_versions(conn, articles)
    wanted: set[tuple[UUID, UUID, int]] = set()
    for a in articles:
        wanted.add((a.tenant_id, a.id, a.latest_version))
        if a.published_version is not None:
            wanted.add((a.tenant_id, a.id, a.published_version))
    by_key = {(v.tenant_id, v.article_id, v.version): v for v in await repository.get_versions(conn, sorted(wanted))}
    todo: list[tuple[Article, ArticleVersion, str, bool]] = []
    for a in articles:
        rows = {view: indexed.get((a.tenant_id, a.id, view)) for view in ("published", "working")}
        latest = by_key.get((a.tenant_id, a.id, a.latest_version))
        if latest is None:
            continue
        if a.published_version == a.latest_version and rows == {"published": None, "working": None}:
            todo.append((a, latest, "published", True))  # what the bulk import leaves: the usual case
            continue
        if rows["working"] != a.latest_version:
            todo.append((a, latest, "working", False))
        published = by_key.get((a.tenant_id, a.id, a.published_version)) if a.published_version else None
        if published is not None and rows["published"] != a.published_version:
            todo.append((a, published, "published", False))
    names = await catalogue_repository.service_names_for_owners(
        conn, sorted({a.tenant_id for a, *_ in todo}), sorted({v.leika_key for _, v, *_ in todo if v.leika_key})
    )
    return [
        _Document(a, service.search_document(a, v, view, names.get((a.tenant_id, v.leika_key or ""), "")), fresh)
        for a, v, view, fresh in todo
    ]


async def _write(conn: asyncpg.Connection, documents: list[_Document]) -> None:
    """The rows and their lexicon counts: the fresh ones in one statement, the rest (rare: a
    writer indexed part of the article, or an older version, before the worker came) one by one
    through the upsert that takes the old row's words out of the lexicon first."""
    await search_repository.add_published_documents(conn, [d.row for d in documents if d.fresh])
    for document in documents:
        if not document.fresh:
            await search_repository.upsert_document(conn, document.row)


# Runs the worker next to the API when settings.background_worker is on.
lifespan = worker_lifespan(lambda state, _resources: IndexWorker(state))
