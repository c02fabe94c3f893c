"""The XZuFi import over REST and GraphQL against the real database: what services, offices and
responsibilities become, idempotent re-imports, deletions, editors' overrides, and towns kept
apart."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from tests.knowledge.conftest import (
    ARTICLE,
    GESEKE,
    KREIS,
    SOEST,
    gql,
    indexed,
    nonsense_word,
    payload,
    publish,
    published_article,
    search,
)
from tests.knowledge.xzufi_messages import leistung, message, office, suffix
from tests.support.world import World

Client = httpx.AsyncClient
IMPORT = "/v1/knowledge/xzufi-imports"
GESEKE_AGS, SOEST_AGS = "05974020", "05974040"


async def post(client: Client, world: World, text: str | bytes, role: str = "platform-admin") -> httpx.Response:
    body = text.encode() if isinstance(text, str) else text
    return await client.post(
        IMPORT, content=body, headers={**world.headers(KREIS, role), "Content-Type": "application/xml"}
    )


async def imported(client: Client, world: World, text: str) -> dict[str, Any]:
    """Imported, and indexed as the background worker indexes new services seconds later."""
    response = await post(client, world, text)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    await indexed(world)
    return report


async def article_id_of(client: Client, world: World, town: str, query: str, title: str) -> str | None:
    found = await search(client, world, (town, "agent"), query, tenant=town)
    for hit in found["nodes"]:
        if hit["title"] == title:
            return str(hit["id"])
    return None


async def view(client: Client, world: World, town: str, article_id: str) -> dict[str, Any] | None:
    body = await gql(client, world.headers(town, "agent"), ARTICLE, id=article_id, tenant=world.slug(town))
    result: dict[str, Any] | None = payload(body, "article")
    return result


async def sources(client: Client, world: World, town: str, role: str, article_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/knowledge/articles/{article_id}/sources",
        params={"tenant": world.slug(town)},
        headers=world.headers(town, role),
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def test_a_town_service_with_its_office_becomes_the_towns_article_with_contacts_and_hours(
    client: Client, world: World
) -> None:
    s, w = suffix(), nonsense_word()
    title = f"Sperrmüll Geseke Abholung {s}"
    text = message(
        leistung(
            f"GES-SP-{s}",
            title,
            summary="Sperrmüll wird in Geseke zweimal im Jahr kostenlos abgeholt.",
            fees=(("0", "zwei Abholungen im Jahr"), ("45", "jede weitere Abholung")),
            terms=("Sperrgut", w),
            areas=(GESEKE_AGS,),
        ),
        office(
            f"GES-OE-{s}",
            f"Abfallberatung {s}",
            ags=GESEKE_AGS,
            email="abfall@geseke.de",
            responsible=((f"GES-SP-{s}", GESEKE_AGS),),
        ),
    )
    report = await imported(client, world, text)
    assert (report["created"], report["officesCreated"], report["responsibilities"]) == (1, 1, 1), report
    assert report["errors"] == []
    article_id = await article_id_of(client, world, GESEKE, w, title)
    assert article_id is not None, "the imported search term finds the article"
    shown = await view(client, world, GESEKE, article_id)
    assert shown is not None and shown["kind"] == "LOCAL"
    assert "45,00 €" in shown["sections"]["fees"]
    assert shown["sections"]["contacts"] == [{"label": f"Abfallberatung {s}", "phone": "+49 2942 500-0"}]
    assert {"weekday": 4, "opens": "14:00", "closes": "17:30"} in shown["sections"]["openingHours"]
    assert shown["sections"]["responsibleOffice"].startswith(f"Abfallberatung {s}, Bachstraße 1")
    # Cross-tenant: Soest's agents neither find nor open Geseke's imported article.
    assert await article_id_of(client, world, SOEST, w, title) is None
    body = await gql(client, world.headers(SOEST, "agent"), ARTICLE, id=article_id, tenant=world.slug(SOEST))
    assert body["data"]["article"] is None
    # The office became a Geseke department, and forwarding's table proposes it for the key.
    routes = await client.get(
        f"/v1/tenants/{world.slug(GESEKE)}/ticket-routes", headers=world.headers(KREIS, "platform-admin")
    )
    assert routes.status_code == 200, routes.text
    assert {"keyPrefix": "99001009004002", "departmentName": f"Abfallberatung {s}"}.items() <= next(
        r for r in routes.json()["routes"] if r["keyPrefix"] == "99001009004002"
    ).items()


async def test_re_import_is_idempotent_and_a_change_makes_a_new_version(client: Client, world: World) -> None:
    s, w = suffix(), nonsense_word()
    title = f"Hundesteuer Soest {s}"

    def text(fee: str, version: str) -> str:
        return message(
            leistung(
                f"SO-HS-{s}",
                title,
                key="99102013010000",  # a key no other test gives Soest an article for
                fees=((fee, "erster Hund"),),
                areas=(SOEST_AGS,),
                terms=(w,),
                version=version,
            ),
            office(f"SO-OE-{s}", f"Steueramt {s}", ags=SOEST_AGS, responsible=((f"SO-HS-{s}", SOEST_AGS),)),
        )

    first = await imported(client, world, text("120", "1"))
    again = await imported(client, world, text("120", "1"))
    assert (first["created"], first["officesCreated"]) == (1, 1)
    assert (again["created"], again["updated"], again["unchanged"], again["officesUnchanged"]) == (0, 0, 1, 1)
    article_id = await article_id_of(client, world, SOEST, w, title)
    assert article_id is not None
    before = await view(client, world, SOEST, article_id)
    changed = await imported(client, world, text("132", "2"))
    assert (changed["updated"], changed["created"]) == (1, 0), changed
    after = await view(client, world, SOEST, article_id)
    assert before is not None and after is not None
    assert after["version"] > before["version"] and "132,00 €" in after["sections"]["fees"]
    rows = {r["section"]: r for r in await sources(client, world, SOEST, "editor", article_id)}
    assert rows["fees"]["origin"] == "xzufi" and rows["fees"]["reference"] == f"SO-HS-{s}"
    assert rows["fees"]["referenceVersion"] == "2"


async def test_loesche_archives_a_shared_service_a_town_edited_and_counts_unknown_deletes(
    client: Client, world: World
) -> None:
    s, w = suffix(), nonsense_word()
    title = f"Gewerbe anmelden {s}"
    written = message(leistung(f"KS-GA-{s}", title, key="99050012104000", fees=(("26", "Anmeldung"),), terms=(w,)))
    await imported(client, world, written)
    article_id = await article_id_of(client, world, SOEST, w, title)
    assert article_id is not None
    local = await client.post(
        "/graphql",
        json={
            "query": """mutation($id: UUID!, $input: LocalVersionInput!) { createLocalVersion(sharedArticleId: $id,
                        input: $input) { article { id latestVersion } errors { code message } } }""",
            "variables": {"id": article_id, "input": {"overrides": {"fees": "In Soest: 30,00 €"}}},
        },
        headers=world.headers(SOEST, "editor"),
    )
    local_version = local.json()["data"]["createLocalVersion"]["article"]
    assert local_version is not None, local.text
    gone = await imported(
        client,
        world,
        message(
            deletions=[
                ("leistung", f"KS-GA-{s}"),
                ("leistung", f"NEVER-{s}"),
                ("organisationseinheit", f"NEVER-OE-{s}"),
            ]
        ),
    )
    assert (gone["archived"], gone["deletesUnknown"], gone["errors"]) == (1, 2, [])
    assert await article_id_of(client, world, SOEST, w, title) is None
    editor = await gql(
        client,
        world.headers(SOEST, "editor"),
        "query($id: UUID!) { editorArticle(id: $id) { id kind } }",
        id=local_version["id"],
    )
    assert payload(editor, "editorArticle") == {"id": local_version["id"], "kind": "LOCAL_VERSION"}  # kept
    again = await imported(client, world, message(deletions=[("leistung", f"KS-GA-{s}")]))
    assert (again["archived"], again["deletesUnknown"]) == (0, 0)  # already archived: nothing to do
    back = await imported(client, world, written)  # sent again: published again, same article
    assert (back["updated"], back["created"]) == (1, 0), back
    assert await article_id_of(client, world, SOEST, w, title) == article_id


async def test_an_override_survives_and_shows_source_changed_until_confirmed(client: Client, world: World) -> None:
    s, w = suffix(), nonsense_word()
    title = f"Anwohnerparkausweis {s}"

    def text(fee: str) -> str:
        return message(
            leistung(f"KS-BP-{s}", title, key="99108001001000", fees=((fee, "ein Jahr"),), terms=(w,), version=fee)
        )

    await imported(client, world, text("30,70"))
    article_id = await article_id_of(client, world, GESEKE, w, title)
    assert article_id is not None
    created = await gql(
        client,
        world.headers(GESEKE, "editor"),
        """mutation($id: UUID!, $input: LocalVersionInput!) { createLocalVersion(sharedArticleId: $id, input: $input)
           { article { id latestVersion } errors { code } } }""",
        id=article_id,
        input={"overrides": {"fees": "In Geseke: 25,00 € im Jahr"}},
    )
    local_id = payload(created, "createLocalVersion")["article"]["id"]
    await publish(client, world, GESEKE, local_id)
    unchanged = await imported(client, world, text("30,70"))
    assert unchanged["unchanged"] == 1
    assert not any(r["sourceChanged"] for r in await sources(client, world, GESEKE, "editor", article_id))
    await imported(client, world, text("35,00"))
    rows = [r for r in await sources(client, world, GESEKE, "editor", article_id) if r["articleId"] == local_id]
    assert [(r["section"], r["origin"], r["sourceChanged"]) for r in rows] == [("fees", "editor", True)]
    # The town's override still wins for Geseke; the shared text changed for everyone else.
    geseke = await view(client, world, GESEKE, article_id)
    soest = await view(client, world, SOEST, article_id)
    assert geseke is not None and soest is not None
    assert geseke["sections"]["fees"] == "In Geseke: 25,00 € im Jahr" and "35,00 €" in soest["sections"]["fees"]
    # Soest's editor cannot confirm Geseke's version; Geseke's can.
    refused = await client.post(
        f"/v1/knowledge/articles/{local_id}/sources/confirm",
        json={"sections": ["fees"]},
        headers=world.headers(SOEST, "editor"),
    )
    assert refused.status_code == 404, refused.text
    confirmed = await client.post(
        f"/v1/knowledge/articles/{local_id}/sources/confirm",
        json={"sections": ["fees"]},
        headers=world.headers(GESEKE, "editor"),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert [r["sourceChanged"] for r in confirmed.json()] == [False]


async def test_an_editors_change_to_an_imported_section_is_kept_on_re_import(client: Client, world: World) -> None:
    s, w = suffix(), nonsense_word()
    title = f"Einbürgerung {s}"

    def text(deadline: str, version: str) -> str:
        return message(
            leistung(
                f"SO-EB-{s}",
                title,
                key="99099002000000",
                deadline=deadline,
                areas=(SOEST_AGS,),
                terms=(w,),
                summary="Einbürgerung in Soest.",
                version=version,
            )
        )

    await imported(client, world, text("keine Frist", "1"))
    article_id = await article_id_of(client, world, SOEST, w, title)
    assert article_id is not None
    state = payload(
        await gql(
            client,
            world.headers(SOEST, "editor"),
            "query($id: UUID!) { editorArticle(id: $id) { latestVersion "
            "latest { title summary leikaKey searchTerms } } }",
            id=article_id,
        ),
        "editorArticle",
    )
    latest = state["latest"]
    edited = await gql(
        client,
        world.headers(SOEST, "editor"),
        """mutation($id: UUID!, $input: ArticleInput!, $expected: Int!) { updateArticle(id: $id, input: $input,
           expectedVersion: $expected) { article { latestVersion } errors { code message } } }""",
        id=article_id,
        expected=state["latestVersion"],
        input={
            "title": latest["title"],
            "summary": latest["summary"],
            "leikaKey": latest["leikaKey"],
            "searchTerms": latest["searchTerms"],
            "sections": {"deadlines": "Termin im Bürgerbüro vereinbaren."},
        },
    )
    assert payload(edited, "updateArticle")["errors"] == []
    report = await imported(client, world, text("binnen sechs Monaten", "2"))
    assert report["errors"] == []
    rows = {r["section"]: r for r in await sources(client, world, SOEST, "editor", article_id)}
    assert rows["deadlines"]["origin"] == "editor" and rows["deadlines"]["sourceChanged"] is True
    body = await gql(
        client,
        world.headers(SOEST, "editor"),
        "query($id: UUID!) { editorArticle(id: $id) { latest { sections { deadlines } } } }",
        id=article_id,
    )
    assert payload(body, "editorArticle")["latest"]["sections"]["deadlines"] == "Termin im Bürgerbüro vereinbaren."


async def test_bad_input_is_refused_clearly_and_changes_nothing(client: Client, world: World) -> None:
    other = await post(client, world, message(leistung(f"V-{suffix()}", "x"), ns="http://xoev.de/schemata/xzufi/2_1_0"))
    assert other.status_code == 422 and "2.1.0" in other.json()["detail"], other.text
    garbage = await post(client, world, b"\x00\x01 not xml")
    assert garbage.status_code == 422, garbage.text
    forbidden = await post(client, world, message(), role="editor")
    assert forbidden.status_code == 403, forbidden.text
    forbidden_garbage = await post(client, world, b"PK\x03\x04 not a zip", role="editor")  # the door first
    assert forbidden_garbage.status_code == 403, forbidden_garbage.text
    s = suffix()
    mixed = await imported(
        client,
        world,
        message(
            leistung(f"OK-{s}", f"Fundsachen {s}", key="99089017000000"), leistung(f"BAD-{s}", "kaputt", key="nope")
        ),
    )
    assert mixed["created"] == 1 and [(e["xzufiId"], e["kind"]) for e in mixed["errors"]] == [(f"BAD-{s}", "leistung")]
    assert mixed["errors"][0]["line"] > 0


@pytest.mark.parametrize("variables", [{"message": "<kein xml"}, {"zipBase64": "!!"}, {}])
async def test_graphql_import_answers_bad_input_with_payload_errors(
    client: Client, world: World, variables: dict[str, str]
) -> None:
    body = await gql(
        client,
        world.headers(KREIS, "platform-admin"),
        """mutation($message: String, $zipBase64: String) { importXzufi(message: $message, zipBase64: $zipBase64)
           { report { created } errors { code message field } } }""",
        **variables,
    )
    result = payload(body, "importXzufi")
    assert result["report"] is None and result["errors"][0]["code"] == "VALIDATION_FAILED"


async def test_graphql_import_takes_a_message(client: Client, world: World) -> None:
    s = suffix()
    body = await gql(
        client,
        world.headers(KREIS, "platform-admin"),
        "mutation($m: String) { importXzufi(message: $m) { report { created unknownElements } errors { code } } }",
        m=message(leistung(f"GQL-{s}", f"Fundbüro {s}", key="99089017000000"), "<x:spezialisierung/>"),
    )
    assert payload(body, "importXzufi") == {"report": {"created": 1, "unknownElements": 1}, "errors": []}


async def test_imported_search_terms_feed_the_search_as_synonyms_of_the_service(
    client: Client, world: World, catalogue: dict[str, Any]
) -> None:
    """The operator's imported term finds Geseke's own article of the service, which never
    listed the word: the term is a synonym of the service's catalogue name ("Hundesteuer")."""
    s, w = suffix(), nonsense_word()
    await imported(client, world, message(leistung(f"KS-HS-{s}", f"Hundesteuer {s}", key="99102013000000", terms=(w,))))
    own = await published_article(
        client,
        world,
        GESEKE,
        f"Hundesteuer in Geseke {s}",
        leikaKey="99102013000000",
        sections={"description": "Die Hundesteuer erhebt die Stadt Geseke.", "fees": "96,00 € im Jahr"},
    )
    found = await search(client, world, (GESEKE, "agent"), w, tenant=GESEKE)
    hit = next(h for h in found["nodes"] if h["leikaKey"] == "99102013000000")
    assert hit["kind"] == "LOCAL" and hit["tenantId"] == own["tenantId"], found
    assert any("hundesteuer" in shown.lower() for shown in found["interpretedAs"]), found["interpretedAs"]


async def test_an_imported_search_term_of_several_words_finds_the_service_when_said_together(
    client: Client, world: World, catalogue: dict[str, Any]
) -> None:
    """A term like "Möbel entsorgen" or "Hund anmelden" is looked up as the caller says it, in a
    whole sentence; the same words apart are not the term."""
    s, w1, w2 = suffix(), nonsense_word(), nonsense_word()
    await imported(
        client,
        world,
        message(leistung(f"KS-HT-{s}", f"Hundesteuer {s}", key="99102013000000", terms=(f"{w1} {w2}",))),
    )
    found = await search(client, world, (GESEKE, "agent"), f"Ich möchte {w1} {w2}, wie geht das?", tenant=GESEKE)
    assert found["nodes"] and found["nodes"][0]["leikaKey"] == "99102013000000", found
    assert any("hundesteuer" in shown.lower() for shown in found["interpretedAs"]), found["interpretedAs"]
    apart = await search(client, world, (GESEKE, "agent"), f"{w2} und dann {w1}", tenant=GESEKE)
    assert not any("hundesteuer" in shown.lower() for shown in apart["interpretedAs"]), apart["interpretedAs"]


async def test_an_articles_imported_terms_are_one_row_found_in_any_case_and_replaced_when_changed(
    client: Client, world: World, catalogue: dict[str, Any]
) -> None:
    """An article's imported terms are one row (decision 024, branch importspeed7): the search
    finds each of them whatever its case, and a changed service's terms replace the old ones."""
    s, w1, w2, w3 = suffix(), nonsense_word(), nonsense_word(), nonsense_word()

    def text(version: str, *terms: str) -> str:
        return message(leistung(f"KS-TR-{s}", f"Hundesteuer {s}", key="99102013000000", terms=terms, version=version))

    async def stored() -> list[tuple[list[str], list[str]]]:
        async with tenant_transaction(world.state.pool, [world.tenant_ids[KREIS]], readonly=True) as conn:
            rows = await conn.fetch(
                """SELECT t.terms, t.lowered FROM article_search_terms t
                   JOIN articles a ON a.tenant_id = t.tenant_id AND a.id = t.article_id
                   WHERE a.tenant_id = $1 AND a.external_id = $2""",
                world.tenant_ids[KREIS],
                f"xzufi:KS-TR-{s}",
            )
        return [(list(r["terms"]), list(r["lowered"])) for r in rows]

    def synonym_found(result: dict[str, Any]) -> bool:
        return any("hundesteuer" in shown.lower() for shown in result["interpretedAs"])

    assert (await imported(client, world, text("1", w1.upper(), w2)))["created"] == 1  # the bulk path
    assert await stored() == [([w1.upper(), w2], [w1, w2])]
    for word in (w1, w2):
        assert synonym_found(await search(client, world, (GESEKE, "agent"), word, tenant=GESEKE)), word
    assert (await imported(client, world, text("2", w3)))["updated"] == 1  # one by one: replaced
    assert await stored() == [([w3], [w3])]
    assert synonym_found(await search(client, world, (GESEKE, "agent"), w3.capitalize(), tenant=GESEKE))
    assert not synonym_found(await search(client, world, (GESEKE, "agent"), w2, tenant=GESEKE))
    assert (await imported(client, world, text("3")))["updated"] == 1  # no terms any more: no row
    assert await stored() == []


async def test_a_zip_goes_in_message_by_message_in_order_and_reports_a_refused_one(
    client: Client, world: World
) -> None:
    """Each message of a zip is parsed while the one before is written (decision 024's third
    amendment): they still go in in the zip's order, a refused one is reported, the rest goes in."""
    s, w = suffix(), nonsense_word()
    title = f"Fundbüro {s}"

    def fundbuero(fee: str, version: str) -> str:
        return leistung(f"ZIP-{s}", title, key="99089017000000", fees=((fee, "Gebühr"),), terms=(w,), version=version)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.xml", message(fundbuero("5", "1")))
        archive.writestr("b.xml", message(leistung(f"ZIP-OLD-{s}", "alt"), ns="http://xoev.de/schemata/xzufi/2_1_0"))
        archive.writestr("c.xml", message(fundbuero("7", "2"), leistung(f"ZIP-2-{s}", f"Sperrmüll {s}")))
    response = await client.post(
        IMPORT,
        content=buffer.getvalue(),
        headers={**world.headers(KREIS, "platform-admin"), "Content-Type": "application/zip"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["messages"], report["created"], report["updated"]) == (2, 2, 1), report
    assert [(e["messageName"], e["kind"]) for e in report["errors"]] == [("b.xml", "message")]
    async with tenant_transaction(world.state.pool, [world.tenant_ids[KREIS]], readonly=True) as conn:
        article_id = await conn.fetchval(
            "SELECT id FROM articles WHERE tenant_id = $1 AND external_id = $2",
            world.tenant_ids[KREIS],
            f"xzufi:ZIP-{s}",
        )
    assert article_id is not None
    shown = await view(client, world, SOEST, str(article_id))
    assert shown is not None and "7,00 €" in shown["sections"]["fees"]  # the later message's


async def test_a_new_services_provenance_is_one_row_yet_every_section_says_where_it_came_from(
    client: Client, world: World
) -> None:
    """Decision 024's fifth amendment: a new article's provenance is stored as one row; readers
    still get one entry per section, and a section's own row (a changed source) takes precedence."""
    s, w = suffix(), nonsense_word()
    title = f"Sondernutzung beantragen {s}"

    def text(fee: str, version: str) -> str:
        return message(
            leistung(
                f"KS-SN-{s}",
                title,
                key="99035001000000",
                summary="Eine Straße oder einen Gehweg vorübergehend nutzen.",
                fees=((fee, "Erlaubnis"),),
                deadline="zwei Wochen vorher",
                documents="Lageplan",
                legal="StrWG NRW § 18",
                terms=(w,),
                version=version,
            )
        )

    await imported(client, world, text("40", "1"))
    async with tenant_transaction(world.state.pool, [world.tenant_ids[KREIS]], readonly=True) as conn:
        article_id = await conn.fetchval(
            "SELECT id FROM articles WHERE tenant_id = $1 AND external_id = $2",
            world.tenant_ids[KREIS],
            f"xzufi:KS-SN-{s}",
        )
        stored = await conn.fetch(
            "SELECT reference, reference_version, written_hashes FROM article_sources WHERE article_id = $1", article_id
        )
        per_section = await conn.fetchval(
            "SELECT count(*) FROM article_section_sources WHERE article_id = $1", article_id
        )
    assert article_id is not None
    assert [(r["reference"], r["reference_version"]) for r in stored] == [(f"KS-SN-{s}", "1")]
    assert per_section == 0
    first = {r["section"]: r for r in await sources(client, world, SOEST, "editor", str(article_id))}
    assert {"title", "summary", "fees", "deadlines", "documents", "legal_basis", "search_terms"} <= first.keys()
    assert first.keys() == set(stored[0]["written_hashes"])
    assert all(
        (r["origin"], r["reference"], r["referenceVersion"], r["sourceChanged"]) == ("xzufi", f"KS-SN-{s}", "1", False)
        for r in first.values()
    ), first
    assert len({r["changedAt"] for r in first.values()}) == 1

    changed = await imported(client, world, text("55", "2"))
    assert changed["updated"] == 1, changed
    again = {r["section"]: r for r in await sources(client, world, SOEST, "editor", str(article_id))}
    assert again.keys() == first.keys()
    # Each section's own row now answers (version 2); the fee, changed by the source, is new.
    assert {r["referenceVersion"] for r in again.values()} == {"2"}
    assert again["fees"]["changedAt"] > first["fees"]["changedAt"]
    assert again["title"]["changedAt"] == first["title"]["changedAt"]  # unchanged since the first import


async def test_a_towns_own_imported_provenance_is_hidden_from_another_town(client: Client, world: World) -> None:
    s = suffix()
    await imported(client, world, message(leistung(f"GE-PR-{s}", f"Parkausweis Geseke {s}", areas=(GESEKE_AGS,))))
    geseke, soest = world.tenant_ids[GESEKE], world.tenant_ids[SOEST]
    async with tenant_transaction(world.state.pool, [geseke], readonly=True) as conn:
        article_id = await conn.fetchval(
            "SELECT id FROM articles WHERE tenant_id = $1 AND external_id = $2", geseke, f"xzufi:GE-PR-{s}"
        )
        own = await conn.fetchval("SELECT count(*) FROM article_sources WHERE article_id = $1", article_id)
    async with tenant_transaction(world.state.pool, [soest], readonly=True) as conn:
        other = await conn.fetchval("SELECT count(*) FROM article_sources WHERE article_id = $1", article_id)
    assert article_id is not None and (own, other) == (1, 0)
