"""The XZuFi import's bulk path for new services (issue 14 §3): it leaves the same knowledge
behind as the one-by-one path (compared on the same messages, each in an operator world of its
own), two imports of one message at once make nothing twice, and a message mixing new, changed,
unchanged and bad objects goes in but for the bad ones."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest

from auth.principal import Principal
from auth.roles import Role
from backend import clock
from backend.db import together
from backend.knowledge import importing, service, xzufi, xzufi_import
from backend.knowledge import xzufi_repository as store
from backend.knowledge.demo import catalogue_path
from backend.knowledge.index_worker import IndexWorker
from backend.knowledge.schemas import ArticleInput
from backend.knowledge.xzufi_schemas import XzufiReport
from backend.state import AppState, unit_of_work
from backend.tenants import service as tenants
from backend.tenants.schemas import AgreementCreate, TenantKind
from tests.knowledge.conftest import KREIS, indexed
from tests.knowledge.xzufi_messages import leistung, message, office, suffix, zipped
from tests.support.world import World, make_tenant, system_principal

GESEKE_AGS, SOEST_AGS = "05974020", "05974040"
KEYS = ("99102013000000", "99001009004002", "99050012104000", "99089017000000", "99108001001000")
TOWNS = ("kreis", "soest", "geseke")


async def _operator_world(state: AppState) -> tuple[dict[str, UUID], Principal]:
    """A district operator with two client towns and a small catalogue of its own: a known world."""
    tag = uuid.uuid4().hex[:6]
    ids = {
        "kreis": await make_tenant(state, f"bulk-kreis-{tag}", kind=TenantKind.DISTRICT, is_operator=True, ags="05974"),
        "soest": await make_tenant(state, f"bulk-soest-{tag}", ags=SOEST_AGS),
        "geseke": await make_tenant(state, f"bulk-geseke-{tag}", ags=GESEKE_AGS),
    }
    admin = Principal(
        issuer="test",
        subject="admin",
        tenant_id=ids["kreis"],
        tenant_slug="kreis",
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=frozenset(ids.values()),
    )
    async with unit_of_work(state, system_principal(ids["kreis"], set(ids.values()))) as uow:
        for town in ("soest", "geseke"):
            await tenants.create_agreement(uow, AgreementCreate(client_tenant_id=ids[town], starts_on=date(2018, 1, 1)))
    lines = catalogue_path().read_text(encoding="utf-8").splitlines()
    small = "\n".join([lines[0], *(line for line in lines[1:] if line.split(",", 1)[0] in KEYS)])
    async with unit_of_work(state, admin) as uow:
        assert (await importing.import_catalogue(uow, small)).inserted == len(KEYS)
    return ids, admin


def _messages(s: str) -> list[str]:
    """A first message (shared, town-only and office-bound services, a bad one) and a second
    mixing a changed, an unchanged, two new and a bad service."""
    shared = leistung(
        f"S1-{s}",
        "Hundesteuer anmelden",
        key=KEYS[0],
        summary="Wer einen Hund hält, meldet ihn bei der Stadt an.",
        description="<p>Die Hundesteuer ist eine Gemeindesteuer.</p>",
        documents="<ul><li>Personalausweis</li></ul>",
        fees=(("120", "erster Hund"), ("180", "zweiter Hund")),
        terms=("Hund", "Hundemarke"),
        legal="Hundesteuersatzung",
    )
    soest_only = leistung(
        f"S2-{s}",
        "Sperrmüll Soest",
        key=KEYS[1],
        summary="Sperrmüll holt der Abfallbetrieb ab.",
        terms=("Sperrgut",),
        areas=(SOEST_AGS,),
        deadline="zwei Wochen vorher anmelden",
    )
    geseke_only = leistung(
        f"S3-{s}", "Gewerbe anmelden in Geseke", key=KEYS[2], areas=(GESEKE_AGS,), terms=("Gewerbe",)
    )
    bad = leistung(f"BAD-{s}", "kaputt", key="nope")
    soest_office = office(
        f"O1-{s}",
        f"Bürgerbüro Soest {s}",
        ags=SOEST_AGS,
        email="buergerbuero@soest.de",
        responsible=((f"S2-{s}", SOEST_AGS), (f"S1-{s}", SOEST_AGS)),
    )
    geseke_office = office(f"O2-{s}", f"Gewerbeamt Geseke {s}", ags=GESEKE_AGS, responsible=((f"S3-{s}", GESEKE_AGS),))
    first = message(shared, soest_only, geseke_only, bad, soest_office, geseke_office)
    changed = leistung(
        f"S1-{s}",
        "Hundesteuer anmelden",
        key=KEYS[0],
        summary="Wer einen Hund hält, meldet ihn bei der Stadt an.",
        fees=(("132", "erster Hund"),),
        terms=("Hund",),
        version="2",
    )
    new_shared = leistung(f"S4-{s}", "Fundsachen abholen", key=KEYS[3], terms=("Fundbüro",))
    new_town = leistung(f"S5-{s}", "Bewohnerparken Geseke", key=KEYS[4], areas=(GESEKE_AGS,), summary="Parkausweis.")
    bad_area = leistung(f"BAD2-{s}", "falsches Gebiet", key=KEYS[4], areas=("abc",))
    second = message(changed, soest_only, new_shared, bad_area, new_town, deletions=[("leistung", f"GONE-{s}")])
    return [first, second]


async def _import(state: AppState, admin: Principal, text: str, *, bulk: bool) -> XzufiReport:
    async with unit_of_work(state, admin) as uow:
        run = await xzufi_import.start(uow)
        run.bulk = bulk
        await xzufi_import.apply_message(run, xzufi.parse_message(text.encode(), "m.xml"))
        return run.counts.report()


SNAPSHOT = {
    "articles": """SELECT a.tenant_id, a.kind, a.status, coalesce(a.external_id, 'local of ' || b.external_id) AS ext,
                          v.status AS version_status, v.title, v.summary, v.leika_key, v.sections, v.overrides,
                          v.search_terms, v.review_due, v.valid_from, v.valid_until, v.change_note, v.author
                   FROM articles a
                   LEFT JOIN articles b ON b.tenant_id = a.base_tenant_id AND b.id = a.base_article_id
                   JOIN article_versions v
                     ON v.tenant_id = a.tenant_id AND v.article_id = a.id AND v.version = a.published_version
                   WHERE a.tenant_id = ANY($1::uuid[])""",
    "search": """SELECT k.tenant_id, k.view, a.external_id, k.source, k.shared, k.article_kind, k.leika_key, k.status,
                        k.title, k.summary, k.body, k.title_words, k.tsv::text
                 FROM knowledge_search k JOIN articles a ON a.tenant_id = k.tenant_id AND a.id = k.doc_id
                 WHERE k.tenant_id = ANY($1::uuid[])""",
    "lexicon": """SELECT tenant_id, shared, lexeme, ndoc FROM search_lexicon
                  WHERE tenant_id = ANY($1::uuid[]) AND ndoc > 0""",
    "vectors": """SELECT v.tenant_id, coalesce(a.external_id, v.doc_id::text) AS doc, v.shared, v.leika_key, v.text_md5
                  FROM knowledge_vectors v
                  LEFT JOIN articles a ON a.tenant_id = v.tenant_id AND a.id = v.doc_id
                  WHERE v.tenant_id = ANY($1::uuid[]) AND a.id IS NOT NULL""",
    "sources": """SELECT s.tenant_id, coalesce(a.external_id, 'local of ' || b.external_id) AS ext, s.section,
                         s.origin, s.reference, s.reference_version, s.imported_hash, s.written_hash, s.changed_by,
                         s.source_changed_at IS NOT NULL AS flagged
                  FROM (SELECT tenant_id, article_id, section, origin, reference, reference_version, imported_hash,
                               written_hash, changed_by, source_changed_at
                        FROM article_section_sources
                        UNION ALL  -- a new article's row, by section, where the section has no row of its own
                        SELECT o.tenant_id, o.article_id, h.key, o.origin, o.reference, o.reference_version, h.value,
                               h.value, o.changed_by, NULL
                        FROM article_sources o CROSS JOIN LATERAL jsonb_each_text(o.written_hashes) AS h
                        WHERE NOT EXISTS (SELECT 1 FROM article_section_sources x WHERE x.tenant_id = o.tenant_id
                                          AND x.article_id = o.article_id AND x.section = h.key)) s
                  JOIN articles a ON a.tenant_id = s.tenant_id AND a.id = s.article_id
                  LEFT JOIN articles b ON b.tenant_id = a.base_tenant_id AND b.id = a.base_article_id
                  WHERE s.tenant_id = ANY($1::uuid[])""",
    "terms": """SELECT t.tenant_id, a.external_id, t.terms, t.lowered, t.leika_key, t.shared FROM article_search_terms t
                JOIN articles a ON a.tenant_id = t.tenant_id AND a.id = t.article_id
                WHERE t.tenant_id = ANY($1::uuid[])""",
    "routes": """SELECT r.tenant_id, r.key_prefix, d.name FROM ticket_routes r
                 JOIN departments d ON d.tenant_id = r.tenant_id AND d.id = r.department_id
                 WHERE r.tenant_id = ANY($1::uuid[])""",
    "objects": """SELECT o.kind, o.xzufi_id, o.version, o.content_hash, o.target_tenant_id, a.external_id, d.name,
                         o.leika_key, o.data, o.status
                  FROM xzufi_objects o
                  LEFT JOIN articles a ON a.tenant_id = o.target_tenant_id AND a.id = o.article_id
                  LEFT JOIN departments d ON d.tenant_id = o.target_tenant_id AND d.id = o.department_id
                  WHERE o.tenant_id = $1""",
}


def _neutral(value: Any, names: dict[Any, str], s: str) -> Any:
    """A value with this world's tenant ids and id suffix replaced, to compare two worlds."""
    if isinstance(value, UUID):
        return names.get(value, "uuid")
    if isinstance(value, str):
        return value.replace(s, "<s>")
    if isinstance(value, dict):
        return {k: _neutral(v, names, s) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_neutral(v, names, s) for v in value]
    return value


async def _snapshot(state: AppState, admin: Principal, ids: dict[str, UUID], s: str) -> dict[str, list[str]]:
    names: dict[Any, str] = {ids[t]: t for t in TOWNS}
    found: dict[str, list[str]] = {}
    async with unit_of_work(state, admin, readonly=True) as uow:
        for what, sql in SNAPSHOT.items():
            argument: Any = ids["kreis"] if what == "objects" else list(ids.values())
            rows = await uow.conn.fetch(sql, argument)
            found[what] = sorted(repr(_neutral(list(dict(r).values()), names, s)) for r in rows)
    return found


async def test_the_bulk_path_leaves_the_same_knowledge_as_one_by_one(world: World) -> None:
    state = world.state
    reports: dict[bool, list[Any]] = {}
    snapshots: dict[bool, dict[str, list[str]]] = {}
    s = suffix()  # the same in both worlds: ids are the operator's own, and the words indexed the same
    for bulk in (True, False):
        ids, admin = await _operator_world(state)
        done = [await _import(state, admin, text, bulk=bulk) for text in _messages(s)]
        if bulk:  # the bulk path queues the index (words, vectors) for the worker; one by one makes it inline
            async with unit_of_work(state, admin, readonly=True) as uow:
                queued = await uow.conn.fetchval(
                    "SELECT count(*) FROM knowledge_index_queue WHERE tenant_id = ANY($1::uuid[]) AND words",
                    list(ids.values()),
                )
            assert queued == 5  # the new services: shared, two towns' own in the first message; two in the second
            await IndexWorker(state).drain()
        reports[bulk] = [_neutral(msgspec.to_builtins(r), {}, s) for r in done]
        snapshots[bulk] = await _snapshot(state, admin, ids, s)
        # Version numbers differ, nothing else: bulk publishes a new service at version 1,
        # one by one it goes draft 1 → review 2 → published 3.
        async with unit_of_work(state, admin, readonly=True) as uow:
            first = await uow.conn.fetchval(
                """SELECT min(published_version) FROM articles
                   WHERE tenant_id = ANY($1::uuid[]) AND kind <> 'local_version'""",
                list(ids.values()),
            )
        assert first == (1 if bulk else 3)
        # A received service keeps its origin portal only (its sections are the article's, and
        # nothing read them here); an office keeps what the routes and the towns' articles read.
        async with unit_of_work(state, admin, readonly=True) as uow:
            kept = await uow.conn.fetch("SELECT kind, data FROM xzufi_objects WHERE tenant_id = $1", ids["kreis"])
        assert {r["kind"] for r in kept} == {"leistung", "organisationseinheit"}
        assert all(r["data"] == {"originPortal": None} for r in kept if r["kind"] == "leistung"), kept
        assert all(r["data"]["leistungen"] and r["data"]["responsibilities"] for r in kept if r["kind"] != "leistung")
    one, two = reports[True]
    assert (one["created"], one["officesCreated"], one["responsibilities"]) == (3, 2, 3), one
    assert (two["created"], two["updated"], two["unchanged"], two["deletesUnknown"]) == (2, 1, 1, 1), two
    assert [e["xzufiId"] for e in one["errors"]] == ["BAD-<s>"] and [e["xzufiId"] for e in two["errors"]] == [
        "BAD2-<s>"
    ]
    assert reports[True] == reports[False]
    for what in SNAPSHOT:
        assert snapshots[True][what] == snapshots[False][what], what
    assert all(snapshots[True][what] for what in SNAPSHOT)  # something was compared in each
    assert len(snapshots[True]["vectors"]) == 5 and len(snapshots[True]["routes"]) == 3


async def test_two_imports_of_one_message_at_once_make_nothing_twice(client: httpx.AsyncClient, world: World) -> None:
    s = suffix()
    text = message(
        *(
            leistung(f"BURST-{s}-{n}", f"Fundsache Nummer {n} {s}", key="99089017000000", terms=(f"b{s}",))
            for n in range(6)
        )
    ).encode()
    headers = {**world.headers(KREIS, "platform-admin"), "Content-Type": "application/xml"}
    answers = await asyncio.gather(
        *(client.post("/v1/knowledge/xzufi-imports", content=text, headers=headers) for _ in range(2))
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    outcomes = sorted((a.json()["created"], a.json()["unchanged"], len(a.json()["errors"])) for a in answers)
    assert outcomes == [(0, 6, 0), (6, 0, 0)], outcomes
    await indexed(world)
    async with unit_of_work(
        world.state, system_principal(world.tenant_ids[KREIS], set(world.tenant_ids.values()))
    ) as uow:
        articles = await uow.conn.fetchval(
            "SELECT count(*) FROM articles WHERE tenant_id = $1 AND external_id LIKE $2",
            world.tenant_ids[KREIS],
            f"xzufi:BURST-{s}-%",
        )
        versions = await uow.conn.fetchval(
            """SELECT count(*) FROM article_versions v
               JOIN articles a ON a.tenant_id = v.tenant_id AND a.id = v.article_id
               WHERE a.tenant_id = $1 AND a.external_id LIKE $2""",
            world.tenant_ids[KREIS],
            f"xzufi:BURST-{s}-%",
        )
        searchable = await uow.conn.fetchval(
            """SELECT count(*) FROM knowledge_search k JOIN articles a ON a.tenant_id = k.tenant_id AND a.id = k.doc_id
               WHERE a.tenant_id = $1 AND a.external_id LIKE $2 AND k.view = 'published'""",
            world.tenant_ids[KREIS],
            f"xzufi:BURST-{s}-%",
        )
    assert (articles, versions, searchable) == (6, 6, 6)


async def test_a_mixed_message_takes_the_new_and_changed_and_reports_the_bad(
    client: httpx.AsyncClient, world: World
) -> None:
    s = suffix()
    headers = {**world.headers(KREIS, "platform-admin"), "Content-Type": "application/xml"}
    old = leistung(f"MIX-A-{s}", f"Fundbüro {s}", key="99089017000000", fees=(("5", "Gebühr"),))
    first = await client.post("/v1/knowledge/xzufi-imports", content=message(old).encode(), headers=headers)
    assert first.status_code == 200 and first.json()["created"] == 1, first.text
    changed = leistung(f"MIX-A-{s}", f"Fundbüro {s}", key="99089017000000", fees=(("7", "Gebühr"),), version="2")
    mixed = message(
        changed,
        leistung(f"MIX-B-{s}", f"Sperrmüll {s}", key="99001009004002", terms=(f"mix{s}",)),
        leistung(f"MIX-BAD-{s}", "ohne Schlüssel", key="12"),
        leistung(f"MIX-C-{s}", f"Hundesteuer {s}", key="99102013000000", areas=(GESEKE_AGS,)),
    )
    answer = await client.post("/v1/knowledge/xzufi-imports", content=mixed.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (2, 1, 0), report
    assert [(e["xzufiId"], e["kind"]) for e in report["errors"]] == [(f"MIX-BAD-{s}", "leistung")]
    assert report["errors"][0]["line"] > 1
    principal = system_principal(world.tenant_ids[KREIS], set(world.tenant_ids.values()))
    async with unit_of_work(world.state, principal, readonly=True) as uow:
        rows = await uow.conn.fetch(
            """SELECT a.external_id, a.tenant_id, a.status, v.sections->>'fees' AS fees
               FROM articles a JOIN article_versions v
                 ON v.tenant_id = a.tenant_id AND v.article_id = a.id AND v.version = a.published_version
               WHERE a.external_id LIKE $1 ORDER BY a.external_id""",
            f"xzufi:MIX-%-{s}",
        )
    found = {r["external_id"].split("-")[1]: r for r in rows}
    assert sorted(found) == ["A", "B", "C"]
    assert "7,00 €" in found["A"]["fees"] and {r["status"] for r in rows} == {"published"}
    assert found["C"]["tenant_id"] == world.tenant_ids["stadt-geseke"]  # a town's own, only for its area


async def test_when_the_database_refuses_the_lot_the_services_go_one_by_one(world: World) -> None:
    """An article already holds a service's external id (written by hand, never received): the
    bulk insert fails, leaves nothing, and one by one names that service while the others go in."""
    ids, admin = await _operator_world(world.state)
    s = suffix()
    async with unit_of_work(world.state, admin) as uow:
        taken = ArticleInput(title=f"Von Hand {s}", summary="", leika_key=KEYS[3])
        await service.create_article(uow, taken, shared=True, tenant_slug=None, external_id=f"xzufi:HAND-{s}")
    text = message(
        leistung(f"HAND-{s}", f"Fundsachen {s}", key=KEYS[3]),
        leistung(f"FINE-{s}", f"Hundesteuer {s}", key=KEYS[0]),
    )
    report = await _import(world.state, admin, text, bulk=True)
    assert report.created == 1 and [(e.xzufi_id, e.kind) for e in report.errors] == [(f"HAND-{s}", "leistung")]
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        rows = await uow.conn.fetch(
            "SELECT external_id, created_by FROM articles WHERE tenant_id = $1 AND external_id LIKE $2",
            ids["kreis"],
            f"xzufi:%-{s}",
        )
    assert sorted(r["external_id"] for r in rows) == [f"xzufi:FINE-{s}", f"xzufi:HAND-{s}"]


async def test_a_service_id_twice_in_one_message_is_reported_and_the_rest_goes_in(world: World) -> None:
    """The second of two services with one id is a duplicate error (position, line and id) on
    both paths; the first and the others go in."""
    for bulk in (True, False):
        ids, admin = await _operator_world(world.state)
        s = suffix()
        text = message(
            leistung(f"TWICE-{s}", f"Fundsachen {s}", key=KEYS[3]),
            leistung(f"OTHER-{s}", f"Hundesteuer {s}", key=KEYS[0]),
            leistung(f"TWICE-{s}", f"Fundsachen anders {s}", key=KEYS[3], version="2"),
        )
        report = await _import(world.state, admin, text, bulk=bulk)
        assert (report.created, report.updated, report.unchanged) == (2, 0, 0), report
        [error] = report.errors
        assert (error.xzufi_id, error.kind) == (f"TWICE-{s}", "leistung")
        assert (
            error.message.startswith("service 3: the service id appears twice")
            and "first as service 1" in error.message
        )
        assert error.line > 1  # the second's own line
        async with unit_of_work(world.state, admin, readonly=True) as uow:
            titles = await uow.conn.fetch(
                """SELECT v.title FROM articles a JOIN article_versions v
                     ON v.tenant_id = a.tenant_id AND v.article_id = a.id AND v.version = a.published_version
                   WHERE a.tenant_id = $1 AND a.external_id = $2""",
                ids["kreis"],
                f"xzufi:TWICE-{s}",
            )
        assert [r["title"] for r in titles] == [f"Fundsachen {s}"]  # the first


async def test_one_look_up_answers_what_the_two_did(world: World) -> None:
    """`services_and_offices` (one round trip a message) returns what `objects_by_ids` and
    `offices_responsible_for` return: the services asked for, and the active offices naming any
    of the named services, in the offices' order; none without names."""
    ids, admin = await _operator_world(world.state)
    s = suffix()
    first = message(
        office(f"OE-B-{s}", f"Bürgerbüro {s}", ags=SOEST_AGS, responsible=[(f"L1-{s}", SOEST_AGS)]),
        office(f"OE-A-{s}", f"Ordnungsamt {s}", ags=GESEKE_AGS, responsible=[(f"L2-{s}", GESEKE_AGS)]),
        office(f"OE-C-{s}", f"Bauamt {s}", ags=GESEKE_AGS, responsible=[(f"L1-{s}", GESEKE_AGS)]),
        leistung(f"L1-{s}", f"Hundesteuer {s}", key=KEYS[0]),
        leistung(f"L2-{s}", f"Fundsachen {s}", key=KEYS[3]),
    )
    await _import(world.state, admin, first, bulk=True)
    await _import(world.state, admin, message(deletions=[("organisationseinheit", f"OE-C-{s}")]), bulk=True)
    asked, named = [f"L1-{s}", f"L9-{s}"], [f"L1-{s}", f"L2-{s}"]
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        services, offices = await store.services_and_offices(uow.conn, ids["kreis"], asked, named)
        apart = await store.objects_by_ids(uow.conn, ids["kreis"], "leistung", asked)
        responsible = await store.offices_responsible_for(uow.conn, ids["kreis"], named)
        alone, none = await store.services_and_offices(uow.conn, ids["kreis"], asked, [])
    assert services == apart and sorted(services) == [f"L1-{s}"]
    assert offices == responsible and [o.xzufi_id for o in offices] == [f"OE-A-{s}", f"OE-B-{s}"]  # C archived
    assert alone == apart and none == []


async def test_a_new_object_received_meanwhile_fails_the_plain_insert(world: World) -> None:
    """The bulk path inserts received objects without a conflict clause (they were read as never
    received, under the import lock): one that exists fails the statement, so the lot goes back
    and one by one takes it (the test above); the upsert of the other paths still updates."""
    ids, admin = await _operator_world(world.state)
    s = suffix()
    await _import(world.state, admin, message(leistung(f"ONCE-{s}", f"Fundsachen {s}", key=KEYS[3])), bulk=True)
    async with unit_of_work(world.state, admin) as uow:
        [stored] = (await store.objects_by_ids(uow.conn, ids["kreis"], "leistung", [f"ONCE-{s}"])).values()
        again = dataclasses.replace(stored, version="2")
        with pytest.raises(asyncpg.UniqueViolationError):
            async with uow.conn.transaction():
                await together.execute(uow.conn, [store.objects_save(ids["kreis"], [again], clock.now(), new=True)])
        await together.execute(uow.conn, [store.objects_save(ids["kreis"], [again], clock.now())])
        [kept] = (await store.objects_by_ids(uow.conn, ids["kreis"], "leistung", [f"ONCE-{s}"])).values()
    assert kept.version == "2"


async def test_a_bad_object_after_the_bulk_write_leaves_the_new_services(world: World) -> None:
    """The bulk write's savepoint stays open to the transaction's end: an object after it that
    fails in its own savepoint (here a known service that would move from the operator to a
    town) is reported and leaves the new services written."""
    ids, admin = await _operator_world(world.state)
    s = suffix()
    await _import(world.state, admin, message(leistung(f"MOVE-{s}", f"Fundsachen {s}", key=KEYS[3])), bulk=True)
    text = message(
        leistung(f"NEW1-{s}", f"Hundesteuer {s}", key=KEYS[0]),
        leistung(f"NEW2-{s}", f"Sperrmüll {s}", key=KEYS[1]),
        leistung(f"MOVE-{s}", f"Fundsachen {s}", key=KEYS[3], version="2", areas=(GESEKE_AGS,)),
    )
    report = await _import(world.state, admin, text, bulk=True)
    assert report.created == 2 and [(e.xzufi_id, e.kind) for e in report.errors] == [(f"MOVE-{s}", "leistung")]
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        written = await uow.conn.fetch(
            "SELECT external_id FROM articles WHERE tenant_id = $1 AND external_id LIKE $2 ORDER BY external_id",
            ids["kreis"],
            f"xzufi:NEW%-{s}",
        )
        objects = await store.objects_by_ids(uow.conn, ids["kreis"], "leistung", [f"NEW1-{s}", f"NEW2-{s}"])
    assert [r["external_id"] for r in written] == [f"xzufi:NEW1-{s}", f"xzufi:NEW2-{s}"] and len(objects) == 2


async def test_in_a_zip_a_refused_lot_goes_back_alone(world: World) -> None:
    """A zip's messages share one transaction: the first message's bulk write stays when the
    second's is refused by the database (a taken external id) and goes one by one, and a third
    goes in in bulk again; each `begin_bulk` ends the savepoint the message before left open."""
    ids, admin = await _operator_world(world.state)
    s = suffix()
    async with unit_of_work(world.state, admin) as uow:
        taken = ArticleInput(title=f"Von Hand {s}", summary="", leika_key=KEYS[3])
        await service.create_article(uow, taken, shared=True, tenant_slug=None, external_id=f"xzufi:HAND-{s}")
    members = {
        "1.xml": message(leistung(f"Z1-{s}", f"Hundesteuer {s}", key=KEYS[0])).encode(),
        "2.xml": message(
            leistung(f"HAND-{s}", f"Fundsachen {s}", key=KEYS[3]), leistung(f"Z2-{s}", f"Sperrmüll {s}", key=KEYS[1])
        ).encode(),
        "3.xml": message(leistung(f"Z3-{s}", f"Wohngeld {s}", key=KEYS[2])).encode(),
    }
    async with unit_of_work(world.state, admin) as uow:
        report = await xzufi_import.import_upload(uow, zipped(members), "feed.zip")
    assert report.created == 3 and [(e.xzufi_id, e.kind) for e in report.errors] == [(f"HAND-{s}", "leistung")]
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        rows = await uow.conn.fetch(
            "SELECT external_id FROM articles WHERE tenant_id = $1 AND external_id LIKE $2 ORDER BY external_id",
            ids["kreis"],
            f"xzufi:Z%-{s}",
        )
        objects = await store.objects_by_ids(uow.conn, ids["kreis"], "leistung", [f"Z{n}-{s}" for n in (1, 2, 3)])
    assert [r["external_id"] for r in rows] == [f"xzufi:Z{n}-{s}" for n in (1, 2, 3)] and len(objects) == 3
