"""GraphQL for agents and editors: search, articles, the workflow, live changes. Thin: every
rule is in the service."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import strawberry
from strawberry.dataloader import DataLoader

from backend.api.context import GraphQLContext, Info
from backend.api.mapping import PageInfoGQL
from backend.api.payloads import UserError, from_struct, run_mutation, to_input
from backend.errors import NotFound, ValidationFailed
from backend.i18n import _l
from backend.knowledge import events, leika, schemas, service

T = TypeVar("T")
ExpectedVersion = Annotated[
    int,
    strawberry.argument(
        description="The `latestVersion` the change is based on; refused otherwise (VERSION_CONFLICT): reload and retry"
    ),
]
strawberry.enum(schemas.ArticleStatus, name="ArticleStatus")
strawberry.enum(schemas.ArticleKind, name="ArticleKind")
strawberry.enum(schemas.HitSource, name="KnowledgeHitSource")


@strawberry.type(name="OpeningHours", description="Opening interval on an ISO weekday (1 = Monday), local time")
class OpeningHoursGQL:
    weekday: int
    opens: str
    closes: str


@strawberry.type(name="ArticleContact")
class ContactGQL:
    label: str
    phone: str | None
    email: str | None
    url: str | None


@strawberry.type(name="ArticleLink", description="A link whose title says where it goes")
class LinkGQL:
    title: str
    url: str


def _hours(items: list[schemas.OpeningHours] | None) -> list[OpeningHoursGQL] | None:
    return (
        None if items is None else [OpeningHoursGQL(weekday=h.weekday, opens=h.opens, closes=h.closes) for h in items]
    )


def _contacts(items: list[schemas.Contact] | None) -> list[ContactGQL] | None:
    return (
        None if items is None else [ContactGQL(label=c.label, phone=c.phone, email=c.email, url=c.url) for c in items]
    )


def _link(link: schemas.Link | None) -> LinkGQL | None:
    return LinkGQL(title=link.title, url=link.url) if link else None


def _links(items: list[schemas.Link] | None) -> list[LinkGQL] | None:
    return None if items is None else [LinkGQL(title=f.title, url=f.url) for f in items]


@strawberry.type(name="ArticleSections", description="The body section by section; text sections are Markdown")
class SectionsGQL:
    description: str
    documents: str
    fees: str
    deadlines: str
    processing_time: str
    responsible_office: str
    opening_hours: list[OpeningHoursGQL]
    opening_hours_note: str
    contacts: list[ContactGQL]
    legal_basis: str
    online_service: LinkGQL | None
    forms: list[LinkGQL]

    @classmethod
    def of(cls, s: schemas.Sections) -> SectionsGQL:
        return cls(
            description=s.description,
            documents=s.documents,
            fees=s.fees,
            deadlines=s.deadlines,
            processing_time=s.processing_time,
            responsible_office=s.responsible_office,
            opening_hours=_hours(s.opening_hours) or [],
            opening_hours_note=s.opening_hours_note,
            contacts=_contacts(s.contacts) or [],
            legal_basis=s.legal_basis,
            online_service=_link(s.online_service),
            forms=_links(s.forms) or [],
        )


@strawberry.type(name="SectionOverrides", description="A town's replacements for a shared article (null: shared value)")
class SectionOverridesGQL:
    documents: str | None
    fees: str | None
    deadlines: str | None
    processing_time: str | None
    responsible_office: str | None
    opening_hours: list[OpeningHoursGQL] | None
    opening_hours_note: str | None
    contacts: list[ContactGQL] | None
    online_service: LinkGQL | None
    forms: list[LinkGQL] | None

    @classmethod
    def of(cls, o: schemas.SectionOverrides) -> SectionOverridesGQL:
        return cls(
            documents=o.documents,
            fees=o.fees,
            deadlines=o.deadlines,
            processing_time=o.processing_time,
            responsible_office=o.responsible_office,
            opening_hours=_hours(o.opening_hours),
            opening_hours_note=o.opening_hours_note,
            contacts=_contacts(o.contacts),
            online_service=_link(o.online_service),
            forms=_links(o.forms),
        )


@strawberry.type(name="Article", description="An article as an agent reads it for a town: structured, HTML, speakable")
class ArticleGQL:
    id: UUID
    tenant_id: UUID
    kind: schemas.ArticleKind
    context_tenant_id: UUID
    version: int
    local_version_id: UUID | None
    local_version: int | None
    status: schemas.ArticleStatus
    title: str
    summary: str
    leika_key: str | None
    sections: SectionsGQL
    overridden_fields: list[str]
    search_terms: list[str]
    review_due: date | None
    valid_from: date | None
    valid_until: date | None
    html: str = strawberry.field(description="Sanitised semantic HTML (h1 title, h2 sections, no tables)")
    speakable: str = strawberry.field(
        description="Plain text for screen readers and braille: short lines, "
        "numbers and abbreviations as they are read aloud"
    )
    accessibility_warnings: list[str]
    author: str
    updated_at: datetime

    @classmethod
    def of(cls, v: schemas.ArticleView) -> ArticleGQL:
        return cls(
            id=v.id,
            tenant_id=v.tenant_id,
            kind=v.kind,
            context_tenant_id=v.context_tenant_id,
            version=v.version,
            local_version_id=v.local_version_id,
            local_version=v.local_version,
            status=v.status,
            title=v.title,
            summary=v.summary,
            leika_key=v.leika_key,
            sections=SectionsGQL.of(v.sections),
            overridden_fields=v.overridden_fields,
            search_terms=v.search_terms,
            review_due=v.review_due,
            valid_from=v.valid_from,
            valid_until=v.valid_until,
            html=v.html,
            speakable=v.speakable,
            accessibility_warnings=v.accessibility_warnings,
            author=v.author,
            updated_at=v.updated_at,
        )


@strawberry.type(name="ArticleVersion", description="One immutable version: what it said, who wrote it, when")
class ArticleVersionGQL:
    version: int
    status: schemas.ArticleStatus
    title: str | None
    summary: str | None
    leika_key: str | None
    sections: SectionsGQL
    overrides: SectionOverridesGQL | None
    search_terms: list[str]
    review_due: date | None
    valid_from: date | None
    valid_until: date | None
    change_note: str
    author: str
    created_at: datetime

    @classmethod
    def of(cls, v: schemas.ArticleVersion) -> ArticleVersionGQL:
        return cls(
            version=v.version,
            status=v.status,
            title=v.title,
            summary=v.summary,
            leika_key=v.leika_key,
            sections=SectionsGQL.of(v.sections),
            overrides=SectionOverridesGQL.of(v.overrides) if v.overrides else None,
            search_terms=v.search_terms,
            review_due=v.review_due,
            valid_from=v.valid_from,
            valid_until=v.valid_until,
            change_note=v.change_note,
            author=v.author,
            created_at=v.created_at,
        )


def _versions_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[ArticleVersionGQL]]:
    async def load(article_ids: list[UUID]) -> list[list[ArticleVersionGQL] | BaseException]:
        async with ctx.uow() as uow:
            grouped = await service.version_histories(uow, article_ids)
        return [
            [ArticleVersionGQL.of(v) for v in grouped[a]] if a in grouped else NotFound(_l("article not found"))
            for a in article_ids
        ]

    return DataLoader(load_fn=load)


@strawberry.type(name="EditorArticle", description="An article of my tenant with its workflow position (editors)")
class EditorArticleGQL:
    id: UUID
    tenant_id: UUID
    kind: schemas.ArticleKind
    base_article_id: UUID | None
    external_id: str | None
    status: schemas.ArticleStatus
    latest_version: int
    published_version: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    latest: ArticleVersionGQL

    @classmethod
    def of(cls, state: service.ArticleState) -> EditorArticleGQL:
        a = state.article
        return cls(
            id=a.id,
            tenant_id=a.tenant_id,
            kind=a.kind,
            base_article_id=a.base_article_id,
            external_id=a.external_id,
            status=a.status,
            latest_version=a.latest_version,
            published_version=a.published_version,
            created_by=a.created_by,
            created_at=a.created_at,
            updated_at=a.updated_at,
            latest=ArticleVersionGQL.of(state.latest),
        )

    @strawberry.field(description="Every version, newest first")
    async def versions(self, info: Info) -> list[ArticleVersionGQL]:
        result: list[ArticleVersionGQL] = await info.context.loader("article_versions", _versions_loader).load(self.id)
        return result

    @strawberry.field(description="A version (default: the latest) rendered as agents will read it")
    async def preview(self, info: Info, version: int | None = None) -> ArticleGQL:
        async with info.context.uow() as uow:
            return ArticleGQL.of(await service.preview(uow, self.id, version))


@strawberry.type(name="EditorArticleConnection")
class EditorArticleConnectionGQL:
    nodes: list[EditorArticleGQL]
    page_info: PageInfoGQL


@strawberry.type(name="KnowledgeHit", description="An article or, where no article exists, a LeiKa catalogue entry")
class KnowledgeHitGQL:
    source: schemas.HitSource
    id: UUID
    tenant_id: UUID
    kind: schemas.ArticleKind | None
    leika_key: str | None
    title: str
    summary: str
    status: schemas.ArticleStatus
    snippet: str = strawberry.field(description="HTML-escaped text with <mark> around the matched words")
    snippet_text: str = strawberry.field(description="The snippet without markup (screen readers, braille)")
    score: float
    relevance: float = strawberry.field(description="0..1: share of the question found in title and search terms")
    confident: bool
    has_local_version: bool

    @classmethod
    def of(cls, h: schemas.SearchHit) -> KnowledgeHitGQL:
        return from_struct(cls, h)


@strawberry.type(name="KnowledgeSearchResult")
class KnowledgeSearchResultGQL:
    nodes: list[KnowledgeHitGQL]
    page_info: PageInfoGQL
    confident: bool = strawberry.field(description="Whether the best hit answers the question (else: nothing found)")
    interpreted_as: list[str] = strawberry.field(description="The words searched for, with synonyms and corrections")
    aspects: list[str] = strawberry.field(description="What the caller asked about: fees, opening_hours …")


@strawberry.type(name="LeikaService", description="An entry of the LeiKa service catalogue")
class LeikaServiceGQL:
    leika_key: str
    name: str
    typisierung: str
    ozg_service: str
    ozg_id: str | None
    life_situation: str
    legal_basis: str
    active: bool

    @classmethod
    def of(cls, s: schemas.LeikaService) -> LeikaServiceGQL:
        return from_struct(cls, s)


@strawberry.type(name="SearchSynonym")
class SynonymGQL:
    id: UUID
    tenant_id: UUID
    term: str
    synonyms: list[str]
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, s: schemas.Synonym) -> SynonymGQL:
        return from_struct(cls, s)


@strawberry.type(name="ImportProblem")
class ImportProblemGQL:
    line: int
    message: str
    field: str | None


@strawberry.type(name="ArticleImportReport")
class ImportReportGQL:
    created: int
    updated: int
    unchanged: int
    errors: list[ImportProblemGQL]


@strawberry.type(name="ArticleChange", description="An article someone has open changed")
class ArticleChangeGQL:
    article_id: UUID
    tenant_id: UUID
    version: int
    status: schemas.ArticleStatus
    changed_at: datetime
    local: bool

    @classmethod
    def of(cls, c: schemas.ArticleChange) -> ArticleChangeGQL:
        return from_struct(cls, c)


# ---------------------------------------------------------------------------------- inputs


@strawberry.input(name="OpeningHoursInput")
class OpeningHoursInput:
    weekday: int
    opens: str
    closes: str


@strawberry.input(name="ArticleContactInput")
class ContactInput:
    label: str
    phone: str | None = None
    email: str | None = None
    url: str | None = None


@strawberry.input(name="ArticleLinkInput")
class LinkInput:
    title: str
    url: str


@strawberry.input(name="ArticleSectionsInput", description="Text sections are Markdown")
class SectionsInput:
    description: str = ""
    documents: str = ""
    fees: str = ""
    deadlines: str = ""
    processing_time: str = ""
    responsible_office: str = ""
    opening_hours: list[OpeningHoursInput] = strawberry.field(default_factory=list)
    opening_hours_note: str = ""
    contacts: list[ContactInput] = strawberry.field(default_factory=list)
    legal_basis: str = ""
    online_service: LinkInput | None = None
    forms: list[LinkInput] = strawberry.field(default_factory=list)


@strawberry.input(name="SectionOverridesInput", description="Only what the town replaces; null keeps the shared value")
class SectionOverridesInput:
    documents: str | None = None
    fees: str | None = None
    deadlines: str | None = None
    processing_time: str | None = None
    responsible_office: str | None = None
    opening_hours: list[OpeningHoursInput] | None = None
    opening_hours_note: str | None = None
    contacts: list[ContactInput] | None = None
    online_service: LinkInput | None = None
    forms: list[LinkInput] | None = None


@strawberry.input(name="ArticleInput")
class ArticleInputGQL:
    title: str
    summary: str
    leika_key: str | None = None
    sections: SectionsInput | None = None
    search_terms: list[str] = strawberry.field(default_factory=list)
    review_due: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    change_note: str = ""


@strawberry.input(name="LocalVersionInput")
class LocalVersionInputGQL:
    overrides: SectionOverridesInput
    review_due: date | None = None
    change_note: str = ""


@strawberry.input(name="SearchSynonymInput")
class SynonymInputGQL:
    term: str
    synonyms: list[str]


class _Values:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _validated(struct: type[T], values: Any) -> T:
    """`to_input`, with the field named as on the wire and a LeiKa key problem said plainly."""
    try:
        return to_input(struct, values)
    except ValidationFailed as error:
        field = error.field or ""
        if field == "leika_key":
            problem = leika.leika_key_problem(str(getattr(values, "leika_key", "") or ""))
            raise ValidationFailed(problem or error.message, field="leikaKey") from None
        raise ValidationFailed(error.message, field=_camel(field) if field else None) from None


def _article_input(data: ArticleInputGQL) -> schemas.ArticleInput:
    values = {k: getattr(data, k) for k in schemas.ArticleInput.__struct_fields__}
    if values["sections"] is None:
        values["sections"] = schemas.Sections()
    return _validated(schemas.ArticleInput, _Values(values))


# ---------------------------------------------------------------------------------- payloads


@strawberry.type(name="EditorArticlePayload")
class EditorArticlePayload:
    article: EditorArticleGQL | None
    errors: list[UserError]


@strawberry.type(name="ImportArticlesPayload")
class ImportArticlesPayload:
    report: ImportReportGQL | None
    errors: list[UserError]


@strawberry.type(name="SearchSynonymPayload")
class SynonymPayload:
    synonym: SynonymGQL | None
    errors: list[UserError]


@strawberry.type(name="RemoveSearchSynonymPayload")
class RemoveSynonymPayload:
    removed: bool
    errors: list[UserError]


async def _editor_mutation(info: Info, action: Any) -> EditorArticlePayload:
    async def run() -> EditorArticleGQL:
        async with info.context.uow(readonly=False) as uow:
            return EditorArticleGQL.of(await action(uow))

    article, errors = await run_mutation(run)
    return EditorArticlePayload(article=article, errors=errors)


async def _status_change(
    info: Info, id: UUID, to: schemas.ArticleStatus, expected_version: int, note: str
) -> EditorArticlePayload:
    return await _editor_mutation(info, lambda uow: service.change_status(uow, id, to, expected_version, note))


# ---------------------------------------------------------------------------------- root mixins


@strawberry.type
class KnowledgeQuery:
    @strawberry.field(
        description="Search articles and the LeiKa catalogue in the caller's words, for the town the "
        "call is for (default: my own tenant). `status` (editors): my own articles at their "
        "latest version in that status."
    )
    async def knowledge_search(
        self,
        info: Info,
        query: str,
        tenant: str | None = None,
        first: int = 10,
        after: str | None = None,
        leika_group: str | None = None,
        status: schemas.ArticleStatus | None = None,
        sources: list[schemas.HitSource] | None = None,
    ) -> KnowledgeSearchResultGQL:
        async with info.context.uow() as uow:
            page = await service.search(uow, query, tenant, first, after, leika_group, status, sources)
        return KnowledgeSearchResultGQL(
            nodes=[KnowledgeHitGQL.of(h) for h in page.items],
            page_info=PageInfoGQL.after(page.next_cursor),
            confident=page.confident,
            interpreted_as=page.interpreted_as,
            aspects=page.aspects,
        )

    @strawberry.field(
        description="An article as agents read it for a town; null when not visible, not published or not valid today"
    )
    async def article(self, info: Info, id: UUID, tenant: str | None = None) -> ArticleGQL | None:
        try:
            async with info.context.uow() as uow:
                return ArticleGQL.of(await service.article_for_agent(uow, id, tenant))
        except NotFound:
            return None

    @strawberry.field(description="An entry of the LeiKa catalogue by its 14-digit key")
    async def leika_service(self, info: Info, leika_key: str, tenant: str | None = None) -> LeikaServiceGQL | None:
        try:
            async with info.context.uow() as uow:
                return LeikaServiceGQL.of(await service.leika_service(uow, leika_key, tenant))
        except NotFound:
            return None

    @strawberry.field(description="My tenant's articles, most recently changed first (editors)")
    async def editor_articles(
        self,
        info: Info,
        status: schemas.ArticleStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> EditorArticleConnectionGQL:
        async with info.context.uow() as uow:
            items, next_cursor = await service.list_articles(uow, status, first, after)
        return EditorArticleConnectionGQL(
            nodes=[EditorArticleGQL.of(i) for i in items],
            page_info=PageInfoGQL.after(next_cursor),
        )

    @strawberry.field(description="One of my tenant's articles with its workflow position (editors)")
    async def editor_article(self, info: Info, id: UUID) -> EditorArticleGQL | None:
        try:
            async with info.context.uow() as uow:
                article, versions = await service.article_history(uow, id)
        except NotFound:
            return None
        return EditorArticleGQL.of(service.ArticleState(article, versions[0]))

    @strawberry.field(
        description="Synonyms of the tenant and of the operators serving it (the shipped German set applies on top)"
    )
    async def search_synonyms(self, info: Info, tenant: str | None = None) -> list[SynonymGQL]:
        async with info.context.uow() as uow:
            return [SynonymGQL.of(s) for s in await service.synonyms(uow, tenant)]


@strawberry.type
class KnowledgeMutation:
    @strawberry.mutation(description="Write a new article as a draft (an operator's editors: `shared` for all clients)")
    async def create_article(
        self, info: Info, input: ArticleInputGQL, shared: bool = False, tenant: str | None = None
    ) -> EditorArticlePayload:
        return await _editor_mutation(
            info, lambda uow: service.create_article(uow, _article_input(input), shared, tenant)
        )

    @strawberry.mutation(description="Change an article: a new draft version; agents keep seeing the published one")
    async def update_article(
        self, info: Info, id: UUID, input: ArticleInputGQL, expected_version: ExpectedVersion
    ) -> EditorArticlePayload:
        return await _editor_mutation(
            info, lambda uow: service.update_article(uow, id, _article_input(input), expected_version)
        )

    @strawberry.mutation(description="A town's own fees, opening hours, office and contacts for a shared article")
    async def create_local_version(
        self, info: Info, shared_article_id: UUID, input: LocalVersionInputGQL, tenant: str | None = None
    ) -> EditorArticlePayload:
        return await _editor_mutation(
            info,
            lambda uow: service.create_local_version(
                uow, shared_article_id, _validated(schemas.LocalVersionInput, input), tenant
            ),
        )

    @strawberry.mutation(description="Change a local version: a new draft version")
    async def update_local_version(
        self, info: Info, id: UUID, input: LocalVersionInputGQL, expected_version: ExpectedVersion
    ) -> EditorArticlePayload:
        return await _editor_mutation(
            info,
            lambda uow: service.update_local_version(
                uow, id, _validated(schemas.LocalVersionInput, input), expected_version
            ),
        )

    @strawberry.mutation(description="draft → in review")
    async def submit_article_for_review(
        self, info: Info, id: UUID, expected_version: ExpectedVersion, note: str = ""
    ) -> EditorArticlePayload:
        return await _status_change(info, id, schemas.ArticleStatus.IN_REVIEW, expected_version, note)

    @strawberry.mutation(description="in review → draft (the reviewer sends it back)")
    async def return_article_to_draft(
        self, info: Info, id: UUID, expected_version: ExpectedVersion, note: str = ""
    ) -> EditorArticlePayload:
        return await _status_change(info, id, schemas.ArticleStatus.DRAFT, expected_version, note)

    @strawberry.mutation(description="in review → published: agents see this version from now on")
    async def publish_article(
        self, info: Info, id: UUID, expected_version: ExpectedVersion, note: str = ""
    ) -> EditorArticlePayload:
        return await _status_change(info, id, schemas.ArticleStatus.PUBLISHED, expected_version, note)

    @strawberry.mutation(description="published → archived: agents no longer see it")
    async def archive_article(
        self, info: Info, id: UUID, expected_version: ExpectedVersion, note: str = ""
    ) -> EditorArticlePayload:
        return await _status_change(info, id, schemas.ArticleStatus.ARCHIVED, expected_version, note)

    @strawberry.mutation(
        description="Import articles from another system: JSON Lines or a JSON array; rows with an "
        "`externalId` seen before update their article; bad rows are reported by line"
    )
    async def import_articles(
        self, info: Info, text: str, publish: bool = False, tenant: str | None = None
    ) -> ImportArticlesPayload:
        async def run() -> ImportReportGQL:
            async with info.context.uow(readonly=False) as uow:
                report = await service.import_articles(uow, text, publish, tenant)
            return ImportReportGQL(
                created=report.created,
                updated=report.updated,
                unchanged=report.unchanged,
                errors=[ImportProblemGQL(line=e.line, message=e.message, field=e.field) for e in report.errors],
            )

        report, errors = await run_mutation(run)
        return ImportArticlesPayload(report=report, errors=errors)

    @strawberry.mutation(description="Add or replace a synonym of the tenant (editors)")
    async def set_search_synonym(self, info: Info, input: SynonymInputGQL, tenant: str | None = None) -> SynonymPayload:
        async def run() -> SynonymGQL:
            data = _validated(schemas.SynonymInput, input)
            async with info.context.uow(readonly=False) as uow:
                return SynonymGQL.of(await service.set_synonym(uow, data, tenant))

        synonym, errors = await run_mutation(run)
        return SynonymPayload(synonym=synonym, errors=errors)

    @strawberry.mutation(description="Remove one of the tenant's synonyms (editors)")
    async def remove_search_synonym(self, info: Info, id: UUID, tenant: str | None = None) -> RemoveSynonymPayload:
        async def run() -> bool:
            async with info.context.uow(readonly=False) as uow:
                await service.remove_synonym(uow, id, tenant)
            return True

        removed, errors = await run_mutation(run)
        return RemoveSynonymPayload(removed=bool(removed), errors=errors)


@strawberry.type
class KnowledgeSubscription:
    @strawberry.subscription(
        description="Changes of an article I have open (for a town). By default only changes "
        "agents see (published, archived); editors may ask for drafts too."
    )
    async def article_changed(
        self, info: Info, id: UUID, tenant: str | None = None, include_drafts: bool = False
    ) -> AsyncGenerator[ArticleChangeGQL, None]:
        async with info.context.uow() as uow:
            feed = await service.article_feed(uow, id, tenant, include_drafts)
        async for change in events.listen(info.context.app.redis, feed.channels):
            if feed.shows(change):
                await info.context.still_signed_in()
                yield ArticleChangeGQL.of(change)
