"""What the XZuFi import answers and keeps: the import report, where an article's sections came
from, and the operator's transfer settings (decision 024)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from backend.structs import Input, Schema

HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=1000)]


class SectionOrigin(StrEnum):
    XZUFI = "xzufi"
    EDITOR = "editor"
    WEB_PAGE = "web_page"


class XzufiProblem(Schema, frozen=True):
    """A message, or an object in it, that did not go in: which message, which line, which id."""

    message_name: str
    line: int
    kind: str
    xzufi_id: str | None
    message: str


class XzufiReport(Schema, frozen=True):
    messages: int
    created: int
    updated: int
    unchanged: int
    archived: int
    deletes_unknown: int  # loesche for something never received: counted, not an error
    offices_created: int
    offices_updated: int
    offices_unchanged: int
    responsibilities: int
    unknown_elements: int
    errors: list[XzufiProblem]


class SectionSource(Schema, frozen=True):
    """Where one section of an article came from and when; `source_changed` says the source has
    changed under an editor's text since it was last confirmed."""

    article_id: str
    section: str
    origin: SectionOrigin
    reference: str | None
    reference_version: str | None
    changed_at: datetime
    changed_by: str
    source_changed: bool
    source_changed_at: datetime | None


class SourceConfirmation(Input, frozen=True):
    sections: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-zA-Z_]{0,39}$")]], msgspec.Meta(max_length=40)
    ] = msgspec.field(default_factory=list)


class TransferSettingsInput(Input, frozen=True):
    url: HttpUrl
    token_url: HttpUrl
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    client_secret: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    interval_minutes: Annotated[int, msgspec.Meta(ge=5, le=10080)] = 60
    scope: Annotated[str, msgspec.Meta(max_length=500)] = ""
    enabled: bool = True
    restart: bool = False  # forget the cursor: the next run fetches everything again


class TransferSettings(Schema, frozen=True):
    url: str
    token_url: str
    client_id: str
    scope: str
    interval_minutes: int
    enabled: bool
    cursor_url: str | None
    next_index: int | None
    next_run_at: datetime
    last_run_at: datetime | None
    last_outcome: str
    last_report: XzufiReport | None
    version: int
