"""Knowledge articles, their versions, the LeiKa catalogue and search results.

An article is local (one tenant) or shared (written by an operator for all its client towns). A
town may attach a local version to a shared article that overrides the local fields (fees,
opening hours, responsible office, contacts …) while the shared text stays one. Every change is
an immutable version with author and time.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import msgspec

from backend.directory.schemas import DirectoryEntry
from backend.structs import LINES, Input, Schema
from backend.webpages.schemas import WebPageHit

LEIKA_KEY_PATTERN = r"^99[0-9]{12}$"
LeikaKey = Annotated[str, msgspec.Meta(pattern=LEIKA_KEY_PATTERN)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Summary = Annotated[str, msgspec.Meta(max_length=500), LINES]
Markdown = Annotated[str, msgspec.Meta(max_length=20_000), LINES]
ShortText = Annotated[str, msgspec.Meta(max_length=300)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=1000)]
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
SearchTerm = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ArticleStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class ArticleKind(StrEnum):
    LOCAL = "local"  # one tenant's own article
    SHARED = "shared"  # written by an operator for all its client towns
    LOCAL_VERSION = "local_version"  # a town's overrides of a shared article


class PointsTo(StrEnum):
    """Where a question is better answered than in the knowledge base."""

    DIRECTORY = "directory"  # a person or an office by name: the contact directory


class HitSource(StrEnum):
    ARTICLE = "article"
    SERVICE = "service"  # a LeiKa catalogue entry without an article


# ---------------------------------------------------------------------------------- sections
# Input: also read from imports, where a misspelt field must be an error, not silently dropped.


class OpeningHours(Input, frozen=True):
    """Opening interval on an ISO weekday (1 = Monday … 7 = Sunday), local time."""

    weekday: Annotated[int, msgspec.Meta(ge=1, le=7)]
    opens: ClockTime
    closes: ClockTime


class Contact(Input, frozen=True):
    label: ShortText
    phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = None
    url: Url | None = None


class Link(Input, frozen=True):
    """A link with a text that says where it goes (screen readers list links by their text)."""

    title: ShortText
    url: Url


class Sections(Input, frozen=True):
    """The body of an article, section by section. Text sections are Markdown."""

    description: Markdown = ""
    documents: Markdown = ""  # Unterlagen
    fees: Markdown = ""  # Gebühren
    deadlines: Markdown = ""  # Fristen
    processing_time: Markdown = ""  # Bearbeitungsdauer
    responsible_office: Markdown = ""  # zuständige Stelle
    opening_hours: list[OpeningHours] = msgspec.field(default_factory=list)
    opening_hours_note: Markdown = ""
    contacts: list[Contact] = msgspec.field(default_factory=list)
    legal_basis: Markdown = ""  # Rechtsgrundlage
    online_service: Link | None = None
    forms: list[Link] = msgspec.field(default_factory=list)


class SectionOverrides(Input, frozen=True):
    """What a town's local version replaces in a shared article; None keeps the shared value."""

    documents: Markdown | None = None
    fees: Markdown | None = None
    deadlines: Markdown | None = None
    processing_time: Markdown | None = None
    responsible_office: Markdown | None = None
    opening_hours: list[OpeningHours] | None = None
    opening_hours_note: Markdown | None = None
    contacts: list[Contact] | None = None
    online_service: Link | None = None
    forms: list[Link] | None = None


OVERRIDABLE_FIELDS: tuple[str, ...] = tuple(SectionOverrides.__struct_fields__)


# ---------------------------------------------------------------------------------- inputs


class ArticleContent(Input, frozen=True):
    """What an article says, as editors write it (`ArticleInput`) and imports bring it
    (`ImportRow`). A new field of an article is added here, to `VersionBody` (what a version
    stores), to `ArticleView` (what agents read), and to the column lists and GraphQL types
    that the contract tests hold to these Structs."""

    title: Title
    summary: Summary
    leika_key: LeikaKey | None = None
    sections: Sections = msgspec.field(default_factory=Sections)
    search_terms: Annotated[list[SearchTerm], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    review_due: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None

    def content(self) -> ArticleContent:
        """Only the content (an input's other fields left out), as a version stores it: title and
        summary without surrounding blanks. Two contents are compared as values."""
        return ArticleContent(**self.content_values())

    def content_values(self) -> dict[str, Any]:
        """`content()`'s fields by name, without building (and checking again) a struct."""
        values = {name: getattr(self, name) for name in ArticleContent.__struct_fields__}
        return {**values, "title": self.title.strip(), "summary": self.summary.strip()}


class ArticleInput(ArticleContent, frozen=True):
    change_note: Annotated[str, msgspec.Meta(max_length=500)] = ""


class LocalVersionInput(Input, frozen=True):
    overrides: SectionOverrides = msgspec.field(default_factory=SectionOverrides)
    review_due: date | None = None
    change_note: Annotated[str, msgspec.Meta(max_length=500)] = ""


class ImportRow(ArticleContent, frozen=True, kw_only=True):
    """One article of a JSON import from another system; `externalId` makes re-imports update."""

    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    shared: bool = False


class SynonymInput(Input, frozen=True):
    term: Annotated[str, msgspec.Meta(min_length=2, max_length=100)]
    synonyms: Annotated[list[SearchTerm], msgspec.Meta(min_length=1, max_length=30)]


# ---------------------------------------------------------------------------------- records


class Article(Schema, frozen=True):
    """The article's identity and workflow position; its content lives in its versions."""

    tenant_id: UUID
    id: UUID
    kind: ArticleKind
    base_tenant_id: UUID | None
    base_article_id: UUID | None
    external_id: str | None
    status: ArticleStatus
    latest_version: int
    published_version: int | None
    created_at: datetime
    created_by: str
    updated_at: datetime


class VersionBody(Schema, frozen=True, kw_only=True):
    """What one version says: an article's content, or a local version's overrides (its title,
    summary … stay empty). Every field of `ArticleContent` is one of these."""

    title: str | None = None
    summary: str | None = None
    leika_key: str | None = None
    sections: Sections = msgspec.field(default_factory=Sections)
    overrides: SectionOverrides | None = None
    search_terms: list[str] = msgspec.field(default_factory=list)
    review_due: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None


def version_body(source: ArticleContent | VersionBody) -> VersionBody:
    """What a version says, from a content (taken whole: a content field this body lacks is a
    TypeError, not lost) or from another version (copied on to the next one)."""
    if isinstance(source, ArticleContent):
        # The content's values as `content()` has them; the struct it would build only checked
        # the same text again (decision 024, branch importspeed6).
        return VersionBody(**source.content_values())
    return VersionBody(**{name: getattr(source, name) for name in VersionBody.__struct_fields__})


class NewVersion(VersionBody, frozen=True, kw_only=True):
    """A version as it is written: its body, the workflow step, who wrote it."""

    tenant_id: UUID
    article_id: UUID
    version: int
    status: ArticleStatus
    change_note: str
    author: str
    author_tenant_id: UUID


class ArticleVersion(NewVersion, frozen=True, kw_only=True):
    """One immutable version: what it said, who wrote it, when."""

    created_at: datetime


class ArticleState(Article, frozen=True):
    """An article with its latest version (what editors work on)."""

    latest: ArticleVersion


class ArticleView(Schema, frozen=True):
    """An article as an agent of `context_tenant_id` reads it: structured, HTML and speakable.

    For a shared article with a local version of the context tenant, `sections` are merged and
    `overridden_fields` names what the town replaced.
    """

    id: UUID
    tenant_id: UUID
    kind: ArticleKind
    context_tenant_id: UUID
    version: int
    local_version_id: UUID | None
    local_version: int | None
    status: ArticleStatus
    title: str
    summary: str
    leika_key: str | None
    sections: Sections
    overridden_fields: list[str]
    search_terms: list[str]
    review_due: date | None
    valid_from: date | None
    valid_until: date | None
    html: str
    speakable: str
    accessibility_warnings: list[str]
    author: str
    updated_at: datetime


class LeikaService(Schema, frozen=True):
    tenant_id: UUID
    leika_key: str
    name: str
    typisierung: str
    ozg_service: str
    ozg_id: str | None
    life_situation: str
    legal_basis: str
    active: bool


class Synonym(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    term: str
    synonyms: list[str]
    created_by: str
    created_at: datetime


class SearchHit(Schema, frozen=True):
    source: HitSource
    id: UUID  # article id, or the catalogue entry's id
    tenant_id: UUID
    kind: ArticleKind | None
    leika_key: str | None
    title: str
    summary: str
    status: ArticleStatus
    snippet: str  # HTML-escaped text with <mark> around the matched words
    snippet_text: str  # the same without markup (screen readers, braille)
    score: float
    relevance: float  # 0..1: share of the question's weight found in title and search terms
    confident: bool
    has_local_version: bool


class SearchPage(Schema, frozen=True):
    items: list[SearchHit]
    next_cursor: str | None
    confident: bool  # whether the best hit is a confident answer (else: "nothing found")
    interpreted_as: list[str]  # the words searched for, with synonyms and corrections
    aspects: list[str]  # what the caller asked about (fees, opening_hours …), for the UI to jump to
    # The town's web pages that match (first page only), beside the articles, never among them.
    web_pages: list[WebPageHit] = msgspec.field(default_factory=list)
    points_to: PointsTo | None = None  # the question is for the contact directory (a person, an office)
    # People and offices of the town's directory that the question names (first page only, for
    # principals who may read the directory; decision 038), beside the articles.
    directory: list[DirectoryEntry] = msgspec.field(default_factory=list)


class ImportProblem(Schema, frozen=True):
    line: int
    message: str
    field: str | None = None


class ImportReport(Schema, frozen=True):
    created: int
    updated: int
    unchanged: int
    errors: list[ImportProblem]


class CatalogueReport(Schema, frozen=True):
    rows: int
    inserted: int
    updated: int
    unchanged: int
    deactivated: int
    errors: list[ImportProblem]


class ArticleChange(Schema, frozen=True):
    """Sent to subscribers when an article they have open changes."""

    article_id: UUID
    tenant_id: UUID
    version: int
    status: ArticleStatus
    changed_at: datetime
    local: bool  # the change is to a town's local version of the article
