"""The rules of the knowledge base: who sees and edits which article, the workflow, imports,
and the search agents use while the caller is on the line.

Context: every read happens for one town (the tenant the call is for). A town sees its own
articles and the shared articles of the operators serving it, with its local versions merged
in. A tenant out of reach looks like a missing one (404), as everywhere.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from auth.errors import Forbidden
from auth.permissions import Operation, may, reachable_tenants, require
from backend import clock
from backend.errors import DomainError, Duplicate, InvalidTransition, NotFound, ValidationFailed, VersionConflict
from backend.i18n import _l
from backend.knowledge import analysis, events, leika, repository
from backend.knowledge.rendering import article_html, e164
from backend.knowledge.schemas import (
    OVERRIDABLE_FIELDS,
    Article,
    ArticleChange,
    ArticleInput,
    ArticleKind,
    ArticleStatus,
    ArticleVersion,
    ArticleView,
    CatalogueReport,
    HitSource,
    ImportProblem,
    ImportReport,
    ImportRow,
    LeikaService,
    LocalVersionInput,
    SearchHit,
    SearchPage,
    SectionOverrides,
    Sections,
    Synonym,
    SynonymInput,
)
from backend.knowledge.speakable import speakable_text
from backend.state import UnitOfWork

BERLIN = ZoneInfo("Europe/Berlin")
MAX_PAGE_SIZE = 50
MAX_QUERY_LENGTH = 500
MAX_CURSOR_OFFSET = 1_000_000  # far beyond any list of hits; keeps a crafted offset in range
# Search tuning (see docs/decisions/007-knowledge-base.md): a typo correction must look this much
# like a known word; a hit is a confident answer when this share of the question's weight is
# found in its title or search terms.
TYPO_SIMILARITY = 0.5
CONFIDENT_RELEVANCE = 0.5
MIN_TITLE_COVERAGE = 0.25  # a catalogue title must not be mostly about something else
CONTEXT_WORD_SHARE = 0.5  # a known word of the question the hit does not have counts this much against it
UNKNOWN_WORD_WEIGHT = 0.5  # share of a rare word's weight that an unknown word counts for
NON_NOUN_WEIGHT = 0.7  # a word written in lower case where the caller capitalises nouns: a verb or adjective

# Who may move an article from one status to the next.
TRANSITIONS: dict[tuple[ArticleStatus, ArticleStatus], Operation] = {
    (ArticleStatus.DRAFT, ArticleStatus.IN_REVIEW): Operation.ARTICLE_WRITE,
    (ArticleStatus.IN_REVIEW, ArticleStatus.DRAFT): Operation.ARTICLE_PUBLISH,
    (ArticleStatus.IN_REVIEW, ArticleStatus.PUBLISHED): Operation.ARTICLE_PUBLISH,
    (ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED): Operation.ARTICLE_PUBLISH,
}
EDITABLE = frozenset({ArticleStatus.DRAFT, ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED})


@dataclass(frozen=True, slots=True)
class Context:
    """The town a read is for, and the operators whose shared knowledge it sees."""

    town_id: UUID
    owner_ids: list[UUID]
    town_name: str = ""


@dataclass(frozen=True, slots=True)
class ArticleState:
    """An article with its latest version (what editors work on)."""

    article: Article
    latest: ArticleVersion


async def _context(uow: UnitOfWork, operation: Operation, tenant_slug: str | None) -> Context:
    reachable = require(uow.principal, operation)
    if tenant_slug is None:
        town_id = uow.principal.tenant_id
        if town_id not in reachable:
            raise NotFound(_l("tenant not found"))
    else:
        found = await repository.tenant_id_by_slug(uow.conn, tenant_slug, list(reachable))
        if found is None:
            raise NotFound(_l("tenant not found"))
        town_id = found
    owners, name = await repository.town_context(uow.conn, town_id)
    return Context(town_id, owners, name)


async def _writable_tenant(uow: UnitOfWork, operation: Operation, tenant_slug: str | None) -> UUID:
    return (await _context(uow, operation, tenant_slug)).town_id


def _author(uow: UnitOfWork) -> str:
    return uow.principal.log_id


# ---------------------------------------------------------------------------------- catalogue


def _without_addresses(text: str) -> str:
    return re.sub(r"\[?https?://[^\s\]]+\]?", " ", text)


async def import_catalogue(uow: UnitOfWork, text: str) -> CatalogueReport:
    """Load or refresh the operator's LeiKa catalogue: new keys are added, changed ones updated,
    missing ones deactivated; nothing is duplicated."""
    reachable = require(uow.principal, Operation.CATALOGUE_IMPORT)
    owner = uow.principal.tenant_id
    if owner not in reachable or not await repository.is_operator(uow.conn, owner):
        raise ValidationFailed(_l("only an operator holds the LeiKa catalogue; sign in as its platform admin"))
    entries, problems = leika.parse_catalogue(text)
    if not entries:
        return CatalogueReport(
            rows=0,
            inserted=0,
            updated=0,
            unchanged=0,
            deactivated=0,
            errors=problems or [ImportProblem(line=1, message="no catalogue entries found")],
        )
    vocabulary = analysis.default_lexicon().vocabulary
    records = [
        repository.CatalogueRecord(
            leika_key=e.leika_key,
            name=e.name,
            typisierung=e.typisierung,
            ozg_service=e.ozg_service,
            ozg_id=e.ozg_id,
            life_situation=e.life_situation,
            legal_basis=e.legal_basis,
            parts=" ".join(analysis.compound_parts(e.name, vocabulary)),
            context=" ".join([e.ozg_service, e.life_situation, *analysis.compound_parts(e.ozg_service, vocabulary)]),
            body=" ".join(_without_addresses(e.legal_basis).split()),
        )
        for e in entries
    ]
    inserted, updated, unchanged, deactivated = await repository.merge_catalogue(uow.conn, owner, records)
    if inserted or updated or deactivated:
        await repository.rebuild_lexicon(uow.conn, owner, shared=True)
    return CatalogueReport(
        rows=len(entries),
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        deactivated=deactivated,
        errors=problems,
    )


async def leika_service(uow: UnitOfWork, leika_key: str, tenant_slug: str | None = None) -> LeikaService:
    problem = leika.leika_key_problem(leika_key)
    if problem:
        raise ValidationFailed(problem, field="leikaKey")
    ctx = await _context(uow, Operation.ARTICLE_READ, tenant_slug)
    service = await repository.find_service(uow.conn, ctx.owner_ids, leika_key)
    if service is None:
        raise NotFound(_l("no such service in the LeiKa catalogue"))
    return service


# ---------------------------------------------------------------------------------- reading


def merge_overrides(sections: Sections, overrides: SectionOverrides | None) -> tuple[Sections, list[str]]:
    """The shared sections with a town's overrides applied, and the names of the fields replaced."""
    if overrides is None:
        return sections, []
    changes = {name: getattr(overrides, name) for name in OVERRIDABLE_FIELDS if getattr(overrides, name) is not None}
    return msgspec.structs.replace(sections, **changes), sorted(changes)


def _valid_on(version: ArticleVersion, day: date) -> bool:
    return (version.valid_from is None or version.valid_from <= day) and (
        version.valid_until is None or day <= version.valid_until
    )


def render(
    article: Article,
    version: ArticleVersion,
    context_tenant_id: UUID,
    local: tuple[Article, ArticleVersion] | None = None,
) -> ArticleView:
    sections, overridden = merge_overrides(version.sections, local[1].overrides if local else None)
    title, summary = version.title or "", version.summary or ""
    rendered = article_html(title, summary, sections)
    return ArticleView(
        id=article.id,
        tenant_id=article.tenant_id,
        kind=article.kind,
        context_tenant_id=context_tenant_id,
        version=version.version,
        local_version_id=local[0].id if local else None,
        local_version=local[1].version if local else None,
        status=version.status,
        title=title,
        summary=summary,
        leika_key=version.leika_key,
        sections=sections,
        overridden_fields=overridden,
        search_terms=version.search_terms,
        review_due=version.review_due,
        valid_from=version.valid_from,
        valid_until=version.valid_until,
        html=rendered.html,
        speakable=speakable_text(title, summary, sections),
        accessibility_warnings=rendered.warnings,
        author=version.author,
        updated_at=max(version.created_at, local[1].created_at) if local else version.created_at,
    )


async def _published_local(uow: UnitOfWork, town_id: UUID, article: Article) -> tuple[Article, ArticleVersion] | None:
    if article.kind is not ArticleKind.SHARED:
        return None
    local = await repository.find_local_version(uow.conn, town_id, article.tenant_id, article.id)
    if local is None or local.published_version is None:
        return None
    return local, await repository.get_version(uow.conn, local.tenant_id, local.id, local.published_version)


async def article_for_agent(uow: UnitOfWork, article_id: UUID, tenant_slug: str | None = None) -> ArticleView:
    """What an agent answering a call for the town reads: the published version valid today,
    with the town's local version merged into a shared article."""
    ctx = await _context(uow, Operation.ARTICLE_READ, tenant_slug)
    article = await repository.find_article(uow.conn, article_id, ctx.town_id, ctx.owner_ids)
    if article is not None and article.kind is ArticleKind.LOCAL_VERSION and article.base_article_id:
        article = await repository.find_article(uow.conn, article.base_article_id, ctx.town_id, ctx.owner_ids)
    if article is None or article.published_version is None:
        raise NotFound(_l("article not found"))
    version = await repository.get_version(uow.conn, article.tenant_id, article.id, article.published_version)
    if not _valid_on(version, clock.today()):
        raise NotFound(_l("article not found"))
    return render(article, version, ctx.town_id, await _published_local(uow, ctx.town_id, article))


async def _own_article(uow: UnitOfWork, operation: Operation, article_id: UUID) -> Article:
    reachable = require(uow.principal, operation)
    article = await repository.find_own_article(uow.conn, list(reachable), article_id)
    if article is None:
        raise NotFound(_l("article not found"))
    return article


async def article_history(uow: UnitOfWork, article_id: UUID) -> tuple[Article, list[ArticleVersion]]:
    """Editors: the article and every version, newest first."""
    article = await _own_article(uow, Operation.ARTICLE_DRAFT_READ, article_id)
    return article, await repository.list_versions(uow.conn, [article.tenant_id], [article.id])


async def version_histories(uow: UnitOfWork, article_ids: list[UUID]) -> dict[UUID, list[ArticleVersion]]:
    """Editors: every version of several own articles, newest first (GraphQL batches); articles
    not visible are left out (every article has at least one version)."""
    reachable = require(uow.principal, Operation.ARTICLE_DRAFT_READ)
    grouped: dict[UUID, list[ArticleVersion]] = {}
    for version in await repository.list_versions(uow.conn, list(reachable), article_ids):
        grouped.setdefault(version.article_id, []).append(version)
    return grouped


async def preview(uow: UnitOfWork, article_id: UUID, version: int | None = None) -> ArticleView:
    """Editors: any version rendered as agents will read it (a local version: merged into the
    shared article's published version)."""
    article = await _own_article(uow, Operation.ARTICLE_DRAFT_READ, article_id)
    chosen = await repository.get_version(uow.conn, article.tenant_id, article.id, version or article.latest_version)
    if article.kind is ArticleKind.LOCAL_VERSION and article.base_tenant_id and article.base_article_id:
        owners = await repository.shared_owner_ids(uow.conn, [article.tenant_id])
        base = await repository.find_article(uow.conn, article.base_article_id, article.tenant_id, owners)
        if base is None or base.published_version is None:
            raise NotFound(_l("the shared article is not published"))
        base_version = await repository.get_version(uow.conn, base.tenant_id, base.id, base.published_version)
        return render(base, base_version, article.tenant_id, (article, chosen))
    return render(article, chosen, article.tenant_id)


async def list_articles(
    uow: UnitOfWork, status: ArticleStatus | None = None, first: int = 20, after: str | None = None
) -> tuple[list[ArticleState], str | None]:
    """Editors: their tenants' articles, most recently changed first."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            _l("first must be between 1 and {max_page_size}", max_page_size=MAX_PAGE_SIZE), field="first"
        )
    reachable = require(uow.principal, Operation.ARTICLE_DRAFT_READ)
    cursor = _decode_cursor(after, _TimeCursor)
    position = (cursor.t, cursor.i) if cursor else None
    rows = await repository.list_articles(
        uow.conn, list(reachable), status.value if status else None, position, first + 1
    )
    items = [ArticleState(a, v) for a, v in rows[:first]]
    next_cursor = None
    if len(rows) > first:
        last = items[-1].article
        next_cursor = _encode_cursor(_TimeCursor(t=last.updated_at, i=last.id))
    return items, next_cursor


# ---------------------------------------------------------------------------------- writing


def _check_dates(valid_from: date | None, valid_until: date | None) -> None:
    if valid_from and valid_until and valid_until < valid_from:
        raise ValidationFailed(_l("valid until must not be before valid from"), field="validUntil")


def _check_sections(sections: Sections | SectionOverrides) -> None:
    for contact in sections.contacts or []:
        if contact.phone and e164(contact.phone) is None:
            raise ValidationFailed(
                _l("not a valid German phone number: {phone}", phone=contact.phone), field="sections.contacts"
            )
    for hours in sections.opening_hours or []:
        if hours.closes <= hours.opens:
            raise ValidationFailed(_l("opening hours must close after they open"), field="sections.openingHours")


def _check_input(data: ArticleInput | ImportRow) -> None:
    if data.leika_key is not None:
        problem = leika.leika_key_problem(data.leika_key)
        if problem:
            raise ValidationFailed(problem, field="leikaKey")
    if not data.title.strip():
        raise ValidationFailed(_l("the title must not be blank"), field="title")
    _check_dates(data.valid_from, data.valid_until)
    _check_sections(data.sections)


async def _index(uow: UnitOfWork, article: Article, version: ArticleVersion, view: str) -> None:
    """Keep the search rows of a local or shared article in step with a version."""
    if article.kind is ArticleKind.LOCAL_VERSION:
        return
    vocabulary = analysis.default_lexicon().vocabulary
    title, summary = version.title or "", version.summary or ""
    terms = " ".join(version.search_terms)
    parts = " ".join(analysis.compound_parts(f"{title} {terms}", vocabulary))
    sections = version.sections
    body = " ".join(
        " ".join(str(getattr(sections, name)).split())
        for name in (
            "description",
            "documents",
            "fees",
            "deadlines",
            "processing_time",
            "responsible_office",
            "legal_basis",
        )
        if getattr(sections, name)
    )
    context = ""
    if version.leika_key:
        owners = await repository.shared_owner_ids(uow.conn, [article.tenant_id])
        names = await repository.service_names(uow.conn, [*owners, article.tenant_id], [version.leika_key])
        context = names.get(version.leika_key, "")
    await repository.upsert_document(
        uow.conn,
        repository.SearchDocument(
            tenant_id=article.tenant_id,
            view=view,
            doc_id=article.id,
            # Only the published view of a shared article is shared: drafts stay the operator's.
            shared=article.kind is ArticleKind.SHARED and view == "published",
            article_kind=article.kind.value,
            leika_key=version.leika_key,
            status=version.status.value,
            version=version.version,
            title=title,
            summary=summary,
            body=_markdown_to_text(body),
            terms=f"{terms} {parts}",
            context=context,
            valid_from=version.valid_from,
            valid_until=version.valid_until,
        ),
    )


def _markdown_to_text(source: str) -> str:
    text = re.sub(r"<[^>]*>", " ", source)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[*_`#>|]+", " ", text)
    return " ".join(text.split())


def _notify(uow: UnitOfWork, article: Article, version: ArticleVersion) -> None:
    change = ArticleChange(
        article_id=article.base_article_id or article.id,
        tenant_id=article.tenant_id,
        version=version.version,
        status=version.status,
        changed_at=version.created_at,
        local=article.kind is ArticleKind.LOCAL_VERSION,
    )
    channel = (
        events.local_channel(article.base_article_id, article.tenant_id)
        if article.kind is ArticleKind.LOCAL_VERSION and article.base_article_id
        else events.article_channel(article.id)
    )

    async def send() -> None:
        await events.publish(uow.redis, channel, change)

    uow.after_commit(send)


async def _add_version(
    uow: UnitOfWork,
    article: Article,
    status: ArticleStatus,
    base: ArticleVersion | None,
    *,
    content: ArticleInput | ImportRow | None = None,
    overrides: SectionOverrides | None = None,
    review_due: date | None = None,
    change_note: str = "",
) -> ArticleState:
    """A new immutable version (content from `content`, else copied from `base`) and the
    article pointed at it; the search index and subscribers follow."""
    published = article.published_version
    if status is ArticleStatus.PUBLISHED:
        published = article.latest_version + 1
    elif status is ArticleStatus.ARCHIVED:
        published = None
    moved = await repository.move_article(
        uow.conn, article.tenant_id, article.id, article.latest_version, status, published
    )
    if moved is None:
        raise VersionConflict(_l("the article was changed by someone else; reload and try again"))
    if content is not None:
        fields: dict[str, Any] = {
            "title": content.title.strip(),
            "summary": content.summary.strip(),
            "leika_key": content.leika_key,
            "sections": content.sections,
            "overrides": None,
            "search_terms": content.search_terms,
            "review_due": content.review_due,
            "valid_from": content.valid_from,
            "valid_until": content.valid_until,
        }
    elif overrides is not None:
        fields = {
            "title": None,
            "summary": None,
            "leika_key": None,
            "sections": Sections(),
            "overrides": overrides,
            "search_terms": [],
            "review_due": review_due,
            "valid_from": None,
            "valid_until": None,
        }
    else:
        assert base is not None
        fields = {
            "title": base.title,
            "summary": base.summary,
            "leika_key": base.leika_key,
            "sections": base.sections,
            "overrides": base.overrides,
            "search_terms": base.search_terms,
            "review_due": base.review_due,
            "valid_from": base.valid_from,
            "valid_until": base.valid_until,
        }
    version = await repository.insert_version(
        uow.conn,
        article.tenant_id,
        article.id,
        moved.latest_version,
        status,
        change_note=change_note,
        author=_author(uow),
        author_tenant_id=uow.principal.tenant_id,
        **fields,
    )
    await _index(uow, moved, version, "working")
    if status is ArticleStatus.PUBLISHED:
        await _index(uow, moved, version, "published")
    elif status is ArticleStatus.ARCHIVED and moved.kind is not ArticleKind.LOCAL_VERSION:
        await repository.delete_document(uow.conn, moved.tenant_id, "published", moved.id)
    _notify(uow, moved, version)
    return ArticleState(moved, version)


async def create_article(
    uow: UnitOfWork,
    data: ArticleInput,
    shared: bool = False,
    tenant_slug: str | None = None,
    external_id: str | None = None,
) -> ArticleState:
    """A new local article of the tenant (or, for an operator, a shared one), as a draft."""
    tenant_id = await _writable_tenant(uow, Operation.ARTICLE_WRITE, tenant_slug)
    _check_input(data)
    if shared and not await repository.is_operator(uow.conn, tenant_id):
        raise ValidationFailed(_l("only an operator writes shared articles"), field="shared")
    kind = ArticleKind.SHARED if shared else ArticleKind.LOCAL
    try:
        async with uow.conn.transaction():
            article = await repository.insert_article(
                uow.conn, tenant_id, uuid4(), kind.value, None, None, external_id, _author(uow)
            )
    except asyncpg.UniqueViolationError:
        raise Duplicate(_l("an article with this external id already exists"), field="externalId") from None
    version = await repository.insert_version(
        uow.conn,
        tenant_id,
        article.id,
        1,
        ArticleStatus.DRAFT,
        data.title.strip(),
        data.summary.strip(),
        data.leika_key,
        data.sections,
        None,
        data.search_terms,
        data.review_due,
        data.valid_from,
        data.valid_until,
        data.change_note,
        _author(uow),
        uow.principal.tenant_id,
    )
    await _index(uow, article, version, "working")
    _notify(uow, article, version)
    return ArticleState(article, version)


def _check_version(article: Article, expected_version: int) -> None:
    """Optimistic concurrency: every change names the version it was based on (decision 007)."""
    if expected_version != article.latest_version:
        raise VersionConflict(
            _l(
                "the article is at version {latest_version}, not {expected_version}; reload it",
                latest_version=article.latest_version,
                expected_version=expected_version,
            )
        )


async def _editable(uow: UnitOfWork, article_id: UUID, expected_version: int) -> tuple[Article, ArticleVersion]:
    article = await _own_article(uow, Operation.ARTICLE_WRITE, article_id)
    _check_version(article, expected_version)
    if article.status not in EDITABLE:
        raise InvalidTransition(_l("the article is in review; return it to draft before changing it"))
    latest = await repository.get_version(uow.conn, article.tenant_id, article.id, article.latest_version)
    return article, latest


async def update_article(uow: UnitOfWork, article_id: UUID, data: ArticleInput, expected_version: int) -> ArticleState:
    """A new draft version. The published version stays what agents see until the draft is published."""
    _check_input(data)
    article, latest = await _editable(uow, article_id, expected_version)
    if article.kind is ArticleKind.LOCAL_VERSION:
        raise ValidationFailed(_l("this is a local version; change its overrides instead"))
    return await _add_version(uow, article, ArticleStatus.DRAFT, latest, content=data, change_note=data.change_note)


async def create_local_version(
    uow: UnitOfWork, shared_article_id: UUID, data: LocalVersionInput, tenant_slug: str | None = None
) -> ArticleState:
    """A town's own fees, opening hours, office and contacts for a shared article."""
    town_id = await _writable_tenant(uow, Operation.ARTICLE_WRITE, tenant_slug)
    _check_sections(data.overrides)
    owners = await repository.shared_owner_ids(uow.conn, [town_id])
    base = await repository.find_article(uow.conn, shared_article_id, town_id, owners)
    if base is None or base.kind is not ArticleKind.SHARED or base.tenant_id == town_id:
        raise NotFound(_l("shared article not found"))
    if await repository.find_local_version(uow.conn, town_id, base.tenant_id, base.id) is not None:
        raise Duplicate(_l("this town already has a local version of the article; change that one"))
    article = await repository.insert_article(
        uow.conn, town_id, uuid4(), ArticleKind.LOCAL_VERSION.value, base.tenant_id, base.id, None, _author(uow)
    )
    version = await repository.insert_version(
        uow.conn,
        town_id,
        article.id,
        1,
        ArticleStatus.DRAFT,
        None,
        None,
        None,
        Sections(),
        data.overrides,
        [],
        data.review_due,
        None,
        None,
        data.change_note,
        _author(uow),
        uow.principal.tenant_id,
    )
    _notify(uow, article, version)
    return ArticleState(article, version)


async def shared_article_id(uow: UnitOfWork, operator_id: UUID, external_id: str) -> UUID | None:
    """The id of an operator's shared article imported with `external_id` (if visible)."""
    require(uow.principal, Operation.ARTICLE_READ)
    article = await repository.find_article_by_external_id(uow.conn, operator_id, external_id)
    return article.id if article is not None and article.kind is ArticleKind.SHARED else None


async def has_local_version(uow: UnitOfWork, shared_article_id: UUID) -> bool:
    """Whether the principal's own tenant has a local version of the shared article."""
    town_id = uow.principal.tenant_id
    owners = await repository.shared_owner_ids(uow.conn, [town_id])
    base = await repository.find_article(uow.conn, shared_article_id, town_id, owners)
    if base is None:
        return False
    return await repository.find_local_version(uow.conn, town_id, base.tenant_id, base.id) is not None


async def update_local_version(
    uow: UnitOfWork, article_id: UUID, data: LocalVersionInput, expected_version: int
) -> ArticleState:
    _check_sections(data.overrides)
    article, latest = await _editable(uow, article_id, expected_version)
    if article.kind is not ArticleKind.LOCAL_VERSION:
        raise ValidationFailed(_l("this is not a local version"))
    return await _add_version(
        uow,
        article,
        ArticleStatus.DRAFT,
        latest,
        overrides=data.overrides,
        review_due=data.review_due,
        change_note=data.change_note,
    )


async def change_status(
    uow: UnitOfWork, article_id: UUID, to: ArticleStatus, expected_version: int, note: str = ""
) -> ArticleState:
    """Move an article along draft → in review → published → archived (or back from review)."""
    if not (may(uow.principal, Operation.ARTICLE_WRITE) or may(uow.principal, Operation.ARTICLE_PUBLISH)):
        raise Forbidden()
    reachable = reachable_tenants(uow.principal, Operation.ARTICLE_WRITE) | reachable_tenants(
        uow.principal, Operation.ARTICLE_PUBLISH
    )
    article = await repository.find_own_article(uow.conn, list(reachable), article_id)
    if article is None:
        raise NotFound(_l("article not found"))
    operation = TRANSITIONS.get((article.status, to))
    if operation is None:
        raise InvalidTransition(
            _l("an article cannot go from {status} to {target}", status=article.status.value, target=to.value)
        )
    if article.tenant_id not in require(uow.principal, operation):
        raise NotFound(_l("article not found"))
    _check_version(article, expected_version)
    latest = await repository.get_version(uow.conn, article.tenant_id, article.id, article.latest_version)
    if to is ArticleStatus.PUBLISHED and article.kind is ArticleKind.LOCAL_VERSION:
        owners = await repository.shared_owner_ids(uow.conn, [article.tenant_id])
        if (
            article.base_article_id is None
            or await repository.find_article(uow.conn, article.base_article_id, article.tenant_id, owners) is None
        ):
            raise NotFound(_l("shared article not found"))
    return await _add_version(uow, article, to, latest, change_note=note)


# ---------------------------------------------------------------------------------- import


def parse_import(text: str) -> list[tuple[int, ImportRow | None, ImportProblem | None]]:
    """Rows of a JSON import: JSON Lines (one article a line) or a JSON array. Each row comes
    with the line it starts on and either the row or what is wrong with it."""
    stripped = text.lstrip()
    result: list[tuple[int, ImportRow | None, ImportProblem | None]] = []
    if stripped.startswith("["):
        decoder = json.JSONDecoder()
        position = text.index("[") + 1
        while True:
            while position < len(text) and text[position] in " \t\r\n,":
                position += 1
            if position >= len(text) or text[position] == "]":
                break
            line = text.count("\n", 0, position) + 1
            try:
                value, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as error:
                result.append((line, None, ImportProblem(line=line, message=f"not JSON: {error.msg}")))
                break
            result.append(_import_row(line, value))
        return result
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            result.append((number, None, ImportProblem(line=number, message=f"not JSON: {error.msg}")))
            continue
        result.append(_import_row(number, value))
    return result


def _import_row(line: int, value: object) -> tuple[int, ImportRow | None, ImportProblem | None]:
    try:
        return line, msgspec.convert(value, ImportRow), None
    except msgspec.ValidationError as error:
        message = str(error)
        field = None
        if " - at `$." in message:
            message, _, path = message.partition(" - at `$.")
            field = path.rstrip("`")
        return line, None, ImportProblem(line=line, message=message, field=field)


def _same_content(version: ArticleVersion, row: ImportRow) -> bool:
    return (
        version.title,
        version.summary,
        version.leika_key,
        version.sections,
        version.search_terms,
        version.review_due,
        version.valid_from,
        version.valid_until,
    ) == (
        row.title.strip(),
        row.summary.strip(),
        row.leika_key,
        row.sections,
        row.search_terms,
        row.review_due,
        row.valid_from,
        row.valid_until,
    )


async def _publish_now(uow: UnitOfWork, state: ArticleState) -> ArticleState:
    if state.article.status is ArticleStatus.DRAFT:
        state = await change_status(
            uow, state.article.id, ArticleStatus.IN_REVIEW, state.article.latest_version, note="import"
        )
    return await change_status(uow, state.article.id, ArticleStatus.PUBLISHED, state.article.latest_version, "import")


async def import_articles(
    uow: UnitOfWork, text: str, publish: bool = False, tenant_slug: str | None = None
) -> ImportReport:
    """Articles from another system. A row's `externalId` identifies it: a re-import updates the
    article (a new version when something changed), never duplicates it. Good rows are taken,
    bad rows are reported with their line and change nothing."""
    tenant_id = await _writable_tenant(uow, Operation.ARTICLE_IMPORT, tenant_slug)
    if tenant_id not in require(uow.principal, Operation.ARTICLE_WRITE):
        raise NotFound(_l("tenant not found"))
    if publish and tenant_id not in require(uow.principal, Operation.ARTICLE_PUBLISH):
        raise NotFound(_l("tenant not found"))
    rows = parse_import(text)
    if not rows:
        raise ValidationFailed(_l("the import is empty: send JSON Lines or a JSON array of articles"))
    created = updated = unchanged = 0
    errors: list[ImportProblem] = []
    slug = await uow.conn.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant_id)
    for line, row, problem in rows:
        if row is None:
            assert problem is not None
            errors.append(problem)
            continue
        try:
            async with uow.conn.transaction():  # savepoint: a bad row leaves nothing behind
                outcome = await _import_one(uow, row, publish, slug, tenant_id)
        except DomainError as error:
            errors.append(
                ImportProblem(
                    line=line,
                    message=str(error.message),
                    field=getattr(error, "field", None) or error.data.get("field"),
                )
            )
            continue
        created += outcome == "created"
        updated += outcome == "updated"
        unchanged += outcome == "unchanged"
    return ImportReport(created=created, updated=updated, unchanged=unchanged, errors=errors)


async def _import_one(uow: UnitOfWork, row: ImportRow, publish: bool, slug: str, tenant_id: UUID) -> str:
    data = ArticleInput(
        title=row.title,
        summary=row.summary,
        leika_key=row.leika_key,
        sections=row.sections,
        search_terms=row.search_terms,
        review_due=row.review_due,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        change_note="import",
    )
    existing = await repository.find_article_by_external_id(uow.conn, tenant_id, row.external_id)
    if existing is None:
        state = await create_article(uow, data, shared=row.shared, tenant_slug=slug, external_id=row.external_id)
        if publish:
            await _publish_now(uow, state)
        return "created"
    if (existing.kind is ArticleKind.SHARED) != row.shared:
        raise ValidationFailed(_l("an imported article cannot change between local and shared"), field="shared")
    latest = await repository.get_version(uow.conn, tenant_id, existing.id, existing.latest_version)
    content_same = _same_content(latest, row)
    if content_same and (not publish or existing.status is ArticleStatus.PUBLISHED):
        return "unchanged"
    state = ArticleState(existing, latest)
    if not content_same or existing.status is ArticleStatus.ARCHIVED:
        if existing.status is ArticleStatus.IN_REVIEW:
            state = await change_status(uow, existing.id, ArticleStatus.DRAFT, existing.latest_version, note="import")
        state = await update_article(uow, existing.id, data, state.article.latest_version)
    if publish:
        await _publish_now(uow, state)
    return "updated"


# ---------------------------------------------------------------------------------- synonyms


async def synonyms(uow: UnitOfWork, tenant_slug: str | None = None) -> list[Synonym]:
    """The tenant's own synonyms and those of the operators serving it."""
    ctx = await _context(uow, Operation.ARTICLE_READ, tenant_slug)
    return await repository.list_synonyms(uow.conn, ctx.town_id, ctx.owner_ids)


async def set_synonym(uow: UnitOfWork, data: SynonymInput, tenant_slug: str | None = None) -> Synonym:
    tenant_id = await _writable_tenant(uow, Operation.SYNONYM_WRITE, tenant_slug)
    term = " ".join(data.term.split())
    values = list(dict.fromkeys(" ".join(s.split()) for s in data.synonyms if s.strip()))
    if not analysis.words(term):
        raise ValidationFailed(_l("the term needs at least one word"), field="term")
    if not values or not all(analysis.words(v) for v in values):
        raise ValidationFailed(_l("every synonym needs at least one word"), field="synonyms")
    return await repository.upsert_synonym(uow.conn, tenant_id, uuid4(), term, values, _author(uow))


async def remove_synonym(uow: UnitOfWork, synonym_id: UUID, tenant_slug: str | None = None) -> None:
    tenant_id = await _writable_tenant(uow, Operation.SYNONYM_WRITE, tenant_slug)
    if not await repository.delete_synonym(uow.conn, tenant_id, synonym_id):
        raise NotFound(_l("synonym not found"))


# ---------------------------------------------------------------------------------- search


class _Cursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A position in a list as handed out in `nextCursor` (JSON, base64url): each list reads
    back only its own kind, with typed fields, so a crafted cursor is a validation error."""


CursorT = TypeVar("CursorT", bound=_Cursor)


class _TimeCursor(_Cursor, frozen=True):
    """Editors' article list: after this (updated at, id)."""

    t: Annotated[datetime, msgspec.Meta(tz=True)]
    i: UUID

    def __post_init__(self) -> None:
        try:
            self.t.astimezone(UTC)  # what the driver does; out of range near year 1 or 9999
        except (OverflowError, ValueError):
            raise ValueError("time out of range") from None


class _OffsetCursor(_Cursor, frozen=True):
    """Search by LeiKa key: after this many hits."""

    o: Annotated[int, msgspec.Meta(ge=0, le=MAX_CURSOR_OFFSET)]


class _ScoreCursor(_Cursor, frozen=True):
    """Search in words: after this (score, document id)."""

    s: float
    i: UUID

    def __post_init__(self) -> None:
        if not math.isfinite(self.s):
            raise ValueError("score out of range")


def _encode_cursor(value: _Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


def _decode_cursor(cursor: str | None, kind: type[CursorT]) -> CursorT | None:
    """The cursor of this list, or None for the first page; ValidationFailed (field `after`)
    for anything this list did not hand out."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError):  # ValidationError is a DecodeError
        raise ValidationFailed(_l("not a cursor of this list"), field="after") from None


def _idf(documents: int, frequency: int) -> float:
    return math.log(1 + (documents + 1) / (frequency + 0.5))


PRIMARY_ORIGINS = frozenset({"query", "variant", "synonym"})
RELATED_ORIGINS = frozenset({"synonym", "compound", "derived", "unparticled"})  # count 0.9 of what was said


@dataclass(slots=True)
class _Resolved:
    """A concept ready for SQL: alternatives as lexemes (each alternative's lexemes all match)."""

    label: str
    exact: list[list[str]]  # what was said and its spellings
    synonym: list[list[str]]  # synonyms, its noun, its compound parts
    weak: list[list[str]]  # prefixes
    weight: float
    topic: bool
    shown: list[str]
    typo: bool = False

    @property
    def strong(self) -> list[list[str]]:
        return self.exact + self.synonym


def _alternative_lexemes(
    alternative: analysis.Alternative, found: dict[str, list[tuple[str, int]]]
) -> tuple[list[str], int] | None:
    """The lexemes of an alternative (all must match) and its frequency; None when a word of it
    does not occur in what the town sees."""
    lexemes: list[str] = []
    frequency: int | None = None
    for word in alternative.words:
        entries = found.get(word, [])  # none: a stop word of the index
        if not entries and alternative.origin == "compound":
            return None  # every part of a compound counts
        for lexeme, ndoc in entries:
            if ndoc <= 0:
                return None
            lexemes.append(lexeme)
            frequency = ndoc if frequency is None else min(frequency, ndoc)
    if not lexemes or frequency is None:
        return None
    return list(dict.fromkeys(lexemes)), frequency


def _resolve(
    concept: analysis.Concept,
    found: dict[str, list[tuple[str, int]]],
    documents: int,
    lexicon: analysis.Lexicon,
    depth: int = 0,
) -> list[_Resolved]:
    exact: list[list[str]] = []
    synonym: list[list[str]] = []
    primary: list[int] = []
    secondary: list[int] = []
    shown: list[str] = []
    for alternative in concept.strong:
        resolved = _alternative_lexemes(alternative, found)
        if resolved is None:
            continue
        lexemes, frequency = resolved
        (primary if alternative.origin in PRIMARY_ORIGINS else secondary).append(frequency)
        if lexemes not in exact and lexemes not in synonym:
            (synonym if alternative.origin in RELATED_ORIGINS else exact).append(lexemes)
            shown.append(" ".join(alternative.words))
    if not primary and concept.parts and depth < 2:
        # An unknown compound: its parts, each a concept of its own sharing the compound's weight.
        parts = [
            r
            for part in concept.parts
            for r in _resolve(analysis.word_concept(part, lexicon), found, documents, lexicon, depth + 1)
        ]
        if any(r.strong for r in parts):
            for r in parts:
                r.weight /= len(concept.parts)
            return parts
    weak = []
    for alternative in concept.weak:
        if alternative.origin == "prefix":
            stems = [lexeme for lexeme, _ in found.get(alternative.words[0], [])]
            weak.extend([[stem + ":*"] for stem in stems if len(stem) >= 6])
    # How telling the concept is: as common as its broadest alternative.
    frequencies = primary or secondary
    weight = _idf(documents, max(frequencies)) if frequencies else 0.0
    if not concept.noun:
        weight *= NON_NOUN_WEIGHT
    return [_Resolved(concept.label, exact, synonym, weak, weight, concept.topic, shown)]


def _query_text(groups: Sequence[Sequence[str]]) -> str | None:
    return analysis.any_of(
        [
            [analysis.tsquery_term(t[:-2], True) if t.endswith(":*") else analysis.tsquery_term(t) for t in group]
            for group in groups
        ]
    )


def _snippet(raw: str | None) -> tuple[str, str]:
    text = raw or ""
    marked = html.escape(text, quote=False).replace("\x02", "<mark>").replace("\x03", "</mark>")
    return marked, text.replace("\x02", "").replace("\x03", "")


@dataclass(frozen=True, slots=True)
class Judgement:
    relevance: float
    confident: bool


def judge(
    concepts: Sequence[_Resolved],
    unknown: float,
    strong: Sequence[float],
    weak: Sequence[float],
    title_words: int,
    title_found: int,
    is_article: bool,
) -> Judgement:
    """How well one hit answers the question.

    relevance: the weight of the question's words found in the hit's title or search terms, over
    that plus the words not found — a known word not found counts half (callers add circumstances:
    "the lamp in front of our house"), a word no document knows counts as `unknown` says.
    confident: a word naming a service (not only "apply", "lost" …) is in the title or search terms
    as said (not only as a prefix or a guessed correction), relevance reaches CONFIDENT_RELEVANCE,
    and the match is not one word lost in a long catalogue title.
    """
    found = missing = 0.0
    for concept, s, w in zip(concepts, strong, weak, strict=True):
        if max(s, w) >= 0.6:
            found += concept.weight
        else:
            missing += concept.weight
    total = found + CONTEXT_WORD_SHARE * missing + unknown
    relevance = found / total if total > 0 else 0.0
    topical = any(c.topic and not c.typo and s >= 0.8 for c, s in zip(concepts, strong, strict=True))
    covered = is_article or title_found / max(title_words, 1) >= MIN_TITLE_COVERAGE
    return Judgement(relevance, topical and covered and relevance >= CONFIDENT_RELEVANCE)


def _hit(row: asyncpg.Record, judgement: Judgement) -> SearchHit:
    snippet, snippet_text = _snippet(row["snippet"])
    kind = row["article_kind"]
    return SearchHit(
        source=HitSource(row["source"]),
        id=row["doc_id"],
        tenant_id=row["tenant_id"],
        kind=ArticleKind(kind) if kind else None,
        leika_key=row["leika_key"],
        title=row["title"],
        summary=row["summary"],
        status=ArticleStatus(row["status"]),
        snippet=snippet,
        snippet_text=snippet_text,
        score=round(float(row.get("final") or 0.0), 4),
        relevance=round(judgement.relevance, 3),
        confident=judgement.confident,
        has_local_version=bool(row["has_local_version"]),
    )


async def search(
    uow: UnitOfWork,
    query: str,
    tenant_slug: str | None = None,
    first: int = 10,
    after: str | None = None,
    leika_group: str | None = None,
    status: ArticleStatus | None = None,
    sources: Sequence[HitSource] | None = None,
) -> SearchPage:
    """The search agents use while the caller is on the line, for the town the call is for.

    Without `status`: published articles valid today and the LeiKa catalogue. With `status`
    (editors only): the tenant's own articles at their latest version in that status.
    """
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            _l("first must be between 1 and {max_page_size}", max_page_size=MAX_PAGE_SIZE), field="first"
        )
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationFailed(
            _l("the question is longer than {max_query_length} characters", max_query_length=MAX_QUERY_LENGTH),
            field="query",
        )
    if leika_group is not None and not re.fullmatch(r"[0-9]{3}", leika_group):
        raise ValidationFailed(_l("a LeiKa group has three digits"), field="leikaGroup")
    operation = Operation.ARTICLE_DRAFT_READ if status is not None else Operation.ARTICLE_READ
    ctx = await _context(uow, operation, tenant_slug)
    view = "working" if status is not None else "published"
    wanted = [s.value for s in (sources or list(HitSource))]
    if status is not None:
        wanted = [HitSource.ARTICLE.value]
    today = clock.today()
    own = await repository.list_synonyms(uow.conn, ctx.town_id, ctx.owner_ids)
    lexicon = (
        analysis.default_lexicon()
        .with_rules(analysis.rules_from((s.term, s.synonyms) for s in own))
        .with_stopwords(analysis.words(ctx.town_name))
    )  # "in Soest" says nothing on a Soest call
    plan = analysis.analyse(query, lexicon)

    key = plan.leika_key or (plan.leika_prefix if not plan.concepts else None)
    # A LeiKa key pages by offset, words by (score, id): each reads back only its own cursor.
    by_offset = _decode_cursor(after, _OffsetCursor) if key else None
    cursor = None if key else _decode_cursor(after, _ScoreCursor)
    if key:
        offset = by_offset.o if by_offset else 0
        rows = await repository.search_by_key(
            uow.conn,
            ctx.town_id,
            ctx.owner_ids,
            view,
            key,
            today,
            status.value if status else None,
            wanted,
            offset,
            first + 1,
        )
        items = [_hit(r, Judgement(1.0, True)) for r in rows[:first]]
        more = _encode_cursor(_OffsetCursor(o=offset + first)) if len(rows) > first else None
        return SearchPage(
            items=items, next_cursor=more, confident=bool(items), interpreted_as=[f"LeiKa {key}"], aspects=plan.aspects
        )

    words: set[str] = set()
    for concept in plan.concepts:
        words |= concept.all_words()
        for part in concept.parts:
            words |= analysis.word_concept(part, lexicon).all_words()
    found, documents = await repository.lexicon_lookup(uow.conn, ctx.town_id, ctx.owner_ids, sorted(words))
    resolved = [r for concept in plan.concepts for r in _resolve(concept, found, documents, lexicon)]
    await _correct_typos(uow, ctx, resolved, found, documents)

    max_weight = _idf(documents, 0)
    for r in resolved:
        if not r.strong and r.weak and r.weight == 0:
            r.weight = 0.5 * max_weight  # a prefix only: counts, but less than a known word
    searchable = [r for r in resolved if r.strong or r.weak]
    unknown = sum(UNKNOWN_WORD_WEIGHT * max_weight for r in resolved if not (r.strong or r.weak))
    interpreted = [
        f"{r.label} → {', '.join(r.shown)}" if r.shown and r.shown != [r.label] else r.label for r in searchable
    ]
    if not searchable:
        return SearchPage(items=[], next_cursor=None, confident=False, interpreted_as=interpreted, aspects=plan.aspects)
    exact_texts = [_query_text(r.exact) for r in searchable]
    synonym_texts = [_query_text(r.synonym) for r in searchable]
    weak_texts = [_query_text(r.weak) for r in searchable]
    any_query = " | ".join(f"({t})" for t in [*exact_texts, *synonym_texts, *weak_texts] if t)
    lexemes = sorted({lexeme for r in searchable for group in r.strong for lexeme in group})
    params = repository.SearchParams(
        town_id=ctx.town_id,
        owner_ids=ctx.owner_ids,
        view=view,
        exact=exact_texts,
        synonym=synonym_texts,
        weak=weak_texts,
        weights=[r.weight for r in searchable],
        any_query=any_query,
        lexemes=lexemes,
        today=today,
        leika_group=leika_group,
        status=status.value if status else None,
        sources=wanted,
        after_score=cursor.s if cursor else None,
        after_id=cursor.i if cursor else None,
        limit=first + 1,
    )
    rows = await repository.search(uow.conn, params)
    items = [
        _hit(
            r,
            judge(
                searchable,
                unknown,
                r["strong_factors"],
                r["weak_factors"],
                int(r["title_words"]),
                int(r["title_found"]),
                r["source"] == HitSource.ARTICLE.value,
            ),
        )
        for r in rows[:first]
    ]
    next_cursor = None
    if len(rows) > first:
        last = rows[first - 1]
        next_cursor = _encode_cursor(_ScoreCursor(s=float(last["final"]), i=last["doc_id"]))
    confident = bool(items) and items[0].confident if cursor is None else any(i.confident for i in items)
    return SearchPage(
        items=items, next_cursor=next_cursor, confident=confident, interpreted_as=interpreted, aspects=plan.aspects
    )


async def _correct_typos(
    uow: UnitOfWork, ctx: Context, resolved: list[_Resolved], found: dict[str, list[tuple[str, int]]], documents: int
) -> None:
    """A word nothing knows is compared with the known words (trigram similarity); a close one
    with the same first letter is searched instead, weighted by how close it is."""
    unknown = {
        r.label: lexeme
        for r in resolved
        if not r.strong and len(r.label) >= 5
        for lexeme, _ in found.get(r.label, [])[:1]
    }
    if not unknown:
        return
    similar = await repository.similar_lexemes(
        uow.conn, ctx.town_id, ctx.owner_ids, sorted(set(unknown.values())), TYPO_SIMILARITY
    )
    for r in resolved:
        stem = unknown.get(r.label)
        if stem is None:
            continue
        candidates = [
            (lexeme, similarity, ndoc)
            for lexeme, similarity, ndoc in similar.get(stem, [])
            if lexeme[:1] == stem[:1] and abs(len(lexeme) - len(stem)) <= 3
        ]
        if not candidates:
            continue
        lexeme, similarity, ndoc = candidates[0]
        r.exact.append([lexeme])
        r.typo = True
        r.weight = _idf(documents, ndoc) * similarity
        r.shown.append(f"{lexeme}?")


# ---------------------------------------------------------------------------------- live updates


AGENT_VISIBLE = frozenset({ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED})


@dataclass(frozen=True, slots=True)
class ArticleFeed:
    """What one subscriber of an article hears: its channels, and whose drafts it may hear of."""

    channels: list[str]
    draft_tenants: frozenset[UUID]

    def shows(self, change: ArticleChange) -> bool:
        """Changes agents see (published, archived) for everyone; any other step only of a
        tenant whose drafts the subscriber may read (a town's local version on the shared
        article's local channel is that town's, not the operator's)."""
        return change.status in AGENT_VISIBLE or change.tenant_id in self.draft_tenants


async def article_feed(
    uow: UnitOfWork, article_id: UUID, tenant_slug: str | None = None, include_drafts: bool = False
) -> ArticleFeed:
    """The channels an agent with the article open (for a town) listens on; 404 when not visible.
    Changes of drafts only for those who may read the article's drafts: 403 without any right
    to read drafts, 404 when the article is another tenant's (a town never hears of the
    operator's drafts of a shared article, as `editorArticle` does not show them)."""
    draft_tenants = require(uow.principal, Operation.ARTICLE_DRAFT_READ) if include_drafts else frozenset()
    ctx = await _context(uow, Operation.ARTICLE_READ, tenant_slug)
    article = await repository.find_article(uow.conn, article_id, ctx.town_id, ctx.owner_ids)
    if article is None or (include_drafts and article.tenant_id not in draft_tenants):
        raise NotFound(_l("article not found"))
    channels = [events.article_channel(article.id)]
    if article.kind is ArticleKind.SHARED:
        channels.append(events.local_channel(article.id, ctx.town_id))
    return ArticleFeed(channels, draft_tenants)
