"""XZuFi messages become knowledge, departments and responsibilities (decision 024).

- A service description (`leistung`) becomes a shared article of the operator, or the local
  article of one town when it is valid only for that town's area. Re-imports are idempotent: an
  object whose content fingerprint is unchanged touches nothing; a changed one adds a version.
- An office (`organisationseinheit`) becomes or updates a department of the town whose
  municipal key its address carries (contact data, opening hours as structured data).
- A responsibility (`zustaendigkeit`: service ↔ office for an area) fills the town's ticket
  routes (LeiKa key → department, what forwarding proposes) and gives the town's version of the
  article the office's name, address, contacts and opening hours.
- `loesche` archives (never deletes); a deletion of something never received is counted.

Editors stay in charge: every imported section remembers what the import wrote; a section an
editor has changed since is kept, and a later change of the source only marks it "source
changed since your override" until an editor confirms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from auth.permissions import Operation
from backend import clock
from backend.directory import service as directory
from backend.errors import DomainError, ValidationFailed
from backend.i18n import _l
from backend.knowledge import repository, service, xzufi, xzufi_bulk, xzufi_deletions, xzufi_links
from backend.knowledge import xzufi_repository as store
from backend.knowledge.schemas import (
    ArticleInput,
    ArticleState,
    ArticleStatus,
    ArticleVersion,
    Contact,
    Link,
    LocalVersionInput,
    OpeningHours,
    SectionOverrides,
    Sections,
    version_body,
)
from backend.knowledge.xzufi_deletions import Archived
from backend.knowledge.xzufi_schemas import SectionOrigin, XzufiProblem, XzufiReport
from backend.state import UnitOfWork
from backend.tenants import reach
from backend.tenants import service as tenants
from backend.tenants.schemas import DepartmentInput, Tenant
from backend.tickets import service as tickets

NOTE = "XZuFi import"
ARTICLE_FIELDS = ("title", "summary", "search_terms")
OFFICE_FIELDS = ("responsible_office", "contacts", "opening_hours", "opening_hours_note")
PARSE_AHEAD = True  # a zip's next message parsed while this one's statements wait (False: to compare)


def _hash(value: object) -> str:
    # Text, most sections, is its own builtin: the same bytes without the conversion.
    if type(value) is str:
        return _EMPTY_TEXT_HASH if not value else _digest(value)
    return _EMPTY_LIST_HASH if type(value) is list and not value else _digest(msgspec.to_builtins(value))


def _digest(plain: object) -> str:
    return hashlib.sha256(msgspec.json.encode(plain, order="sorted")).hexdigest()[:32]


# A new article's sections a source leaves empty (an office, forms: two of eleven a bench service)
# hash alike every time: computed once.
_EMPTY_TEXT_HASH, _EMPTY_LIST_HASH = _digest(""), _digest([])


def ags_of(area: str) -> str:
    """A municipal key as AGS: an ARS (12 digits) drops its Verband digits 6–9."""
    return area[:5] + area[9:] if len(area) == 12 else area


@dataclass(slots=True)
class _Counts:
    messages: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    archived: int = 0
    deletes_unknown: int = 0
    offices_created: int = 0
    offices_updated: int = 0
    offices_unchanged: int = 0
    responsibilities: int = 0
    unknown_elements: int = 0
    errors: list[XzufiProblem] = field(default_factory=list)

    def report(self) -> XzufiReport:
        return XzufiReport(**{name: getattr(self, name) for name in XzufiReport.__struct_fields__})


@dataclass(slots=True)
class _Run:
    uow: UnitOfWork
    operator: Tenant
    towns_by_ags: dict[str, Tenant]
    counts: _Counts
    now: datetime
    bulk: bool = True  # new services through `xzufi_bulk`; False: one by one (to compare them)
    bulk_savepoint: bool = False  # `xzufi_bulk` left its savepoint open (ended by the next or the commit)

    def town_of(self, areas: Iterable[str]) -> Tenant | None:
        """The one client town all the areas lie in, or None (the operator's whole district)."""
        found = [self.towns_by_ags.get(ags_of(a)) for a in areas]
        ids = {t.id if t is not None else None for t in found}
        if len(ids) != 1:
            return None
        town = found[0]
        return town if town is not None and town.id != self.operator.id else None


# ---------------------------------------------------------------------------------- entry points


async def start(uow: UnitOfWork) -> _Run:
    """The operator whose platform admin imports, and the towns it acts for by municipal key."""
    home = await reach.reach_home(uow, Operation.XZUFI_IMPORT)
    if home.id not in reach.reachable(uow, Operation.XZUFI_IMPORT) or not home.is_operator:
        raise ValidationFailed(_l("only an operator imports XZuFi messages; sign in as its platform admin"))
    # The towns this operator serves today (not every tenant a platform admin may reach: another
    # operator's town may share a municipal key in a test or a migration).
    clients = await tenants.active_client_ids(uow, home.id)
    acting = reach.reachable(uow, Operation.XZUFI_IMPORT)
    towns = await tenants.tenants_by_ids(uow, [t for t in [home.id, *clients] if t in acting])
    by_ags = {t.ags: t for t in towns.values() if t.ags}
    return _Run(uow, home, by_ags, _Counts(), clock.now())


async def import_upload(uow: UnitOfWork, data: bytes, name: str = "upload.xml") -> XzufiReport:
    """One XML message or a zip of them. A message of another version, or one that is not
    XML, refuses a single-message upload (422) and is reported in a zip while the rest goes in."""
    reach.reachable(uow, Operation.XZUFI_IMPORT)  # 403 without the grant, before reading anything
    try:
        members = list(xzufi.messages_of_upload(data, name))
    except xzufi.XzufiRefused as refused:
        raise ValidationFailed(refused.message, field="body") from None
    if not members:
        raise ValidationFailed(_l("the upload holds no XZuFi message (.xml)"), field="body")
    single = len(members) == 1 and not data.startswith(b"PK")
    if single:
        return await xzufi_bulk.import_message(uow, *members[0])
    # The first message is parsed in a thread while `start` reads the operator and its towns: the
    # parse needs nothing of them, and those statements' round trips are otherwise idle time.
    first = xzufi.parse_soon(members[0]) if PARSE_AHEAD else None
    try:
        run = await start(uow)
    except BaseException:
        if first is not None:
            first.cancel()
        raise
    async for member_name, message in xzufi.parse_in_turn(members, ahead=PARSE_AHEAD, first=first):
        if isinstance(message, xzufi.XzufiRefused):
            run.counts.errors.append(XzufiProblem(member_name, 0, "message", None, str(message.message)))
            continue
        await apply_message(run, message)
    return run.counts.report()


async def apply_message(run: _Run, message: xzufi.XzufiMessage, deletions: Sequence[xzufi.Deletion] = ()) -> None:
    """Offices first (departments for the routes), then services (new ones together, `xzufi_bulk`),
    then what links them; each object in its own savepoint, so a bad one leaves nothing behind."""
    counts = run.counts
    counts.messages += 1
    counts.unknown_elements += message.unknown_elements
    counts.errors.extend(XzufiProblem(message.name, p.line, p.kind, p.xzufi_id, p.message) for p in message.problems)
    conn = run.uow.conn
    operator = run.operator.id
    await store.lock_imports(conn, operator)
    known_offices = await store.objects_by_ids(
        conn, operator, "organisationseinheit", [o.xzufi_id for o in message.offices]
    )
    touched_services: set[str] = set()
    for office in message.offices:
        changed = await _guarded(
            run,
            message.name,
            office.line,
            "organisationseinheit",
            office.xzufi_id,
            _office(run, office, known_offices.get(office.xzufi_id)),
        )
        if changed:
            touched_services.update(r.leistung_id for r in office.responsibilities)
    if message.responsibilities:  # sent apart from their offices (PVOG pages)
        linked, problems = await xzufi_links.attach(conn, operator, run.now, message.name, message.responsibilities)
        touched_services.update(linked)
        counts.errors.extend(problems)
    ids = [s.xzufi_id for s in message.services]
    # The offices naming this message's services or those its offices touched, read once for the
    # new services and the routes below (the one-by-one path reads a town service's office itself).
    named = sorted(touched_services.union(ids))
    known, offices = await store.services_and_offices(conn, operator, ids, named)
    fresh = set(ids) - known.keys()
    done: set[int] = set()
    if run.bulk:
        done = await xzufi_bulk.add_services(run, message.name, message.services, known, offices) or set()
    touched_services.update(fresh & known.keys())
    for position, description in enumerate(message.services):
        if position in done:
            continue
        if _unchanged(description, known.get(description.xzufi_id)):
            counts.unchanged += 1  # nothing to write, so no savepoint (two round trips a service)
            continue
        changed = await _guarded(
            run,
            message.name,
            description.line,
            "leistung",
            description.xzufi_id,
            _service(run, description, known.get(description.xzufi_id)),
        )
        if changed:
            touched_services.add(description.xzufi_id)
    if touched_services:
        await _responsibilities(run, message.name, sorted(touched_services), offices)
    for deletion in [*message.deletions, *deletions]:
        await _guarded(run, message.name, deletion.line, deletion.kind, deletion.xzufi_id, _delete(run, deletion))


async def _guarded(run: _Run, name: str, line: int, kind: str, xzufi_id: str, work: Any) -> bool:
    try:
        async with run.uow.conn.transaction():  # savepoint
            return bool(await work)
    except (DomainError, ValueError, msgspec.ValidationError) as error:
        text = str(error.message) if isinstance(error, DomainError) else str(error)
        run.counts.errors.append(XzufiProblem(name, line, kind, xzufi_id, text))
        return False


# ---------------------------------------------------------------------------------- offices


async def _office(run: _Run, office: xzufi.Office, stored: store.StoredObject | None) -> bool:
    if stored is not None and stored.content_hash == office.content_hash and stored.status == "active":
        run.counts.offices_unchanged += 1
        return False
    areas = [office.municipality] if office.municipality else []
    areas += [a for r in office.responsibilities for a in r.area_ids]
    town = run.town_of(areas[:1] or areas) or run.operator
    data = DepartmentInput(name=office.name, email=office.email, phone=office.phone, active=True)
    department_id = stored.department_id if stored is not None and stored.target_tenant_id == town.id else None
    if department_id is None:
        existing = {d.name: d for d in await tenants.tenant_departments(run.uow, town.slug)}
        department_id = existing[office.name].id if office.name in existing else None
    if department_id is None:
        department_id = (await tenants.add_department(run.uow, town.slug, data)).id
    else:
        await tenants.update_department(run.uow, town.slug, department_id, data)
    hours = [msgspec.convert(h, OpeningHours) for h in office.hours]
    own = [xzufi_links.entry(r) for r in office.responsibilities]
    duties = own + xzufi_links.kept_apart(stored, own)
    await directory.import_department_hours(run.uow, town.id, department_id, office.phone, hours or None)
    value = store.StoredObject(
        kind="organisationseinheit",
        xzufi_id=office.xzufi_id,
        version=office.version,
        content_hash=office.content_hash,
        target_tenant_id=town.id,
        article_id=None,
        department_id=department_id,
        leika_key=None,
        data={
            "name": office.name,
            "address": office.address,
            "phone": office.phone,
            "email": office.email,
            "url": office.url,
            "hours": office.hours,
            "hoursNote": office.hours_note,
            "leistungen": sorted({e["leistung"] for e in duties}),
            "responsibilities": duties,
        },
        status="active",
    )
    await store.save_object(run.uow.conn, run.operator.id, value, run.now)
    if stored is None:
        run.counts.offices_created += 1
    else:
        run.counts.offices_updated += 1
    return True


def _office_sections(office: store.StoredObject) -> dict[str, Any]:
    data = office.data
    label = data["name"] if not data.get("address") else f"{data['name']}, {data['address']}"
    contact = Contact(label=data["name"][:300], phone=data.get("phone"), email=data.get("email"), url=data.get("url"))
    return {
        "responsible_office": label,
        "contacts": [contact] if contact.phone or contact.email or contact.url else [],
        "opening_hours": [msgspec.convert(h, OpeningHours) for h in data.get("hours", [])],
        "opening_hours_note": data.get("hoursNote", ""),
    }


# ---------------------------------------------------------------------------------- services


def _imported_fields(description: xzufi.ServiceDescription) -> dict[str, Any]:
    sections = dict(description.sections)
    forms = [Link(title=f["title"], url=f["url"]) for f in sections.pop("forms", [])]  # type: ignore[attr-defined]
    fields: dict[str, Any] = {"title": description.title, "summary": description.summary}
    fields["search_terms"] = list(description.search_terms)
    fields.update({k: v for k, v in sections.items() if k in Sections.__struct_fields__})
    fields["forms"] = forms
    return fields


def _unchanged(description: xzufi.ServiceDescription, stored: store.StoredObject | None) -> bool:
    """Received before with this content and version, and not deleted since: nothing to do."""
    return (
        stored is not None
        and stored.content_hash == description.content_hash + ":" + description.version
        and stored.status == "active"
    )


async def _service(run: _Run, description: xzufi.ServiceDescription, stored: store.StoredObject | None) -> bool:
    fingerprint = description.content_hash + ":" + description.version
    if _unchanged(description, stored):
        run.counts.unchanged += 1
        return False
    town = run.town_of(description.area_ids) if description.area_ids else None
    owner = town or run.operator
    if stored is not None and stored.target_tenant_id != owner.id:
        raise ValidationFailed(_l("an imported service cannot move between the operator and a town"))
    fields = _imported_fields(description)
    if town is not None:  # the town's own article carries its office directly
        for office in await store.offices_responsible_for(run.uow.conn, run.operator.id, [description.xzufi_id]):
            if office.target_tenant_id == town.id:
                fields.update(_office_sections(office))
                break
    outcome, article_id = await _write_article(
        run, owner, stored.article_id if stored else None, description, fields, shared=town is None
    )
    value = store.StoredObject(
        kind="leistung",
        xzufi_id=description.xzufi_id,
        version=description.version,
        content_hash=fingerprint,
        target_tenant_id=owner.id,
        article_id=article_id,
        department_id=None,
        leika_key=description.leika_key,
        data=service_data(description),
        status="active",
    )
    await store.save_object(run.uow.conn, run.operator.id, value, run.now)
    await store.replace_search_terms(
        run.uow.conn, owner.id, article_id, description.leika_key, description.search_terms, town is None
    )
    if outcome == "created":
        run.counts.created += 1
    elif outcome == "updated":
        run.counts.updated += 1
    else:
        run.counts.unchanged += 1
    return True


def service_data(description: xzufi.ServiceDescription) -> dict[str, Any]:
    """What a received service keeps in `xzufi_objects.data`: its origin portal. The sections
    mapped from it (868 bytes of JSON a bench service) were kept here too until 2026-12-07 and
    never read: the article's versions hold what was written, `article_sources` /
    `article_section_sources` each section's source and the hash of what the import sent, the
    fingerprint tells a resent service from a changed one. An office's data is read (its services
    and responsibilities make the routes and the town's article) and stays whole."""
    return {"originPortal": description.origin_portal}


def _current(latest: ArticleVersion, name: str) -> Any:
    return getattr(latest, name) if name in ARTICLE_FIELDS else getattr(latest.sections, name)


def _merge(
    run: _Run,
    key: tuple[UUID, UUID],
    imported: dict[str, Any],
    current: dict[str, Any] | None,
    sources: dict[str, store.SourceRow],
    reference: tuple[str, str],
    author: tuple[str, datetime],
) -> tuple[dict[str, Any], list[store.SourceRow], list[str]]:
    """Which value each section takes: the import's, unless an editor has changed what the
    import wrote (then the editor's stays, and a changed source is flagged). Also names the
    sections whose source changed, for the towns' overrides of them."""
    chosen: dict[str, Any] = {}
    rows: list[store.SourceRow] = []
    source_changed: list[str] = []
    who = run.uow.principal.log_id
    for name, value in imported.items():
        new_hash = _hash(value)
        row = sources.get(name)
        if row is not None and row.imported_hash != new_hash:
            source_changed.append(name)
        have = current.get(name) if current is not None else None
        if current is None:
            editor_owns = False
        elif row is None:  # written before any import (a town's own override): the editor's
            editor_owns = have not in (None, "", []) and _hash(have) != new_hash
        else:
            editor_owns = row.origin != SectionOrigin.XZUFI or row.written_hash != _hash(have)
        if editor_owns:
            chosen[name] = have
            was_editor = row is not None and row.origin == SectionOrigin.EDITOR
            flagged = row.source_changed_at if row is not None else None
            if row is not None and row.imported_hash != new_hash:
                flagged = run.now
            rows.append(
                store.SourceRow(
                    key[0],
                    key[1],
                    name,
                    SectionOrigin.EDITOR.value,
                    row.reference if row else reference[0],
                    row.reference_version if row else reference[1],
                    new_hash,
                    row.written_hash if row else None,
                    row.changed_at if row is not None and was_editor else author[1],
                    row.changed_by if row is not None and was_editor else author[0],
                    flagged,
                )
            )
            continue
        chosen[name] = value
        if row is not None and row.origin == SectionOrigin.XZUFI and row.written_hash == new_hash:
            rows.append(
                row
                if row.reference_version == reference[1]
                else store.SourceRow(
                    key[0],
                    key[1],
                    name,
                    row.origin,
                    reference[0],
                    reference[1],
                    new_hash,
                    new_hash,
                    row.changed_at,
                    row.changed_by,
                    None,
                )
            )
            continue
        rows.append(
            store.SourceRow(
                key[0],
                key[1],
                name,
                SectionOrigin.XZUFI.value,
                reference[0],
                reference[1],
                new_hash,
                new_hash,
                run.now,
                who,
                None,
            )
        )
    return chosen, rows, source_changed


def created_source(
    run: _Run, key: tuple[UUID, UUID], fields: dict[str, Any], reference: tuple[str, str]
) -> store.ArticleSource:
    """Where a new article's sections came from, as one row: what `_merge` would record for each
    section of an article without a past (from this object and version, now, by this importer;
    written as sent)."""
    return store.ArticleSource(
        key[0],
        key[1],
        SectionOrigin.XZUFI.value,
        reference[0],
        reference[1],
        {name: _hash(value) for name, value in fields.items()},
        run.now,
        run.uow.principal.log_id,
    )


async def _publish(uow: UnitOfWork, state: ArticleState) -> None:
    if state.status is ArticleStatus.DRAFT:
        state = await service.change_status(uow, state.id, ArticleStatus.IN_REVIEW, state.latest_version, NOTE)
    if state.status is ArticleStatus.IN_REVIEW:
        await service.change_status(uow, state.id, ArticleStatus.PUBLISHED, state.latest_version, NOTE)


async def _write_article(
    run: _Run,
    owner: Tenant,
    article_id: UUID | None,
    description: xzufi.ServiceDescription,
    fields: dict[str, Any],
    *,
    shared: bool,
) -> tuple[str, UUID]:
    uow = run.uow
    reference = (description.xzufi_id, description.version)
    if article_id is not None:
        # Held before reading: an editor's change that got in between the read and the write
        # failed this service "changed by someone else" (second sweep); now the editor's change
        # waits and is told to reload, or came first and is merged as an override.
        await repository.lock_article(uow.conn, owner.id, article_id)
    article = await service.article_state(uow, article_id) if article_id is not None else None
    if article is None:
        data = _input(fields, description.leika_key, None)
        created = await service.create_article(
            uow, data, shared=shared, tenant_slug=owner.slug, external_id=f"xzufi:{description.xzufi_id}"[:200]
        )
        await _publish(uow, created)
        await store.add_article_sources(uow.conn, [created_source(run, (owner.id, created.id), fields, reference)])
        return "created", created.id
    latest = article.latest
    key = (article.tenant_id, article.id)
    sources = (await store.section_sources(uow.conn, [key]))[key]
    current = {name: _current(latest, name) for name in fields}
    chosen, rows, changed = _merge(run, key, fields, current, sources, reference, (latest.author, latest.created_at))
    data = _input(chosen, description.leika_key, latest)
    await store.save_sources(uow.conn, rows)
    if changed and shared:
        await _flag_overrides(run, article.tenant_id, article.id, changed)
    if version_body(data) == version_body(latest) and article.status is ArticleStatus.PUBLISHED:
        return "unchanged", article.id
    state: ArticleState = article
    if version_body(data) != version_body(latest) or article.status is ArticleStatus.ARCHIVED:
        if article.status is ArticleStatus.IN_REVIEW:
            state = await service.change_status(uow, article.id, ArticleStatus.DRAFT, article.latest_version, NOTE)
        state = await service.update_article(uow, article.id, data, state.latest_version)
    await _publish(uow, state)
    return "updated", article.id


def _input(fields: dict[str, Any], leika_key: str, latest: ArticleVersion | None) -> ArticleInput:
    given = {k: v for k, v in fields.items() if k in Sections.__struct_fields__}
    # A new article's sections built once (not the defaults, then replaced: two checks of the text)
    sections = msgspec.structs.replace(latest.sections, **given) if latest is not None else Sections(**given)
    return ArticleInput(
        title=fields["title"],
        summary=fields["summary"],
        leika_key=leika_key,
        sections=sections,
        search_terms=list(fields["search_terms"]),
        review_due=latest.review_due if latest else None,
        valid_from=latest.valid_from if latest else None,
        valid_until=latest.valid_until if latest else None,
        change_note=NOTE,
    )


async def _flag_overrides(run: _Run, base_tenant: UUID, base_id: UUID, changed: list[str]) -> None:
    """The shared text under a town's override changed: the town's editors are told."""
    overridable = [name for name in changed if name in SectionOverrides.__struct_fields__]
    if not overridable:
        return
    conn = run.uow.conn
    for town_id in await repository.local_versions_of(conn, base_tenant, base_id):
        local = await repository.find_local_version(conn, town_id, base_tenant, base_id)
        if local is None:
            continue
        latest = await repository.get_version(conn, town_id, local.id, local.latest_version)
        key = (town_id, local.id)
        sources = (await store.section_sources(conn, [key]))[key]
        rows = []
        for name in overridable:
            if latest.overrides is None or getattr(latest.overrides, name) is None:
                continue
            row = sources.get(name)
            if (
                row is not None
                and row.origin == SectionOrigin.XZUFI
                and row.written_hash == _hash(getattr(latest.overrides, name))
            ):
                continue  # the import's own override (an office's contacts): nobody to tell
            rows.append(
                store.SourceRow(
                    town_id,
                    local.id,
                    name,
                    SectionOrigin.EDITOR.value,
                    None,
                    None,
                    row.imported_hash if row else None,
                    row.written_hash if row else None,
                    row.changed_at if row else latest.created_at,
                    row.changed_by if row else latest.author,
                    run.now,
                )
            )
        await store.save_sources(conn, rows)


# ---------------------------------------------------------------------------------- responsibilities


async def _responsibilities(run: _Run, name: str, leistung_ids: list[str], offices: list[store.StoredObject]) -> None:
    """For each service touched and each town with a responsible office: the town's ticket
    route for the LeiKa key, and the office on the town's version of a shared article.
    `offices`: the active offices naming any of them (more are passed over)."""
    conn = run.uow.conn
    wanted = set(leistung_ids)
    offices = [o for o in offices if wanted.intersection(o.data.get("leistungen", []))]
    if not offices:  # no office names them (a feed sends offices apart): nothing to read again
        return
    services = await store.objects_by_ids(conn, run.operator.id, "leistung", leistung_ids)
    for leistung_id in leistung_ids:
        described = services.get(leistung_id)
        if described is None or described.status != "active" or described.article_id is None:
            continue
        for office in offices:
            for entry in office.data.get("responsibilities", []):
                if entry["leistung"] != leistung_id:
                    continue
                town = run.town_of(entry["areas"]) if entry["areas"] else None
                if town is None or town.id != office.target_tenant_id or office.department_id is None:
                    continue
                await _guarded(
                    run,
                    name,
                    0,
                    "zustaendigkeit",
                    f"{office.xzufi_id}/{leistung_id}",
                    _responsibility(run, described, office, town),
                )


async def _responsibility(run: _Run, described: store.StoredObject, office: store.StoredObject, town: Tenant) -> bool:
    assert described.leika_key is not None and office.department_id is not None and described.article_id is not None
    await tickets.import_route(run.uow, town.id, described.leika_key, office.department_id)
    run.counts.responsibilities += 1
    if described.target_tenant_id == town.id:
        return True  # the town's own article took the office when it was written
    await _local_version(run, town, described, _office_sections(office))
    return True


async def _local_version(run: _Run, town: Tenant, described: store.StoredObject, fields: dict[str, Any]) -> None:
    uow = run.uow
    assert described.article_id is not None
    local = await repository.find_local_version(uow.conn, town.id, described.target_tenant_id, described.article_id)
    reference = (described.xzufi_id, described.version)
    if local is None:
        overrides = SectionOverrides(**fields)
        created = await service.create_local_version(
            uow, described.article_id, LocalVersionInput(overrides=overrides, change_note=NOTE), tenant_slug=town.slug
        )
        await _publish(uow, created)
        _, rows, _ = _merge(run, (town.id, created.id), fields, None, {}, reference, ("", run.now))
        await store.save_sources(uow.conn, rows)
        return
    latest = await repository.get_version(uow.conn, town.id, local.id, local.latest_version)
    have = latest.overrides or SectionOverrides()
    key = (town.id, local.id)
    sources = (await store.section_sources(uow.conn, [key]))[key]
    current = {name: getattr(have, name) for name in fields}
    chosen, rows, _ = _merge(run, key, fields, current, sources, reference, (latest.author, latest.created_at))
    await store.save_sources(uow.conn, rows)
    wanted = msgspec.structs.replace(have, **chosen)
    if wanted == have and local.status is ArticleStatus.PUBLISHED:
        return
    state = await service.update_local_version(
        uow,
        local.id,
        LocalVersionInput(overrides=wanted, review_due=latest.review_due, change_note=NOTE),
        local.latest_version,
    )
    await _publish(uow, state)


# ---------------------------------------------------------------------------------- deletions


async def _delete(run: _Run, deletion: xzufi.Deletion) -> bool:
    outcome = await xzufi_deletions.archive(run.uow, run.operator.id, run.now, deletion, NOTE)
    run.counts.deletes_unknown += outcome is Archived.UNKNOWN
    run.counts.archived += outcome is Archived.ARCHIVED
    return outcome in (Archived.ARCHIVED, Archived.DETACHED)
