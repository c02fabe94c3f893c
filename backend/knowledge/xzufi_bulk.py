"""The XZuFi import's bulk path for new services (issue 14 §3, decision 024).

A new service one by one is create → review → publish through the article service: three
versions, two search rows written three times, the lexicon counted per row and a vector encoded
alone, about 25 statements (measured: 14 services/s). Here the new services of one message are
written together: articles already published at version 1 (the import is the operator's
editorial decision, so the draft and review steps are not pretended), their versions, section
provenance, search terms and received objects, each kind in one statement with the rows as
arrays, inside the message's transaction. Their search index — search rows, lexicon counts and
sentence vectors — is queued for the background worker (`index_worker`, decision 024's third
amendment): found by words once it has written their rows (seconds), by meaning once it has
made their vectors.

The rules stay those of the one-by-one path, most of them by calling its own pieces: the door
(what `town_context` checks, per owner), the article checks, the imported fields and the town's office for a
town's own article, the provenance (`created_source`, one row per article, as one by one writes
it for a new article), the change per article after commit. A description the checks refuse
is reported with its line and id and the rest goes in; when the database refuses the lot (say
an external id taken meanwhile), nothing of it stays and the caller takes the services one by
one, which names the one at fault. A service id twice in one message never reaches this far:
the parser reports the second and leaves it out (`xzufi.parse_message`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import asyncpg
import msgspec

from auth.permissions import Operation
from backend.db import together
from backend.errors import DomainError, NotFound, ValidationFailed
from backend.i18n import _l
from backend.knowledge import (
    index_repository,
    repository,
    service,
    xzufi,
)
from backend.knowledge import xzufi_import as one_by_one
from backend.knowledge import xzufi_repository as store
from backend.knowledge.schemas import (
    Article,
    ArticleKind,
    ArticleStatus,
    ArticleVersion,
    version_body,
)
from backend.knowledge.xzufi_schemas import XzufiProblem, XzufiReport
from backend.tenants import reach
from backend.tenants.schemas import Tenant

if TYPE_CHECKING:
    from backend.knowledge.xzufi_import import _Run
    from backend.state import UnitOfWork


CHUNK = 25  # services a message's reading hands to the writer at a time (measured: decision 024)


async def import_message(uow: UnitOfWork, name: str, data: bytes) -> XzufiReport:
    """One message, read while `start` reads the operator and its towns (the reading needs
    nothing of them): here, between `start`'s statements, where a thread reading it fought this
    one for the interpreter (decision 024, branch importspeed4). A message of services only
    (a feed's usual page) is written while it is read (`_Ahead`)."""
    starting = asyncio.ensure_future(one_by_one.start(uow))
    writer: asyncio.Future[_Ahead] | None = None
    try:
        try:
            message, root = xzufi.open_message(data, name)
        except xzufi.XzufiRefused as refused:
            await starting  # who may not import hears that first, as before
            raise ValidationFailed(refused.message, field="body") from None
        ids = xzufi.service_ids_alone(root)
        if ids is None or len(ids) <= CHUNK:
            for _ in xzufi.read_objects(message, root):
                if not starting.done():
                    await asyncio.sleep(0)  # `start`'s next statement
            xzufi.drop_repeated(message)
            run = await starting
            await one_by_one.apply_message(run, message)
            return run.counts.report()
        parts = _Parts()
        writer = asyncio.ensure_future(_Ahead.write(starting, name, ids, message, parts))
        sent = 0
        for _ in xzufi.read_objects(message, root):
            if len(message.services) - sent >= CHUNK:
                sent = len(message.services)
                parts.put_nowait(sent)
            if not parts.idle and not writer.done():
                await asyncio.sleep(0)  # the writer's next statement (a turn of the loop: ~10 µs)
        xzufi.drop_repeated(message)  # nothing to drop: `service_ids_alone` saw each id once
        parts.put_nowait(None)
        ahead = await writer
    except BaseException:
        for task in (starting, writer):
            if task is not None:
                task.cancel()
        await asyncio.wait([t for t in (starting, writer) if t is not None])  # the connection free again
        raise
    await one_by_one.apply_message(ahead.run, message, ahead=ahead)
    return ahead.run.counts.report()


class _Parts(asyncio.Queue[int | None]):
    """How far the services read may be written (None: all); `idle` while the writer waits for
    the next part, when the reading need not give it a turn."""

    idle = False


class _Ahead(msgspec.Struct):
    """What a message of services only had written while it was read: PostgreSQL writes the
    new services of one part while this process reads the next. The same steps as
    `apply_message`'s, in the same order: the lock, the services known (by the ids read ahead),
    the offices naming them, then the new ones in bulk as `add_services` writes them, a part of
    `CHUNK` at a time under one savepoint for the message (the lot or nothing, as in one go).
    `apply_message` goes on from here (`ahead`): the services not written here one by one
    (all new ones when the database refused the lot, changed and unchanged ones), their routes."""

    run: _Run
    known: dict[str, store.StoredObject]
    fresh: set[str]  # the ids not known before anything was written
    offices: list[store.StoredObject]
    done: set[int]  # positions in the message's services
    refused: list[XzufiProblem]  # reported after the message's own problems, as in one go

    @classmethod
    async def write(
        cls, starting: asyncio.Future[_Run], name: str, ids: list[str], message: xzufi.XzufiMessage, parts: _Parts
    ) -> _Ahead:
        run = await starting
        conn, operator = run.uow.conn, run.operator.id
        await store.lock_imports(conn, operator)
        known = await store.objects_by_ids(conn, operator, "leistung", ids)
        offices = await store.offices_responsible_for(conn, operator, sorted(ids))
        ahead = cls(run, known, set(ids) - known.keys(), offices, set(), [])
        doors: dict[UUID, DomainError | None] = {}
        lot: asyncpg.transaction.Transaction | None = None
        written: list[store.StoredObject] = []
        done: set[int] = set()
        problems: list[XzufiProblem] = []
        refused_by_database = False
        start = 0
        while True:
            parts.idle = True
            upto = await parts.get()
            parts.idle = False
            planned, handled, refused = await _planned(run, name, message.services[start:upto], known, offices, doors)
            done.update(start + p for p in handled)
            problems += refused
            if planned and not refused_by_database:
                if lot is None:
                    await store.forget_plans(conn)
                    lot = conn.transaction()  # savepoint: the lot or nothing
                    await lot.start()
                objects = [_stored(n) for n in planned]
                try:
                    await _write(run, planned, objects)
                    written += objects
                except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
                    await lot.rollback()
                    refused_by_database = True  # one by one checks and reports each again
            if upto is None:
                break
            start = upto
        if refused_by_database:
            return ahead
        if lot is not None:
            await lot.commit()
        ahead.done, ahead.refused = done, problems
        for value in written:
            known[value.xzufi_id] = value
        run.counts.created += len(written)
        return ahead


class _New(msgspec.Struct):
    description: xzufi.ServiceDescription
    owner: Tenant
    fields: dict[str, Any]
    article: Article
    version: ArticleVersion


async def add_services(
    run: _Run,
    message_name: str,
    services: Sequence[xzufi.ServiceDescription],
    known: dict[str, store.StoredObject],
    offices: list[store.StoredObject],
) -> set[int] | None:
    """Write the services of a message that the operator has never received (the first of each
    id) and return their positions in `services` (refused ones included: they are reported);
    `known` gains what each became. `offices` are the active offices naming any of the services
    (a town's own article carries its office). None when the database refused the lot: nothing
    written."""
    uow = run.uow
    planned, handled, refused = await _planned(run, message_name, services, known, offices, {})
    objects = [_stored(n) for n in planned]
    if planned:
        await store.forget_plans(uow.conn)
        try:
            async with uow.conn.transaction():  # savepoint: the lot or nothing
                await _write(run, planned, objects)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
            return None  # one by one checks and reports each again
    run.counts.errors.extend(refused)
    for value in objects:
        known[value.xzufi_id] = value
    run.counts.created += len(planned)
    # No change is published for them: an article's channel is listened to only by someone who
    # could read the article, and these ids were made in this transaction (random), so before
    # the commit nobody can be subscribed, and after it a reader sees version 1 anyway.
    return handled


async def _planned(
    run: _Run,
    message_name: str,
    services: Sequence[xzufi.ServiceDescription],
    known: dict[str, store.StoredObject],
    offices: list[store.StoredObject],
    doors: dict[UUID, DomainError | None],
) -> tuple[list[_New], set[int], list[XzufiProblem]]:
    """What the services never received (the first of each id) become, nothing written: the
    planned ones, the positions handled (refused ones included) and what the checks refused
    (reported unless the lot falls back to one by one)."""
    firsts: dict[str, int] = {}
    for position, description in enumerate(services):
        if description.xzufi_id not in known:
            firsts.setdefault(description.xzufi_id, position)
    planned: list[_New] = []
    refused: list[XzufiProblem] = []
    for position in firsts.values():
        description = services[position]
        try:
            planned.append(await _plan(run, description, offices, doors))
        except (DomainError, ValueError, msgspec.ValidationError) as error:
            text = str(error.message) if isinstance(error, DomainError) else str(error)
            refused.append(XzufiProblem(message_name, description.line, "leistung", description.xzufi_id, text))
    return planned, set(firsts.values()), refused


async def _plan(
    run: _Run,
    description: xzufi.ServiceDescription,
    offices: list[store.StoredObject],
    doors: dict[UUID, DomainError | None],
) -> _New:
    """What one new service becomes, checked as `create_article` checks it, nothing written."""
    town = run.town_of(description.area_ids) if description.area_ids else None
    owner = town or run.operator
    if owner.id not in doors:  # the door, once per owner and message: `town_context`'s check
        try:  # of a tenant `start` has read in this transaction (no need to read it again)
            reachable = reach.reachable(run.uow, Operation.ARTICLE_WRITE)
            doors[owner.id] = None if owner.id in reachable else NotFound(_l("tenant not found"))
        except DomainError as error:
            doors[owner.id] = error
    closed = doors[owner.id]
    if closed is not None:
        raise closed
    fields = one_by_one._imported_fields(description)
    if town is not None:  # the town's own article carries its office directly, as one by one
        for office in offices:
            if description.xzufi_id in office.data.get("leistungen", []) and office.target_tenant_id == town.id:
                fields.update(one_by_one._office_sections(office))
                break
    data = one_by_one._input(fields, description.leika_key, None)
    service.check_article_content(data)
    article = Article(
        tenant_id=owner.id,
        id=uuid4(),
        kind=ArticleKind.LOCAL if town is not None else ArticleKind.SHARED,
        base_tenant_id=None,
        base_article_id=None,
        external_id=f"xzufi:{description.xzufi_id}"[:200],
        status=ArticleStatus.PUBLISHED,
        latest_version=1,
        published_version=1,
        created_at=run.now,
        created_by=run.uow.principal.log_id,
        updated_at=run.now,
    )
    version = ArticleVersion(
        **msgspec.structs.asdict(version_body(data)),
        tenant_id=owner.id,
        article_id=article.id,
        version=1,
        status=ArticleStatus.PUBLISHED,
        change_note=one_by_one.NOTE,
        author=run.uow.principal.log_id,
        author_tenant_id=run.uow.principal.tenant_id,
        created_at=run.now,
    )
    return _New(description, owner, fields, article, version)


async def _write(run: _Run, planned: list[_New], objects: list[store.StoredObject]) -> None:
    """The new services' rows, every kind in one statement (`together`): measured, each round trip
    a statement cost ~0.6 ms of this process's wall clock under load (the send waking PostgreSQL)."""
    await together.execute(
        run.uow.conn,
        [
            repository.articles_insert([n.article for n in planned]),
            repository.versions_insert([n.version for n in planned]),
            # The search index — search rows, lexicon counts, vectors — is the background worker's
            # (`index_worker`), after this commits: for every owner in one statement. Nothing a
            # search keeps in memory changes here (imported terms are read per search): the
            # worker moves the `knowledge` generation once the vectors are made.
            index_repository.enqueue_statement([(n.owner.id, n.article.id) for n in planned], words=True),
            store.article_sources_insert(
                [
                    one_by_one.created_source(
                        run, (n.owner.id, n.article.id), n.fields, (n.description.xzufi_id, n.description.version)
                    )
                    for n in planned
                ]
            ),
            store.objects_save(run.operator.id, objects, run.now),
            store.search_terms_insert(
                [
                    (n.owner.id, n.article.id, term, n.description.leika_key, n.article.kind is ArticleKind.SHARED)
                    for n in planned
                    for term in n.description.search_terms
                ]
            ),
        ],
    )


def _stored(new: _New) -> store.StoredObject:
    """The received object, as the one-by-one path records it."""
    description = new.description
    return store.StoredObject(
        kind="leistung",
        xzufi_id=description.xzufi_id,
        version=description.version,
        content_hash=description.content_hash + ":" + description.version,
        target_tenant_id=new.owner.id,
        article_id=new.article.id,
        department_id=None,
        leika_key=description.leika_key,
        data={"originPortal": description.origin_portal, "fields": msgspec.to_builtins(new.fields)},
        status="active",
    )
