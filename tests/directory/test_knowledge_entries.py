"""The knowledge search answers people and offices next to its articles (decision 038):
"Ansprechpartner Bauamt", "Frau Müller Bauordnung", a direct number — with function, number and
whether they can be reached now; only the town's directory, only for principals who may read it
(never partner systems, never another town's people), and nothing at all, not one statement, for
a question without a person or office in it; with one, at most one statement once compiled."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from auth.permissions import Operation
from auth.principal import Principal
from auth.roles import Role
from backend.directory import search as directory_search
from backend.state import unit_of_work
from backend.tenants.reach import reach
from tests.directory.conftest import GESEKE, KREIS, SOEST, Directory
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient


async def ask(client: Client, world: World, q: str, town: str = KREIS, role: str = "agent") -> httpx.Response:
    return await client.get(
        "/v1/articles/search", params={"q": q, "tenant": world.slug(SOEST)}, headers=world.headers(town, role)
    )


def entries(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["directory"]
    return found


async def test_people_and_offices_next_to_the_articles(client: Client, world: World, directory: Directory) -> None:
    office = entries(await ask(client, world, "Ansprechpartner Bauamt"))
    # Other tests add people and "Bau…" offices to the world's Soest too: every entry is one.
    assert office and all("Bau" in (e["departmentName"] or "") for e in office), office
    assert len(office) <= directory_search.ENTRIES_NEXT_TO_ARTICLES
    exact = entries(await ask(client, world, "Ansprechpartner Bauordnung"))
    line = next(e for e in exact if e["kind"] == "department" and e["name"] == "Bauordnung")
    assert (line["name"], line["number"], line["departmentId"]) == (
        "Bauordnung",
        "+4929211030",
        str(directory.department_id),
    )
    assert isinstance(line["reachableNow"], bool) and line["reason"]
    mueller = entries(await ask(client, world, "Frau Müller Bauordnung"))
    assert mueller[0]["personId"] == directory.mueller["id"], mueller
    assert (mueller[0]["name"], mueller[0]["function"], mueller[0]["number"]) == (
        "Frau Anna Müller",
        "Bauordnung",
        "+4929211034711",
    )
    assert mueller[0]["departmentName"] == "Bauordnung" and isinstance(mueller[0]["reachableNow"], bool)
    assert directory.schmidt["id"] not in {e["personId"] for e in mueller}  # every word must match
    number = entries(await ask(client, world, "02921 103-1234"))
    assert number[0]["personId"] == directory.schmidt["id"], number
    # A question about a service has no person or office in it: no entries.
    assert entries(await ask(client, world, "Personalausweis beantragen")) == []
    graphql = await gql(
        client,
        world.headers(SOEST, "department"),
        """query($t: String) { knowledgeSearch(query: "Herrn Weber sprechen", tenant: $t) {
             pointsTo directory { kind personId name number reachableNow reason matched } } }""",
        t=world.slug(SOEST),
    )
    result = graphql["data"]["knowledgeSearch"]
    assert result["directory"][0]["personId"] == directory.weber["id"], graphql
    assert result["pointsTo"] == "DIRECTORY"


async def test_only_principals_who_may_read_the_towns_directory_see_entries(
    client: Client, world: World, directory: Directory
) -> None:
    # The town's partner system reads articles, never staff data; the operator's editor reads
    # only the operator's own directory; another town's people do not reach Soest at all.
    assert entries(await ask(client, world, "Ansprechpartner Bauamt", SOEST, "partner")) == []
    assert entries(await ask(client, world, "Ansprechpartner Bauamt", KREIS, "editor")) == []
    assert (await ask(client, world, "Ansprechpartner Bauamt", GESEKE, "agent")).status_code == 404
    # Soest's own editor may read Soest's directory.
    assert entries(await ask(client, world, "Ansprechpartner Bauamt", SOEST, "editor"))


async def test_statements_per_search(world: World, directory: Directory) -> None:
    agent = Principal(
        issuer="test",
        subject="statements",
        tenant_id=world.tenant_ids[KREIS],
        tenant_slug=world.slug(KREIS),
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset(world.tenant_ids.values()),
    )
    statements: list[str] = []
    async with unit_of_work(world.state, agent, readonly=True) as uow:
        town = await reach(uow, world.slug(SOEST), Operation.ARTICLE_READ)
        uow.conn.add_query_logger(lambda record: statements.append(record.query))

        async def count(question: str) -> tuple[int, list[str]]:
            await asyncio.sleep(0)
            statements.clear()
            found = await directory_search.entries_for_question(uow, town, question)
            for _ in range(3):  # loggers are called with loop.call_soon
                await asyncio.sleep(0)
            return len(statements), [e.name for e in found]

        assert await count("Personalausweis beantragen") == (0, [])
        await count("Frau Müller Bauordnung")  # compiles the town once per directory generation
        used, names = await count("Frau Müller Bauordnung")
        assert used <= 1 and names[0] == "Frau Anna Müller"
        used, names = await count("Bauamt")  # the office alone: its line, no presence query needed
        assert used <= 1 and "Bauordnung" in names


async def test_a_question_for_an_offices_hours_points_to_its_line_with_the_hours(
    client: Client, world: World, directory: Directory
) -> None:
    """ "Wann hat das Sozialamt auf?" is for the directory: the office's line with its hours, and no
    article confident (before, the question's other words kept the office from matching, and the
    lexical first place — an article merely mentioning the office — was announced as sure)."""
    admin, slug = world.headers(SOEST, "town-admin"), world.slug(SOEST)
    office = await client.post(f"/v1/tenants/{slug}/departments", json={"name": "Sozialamt"}, headers=admin)
    assert office.status_code == 201, office.text
    hours = [{"weekday": d, "opens": "08:30", "closes": "12:00"} for d in (1, 2, 3, 5)]
    line = await client.put(
        f"/v1/tenants/{slug}/directory/department-lines/{office.json()['id']}",
        json={"phone": "02921 103-5000", "hours": hours},
        headers=admin,
    )
    assert line.status_code == 200, line.text
    for question in ("Wann hat das Sozialamt auf?", "ist das sozialamt samstags geöffnet", "Telefonnummer Sozialamt"):
        response = await ask(client, world, question)
        found = [e for e in entries(response) if e["kind"] == "department" and e["name"] == "Sozialamt"]
        assert found and found[0]["hours"] == hours and found[0]["number"] == "+49292110350" + "00", (question, found)
        body = response.json()
        assert body["pointsTo"] == "directory" and body["confident"] is False, (question, body)
        assert not any(hit["confident"] for hit in body["items"]), (question, body["items"][:2])
    # A person has no line hours; a question about a service names no office.
    mueller = entries(await ask(client, world, "Frau Müller Bauordnung"))
    assert mueller[0]["kind"] == "person" and mueller[0]["hours"] is None
    service = (await ask(client, world, "Wo beantrage ich einen Personalausweis?")).json()
    assert service["pointsTo"] is None and service["directory"] == []
