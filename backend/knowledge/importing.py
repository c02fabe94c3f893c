"""Imports: the operator's LeiKa catalogue (CSV), and articles from another system (JSON Lines
or a JSON array), each re-import updating what it brought before instead of duplicating it."""

from __future__ import annotations

import json
import re

import msgspec

from auth.permissions import Operation
from backend.errors import DomainError, NotFound, ValidationFailed
from backend.i18n import _l
from backend.knowledge import analysis, catalogue_repository, leika, meaning, repository, search_repository, service
from backend.knowledge.context import town_context
from backend.knowledge.schemas import (
    Article,
    ArticleInput,
    ArticleKind,
    ArticleStatus,
    CatalogueReport,
    ImportProblem,
    ImportReport,
    ImportRow,
    version_body,
)
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.tenants.schemas import Tenant

# ---------------------------------------------------------------------------------- catalogue


def _without_addresses(text: str) -> str:
    return re.sub(r"\[?https?://[^\s\]]+\]?", " ", text)


async def import_catalogue(uow: UnitOfWork, text: str) -> CatalogueReport:
    """Load or refresh the operator's LeiKa catalogue: new keys are added, changed ones updated,
    missing ones deactivated; nothing is duplicated."""
    home = await reach.reach_home(uow, Operation.CATALOGUE_IMPORT)
    owner = home.id
    if owner not in reach.reachable(uow, Operation.CATALOGUE_IMPORT) or not home.is_operator:
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
        catalogue_repository.CatalogueRecord(
            leika_key=e.leika_key,
            name=e.name,
            typisierung=e.typisierung,
            ozg_service=e.ozg_service,
            ozg_id=e.ozg_id,
            life_situation=e.life_situation,
            legal_basis=e.legal_basis,
            # Search terms: the name's compound parts and what callers say for its action.
            parts=" ".join([*analysis.compound_parts(e.name, vocabulary), *leika.action_words(e.leika_key)]),
            context=" ".join([e.ozg_service, e.life_situation, *analysis.compound_parts(e.ozg_service, vocabulary)]),
            body=" ".join(_without_addresses(e.legal_basis).split()),
        )
        for e in entries
    ]
    await catalogue_repository.lock_catalogue(uow.conn, owner)
    inserted, updated, unchanged, deactivated, written = await catalogue_repository.merge_catalogue(
        uow.conn, owner, records
    )
    if inserted or updated or deactivated or written:
        await search_repository.rebuild_lexicon(uow.conn, owner, shared=True)
    # Vectors for new and renamed entries, and all of them again after the encoder changed.
    if await meaning.refresh(uow.conn, owner) or deactivated:
        meaning.changed(uow)
    return CatalogueReport(
        rows=len(entries),
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        deactivated=deactivated,
        errors=problems,
    )


# ---------------------------------------------------------------------------------- articles


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


async def _publish_now(uow: UnitOfWork, article: Article) -> Article:
    if article.status is ArticleStatus.DRAFT:
        article = await service.change_status(
            uow, article.id, ArticleStatus.IN_REVIEW, article.latest_version, note="import"
        )
    return await service.change_status(uow, article.id, ArticleStatus.PUBLISHED, article.latest_version, "import")


async def import_articles(
    uow: UnitOfWork, text: str, publish: bool = False, tenant_slug: str | None = None
) -> ImportReport:
    """Articles from another system. A row's `externalId` identifies it: a re-import updates the
    article (a new version when something changed), never duplicates it. Good rows are taken,
    bad rows are reported with their line and change nothing."""
    town = (await town_context(uow, Operation.ARTICLE_IMPORT, tenant_slug)).town
    if town.id not in reach.reachable(uow, Operation.ARTICLE_WRITE):
        raise NotFound(_l("tenant not found"))
    if publish and town.id not in reach.reachable(uow, Operation.ARTICLE_PUBLISH):
        raise NotFound(_l("tenant not found"))
    rows = parse_import(text)
    if not rows:
        raise ValidationFailed(_l("the import is empty: send JSON Lines or a JSON array of articles"))
    created = updated = unchanged = 0
    errors: list[ImportProblem] = []
    for line, row, problem in rows:
        if row is None:
            assert problem is not None
            errors.append(problem)
            continue
        try:
            async with uow.conn.transaction():  # savepoint: a bad row leaves nothing behind
                outcome = await _import_one(uow, row, publish, town)
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


async def _import_one(uow: UnitOfWork, row: ImportRow, publish: bool, town: Tenant) -> str:
    data = ArticleInput(**msgspec.structs.asdict(row.content()), change_note="import")
    existing = await repository.find_article_by_external_id(uow.conn, town.id, row.external_id)
    if existing is None:
        state = await service.create_article(
            uow, data, shared=row.shared, tenant_slug=town.slug, external_id=row.external_id
        )
        if publish:
            await _publish_now(uow, state)
        return "created"
    if (existing.kind is ArticleKind.SHARED) != row.shared:
        raise ValidationFailed(_l("an imported article cannot change between local and shared"), field="shared")
    latest = await repository.get_version(uow.conn, town.id, existing.id, existing.latest_version)
    content_same = version_body(latest) == version_body(data)
    if content_same and (not publish or existing.status is ArticleStatus.PUBLISHED):
        return "unchanged"
    article = existing
    if not content_same or existing.status is ArticleStatus.ARCHIVED:
        if existing.status is ArticleStatus.IN_REVIEW:
            article = await service.change_status(
                uow, existing.id, ArticleStatus.DRAFT, existing.latest_version, note="import"
            )
        article = await service.update_article(uow, existing.id, data, article.latest_version)
    if publish:
        await _publish_now(uow, article)
    return "updated"
