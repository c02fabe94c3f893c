"""Pagination cursors: what a list handed out leads to its next page; anything else, crafted
or from another list, is a validation error on `after` (422 over REST, VALIDATION_FAILED over
GraphQL), never an internal error."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.knowledge.conftest import GESEKE, KREIS, SOEST, create_article, gql, payload, search
from tests.support.world import World

Client = httpx.AsyncClient
AGENT = (KREIS, "agent")
WORDS = "Personalausweis beantragen"  # pages by offset in the fused ranking (decision 026)
KEY_PREFIX = "99115"  # a branch of the catalogue: pages by offset

pytestmark = pytest.mark.usefixtures("catalogue")

EDITOR_ARTICLES = """
query($first: Int!, $after: String) {
  editorArticles(first: $first, after: $after) { nodes { id } pageInfo { endCursor hasNextPage } }
}"""


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


SOME_ID = str(uuid.uuid4())
SCORE_CURSORS = [
    cursor({"s": "abc", "i": "x"}),
    cursor({"s": 1.5, "i": "x"}),
    cursor({"s": [1], "i": SOME_ID}),
    cursor({"s": 1.5}),
    cursor({"i": SOME_ID}),
    cursor({"s": 1e999, "i": SOME_ID}),
    cursor({"o": 7}),  # a cursor of the key search
    cursor({"t": "2026-01-01T00:00:00+00:00", "i": SOME_ID}),  # a cursor of the editors' list
]
OFFSET_CURSORS = [
    cursor({"o": "x"}),
    cursor({"o": [1]}),
    cursor({"o": -1}),
    cursor({"o": 10**30}),
    cursor({"o": None}),
    cursor({}),
    cursor({"s": 1.5, "i": SOME_ID}),  # a cursor of the word search
]
TIME_CURSORS = [
    cursor({"t": "x", "i": SOME_ID}),
    cursor({"t": "2026-01-01T00:00:00+00:00", "i": "x"}),
    cursor({"t": 5, "i": SOME_ID}),
    cursor({"t": "2026-01-01T00:00:00", "i": SOME_ID}),  # no time zone
    cursor({"t": "0001-01-01T00:00:00+01:00", "i": SOME_ID}),  # before year 1 in UTC
    cursor({"i": SOME_ID}),
    cursor({"s": 1.5, "i": SOME_ID}),  # a cursor of the word search
    cursor(["2026-01-01T00:00:00+00:00", SOME_ID]),
]


def assert_refused_over_rest(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "VALIDATION_FAILED" and problem["errors"][0]["field"] == "after", problem


def assert_refused_over_graphql(body: dict[str, Any]) -> None:
    assert body.get("data") is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION_FAILED"], body


# Both searches page by offset: anything else — a bad offset, the old (score, id) cursors, the
# editors' list's — is refused.
FOREIGN_TO_OFFSETS = [c for c in SCORE_CURSORS if c != cursor({"o": 7})]
SEARCH_CURSORS = [(WORDS, after) for after in OFFSET_CURSORS + FOREIGN_TO_OFFSETS] + [
    (KEY_PREFIX, after) for after in OFFSET_CURSORS
]


@pytest.mark.parametrize(("question", "after"), SEARCH_CURSORS)
async def test_crafted_search_cursors_are_refused(client: Client, world: World, question: str, after: str) -> None:
    """Words and a LeiKa key page by offset: each refuses anything else."""
    response = await client.get(
        "/v1/articles/search", params={"q": question, "after": after}, headers=world.headers(GESEKE, "partner")
    )
    assert_refused_over_rest(response)
    body = await gql(
        client,
        world.headers(*AGENT),
        "query($q: String!, $after: String) { knowledgeSearch(query: $q, after: $after) { confident } }",
        q=question,
        after=after,
    )
    assert_refused_over_graphql(body)


@pytest.mark.parametrize("after", TIME_CURSORS)
async def test_crafted_cursors_of_the_editors_list_are_refused(client: Client, world: World, after: str) -> None:
    body = await gql(client, world.headers(SOEST, "editor"), EDITOR_ARTICLES, first=5, after=after)
    assert_refused_over_graphql(body)


async def test_the_cursors_handed_out_lead_to_the_next_page(client: Client, world: World) -> None:
    for n in range(3):
        await create_article(client, world, SOEST, f"Blättern {n} {uuid.uuid4().hex[:6]}")
    headers = world.headers(SOEST, "editor")
    first = payload(await gql(client, headers, EDITOR_ARTICLES, first=2), "editorArticles")
    second = payload(
        await gql(client, headers, EDITOR_ARTICLES, first=2, after=first["pageInfo"]["endCursor"]), "editorArticles"
    )
    assert first["pageInfo"]["hasNextPage"] and second["nodes"]
    assert not {n["id"] for n in first["nodes"]} & {n["id"] for n in second["nodes"]}

    for query in (KEY_PREFIX, WORDS):
        whole = await search(client, world, AGENT, query, SOEST, first=6)
        page = await search(client, world, AGENT, query, SOEST, first=3)
        rest = await search(client, world, AGENT, query, SOEST, first=3, after=page["pageInfo"]["endCursor"])
        assert [n["id"] for n in page["nodes"] + rest["nodes"]] == [n["id"] for n in whole["nodes"]], query
        response = await client.get(
            "/v1/articles/search",
            params={"q": query, "first": 3, "after": page["pageInfo"]["endCursor"]},
            headers=world.headers(GESEKE, "partner"),
        )
        assert response.status_code == 200, response.text
