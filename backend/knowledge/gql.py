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
from backend.api.mapping import PageInfoGQL, mirrors, shown, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.directory.gql import DirectoryEntryGQL
from backend.errors import NotFound, ValidationFailed
from backend.i18n import _l
from backend.knowledge import events, importing, leika, schemas, search, service
from backend.state import UnitOfWork
from backend.webpages.gql_hits import WebPageHitGQL

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
strawberry.enum(schemas.PointsTo, name="KnowledgePointsTo")


@mirrors(schemas.OpeningHours)
@strawberry.type(name="OpeningHours", description="Opening interval on an ISO weekday (1 = Monday), local time")
class OpeningHoursGQL:
    weekday: int
    opens: str
    closes: str


@mirrors(schemas.Contact)
@strawberry.type(name="ArticleContact")
class ContactGQL:
    label: str
    phone: str | None
    email: str | None
    url: str | None


@mirrors(schemas.Link)
@strawberry.type(name="ArticleLink", description="A link whose title says where it goes")
class LinkGQL:
    title: str
    url: str


@mirrors(schemas.Sections)
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


@mirrors(schemas.SectionOverrides)
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


@mirrors(schemas.ArticleView)
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


@mirrors(schemas.ArticleVersion, exclude=("tenant_id", "article_id", "author_tenant_id"))
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


def _versions_loader(ctx: GraphQLContext) -> DataLoader[UUID, list[ArticleVersionGQL]]:
    async def load(article_ids: list[UUID]) -> list[list[ArticleVersionGQL] | BaseException]:
        async with ctx.uow() as uow:
            grouped = await service.version_histories(uow, article_ids)
        return [
            shown_all(ArticleVersionGQL, grouped[a]) if a in grouped else NotFound(_l("article not found"))
            for a in article_ids
        ]

    return DataLoader(load_fn=load)


@mirrors(schemas.ArticleState, exclude=("base_tenant_id",))
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

    @strawberry.field(description="Every version, newest first")
    async def versions(self, info: Info) -> list[ArticleVersionGQL]:
        result: list[ArticleVersionGQL] = await info.context.loader("article_versions", _versions_loader).load(self.id)
        return result

    @strawberry.field(description="A version (default: the latest) rendered as agents will read it")
    async def preview(self, info: Info, version: int | None = None) -> ArticleGQL:
        async with info.context.uow() as uow:
            return shown(ArticleGQL, await service.preview(uow, self.id, version))


@strawberry.type(name="EditorArticleConnection")
class EditorArticleConnectionGQL:
    nodes: list[EditorArticleGQL]
    page_info: PageInfoGQL


@mirrors(schemas.SearchHit)
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


@strawberry.type(name="KnowledgeSearchResult")
class KnowledgeSearchResultGQL:
    nodes: list[KnowledgeHitGQL]
    page_info: PageInfoGQL
    confident: bool = strawberry.field(description="Whether the best hit answers the question (else: nothing found)")
    interpreted_as: list[str] = strawberry.field(description="The words searched for, with synonyms and corrections")
    aspects: list[str] = strawberry.field(description="What the caller asked about: fees, opening_hours …")
    web_pages: list[WebPageHitGQL] = strawberry.field(
        description="The town's web pages that match (first page only): not articles, shown with URL and age"
    )
    points_to: schemas.PointsTo | None = strawberry.field(
        default=None,
        description="DIRECTORY: the caller asks for a person or an office (put me through to …): show the "
        "contact directory; the knowledge hits are then not confident",
    )
    directory: list[DirectoryEntryGQL] = strawberry.field(
        default_factory=list,
        description='People and offices of the town\'s directory the question names ("Ansprechpartner Bauamt", '
        '"Frau Müller Bürgerbüro", a direct number), first page only; empty for principals who may not read '
        "the directory",
    )


@mirrors(schemas.LeikaService, exclude=("tenant_id",))
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


@mirrors(schemas.Synonym)
@strawberry.type(name="SearchSynonym")
class SynonymGQL:
    id: UUID
    tenant_id: UUID
    term: str
    synonyms: list[str]
    created_by: str
    created_at: datetime


@mirrors(schemas.ImportProblem)
@strawberry.type(name="ImportProblem")
class ImportProblemGQL:
    line: int
    message: str
    field: str | None


@mirrors(schemas.ImportReport)
@strawberry.type(name="ArticleImportReport")
class ImportReportGQL:
    created: int
    updated: int
    unchanged: int
    errors: list[ImportProblemGQL]


@mirrors(schemas.ArticleChange)
@strawberry.type(name="ArticleChange", description="An article someone has open changed")
class ArticleChangeGQL:
    article_id: UUID
    tenant_id: UUID
    version: int
    status: schemas.ArticleStatus
    changed_at: datetime
    local: bool


# ---------------------------------------------------------------------------------- inputs


@mirrors(schemas.OpeningHours)
@strawberry.input(name="OpeningHoursInput")
class OpeningHoursInput:
    weekday: int
    opens: str
    closes: str


@mirrors(schemas.Contact)
@strawberry.input(name="ArticleContactInput")
class ContactInput:
    label: str
    phone: str | None = None
    email: str | None = None
    url: str | None = None


@mirrors(schemas.Link)
@strawberry.input(name="ArticleLinkInput")
class LinkInput:
    title: str
    url: str


@mirrors(schemas.Sections)
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


@mirrors(schemas.SectionOverrides)
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


@mirrors(schemas.LocalVersionInput)
@strawberry.input(name="LocalVersionInput")
class LocalVersionInputGQL:
    overrides: SectionOverridesInput
    review_due: date | None = None
    change_note: str = ""


@mirrors(schemas.SynonymInput)
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


def _removal(removed: bool | None, errors: list[UserError]) -> RemoveSynonymPayload:
    return RemoveSynonymPayload(removed=bool(removed), errors=errors)


async def _status_change(
    info: Info, id: UUID, to: schemas.ArticleStatus, expected_version: int, note: str
) -> EditorArticlePayload:
    return await mutate(
        info, EditorArticlePayload, "article", lambda uow: service.change_status(uow, id, to, expected_version, note)
    )


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
            page = await search.search(uow, query, tenant, first, after, leika_group, status, sources)
        return KnowledgeSearchResultGQL(
            nodes=shown_all(KnowledgeHitGQL, page.items),
            page_info=PageInfoGQL.after(page.next_cursor),
            confident=page.confident,
            interpreted_as=page.interpreted_as,
            aspects=page.aspects,
            web_pages=shown_all(WebPageHitGQL, page.web_pages),
            points_to=page.points_to,
            directory=shown_all(DirectoryEntryGQL, page.directory),
        )

    @strawberry.field(
        description="An article as agents read it for a town; null when not visible, not published or not valid today"
    )
    async def article(self, info: Info, id: UUID, tenant: str | None = None) -> ArticleGQL | None:
        try:
            async with info.context.uow() as uow:
                return shown(ArticleGQL, await service.article_for_agent(uow, id, tenant))
        except NotFound:
            return None

    @strawberry.field(description="An entry of the LeiKa catalogue by its 14-digit key")
    async def leika_service(self, info: Info, leika_key: str, tenant: str | None = None) -> LeikaServiceGQL | None:
        try:
            async with info.context.uow() as uow:
                return shown(LeikaServiceGQL, await search.leika_service(uow, leika_key, tenant))
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
            nodes=shown_all(EditorArticleGQL, items), page_info=PageInfoGQL.after(next_cursor)
        )

    @strawberry.field(description="One of my tenant's articles with its workflow position (editors)")
    async def editor_article(self, info: Info, id: UUID) -> EditorArticleGQL | None:
        try:
            async with info.context.uow() as uow:
                return shown(EditorArticleGQL, await service.article_state(uow, id))
        except NotFound:
            return None

    @strawberry.field(
        description="Synonyms of the tenant and of the operators serving it (the shipped German set applies on top)"
    )
    async def search_synonyms(self, info: Info, tenant: str | None = None) -> list[SynonymGQL]:
        async with info.context.uow() as uow:
            return shown_all(SynonymGQL, await service.synonyms(uow, tenant))


@strawberry.type
class KnowledgeMutation:
    @strawberry.mutation(description="Write a new article as a draft (an operator's editors: `shared` for all clients)")
    async def create_article(
        self, info: Info, input: ArticleInputGQL, shared: bool = False, tenant: str | None = None
    ) -> EditorArticlePayload:
        return await mutate(
            info,
            EditorArticlePayload,
            "article",
            lambda uow: service.create_article(uow, _article_input(input), shared, tenant),
        )

    @strawberry.mutation(description="Change an article: a new draft version; agents keep seeing the published one")
    async def update_article(
        self, info: Info, id: UUID, input: ArticleInputGQL, expected_version: ExpectedVersion
    ) -> EditorArticlePayload:
        return await mutate(
            info,
            EditorArticlePayload,
            "article",
            lambda uow: service.update_article(uow, id, _article_input(input), expected_version),
        )

    @strawberry.mutation(description="A town's own fees, opening hours, office and contacts for a shared article")
    async def create_local_version(
        self, info: Info, shared_article_id: UUID, input: LocalVersionInputGQL, tenant: str | None = None
    ) -> EditorArticlePayload:
        return await mutate(
            info,
            EditorArticlePayload,
            "article",
            lambda uow: service.create_local_version(
                uow, shared_article_id, _validated(schemas.LocalVersionInput, input), tenant
            ),
        )

    @strawberry.mutation(description="Change a local version: a new draft version")
    async def update_local_version(
        self, info: Info, id: UUID, input: LocalVersionInputGQL, expected_version: ExpectedVersion
    ) -> EditorArticlePayload:
        return await mutate(
            info,
            EditorArticlePayload,
            "article",
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
        return await mutate(
            info, ImportArticlesPayload, "report", lambda uow: importing.import_articles(uow, text, publish, tenant)
        )

    @strawberry.mutation(description="Add or replace a synonym of the tenant (editors)")
    async def set_search_synonym(self, info: Info, input: SynonymInputGQL, tenant: str | None = None) -> SynonymPayload:
        return await mutate(
            info,
            SynonymPayload,
            "synonym",
            lambda uow: service.set_synonym(uow, _validated(schemas.SynonymInput, input), tenant),
        )

    @strawberry.mutation(description="Remove one of the tenant's synonyms (editors)")
    async def remove_search_synonym(self, info: Info, id: UUID, tenant: str | None = None) -> RemoveSynonymPayload:
        async def remove(uow: UnitOfWork) -> bool:
            await service.remove_synonym(uow, id, tenant)
            return True

        return await mutate(info, _removal, "removed", remove)


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
                yield shown(ArticleChangeGQL, change)
