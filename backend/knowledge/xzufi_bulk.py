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


async def import_message(uow: UnitOfWork, name: str, data: bytes) -> XzufiReport:
    """One message, read while `start` reads the operator and its towns (the reading needs
    nothing of them): here, between `start`'s statements, where a thread reading it fought this
    one for the interpreter (decision 024, branch importspeed4)."""
    starting = asyncio.ensure_future(one_by_one.start(uow))
    try:
        try:
            message, root = xzufi.open_message(data, name)
        except xzufi.XzufiRefused as refused:
            await starting  # who may not import hears that first, as before
            raise ValidationFailed(refused.message, field="body") from None
        for _ in xzufi.read_objects(message, root):
            if not starting.done():
                await asyncio.sleep(0)  # `start`'s next statement
        xzufi.drop_repeated(message)
        run = await starting
    except BaseException:
        starting.cancel()
        await asyncio.wait([starting])  # the connection free again before the transaction ends
        raise
    await one_by_one.apply_message(run, message)
    return run.counts.report()


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
    firsts: dict[str, int] = {}
    for position, description in enumerate(services):
        if description.xzufi_id not in known:
            firsts.setdefault(description.xzufi_id, position)
    if not firsts:
        return set()
    doors: dict[UUID, DomainError | None] = {}
    planned: list[_New] = []
    handled: set[int] = set()
    refused: list[XzufiProblem] = []  # reported unless the lot falls back to one by one
    for position in firsts.values():
        description = services[position]
        handled.add(position)
        try:
            planned.append(await _plan(run, description, offices, doors))
        except (DomainError, ValueError, msgspec.ValidationError) as error:
            text = str(error.message) if isinstance(error, DomainError) else str(error)
            refused.append(XzufiProblem(message_name, description.line, "leistung", description.xzufi_id, text))
    objects = [_stored(n) for n in planned]
    if planned:
        # Plans made afresh, and a savepoint: the lot or nothing. It is not released here: a
        # RELEASE alone would be one more round trip a message; the transaction's end or the next
        # message's `begin_bulk` ends it (what follows nests its own savepoints in it).
        await store.begin_bulk(uow.conn, release=run.bulk_savepoint)
        run.bulk_savepoint = True
        try:
            await _write(run, planned, objects)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
            await store.undo_bulk(uow.conn)
            run.bulk_savepoint = False
            return None  # one by one checks and reports each again
    run.counts.errors.extend(refused)
    for value in objects:
        known[value.xzufi_id] = value
    run.counts.created += len(planned)
    # No change is published for them: an article's channel is listened to only by someone who
    # could read the article, and these ids were made in this transaction (random), so before
    # the commit nobody can be subscribed, and after it a reader sees version 1 anyway.
    return handled


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
    """The new services' rows, every kind in one statement (`together`): each round trip cost
    ~0.6 ms of this process's wall clock under load (the send waking PostgreSQL; decision 024)."""
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
            store.objects_save(run.operator.id, objects, run.now, new=True),
            store.search_terms_insert(
                [
                    (
                        n.owner.id,
                        n.article.id,
                        n.description.search_terms,
                        n.description.leika_key,
                        n.article.kind is ArticleKind.SHARED,
                    )
                    for n in planned
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
        data=one_by_one.service_data(description),
        status="active",
    )
