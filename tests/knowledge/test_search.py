"""The agents' search over the real LeiKa catalogue: German full text with umlaut folding,
typos, synonyms, compounds, LeiKa keys, the town's own version first, filters, pages, snippets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.knowledge.conftest import (
    GESEKE,
    KREIS,
    LOCAL_VERSION,
    SOEST,
    create_article,
    gql,
    nonsense_word,
    payload,
    publish,
    published_article,
    search,
)
from tests.support.world import World

Client = httpx.AsyncClient
AGENT = (KREIS, "agent")  # the operator's agent; calls are for Stadt Soest unless said otherwise

pytestmark = pytest.mark.usefixtures("catalogue")


def keys(result: dict[str, Any]) -> list[str | None]:
    return [n["leikaKey"] for n in result["nodes"]]


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("Strassenreinigung", "99108028000000"),
        ("Straßenreinigung", "99108028000000"),
        ("STRASSENREINIGUNG", "99108028000000"),
        ("Kuendigung schwerbehinderter Menschen", "99015005000000"),
        ("Fuehrerschein Umtausch", "99023001051000"),
        ("Bussgelder Strassenverkehr", "99108031000000"),
    ],
)
async def test_umlauts_and_sharp_s_fold(client: Client, world: World, query: str, key: str) -> None:
    result = await search(client, world, AGENT, query, SOEST)
    assert keys(result)[0] == key, result["nodes"][:3]
    assert result["confident"]


@pytest.mark.parametrize(
    ("query", "prefix"),
    [
        ("Persnalausweis", "99008001"),
        ("Personalausweiss beantragen", "99008001"),
        ("Fürerschein", "99023001"),
        ("Baugenemigung", "99012008"),
    ],
)
async def test_typos_are_tolerated(client: Client, world: World, query: str, prefix: str) -> None:
    result = await search(client, world, AGENT, query, SOEST)
    assert (keys(result)[0] or "").startswith(prefix), (query, result["interpretedAs"], result["nodes"][:3])


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("Ich hab ein Knöllchen bekommen", "99108031000000"),
        ("Knoellchen", "99108031000000"),
        ("Wie beantrage ich Bafög?", "99022001017000"),
        ("Ich will von der GEZ befreit werden", "99107008010000"),
        ("Wo melde ich meinen Perso als verloren?", "99008001014002"),  # Personalausweis Meldung wegen Verlust
    ],
)
async def test_synonyms_and_colloquial_terms(client: Client, world: World, query: str, key: str) -> None:
    result = await search(client, world, AGENT, query, SOEST)
    assert keys(result)[0] == key, (query, result["interpretedAs"], result["nodes"][:3])


@pytest.mark.parametrize(
    ("query", "key_prefix"),
    [
        ("Steuer für meinen Hund", "99102013"),
        ("Hundesteuerbescheid", "99102013"),
        ("Reinigung der Straßen", "99108028"),
        ("Absperrung Parkplatz für den Umzug", "99108011"),
        # The other way: a compound the catalogue uses, said as two words of one clause.
        ("Dürfen wir zu Ostern im Dorf ein Feuer machen?", "99063010"),
        ("Wie trete ich aus der Kirche aus?", "99073001"),
    ],
)
async def test_compound_words_meet_their_parts(client: Client, world: World, query: str, key_prefix: str) -> None:
    result = await search(client, world, AGENT, query, SOEST)
    assert (keys(result)[0] or "").startswith(key_prefix), (query, result["interpretedAs"], result["nodes"][:3])


async def test_search_by_leika_key_whole_spaced_or_a_branch(client: Client, world: World) -> None:
    exact = await search(client, world, AGENT, "99008001012000", SOEST)
    assert keys(exact) == ["99008001012000"] and exact["confident"]
    spaced = await search(client, world, AGENT, "99 108 031 000 000", SOEST)
    assert keys(spaced) == ["99108031000000"]
    branch = await search(client, world, AGENT, "99008001", SOEST, first=50)
    assert len(branch["nodes"]) == 22 and all((k or "").startswith("99008001") for k in keys(branch))
    assert keys(branch)[0] == "99008001000000"  # the service itself before its actions


async def test_the_callers_towns_own_version_comes_first(client: Client, world: World) -> None:
    word = nonsense_word()
    soest = await published_article(client, world, SOEST, f"Hundesteuer in Soest {word}", leikaKey="99102013000000")
    geseke = await published_article(client, world, GESEKE, f"Hundesteuer in Geseke {word}", leikaKey="99102013000000")
    for_soest = await search(client, world, AGENT, f"Hundesteuer {word}", SOEST)
    assert for_soest["nodes"][0]["id"] == soest["id"] and for_soest["nodes"][0]["kind"] == "LOCAL"
    assert geseke["id"] not in [n["id"] for n in for_soest["nodes"]]
    assert keys(for_soest).count("99102013000000") == 1  # the catalogue entry stands behind the article
    for_geseke = await search(client, world, AGENT, f"Hundesteuer {word}", GESEKE)
    assert for_geseke["nodes"][0]["id"] == geseke["id"]
    # A shared article with the town's local version is marked and preferred to the bare catalogue.
    shared = await published_article(
        client, world, KREIS, f"Wohngeld beantragen {word}", shared=True, leikaKey="99107023017000"
    )
    local = payload(
        await gql(
            client,
            world.headers(SOEST, "editor"),
            LOCAL_VERSION,
            id=shared["id"],
            input={"overrides": {"fees": "keine"}},
        ),
        "createLocalVersion",
    )["article"]
    await publish(client, world, SOEST, local["id"])
    result = await search(client, world, AGENT, f"Wohngeld {word}", SOEST)
    assert result["nodes"][0]["id"] == shared["id"] and result["nodes"][0]["hasLocalVersion"]
    other = await search(client, world, AGENT, f"Wohngeld {word}", GESEKE)
    assert other["nodes"][0]["id"] == shared["id"] and not other["nodes"][0]["hasLocalVersion"]


async def test_filters_by_leika_group_and_source(client: Client, world: World) -> None:
    result = await search(client, world, AGENT, "Anmeldung", SOEST, first=20, group="115")
    assert result["nodes"] and all((k or "").startswith("99115") for k in keys(result))
    word = nonsense_word()
    article = await published_article(client, world, SOEST, f"Sperrmüll {word}", leikaKey="99001009004002")
    only_articles = await search(client, world, AGENT, "Sperrmüll", SOEST, sources=["ARTICLE"], first=50)
    assert article["id"] in [n["id"] for n in only_articles["nodes"]]
    assert {n["source"] for n in only_articles["nodes"]} == {"ARTICLE"}
    only_services = await search(client, world, AGENT, "Sperrmüll", SOEST, sources=["SERVICE"])
    assert {n["source"] for n in only_services["nodes"]} == {"SERVICE"}
    bad = await gql(client, world.headers(*AGENT), '{ knowledgeSearch(query: "x", leikaGroup: "1") { confident } }')
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


async def test_cursor_pagination_walks_every_hit_once(client: Client, world: World) -> None:
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await search(client, world, AGENT, "Personalausweis", SOEST, first=7, after=after)
        seen += [n["id"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    everything = await search(client, world, AGENT, "Personalausweis", SOEST, first=50)
    assert len(seen) == len(set(seen)) and seen == [n["id"] for n in everything["nodes"]]
    assert len(seen) > 14
    broken = await gql(client, world.headers(*AGENT), '{ knowledgeSearch(query: "x", after: "%%%") { confident } }')
    assert broken["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


async def test_snippets_highlight_and_escape(client: Client, world: World) -> None:
    word = nonsense_word()
    await published_article(
        client,
        world,
        SOEST,
        f"Fundsachen {word}",
        sections={
            "description": f"Gefundene Sachen & Tiere <script>x</script> geben Sie ab. Das {word}-Verfahren ist kurz."
        },
    )
    result = await search(client, world, (SOEST, "agent"), f"{word} Fundsachen")
    hit = result["nodes"][0]
    assert "<mark>" in hit["snippet"] and "&amp;" in hit["snippet"] and "<script>" not in hit["snippet"]
    assert "<mark>" not in hit["snippetText"] and "&" in hit["snippetText"]


async def test_editors_maintain_synonyms_for_their_town(client: Client, world: World) -> None:
    word = nonsense_word()
    body = await gql(
        client,
        world.headers(SOEST, "editor"),
        """mutation($t: String!) {
        setSearchSynonym(input: {term: $t, synonyms: ["Hundesteuer"]}) { synonym { id term } errors { code } } }""",
        t=f"wauwau{word}",
    )
    synonym = payload(body, "setSearchSynonym")["synonym"]
    assert synonym["term"] == f"wauwau{word}"
    soest = await search(client, world, (SOEST, "agent"), f"Wauwau{word}")
    assert keys(soest)[0] == "99102013000000" and soest["confident"]
    geseke = await search(client, world, (GESEKE, "agent"), f"Wauwau{word}")
    assert not geseke["confident"] and "99102013000000" not in keys(geseke)
    # The operator's synonyms apply to every client town.
    await gql(
        client,
        world.headers(KREIS, "editor"),
        """mutation($t: String!) {
        setSearchSynonym(input: {term: $t, synonyms: ["Personalausweis"]}) { errors { code } } }""",
        t=f"plastik{word}",
    )
    assert keys(await search(client, world, (GESEKE, "agent"), f"plastik{word}"))[0].startswith("99008001")
    agent = await gql(
        client,
        world.headers(SOEST, "agent"),
        """mutation {
        setSearchSynonym(input: {term: "abc", synonyms: ["x"]}) { errors { code } } }""",
    )
    assert agent["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    removed = await gql(
        client,
        world.headers(SOEST, "editor"),
        "mutation($id: UUID!) { removeSearchSynonym(id: $id) { removed errors { code } } }",
        id=synonym["id"],
    )
    assert payload(removed, "removeSearchSynonym")["removed"]
    assert not (await search(client, world, (SOEST, "agent"), f"Wauwau{word}"))["confident"]


async def test_editors_search_their_drafts_by_status(client: Client, world: World) -> None:
    word = nonsense_word()
    draft = await create_article(client, world, SOEST, f"Straßenfest anmelden {word}")
    drafts = await search(client, world, (SOEST, "editor"), f"Straßenfest {word}", status="DRAFT")
    assert [n["id"] for n in drafts["nodes"]] == [draft["id"]] and drafts["nodes"][0]["status"] == "DRAFT"
    published = await search(client, world, (SOEST, "agent"), f"Straßenfest {word}")
    assert draft["id"] not in [n["id"] for n in published["nodes"]]
    geseke_editor = await search(client, world, (GESEKE, "editor"), f"Straßenfest {word}", status="DRAFT")
    assert geseke_editor["nodes"] == []
    agent = await gql(
        client, world.headers(SOEST, "agent"), '{ knowledgeSearch(query: "Straßenfest", status: DRAFT) { confident } }'
    )
    assert agent["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "query",
    [
        "Wie hat Borussia Dortmund gestern gespielt?",
        "Können Sie mich bitte mit meinem Nachbarn verbinden?",
        "Wie wird das Wetter am Wochenende?",
        "",
    ],
)
async def test_out_of_scope_questions_get_no_confident_answer(client: Client, world: World, query: str) -> None:
    result = await search(client, world, AGENT, query, SOEST)
    assert not result["confident"] and not any(n["confident"] for n in result["nodes"][:1])


async def test_aspects_and_interpretation_are_reported(client: Client, world: World) -> None:
    result = await search(client, world, AGENT, "Was kostet ein Reisepass und wann haben Sie geöffnet?", SOEST)
    assert result["aspects"] == ["fees", "opening_hours"]
    assert result["interpretedAs"][0].startswith("reisepass")
    assert keys(result)[0].startswith("99085001")


async def test_the_article_as_said_on_the_phone_finds_nothing(client: Client, world: World) -> None:
    # "nen" (einen) had been searched and found "betriebenen" in the catalogue's text.
    result = await search(client, world, AGENT, "Ich hab nen Betrieb und muss am Sonntag arbeiten lassen", SOEST)
    assert not any(i.startswith("nen") for i in result["interpretedAs"]), result["interpretedAs"]
    assert any(i.startswith("betrieb") for i in result["interpretedAs"]), result["interpretedAs"]


async def test_partner_systems_search_over_rest(client: Client, world: World) -> None:
    response = await client.get(
        "/v1/articles/search", params={"q": "Knöllchen", "first": 3}, headers=world.headers(GESEKE, "partner")
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["items"][0]["leikaKey"] == "99108031000000" and page["confident"] is True
    assert {"snippet", "snippetText", "relevance", "hasLocalVersion"} <= set(page["items"][0])
    service = await client.get("/v1/leika-services/99108031000000", headers=world.headers(GESEKE, "partner"))
    assert service.status_code == 200 and service.json()["name"] == "Strafen und Bußgelder im Straßenverkehr"
    bad = await client.get("/v1/leika-services/12345", headers=world.headers(GESEKE, "partner"))
    assert bad.status_code == 422
