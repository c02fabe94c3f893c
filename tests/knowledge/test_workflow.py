"""The article workflow over GraphQL: draft → in review → published → archived, immutable
versions with author and time, who may do what, and what agents see."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg
import httpx
import pytest

from backend import clock
from backend.db.tenancy import tenant_transaction
from tests.knowledge.conftest import (
    ARTICLE,
    CREATE,
    GESEKE,
    KREIS,
    SOEST,
    UPDATE,
    article_input,
    create_article,
    gql,
    payload,
    publish,
    transition,
    unique,
)
from tests.support.world import World

Client = httpx.AsyncClient


async def agent_view(client: Client, world: World, who: tuple[str, str], article_id: str, tenant: str | None = None):
    body = await gql(client, world.headers(*who), ARTICLE, id=article_id, tenant=world.slug(tenant) if tenant else None)
    return payload(body, "article")


async def test_full_workflow_keeps_every_version_with_author_and_time(client: Client, world: World) -> None:
    title = unique("Bewohnerparken Workflow")
    article = await create_article(client, world, SOEST, title, leikaKey="99108001001000")
    assert article["status"] == "DRAFT" and article["latestVersion"] == 1 and article["publishedVersion"] is None
    assert article["latest"]["author"].startswith(world.slug(SOEST))

    submitted = await transition(client, world, SOEST, article["id"], "submit", expected=1)
    assert submitted["errors"] == [] and submitted["article"]["status"] == "IN_REVIEW"
    returned = await transition(client, world, SOEST, article["id"], "return", expected=2)
    assert returned["article"]["status"] == "DRAFT"
    await transition(client, world, SOEST, article["id"], "submit", expected=3)
    published = await transition(client, world, SOEST, article["id"], "publish", expected=4)
    assert published["article"]["status"] == "PUBLISHED" and published["article"]["publishedVersion"] == 5
    archived = await transition(client, world, SOEST, article["id"], "archive", expected=5)
    assert archived["article"]["status"] == "ARCHIVED" and archived["article"]["publishedVersion"] is None

    history = await gql(
        client,
        world.headers(SOEST, "editor"),
        "query($id: UUID!) { editorArticle(id: $id) { versions { version status author createdAt title } } }",
        id=article["id"],
    )
    versions = payload(history, "editorArticle")["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [
        (6, "ARCHIVED"),
        (5, "PUBLISHED"),
        (4, "IN_REVIEW"),
        (3, "DRAFT"),
        (2, "IN_REVIEW"),
        (1, "DRAFT"),
    ]
    assert all(v["author"] and v["createdAt"] and v["title"] == title for v in versions)


@pytest.mark.parametrize(("step", "from_status"), [("publish", "DRAFT"), ("archive", "DRAFT"), ("return", "DRAFT")])
async def test_transitions_outside_the_workflow_are_refused(
    client: Client, world: World, step: str, from_status: str
) -> None:
    article = await create_article(client, world, SOEST, unique("Unerlaubter Schritt"))
    result = await transition(client, world, SOEST, article["id"], step, expected=1)
    assert result["article"] is None and result["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_only_the_tenants_editors_may_write_and_publish(client: Client, world: World) -> None:
    article = await create_article(client, world, SOEST, unique("Nur Soest"))
    # An agent or a supervisor may not write at all.
    for role in ("agent", "supervisor", "department"):
        body = await gql(client, world.headers(SOEST, role), CREATE, input=article_input("Versuch"), shared=False)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (role, body)
    # Geseke's editor, and the operator's editor acting for Soest, see no such article.
    for town in (GESEKE, KREIS):
        result = await transition(client, world, town, article["id"], "submit", expected=1)
        assert result["errors"][0]["code"] == "NOT_FOUND", town
        body = await gql(
            client,
            world.headers(town, "editor"),
            UPDATE,
            id=article["id"],
            expected=1,
            input=article_input("Übernommen"),
        )
        assert payload(body, "updateArticle")["errors"][0]["code"] == "NOT_FOUND"
    # Town editors cannot write shared articles; the operator's editors can.
    body = await gql(client, world.headers(SOEST, "editor"), CREATE, input=article_input("Geteilt?"), shared=True)
    assert payload(body, "createArticle")["errors"][0]["code"] == "VALIDATION_FAILED"
    shared = await create_article(client, world, KREIS, unique("Für alle Kommunen"), shared=True)
    assert shared["kind"] == "SHARED" and shared["tenantId"] == str(world.tenant_ids[KREIS])
    # ...and a town editor cannot publish the operator's shared article.
    result = await transition(client, world, SOEST, shared["id"], "submit", expected=1)
    assert result["errors"][0]["code"] == "NOT_FOUND"


@pytest.mark.clock  # validity is by today's date in Berlin
async def test_agents_see_only_published_versions_valid_today(client: Client, world: World) -> None:
    agent = (KREIS, "agent")
    draft = await create_article(client, world, SOEST, unique("Noch Entwurf"))
    assert await agent_view(client, world, agent, draft["id"], SOEST) is None

    article = await create_article(client, world, SOEST, unique("Gilt heute"), sections={"fees": "10 €"})
    await publish(client, world, SOEST, article["id"])
    view = await agent_view(client, world, agent, article["id"], SOEST)
    assert view["version"] == 3 and view["sections"]["fees"] == "10 €"

    # A new draft does not change what agents see until it is published.
    edit = await gql(
        client,
        world.headers(SOEST, "editor"),
        UPDATE,
        id=article["id"],
        expected=3,
        input=article_input(article["latest"]["title"], sections={"fees": "20 €"}),
    )
    assert payload(edit, "updateArticle")["article"]["status"] == "DRAFT"
    assert (await agent_view(client, world, agent, article["id"], SOEST))["sections"]["fees"] == "10 €"
    await publish(client, world, SOEST, article["id"])
    assert (await agent_view(client, world, agent, article["id"], SOEST))["sections"]["fees"] == "20 €"

    future = await create_article(
        client, world, SOEST, unique("Gilt ab morgen"), validFrom=(clock.today() + timedelta(days=2)).isoformat()
    )
    await publish(client, world, SOEST, future["id"])
    assert await agent_view(client, world, agent, future["id"], SOEST) is None
    expired = await create_article(
        client,
        world,
        SOEST,
        unique("Galt bis gestern"),
        validFrom="2020-01-01",
        validUntil=(clock.today() - timedelta(days=2)).isoformat(),
    )
    await publish(client, world, SOEST, expired["id"])
    assert await agent_view(client, world, agent, expired["id"], SOEST) is None

    await transition(client, world, SOEST, article["id"], "archive", expected=6)
    assert await agent_view(client, world, agent, article["id"], SOEST) is None


async def test_lost_updates_are_refused(client: Client, world: World) -> None:
    article = await create_article(client, world, SOEST, unique("Gleichzeitig"))
    first = await gql(
        client,
        world.headers(SOEST, "editor"),
        UPDATE,
        id=article["id"],
        expected=1,
        input=article_input("Erste Änderung"),
    )
    assert payload(first, "updateArticle")["errors"] == []
    second = await gql(
        client,
        world.headers(SOEST, "editor"),
        UPDATE,
        id=article["id"],
        expected=1,
        input=article_input("Zweite Änderung"),
    )
    assert payload(second, "updateArticle")["errors"][0]["code"] == "VERSION_CONFLICT"
    in_review = await transition(client, world, SOEST, article["id"], "submit", expected=2)
    edit = await gql(
        client,
        world.headers(SOEST, "editor"),
        UPDATE,
        id=article["id"],
        expected=3,
        input=article_input("Während der Prüfung"),
    )
    assert in_review["errors"] == [] and payload(edit, "updateArticle")["errors"][0]["code"] == "INVALID_TRANSITION"


@pytest.mark.parametrize(
    "mutation",
    [
        'updateArticle(id: $id, input: {title: "Ohne Version", summary: "x"})',
        'updateLocalVersion(id: $id, input: {overrides: {fees: "1 €"}})',
        "submitArticleForReview(id: $id)",
        "returnArticleToDraft(id: $id)",
        "publishArticle(id: $id)",
        "archiveArticle(id: $id)",
    ],
)
async def test_a_change_without_the_version_it_is_based_on_is_refused(
    client: Client, world: World, mutation: str
) -> None:
    article = await create_article(client, world, SOEST, unique("Ohne Version"))
    body = await gql(
        client,
        world.headers(SOEST, "editor"),
        f"mutation($id: UUID!) {{ {mutation} {{ errors {{ code }} }} }}",
        id=article["id"],
    )
    assert body.get("data") is None and body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
    assert "expectedVersion" in body["errors"][0]["message"], body


async def test_a_stale_editor_cannot_revert_or_publish_over_a_newer_version(client: Client, world: World) -> None:
    # A and B both load version 1; B saves first.
    article = await create_article(client, world, SOEST, unique("Zwei Redaktionen"))
    headers = world.headers(SOEST, "editor")
    saved_by_b = await gql(client, headers, UPDATE, id=article["id"], expected=1, input=article_input("Fassung B"))
    assert payload(saved_by_b, "updateArticle")["article"]["latestVersion"] == 2
    # A's stale save is refused, not silently written over B's version.
    saved_by_a = await gql(client, headers, UPDATE, id=article["id"], expected=1, input=article_input("Fassung A"))
    assert payload(saved_by_a, "updateArticle")["errors"][0]["code"] == "VERSION_CONFLICT"
    # B submits version 2; A, still on version 1, can neither send it back nor publish it.
    assert (await transition(client, world, SOEST, article["id"], "submit", expected=2))["errors"] == []
    for step in ("return", "publish"):
        stale = await transition(client, world, SOEST, article["id"], step, expected=1)
        assert stale["article"] is None and stale["errors"][0]["code"] == "VERSION_CONFLICT", step
    published = await transition(client, world, SOEST, article["id"], "publish", expected=3)
    assert published["errors"] == [] and published["article"]["publishedVersion"] == 4
    assert published["article"]["latest"]["title"] == "Fassung B"


async def test_bad_input_is_reported_per_field(client: Client, world: World) -> None:
    headers = world.headers(SOEST, "editor")
    cases = [
        (article_input("Schlüssel", leikaKey="12345678901234"), "leikaKey"),
        (article_input("Schlüssel", leikaKey="99008001"), "leikaKey"),
        (article_input("Daten", validFrom="2026-05-01", validUntil="2026-04-01"), "validUntil"),
        (article_input("Telefon", sections={"contacts": [{"label": "Amt", "phone": "12"}]}), "sections.contacts"),
        (article_input("Link", sections={"onlineService": {"title": "x", "url": "javascript:alert(1)"}}), "sections"),
    ]
    for data, field in cases:
        result = payload(await gql(client, headers, CREATE, input=data, shared=False), "createArticle")
        assert result["article"] is None and result["errors"][0]["code"] == "VALIDATION_FAILED", (data, result)
        assert (result["errors"][0]["field"] or "").startswith(field), (field, result)


async def test_versions_are_immutable_in_the_database(db: asyncpg.Pool, client: Client, world: World) -> None:
    article = await create_article(client, world, SOEST, unique("Unveränderlich"))
    soest = world.tenant_ids[SOEST]
    async with tenant_transaction(db, [soest]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "UPDATE article_versions SET title = 'x' WHERE tenant_id = $1 AND article_id = $2",
                soest,
                UUID(article["id"]),
            )
    async with tenant_transaction(db, [soest]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "DELETE FROM article_versions WHERE tenant_id = $1 AND article_id = $2", soest, UUID(article["id"])
            )
