"""Fixtures for the knowledge base: the real LeiKa catalogue loaded into the world's operator
(over REST, as its platform admin would), and builders for articles over GraphQL."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest_asyncio

from backend.knowledge.demo import catalogue_path
from backend.knowledge.index_worker import IndexWorker
from tests.support.world import World

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"

ARTICLE_FIELDS = """
    id tenantId kind status latestVersion publishedVersion baseArticleId externalId
    latest { version status title summary leikaKey author searchTerms validFrom validUntil
             sections { fees responsibleOffice contacts { label phone } }
             overrides { fees responsibleOffice contacts { label phone } } }
"""
CREATE = f"""
mutation($input: ArticleInput!, $shared: Boolean!, $tenant: String) {{
  createArticle(input: $input, shared: $shared, tenant: $tenant) {{
    article {{ {ARTICLE_FIELDS} }} errors {{ code message field }} }}
}}"""
UPDATE = f"""
mutation($id: UUID!, $input: ArticleInput!, $expected: Int!) {{
  updateArticle(id: $id, input: $input, expectedVersion: $expected) {{
    article {{ {ARTICLE_FIELDS} }} errors {{ code message field }} }}
}}"""
TRANSITIONS = {
    "submit": "submitArticleForReview",
    "return": "returnArticleToDraft",
    "publish": "publishArticle",
    "archive": "archiveArticle",
}
LOCAL_VERSION = f"""
mutation($id: UUID!, $input: LocalVersionInput!) {{
  createLocalVersion(sharedArticleId: $id, input: $input) {{
    article {{ {ARTICLE_FIELDS} }} errors {{ code message field }} }}
}}"""
ARTICLE = """
query($id: UUID!, $tenant: String) {
  article(id: $id, tenant: $tenant) {
    id tenantId kind contextTenantId version localVersion title summary leikaKey overriddenFields html speakable
    sections { description fees responsibleOffice contacts { label phone } openingHours { weekday opens closes } }
  }
}"""
SEARCH = """
query($q: String!, $tenant: String, $first: Int, $after: String, $group: String, $status: ArticleStatus,
      $sources: [KnowledgeHitSource!]) {
  knowledgeSearch(query: $q, tenant: $tenant, first: $first, after: $after, leikaGroup: $group, status: $status,
                  sources: $sources) {
    confident interpretedAs aspects pointsTo
    nodes { id source tenantId kind leikaKey title status snippet snippetText relevance confident hasLocalVersion }
    pageInfo { endCursor hasNextPage }
  }
}"""


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:6]}"


def nonsense_word() -> str:
    """A made-up word (letters only, so the search sees it) that no other test uses."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    rng = random.Random(uuid.uuid4().int)
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(5))


async def gql(client: Client, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def payload(body: dict[str, Any], field: str) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


def article_input(title: str, **fields: Any) -> dict[str, Any]:
    return {
        "title": title,
        "summary": fields.pop("summary", f"Kurz: {title}."),
        "leikaKey": fields.pop("leikaKey", None),
        "sections": fields.pop("sections", {"description": f"Beschreibung zu {title}.", "fees": "12,00 €"}),
        **fields,
    }


async def create_article(
    client: Client,
    world: World,
    town: str,
    title: str,
    *,
    shared: bool = False,
    role: str = "editor",
    **fields: Any,
) -> dict[str, Any]:
    body = await gql(client, world.headers(town, role), CREATE, input=article_input(title, **fields), shared=shared)
    result = payload(body, "createArticle")
    assert result["errors"] == [], result
    article: dict[str, Any] = result["article"]
    return article


async def transition(
    client: Client,
    world: World,
    town: str,
    article_id: str,
    step: str,
    *,
    expected: int,
    role: str = "editor",
) -> dict[str, Any]:
    """A workflow step, based on version `expected` (the `latestVersion` the editor has loaded)."""
    name = TRANSITIONS[step]
    query = f"""mutation($id: UUID!, $expected: Int!) {{ {name}(id: $id, expectedVersion: $expected) {{
        article {{ {ARTICLE_FIELDS} }} errors {{ code message field }} }} }}"""
    return payload(await gql(client, world.headers(town, role), query, id=article_id, expected=expected), name)


async def latest_version(client: Client, world: World, town: str, article_id: str) -> int:
    """What the town's editor front end loads before a change: the article's latest version."""
    body = await gql(
        client,
        world.headers(town, "editor"),
        "query($id: UUID!) { editorArticle(id: $id) { latestVersion } }",
        id=article_id,
    )
    loaded = payload(body, "editorArticle")
    assert loaded is not None, article_id
    version: int = loaded["latestVersion"]
    return version


async def publish(client: Client, world: World, town: str, article_id: str) -> dict[str, Any]:
    version = await latest_version(client, world, town, article_id)
    submitted = await transition(client, world, town, article_id, "submit", expected=version)
    assert submitted["errors"] == [], submitted
    published = await transition(
        client, world, town, article_id, "publish", expected=submitted["article"]["latestVersion"]
    )
    assert published["errors"] == [], published
    article: dict[str, Any] = published["article"]
    return article


async def published_article(client: Client, world: World, town: str, title: str, **fields: Any) -> dict[str, Any]:
    article = await create_article(client, world, town, title, **fields)
    return await publish(client, world, town, article["id"])


async def indexed(world: World) -> int:
    """What the background worker does seconds after an XZuFi import (decision 024's third
    amendment): the queued articles' search rows and lexicon counts, so a test can search for them."""
    return await IndexWorker(world.state).drain_words()


async def search(
    client: Client, world: World, who: tuple[str, str], query: str, tenant: str | None = None, **variables: Any
) -> dict[str, Any]:
    town, role = who
    body = await gql(
        client, world.headers(town, role), SEARCH, q=query, tenant=world.slug(tenant) if tenant else None, **variables
    )
    return payload(body, "knowledgeSearch")


@pytest_asyncio.fixture(scope="session")
async def catalogue(client: Client, world: World) -> dict[str, Any]:
    """The real LeiKa catalogue (4,813 services) in the world's operator, imported over REST."""
    csv = catalogue_path().read_text(encoding="utf-8")
    response = await client.post(
        "/v1/leika-catalogue",
        content=csv.encode(),
        headers={**world.headers(KREIS, "platform-admin"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report
