"""What keeps a search fast (decision 035) without changing what it finds: a few statements per
search (the synonyms kept in process per town scope, the typo look-up with the lexicon's), and
what an instance keeps in process (synonyms, meaning matrices) current when another instance
changes it."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg.connection import LoggedQuery
from litestar import Litestar

from auth.principal import Principal
from auth.roles import Role
from backend.knowledge import search
from backend.settings import Settings
from backend.state import unit_of_work
from tests.knowledge.conftest import GESEKE, KREIS, SEARCH, SOEST, create_article, gql, nonsense_word, payload
from tests.support.servers import app_process
from tests.support.world import World

pytestmark = pytest.mark.usefixtures("catalogue")
HUNDESTEUER = "99102013000000"


async def _statements(app: Litestar, world: World, query: str) -> list[str]:
    """The statements one search sends, as an operator's agent on a Soest call."""
    agent = Principal(
        issuer="test",
        subject="statement-counter",
        tenant_id=world.tenant_ids[KREIS],
        tenant_slug=world.slug(KREIS),
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset(world.tenant_ids.values()),
    )
    seen: list[str] = []

    def log(record: LoggedQuery) -> None:
        seen.append(" ".join(record.query.split()))

    async with unit_of_work(app.state.app_state, agent, readonly=True) as uow:
        uow.conn.add_query_logger(log)
        try:
            await search.search(uow, query, world.slug(SOEST), 10)
        finally:
            uow.conn.remove_query_logger(log)
    return seen


@pytest.mark.parametrize("query", ["Personalausweis verloren", "Persnalausweis beantragen", "Hundesteuer anmelden"])
async def test_a_word_search_costs_five_statements(app: Litestar, world: World, query: str) -> None:
    await _statements(app, world, query)  # the town's synonyms and matrix are read once per generation
    statements = await _statements(app, world, query)
    # The town (the door), its operators with the imported search terms and their services, the
    # lexicon with typo candidates, the search, the web pages; no synonyms, no separate typo look-up.
    assert len(statements) == 5, "\n".join(statements)
    assert not any("FROM search_synonyms" in s for s in statements)
    assert sum("search_lexicon" in s for s in statements) == 1
    assert sum("knowledge_shared_owner_ids" in s for s in statements) == 1
    assert sum("article_search_terms" in s for s in statements) == 1


async def test_a_typo_is_corrected_from_the_same_statement_as_the_lexicon(
    client: httpx.AsyncClient, world: World
) -> None:
    result = payload(
        await gql(client, world.headers(SOEST, "agent"), SEARCH, q="Hundesteuar", tenant=world.slug(SOEST)),
        "knowledgeSearch",
    )
    assert result["nodes"][0]["leikaKey"] == HUNDESTEUER
    assert any("?" in shown for shown in result["interpretedAs"]), result["interpretedAs"]


async def test_full_text_match_is_leakproof_so_its_index_serves_under_row_level_security(db: asyncpg.Pool) -> None:
    """The test database is bootstrapped by a superuser, who marks `tsvector @@ tsquery` leakproof
    (`roles.bootstrap`, decision 035): only then may PostgreSQL use the GIN index for it under
    row-level security (otherwise every search reads every search row)."""
    async with db.acquire() as conn:
        leakproof = await conn.fetchval(
            "SELECT proleakproof FROM pg_proc WHERE oid = 'pg_catalog.ts_match_vq(tsvector, tsquery)'::regprocedure"
        )
    assert leakproof is True


async def _search(http: httpx.AsyncClient, url: str, world: World, query: str, town: str = SOEST) -> dict[str, Any]:
    response = await http.post(
        f"{url}/graphql",
        json={"query": SEARCH, "variables": {"q": query, "tenant": world.slug(town)}},
        headers=world.headers(KREIS, "agent"),
    )
    assert response.status_code == 200, response.text
    return payload(response.json(), "knowledgeSearch")


async def test_a_synonym_set_on_one_instance_is_searched_on_the_other(settings: Settings, world: World) -> None:
    word = f"wuff{nonsense_word()}"
    with app_process(settings) as first, app_process(settings) as second:
        async with httpx.AsyncClient(timeout=30) as http:
            assert not (await _search(http, second.url, world, word))["confident"]  # the second keeps its lexicon
            response = await http.post(
                f"{first.url}/graphql",
                json={
                    "query": """mutation($t: String!) { setSearchSynonym(input: {term: $t, synonyms: ["Hundesteuer"]})
                                { synonym { id } errors { code } } }""",
                    "variables": {"t": word},
                },
                headers=world.headers(SOEST, "editor"),
            )
            synonym = payload(response.json(), "setSearchSynonym")["synonym"]
            found = await _search(http, second.url, world, word)
            assert found["nodes"][0]["leikaKey"] == HUNDESTEUER and found["confident"]
            assert not (await _search(http, second.url, world, word, GESEKE))["confident"]  # Soest's own synonym
            response = await http.post(
                f"{first.url}/graphql",
                json={
                    "query": "mutation($id: UUID!) { removeSearchSynonym(id: $id) { removed errors { code } } }",
                    "variables": {"id": synonym["id"]},
                },
                headers=world.headers(SOEST, "editor"),
            )
            assert payload(response.json(), "removeSearchSynonym")["removed"]
            assert not (await _search(http, second.url, world, word))["confident"]


async def test_an_article_published_on_one_instance_is_in_the_others_matrix(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    title = f"Patenschaft für Straßenbäume {nonsense_word()}"
    article = await create_article(client, world, SOEST, title)
    meaning_only = {"SEARCH_RETRIEVERS": "meaning"}  # only the matrix can find it
    with app_process(settings) as first, app_process(settings, meaning_only) as second:
        async with httpx.AsyncClient(timeout=30) as http:
            before = await _search(http, second.url, world, title)  # the second loads Soest's matrix
            assert article["id"] not in [n["id"] for n in before["nodes"]]
            headers = world.headers(SOEST, "editor")
            version = article["latestVersion"]
            for step in ("submitArticleForReview", "publishArticle"):
                response = await http.post(
                    f"{first.url}/graphql",
                    json={
                        "query": f"""mutation($id: UUID!, $v: Int!) {{ {step}(id: $id, expectedVersion: $v)
                                     {{ article {{ latestVersion }} errors {{ code }} }} }}""",
                        "variables": {"id": article["id"], "v": version},
                    },
                    headers=headers,
                )
                moved = payload(response.json(), step)
                assert moved["errors"] == [], moved
                version = moved["article"]["latestVersion"]
            after = await _search(http, second.url, world, title)
            assert after["nodes"][0]["id"] == article["id"]
