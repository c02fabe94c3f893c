"""The rules of articles: who sees and edits which article, and the workflow from draft to
archive. The search agents use is in `search`, imports in `importing`.

Every read happens for one town (the tenant the call is for, `context.town_context`): it sees
its own articles and the shared articles of the operators serving it, with its local versions
merged in. A tenant out of reach looks like a missing one (404), as everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from uuid import UUID, uuid4

import asyncpg
import msgspec

from auth.permissions import Operation
from backend import clock
from backend.errors import Duplicate, InvalidTransition, NotFound, ValidationFailed, VersionConflict
from backend.i18n import _l
from backend.knowledge import analysis, catalogue_repository, events, leika, meaning, repository, search_repository
from backend.knowledge.context import reachable_for_any, town_context
from backend.knowledge.cursors import TimeCursor, check_page_size, decode_cursor, encode_cursor
from backend.knowledge.rendering import article_html, e164
from backend.knowledge.schemas import (
    OVERRIDABLE_FIELDS,
    Article,
    ArticleChange,
    ArticleContent,
    ArticleInput,
    ArticleKind,
    ArticleState,
    ArticleStatus,
    ArticleVersion,
    ArticleView,
    LocalVersionInput,
    NewVersion,
    SectionOverrides,
    Sections,
    Synonym,
    SynonymInput,
    VersionBody,
    version_body,
)
from backend.knowledge.speakable import speakable_text
from backend.state import UnitOfWork
from backend.tenants import reach

# Who may move an article from one status to the next.
TRANSITIONS: dict[tuple[ArticleStatus, ArticleStatus], Operation] = {
    (ArticleStatus.DRAFT, ArticleStatus.IN_REVIEW): Operation.ARTICLE_WRITE,
    (ArticleStatus.IN_REVIEW, ArticleStatus.DRAFT): Operation.ARTICLE_PUBLISH,
    (ArticleStatus.IN_REVIEW, ArticleStatus.PUBLISHED): Operation.ARTICLE_PUBLISH,
    (ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED): Operation.ARTICLE_PUBLISH,
}
EDITABLE = frozenset({ArticleStatus.DRAFT, ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED})


def _author(uow: UnitOfWork) -> str:
    return uow.principal.log_id


def _state(article: Article, latest: ArticleVersion) -> ArticleState:
    return ArticleState(**msgspec.structs.asdict(article), latest=latest)


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
    ctx = await town_context(uow, Operation.ARTICLE_READ, tenant_slug)
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
    reachable = reach.reachable(uow, operation)
    article = await repository.find_own_article(uow.conn, list(reachable), article_id)
    if article is None:
        raise NotFound(_l("article not found"))
    return article


async def article_state(uow: UnitOfWork, article_id: UUID) -> ArticleState:
    """Editors: one of their articles with its latest version (`version_histories` has them all)."""
    article = await _own_article(uow, Operation.ARTICLE_DRAFT_READ, article_id)
    latest = await repository.get_version(uow.conn, article.tenant_id, article.id, article.latest_version)
    return _state(article, latest)


async def version_histories(uow: UnitOfWork, article_ids: list[UUID]) -> dict[UUID, list[ArticleVersion]]:
    """Editors: every version of several own articles, newest first (GraphQL batches); articles
    not visible are left out (every article has at least one version)."""
    reachable = reach.reachable(uow, Operation.ARTICLE_DRAFT_READ)
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
    check_page_size(first)
    reachable = reach.reachable(uow, Operation.ARTICLE_DRAFT_READ)
    cursor = decode_cursor(after, TimeCursor)
    position = (cursor.t, cursor.i) if cursor else None
    rows = await repository.list_articles(
        uow.conn, list(reachable), status.value if status else None, position, first + 1
    )
    items = [_state(a, v) for a, v in rows[:first]]
    next_cursor = None
    if len(rows) > first:
        last = items[-1]
        next_cursor = encode_cursor(TimeCursor(t=last.updated_at, i=last.id))
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


def _check_content(data: ArticleContent) -> None:
    if data.leika_key is not None:
        problem = leika.leika_key_problem(data.leika_key)
        if problem:
            raise ValidationFailed(problem, field="leikaKey")
    if not data.title.strip():
        raise ValidationFailed(_l("the title must not be blank"), field="title")
    _check_dates(data.valid_from, data.valid_until)
    _check_sections(data.sections)


def check_article_content(data: ArticleContent) -> None:
    """The checks `create_article` makes of a content, for a writer that adds articles in bulk
    (the XZuFi import, `xzufi_bulk`)."""
    _check_content(data)


def search_document(
    article: Article, version: ArticleVersion, view: str, context: str
) -> search_repository.SearchDocument:
    """The search row of a local or shared article's version in a view; `context` is the name of
    its LeiKa service. One place for the one-by-one path (`_index`) and the bulk import."""
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
    return search_repository.SearchDocument(
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
    )


async def _index(uow: UnitOfWork, article: Article, version: ArticleVersion, view: str) -> None:
    """Keep the search rows of a local or shared article in step with a version."""
    if article.kind is ArticleKind.LOCAL_VERSION:
        return
    context = ""
    if version.leika_key:
        owners = await repository.shared_owner_ids(uow.conn, [article.tenant_id])
        names = await catalogue_repository.service_names(uow.conn, [*owners, article.tenant_id], [version.leika_key])
        context = names.get(version.leika_key, "")
    await search_repository.upsert_document(uow.conn, search_document(article, version, view, context))
    if view == "published":
        await meaning.refresh(uow.conn, article.tenant_id, [article.id])
        meaning.changed(uow)


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
    uow: UnitOfWork, article: Article, status: ArticleStatus, body: VersionBody, change_note: str = ""
) -> ArticleState:
    """A new immutable version saying `body` and the article pointed at it; the search index and
    subscribers follow."""
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
    version = await repository.insert_version(
        uow.conn, _new_version(uow, moved, moved.latest_version, status, body, change_note)
    )
    await _index(uow, moved, version, "working")
    if status is ArticleStatus.PUBLISHED:
        await _index(uow, moved, version, "published")
    elif status is ArticleStatus.ARCHIVED and moved.kind is not ArticleKind.LOCAL_VERSION:
        await search_repository.delete_document(uow.conn, moved.tenant_id, "published", moved.id)
        meaning.changed(uow)  # its vector went with its search row
    _notify(uow, moved, version)
    return _state(moved, version)


def _new_version(
    uow: UnitOfWork, article: Article, number: int, status: ArticleStatus, body: VersionBody, change_note: str
) -> NewVersion:
    return NewVersion(
        **msgspec.structs.asdict(body),
        tenant_id=article.tenant_id,
        article_id=article.id,
        version=number,
        status=status,
        change_note=change_note,
        author=_author(uow),
        author_tenant_id=uow.principal.tenant_id,
    )


async def create_article(
    uow: UnitOfWork,
    data: ArticleInput,
    shared: bool = False,
    tenant_slug: str | None = None,
    external_id: str | None = None,
) -> ArticleState:
    """A new local article of the tenant (or, for an operator, a shared one), as a draft."""
    ctx = await town_context(uow, Operation.ARTICLE_WRITE, tenant_slug)
    _check_content(data)
    if shared and not ctx.town.is_operator:
        raise ValidationFailed(_l("only an operator writes shared articles"), field="shared")
    kind = ArticleKind.SHARED if shared else ArticleKind.LOCAL
    try:
        async with uow.conn.transaction():
            article = await repository.insert_article(
                uow.conn, ctx.town_id, uuid4(), kind.value, None, None, external_id, _author(uow)
            )
    except asyncpg.UniqueViolationError:
        raise Duplicate(_l("an article with this external id already exists"), field="externalId") from None
    version = await repository.insert_version(
        uow.conn, _new_version(uow, article, 1, ArticleStatus.DRAFT, version_body(data), data.change_note)
    )
    await _index(uow, article, version, "working")
    _notify(uow, article, version)
    return _state(article, version)


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
    _check_content(data)
    article, _ = await _editable(uow, article_id, expected_version)
    if article.kind is ArticleKind.LOCAL_VERSION:
        raise ValidationFailed(_l("this is a local version; change its overrides instead"))
    return await _add_version(uow, article, ArticleStatus.DRAFT, version_body(data), data.change_note)


async def create_local_version(
    uow: UnitOfWork, shared_article_id: UUID, data: LocalVersionInput, tenant_slug: str | None = None
) -> ArticleState:
    """A town's own fees, opening hours, office and contacts for a shared article."""
    ctx = await town_context(uow, Operation.ARTICLE_WRITE, tenant_slug)
    _check_sections(data.overrides)
    base = await repository.find_article(uow.conn, shared_article_id, ctx.town_id, ctx.owner_ids)
    if base is None or base.kind is not ArticleKind.SHARED or base.tenant_id == ctx.town_id:
        raise NotFound(_l("shared article not found"))
    if await repository.find_local_version(uow.conn, ctx.town_id, base.tenant_id, base.id) is not None:
        raise Duplicate(_l("this town already has a local version of the article; change that one"))
    try:
        async with uow.conn.transaction():  # a savepoint: made at the same moment by another editor
            article = await repository.insert_article(
                uow.conn,
                ctx.town_id,
                uuid4(),
                ArticleKind.LOCAL_VERSION.value,
                base.tenant_id,
                base.id,
                None,
                _author(uow),
            )
    except asyncpg.UniqueViolationError:  # articles_local_version: four at once were three 500s
        raise Duplicate(_l("this town already has a local version of the article; change that one")) from None
    body = VersionBody(overrides=data.overrides, review_due=data.review_due)
    version = await repository.insert_version(
        uow.conn, _new_version(uow, article, 1, ArticleStatus.DRAFT, body, data.change_note)
    )
    _notify(uow, article, version)
    return _state(article, version)


async def shared_article_id(uow: UnitOfWork, operator_id: UUID, external_id: str) -> UUID | None:
    """The id of a shared article the principal's own tenant sees, imported by the operator with
    `external_id`."""
    ctx = await town_context(uow, Operation.ARTICLE_READ, None)
    if operator_id not in ctx.owner_ids and operator_id != ctx.town_id:
        return None
    article = await repository.find_article_by_external_id(uow.conn, operator_id, external_id)
    return article.id if article is not None and article.kind is ArticleKind.SHARED else None


async def has_local_version(uow: UnitOfWork, shared_article_id: UUID) -> bool:
    """Whether the principal's own tenant has a local version of the shared article."""
    ctx = await town_context(uow, Operation.ARTICLE_READ, None)
    base = await repository.find_article(uow.conn, shared_article_id, ctx.town_id, ctx.owner_ids)
    if base is None:
        return False
    return await repository.find_local_version(uow.conn, ctx.town_id, base.tenant_id, base.id) is not None


async def update_local_version(
    uow: UnitOfWork, article_id: UUID, data: LocalVersionInput, expected_version: int
) -> ArticleState:
    _check_sections(data.overrides)
    article, _ = await _editable(uow, article_id, expected_version)
    if article.kind is not ArticleKind.LOCAL_VERSION:
        raise ValidationFailed(_l("this is not a local version"))
    body = VersionBody(overrides=data.overrides, review_due=data.review_due)
    return await _add_version(uow, article, ArticleStatus.DRAFT, body, data.change_note)


async def change_status(
    uow: UnitOfWork, article_id: UUID, to: ArticleStatus, expected_version: int, note: str = ""
) -> ArticleState:
    """Move an article along draft → in review → published → archived (or back from review)."""
    reachable = reachable_for_any(uow, Operation.ARTICLE_WRITE, Operation.ARTICLE_PUBLISH)
    article = await repository.find_own_article(uow.conn, list(reachable), article_id)
    if article is None:
        raise NotFound(_l("article not found"))
    operation = TRANSITIONS.get((article.status, to))
    if operation is None:
        raise InvalidTransition(
            _l("an article cannot go from {status} to {target}", status=article.status.value, target=to.value)
        )
    if article.tenant_id not in reach.reachable(uow, operation):
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
    return await _add_version(uow, article, to, version_body(latest), note)


# ---------------------------------------------------------------------------------- synonyms


async def synonyms(uow: UnitOfWork, tenant_slug: str | None = None) -> list[Synonym]:
    """The tenant's own synonyms and those of the operators serving it."""
    ctx = await town_context(uow, Operation.ARTICLE_READ, tenant_slug)
    return await repository.list_synonyms(uow.conn, ctx.town_id, ctx.owner_ids)


async def set_synonym(uow: UnitOfWork, data: SynonymInput, tenant_slug: str | None = None) -> Synonym:
    tenant_id = (await town_context(uow, Operation.SYNONYM_WRITE, tenant_slug)).town_id
    term = " ".join(data.term.split())
    values = list(dict.fromkeys(" ".join(s.split()) for s in data.synonyms if s.strip()))
    if not analysis.words(term):
        raise ValidationFailed(_l("the term needs at least one word"), field="term")
    if not values or not all(analysis.words(v) for v in values):
        raise ValidationFailed(_l("every synonym needs at least one word"), field="synonyms")
    meaning.changed(uow)  # every instance's searches read the synonyms again (search_lexicons)
    return await repository.upsert_synonym(uow.conn, tenant_id, uuid4(), term, values, _author(uow))


async def remove_synonym(uow: UnitOfWork, synonym_id: UUID, tenant_slug: str | None = None) -> None:
    tenant_id = (await town_context(uow, Operation.SYNONYM_WRITE, tenant_slug)).town_id
    if not await repository.delete_synonym(uow.conn, tenant_id, synonym_id):
        raise NotFound(_l("synonym not found"))
    meaning.changed(uow)  # every instance's searches read the synonyms again (search_lexicons)


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
    draft_tenants = reach.reachable(uow, Operation.ARTICLE_DRAFT_READ) if include_drafts else frozenset()
    ctx = await town_context(uow, Operation.ARTICLE_READ, tenant_slug)
    article = await repository.find_article(uow.conn, article_id, ctx.town_id, ctx.owner_ids)
    if article is None or (include_drafts and article.tenant_id not in draft_tenants):
        raise NotFound(_l("article not found"))
    channels = [events.article_channel(article.id)]
    if article.kind is ArticleKind.SHARED:
        channels.append(events.local_channel(article.id, ctx.town_id))
    return ArticleFeed(channels, draft_tenants)
