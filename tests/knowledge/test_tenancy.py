"""Shared articles with towns' local versions, and isolation between towns over GraphQL, REST
and in the database itself (row-level security without the application's filters)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from tests.knowledge.conftest import (
    ARTICLE,
    GESEKE,
    KREIS,
    LOCAL_VERSION,
    SOEST,
    create_article,
    gql,
    payload,
    publish,
    published_article,
    search,
    transition,
    unique,
)
from tests.support.world import World

Client = httpx.AsyncClient
SHARED_SECTIONS = {
    "description": "Der Ausweis wird im Bürgerbüro beantragt.",
    "fees": "37,00 €",
    "responsibleOffice": "Das Bürgerbüro Ihres Wohnorts",
    "contacts": [{"label": "Kreis Soest", "phone": "02921 30-0"}],
}


async def view(
    client: Client, world: World, who: tuple[str, str], article_id: str, tenant: str | None = None
) -> dict[str, Any] | None:
    body = await gql(client, world.headers(*who), ARTICLE, id=article_id, tenant=world.slug(tenant) if tenant else None)
    result: dict[str, Any] | None = payload(body, "article")
    return result


@pytest.fixture
async def shared_with_soest_version(client: Client, world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    shared = await published_article(
        client,
        world,
        KREIS,
        unique("Ausweis geteilt"),
        shared=True,
        leikaKey="99008001012000",
        sections=SHARED_SECTIONS,
    )
    body = await gql(
        client,
        world.headers(SOEST, "editor"),
        LOCAL_VERSION,
        id=shared["id"],
        input={
            "overrides": {
                "fees": "37,00 € (Soest: Kartenzahlung möglich)",
                "responsibleOffice": "Bürgerbüro Soest, Am Vreithof 8",
                "contacts": [{"label": "Bürgerbüro Soest", "phone": "02921 103-0"}],
            }
        },
    )
    local = payload(body, "createLocalVersion")
    assert local["errors"] == [], local
    assert local["article"]["kind"] == "LOCAL_VERSION" and local["article"]["baseArticleId"] == shared["id"]
    await publish(client, world, SOEST, local["article"]["id"])
    return shared, local["article"]


async def test_a_local_version_overrides_the_towns_fields_only_for_that_town(
    client: Client, world: World, shared_with_soest_version: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    shared, _ = shared_with_soest_version
    soest = await view(client, world, (SOEST, "agent"), shared["id"])
    assert soest is not None and soest["kind"] == "SHARED" and soest["localVersion"] == 3
    assert soest["sections"]["fees"] == "37,00 € (Soest: Kartenzahlung möglich)"
    assert soest["sections"]["responsibleOffice"] == "Bürgerbüro Soest, Am Vreithof 8"
    assert soest["sections"]["contacts"] == [{"label": "Bürgerbüro Soest", "phone": "02921 103-0"}]
    assert soest["sections"]["description"] == SHARED_SECTIONS["description"]  # the shared text stays one
    assert soest["overriddenFields"] == ["contacts", "fees", "responsible_office"]
    assert "Bürgerbüro Soest" in soest["html"] and "0 2 9 2 1, 1 0 3, 0" in soest["speakable"]
    # The operator's agent on a Soest call sees the same; on a Geseke call the shared text alone.
    assert (await view(client, world, (KREIS, "agent"), shared["id"], SOEST)) == soest
    geseke = await view(client, world, (GESEKE, "agent"), shared["id"])
    assert geseke is not None and geseke["sections"]["fees"] == "37,00 €" and geseke["localVersion"] is None
    assert geseke["overriddenFields"] == []


async def test_a_town_cannot_have_two_local_versions_or_one_of_a_local_article(
    client: Client, world: World, shared_with_soest_version: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    shared, _ = shared_with_soest_version
    again = await gql(
        client, world.headers(SOEST, "editor"), LOCAL_VERSION, id=shared["id"], input={"overrides": {"fees": "1 €"}}
    )
    assert payload(again, "createLocalVersion")["errors"][0]["code"] == "DUPLICATE"
    local = await create_article(client, world, GESEKE, unique("Nur Geseke"))
    other = await gql(
        client, world.headers(SOEST, "editor"), LOCAL_VERSION, id=local["id"], input={"overrides": {"fees": "1 €"}}
    )
    assert payload(other, "createLocalVersion")["errors"][0]["code"] == "NOT_FOUND"


async def test_towns_never_see_each_others_local_articles_over_graphql(client: Client, world: World) -> None:
    title = unique("Soester Sondernutzung Marktstand")
    article = await published_article(client, world, SOEST, title, leikaKey="99108012005000")
    draft = await create_article(client, world, SOEST, unique("Soester Entwurf"))
    for role in ("agent", "editor", "department", "supervisor"):
        assert await view(client, world, (GESEKE, role), article["id"]) is None, role
        assert await view(client, world, (GESEKE, role), article["id"], SOEST) is None, role
    result = await search(client, world, (GESEKE, "agent"), title)
    assert article["id"] not in [n["id"] for n in result["nodes"]]
    # Asking to search as Soest is answered like a tenant that does not exist.
    body = await gql(
        client,
        world.headers(GESEKE, "agent"),
        'query($t: String) { knowledgeSearch(query: "x", tenant: $t) { confident } }',
        t=world.slug(SOEST),
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Editors' drafts stay with their town, even for the operator's agents and editors.
    assert await view(client, world, (KREIS, "agent"), draft["id"], SOEST) is None
    history = await gql(
        client, world.headers(KREIS, "editor"), "query($id: UUID!) { editorArticle(id: $id) { id } }", id=draft["id"]
    )
    assert payload(history, "editorArticle") is None
    # Soest's own agent and the operator's agent on a Soest call do find it.
    for who in ((SOEST, "agent"), (KREIS, "agent")):
        found = await search(client, world, who, title, SOEST if who[0] == KREIS else None)
        assert found["nodes"][0]["id"] == article["id"], who


async def test_towns_never_see_each_others_local_articles_over_rest(client: Client, world: World) -> None:
    title = unique("Soester Wochenmarkt Standplatz")
    article = await published_article(client, world, SOEST, title)
    soest_partner = world.headers(SOEST, "partner")
    geseke_partner = world.headers(GESEKE, "partner")
    own = await client.get(f"/v1/articles/{article['id']}", headers=soest_partner)
    assert own.status_code == 200, own.text
    assert own.json()["title"] == title and own.json()["html"].startswith('<article lang="de"><h1>')
    other = await client.get(f"/v1/articles/{article['id']}", headers=geseke_partner)
    missing = await client.get(f"/v1/articles/{UUID(int=7)}", headers=geseke_partner)
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == missing.json()["detail"]
    as_soest = await client.get(
        f"/v1/articles/{article['id']}", params={"tenant": world.slug(SOEST)}, headers=geseke_partner
    )
    assert as_soest.status_code == 404
    found = await client.get("/v1/articles/search", params={"q": title}, headers=soest_partner)
    assert found.status_code == 200 and found.json()["items"][0]["id"] == article["id"]
    hidden = await client.get("/v1/articles/search", params={"q": title}, headers=geseke_partner)
    assert article["id"] not in [i["id"] for i in hidden.json()["items"]]
    # The telephony system of a town has no articles scope.
    telephony = await client.get("/v1/articles/search", params={"q": title}, headers=world.headers(SOEST, "telephony"))
    assert telephony.status_code == 403


async def test_rls_alone_hides_foreign_local_articles_and_shows_shared_ones(
    db: asyncpg.Pool,
    client: Client,
    world: World,
    catalogue: dict[str, Any],
    shared_with_soest_version: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    shared, soest_local = shared_with_soest_version
    soest_article = await published_article(client, world, SOEST, unique("Nur für Soest sichtbar"))
    kreis_local = await published_article(client, world, KREIS, unique("Nur Kreis intern"))
    shared_draft = await create_article(client, world, KREIS, unique("Geteilter Entwurf"), shared=True)
    geseke = world.tenant_ids[GESEKE]
    async with tenant_transaction(db, [geseke], readonly=True) as conn:
        articles = {r["id"] for r in await conn.fetch("SELECT id FROM articles")}
        versions = {
            (r["article_id"], r["status"]) for r in await conn.fetch("SELECT article_id, status FROM article_versions")
        }
        documents = {r["doc_id"] for r in await conn.fetch("SELECT doc_id FROM knowledge_search")}
        services = await conn.fetchval("SELECT count(*) FROM leika_services")
    ids = {UUID(a["id"]) for a in (soest_article, soest_local, kreis_local)}
    assert not ids & articles and not ids & documents
    assert not ids & {a for a, _ in versions}
    assert UUID(shared["id"]) in articles and UUID(shared["id"]) in documents  # shared: visible to clients
    assert UUID(shared_draft["id"]) not in articles | documents | {a for a, _ in versions}  # never published
    assert not {s for a, s in versions if a == UUID(shared["id"])} - {"published", "archived"}
    assert services == catalogue["rows"]  # the operator's catalogue is shared with its clients


async def test_rls_refuses_town_writes_to_shared_and_foreign_rows(
    db: asyncpg.Pool,
    client: Client,
    world: World,
    shared_with_soest_version: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    shared, _ = shared_with_soest_version
    kreis, soest = world.tenant_ids[KREIS], world.tenant_ids[SOEST]
    async with tenant_transaction(db, [soest]) as conn:
        updated = await conn.execute(
            "UPDATE articles SET status = 'archived' WHERE tenant_id = $1 AND id = $2", kreis, UUID(shared["id"])
        )
        deleted = await conn.execute(
            "DELETE FROM knowledge_search WHERE tenant_id = $1 AND doc_id = $2", kreis, UUID(shared["id"])
        )
    assert updated == "UPDATE 0" and deleted == "DELETE 0"
    async with tenant_transaction(db, [soest]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO articles (tenant_id, id, kind, status, latest_version, created_by) "
                "VALUES ($1, gen_random_uuid(), 'shared', 'draft', 1, 'eingeschleust')",
                kreis,
            )


async def test_a_shared_draft_is_not_visible_to_the_towns(client: Client, world: World) -> None:
    article = await published_article(
        client, world, KREIS, unique("Geteilt und geändert"), shared=True, sections={"fees": "5 €"}
    )
    await transition(client, world, KREIS, article["id"], "archive", expected=article["latestVersion"])
    body = await gql(
        client,
        world.headers(KREIS, "editor"),
        'mutation($id: UUID!, $v: Int!) { updateArticle(id: $id, input: {title: "Neu", summary: "x"}, '
        "expectedVersion: $v) { errors { code } } }",
        id=article["id"],
        v=article["latestVersion"] + 1,
    )
    assert payload(body, "updateArticle")["errors"] == []
    assert await view(client, world, (SOEST, "agent"), article["id"]) is None
    assert await view(client, world, (SOEST, "editor"), article["id"]) is None
