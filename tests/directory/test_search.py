"""Directory search: people and offices by what the agent types — a salutation and a name with
an office, the word for an office ("Bauamt" finds Bauordnung), a direct number in any format;
every word must match; only within the town, and never for partner systems or other towns."""

from __future__ import annotations

from typing import Any

import httpx

from tests.directory.conftest import GESEKE, KREIS, SOEST, Directory
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient


async def _search(client: Client, world: World, q: str, town: str = KREIS, role: str = "agent") -> httpx.Response:
    return await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/directory/search", params={"q": q}, headers=world.headers(town, role)
    )


def _people(hits: list[dict[str, Any]]) -> list[str]:
    return [h["person"]["id"] for h in hits if h["kind"] == "person"]


async def test_names_offices_and_numbers(client: Client, world: World, directory: Directory) -> None:
    mueller = (await _search(client, world, "Frau Müller Bauordnung")).json()
    assert _people(mueller)[0] == directory.mueller["id"], mueller
    assert directory.schmidt["id"] not in _people(mueller)  # every word must match
    office = (await _search(client, world, "Ansprechpartner Bauamt")).json()
    assert {directory.mueller["id"], directory.schmidt["id"], directory.weber["id"]} <= set(_people(office))
    assert any(h["kind"] == "department" and h["department"]["name"] == "Bauordnung" for h in office), office
    for number in ("02921 103-1234", "+49 2921 1031234", "1234"):
        found = (await _search(client, world, number)).json()
        assert _people(found)[0] == directory.schmidt["id"], (number, found)
    assert (await _search(client, world, "Herr Niemand")).json() == []
    graphql = await gql(
        client,
        world.headers(SOEST, "department"),
        """query($t: String!) { directorySearch(tenant: $t, query: "Schmidt") {
             kind matched person { familyName phone } } }""",
        t=world.slug(SOEST),
    )
    first = graphql["data"]["directorySearch"][0]
    assert first["person"] == {"familyName": "Schmidt", "phone": "+4929211031234"}


async def test_only_the_town_and_the_operators_staff_search(client: Client, world: World) -> None:
    for town, role, status in ((SOEST, "partner", 403), (GESEKE, "agent", 404), (GESEKE, "town-admin", 404)):
        assert (await _search(client, world, "Müller", town, role)).status_code == status, (town, role)
    for q in ("", "x" * 201):
        response = await _search(client, world, q)
        assert response.status_code in (400, 422), response.text
