"""The CSV import of a town's people: bad lines reported with their number, column and reason
while the rest goes in; the same file twice changes nothing; substitutes named by key on later
lines; a person marked inactive, or missing with prune, is deprovisioned; only the town admin
imports, and only into their own town."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.directory.conftest import GESEKE, KREIS, SOEST, Directory
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient


def _key() -> str:
    return f"imp-{uuid.uuid4().hex[:8]}"


async def _import(client: Client, world: World, text: str, **params: Any) -> httpx.Response:
    return await client.post(
        f"/v1/tenants/{world.slug(SOEST)}/directory/import",
        content=text.encode(),
        params=params,
        headers={**world.headers(SOEST, "town-admin"), "Content-Type": "text/csv"},
    )


async def _people(client: Client, world: World) -> dict[str, dict[str, Any]]:
    listed = await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/directory/people", headers=world.headers(SOEST, "agent")
    )
    assert listed.status_code == 200, listed.text
    return {p["externalId"]: p for p in listed.json() if p["externalId"]}


async def test_bad_lines_are_reported_and_the_rest_goes_in_once(
    client: Client, world: World, directory: Directory
) -> None:
    a, b, c = _key(), _key(), _key()
    text = (
        "external_id;salutation;given_name;family_name;function;department;phone;email;languages;substitutes;"
        "responsibilities\n"
        f"{a};Frau;Petra;Kaiser;Meldewesen;Bürgerbüro;02921 103-7001;p.kaiser@soest.de;de|en;{b};"
        "99115004000000 A-K|topic:Fundsachen\n"
        f"{b};Herr;Jan;Brandt;Meldewesen;Bürgerbüro;02921 103-7002;;de;{a};99115004000000 L-Z\n"
        f"{_key()};Frau;Eva;Falsch;;Bürgerbüro;not a number;;;;\n"
        f"{_key()};Herr;Udo;Unbekannt;;Tiefbauamt;;;;;\n"
        f"{_key()};Herr;Ralf;Rückwärts;;;;;;;99115004000000 M-B\n"
        f"{a};Frau;Petra;Doppelt;;;;;;;\n"
        f";Frau;Ohne;Schlüssel;;;;;;;\n"
        f"{c};;Carla;Vertretung;;;;;;nobody-{a};\n"
    )
    response = await _import(client, world, text)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (3, 0, 0), report
    problems = {(p["line"], p["field"]) for p in report["problems"]}
    assert problems == {
        (4, "phone"),
        (5, "department"),
        (6, "responsibilities"),
        (7, "external_id"),
        (8, "external_id"),
        (9, "substitutes"),
    }, report["problems"]
    people = await _people(client, world)
    kaiser, brandt = people[a], people[b]
    assert kaiser["phone"] == "+4929211037001" and kaiser["languages"] == ["de", "en"]
    assert kaiser["substituteIds"] == [brandt["id"]] and brandt["substituteIds"] == [kaiser["id"]]
    duties = await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/directory/responsibilities",
        params={"personId": kaiser["id"]},
        headers=world.headers(SOEST, "agent"),
    )
    assert {(d["leikaKey"], d["topic"], d["surnameFrom"]) for d in duties.json()} == {
        ("99115004000000", None, "A"),
        (None, "Fundsachen", None),
    }
    decision = await client.get(
        "/v1/forwarding",
        params={"tenant": world.slug(SOEST), "leikaKey": "99115004000000", "surname": "Zander"},
        headers=world.headers(KREIS, "agent"),
    )
    assert decision.json()["options"][0]["personId"] == brandt["id"], decision.text

    again = (await _import(client, world, text)).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3), again
    assert (await _people(client, world))[a]["version"] == kaiser["version"]


async def test_inactive_or_missing_people_are_deprovisioned(client: Client, world: World, directory: Directory) -> None:
    a, b = _key(), _key()
    header = "external_id,family_name,responsibilities,active\n"
    first = await _import(client, world, f"{header}{a},Lange,99115005000000,ja\n{b},Kurz,99115005000000,ja\n")
    assert first.json()["created"] == 2, first.text
    leaving = await _import(client, world, f"{header}{a},Lange,99115005000000,nein\n")
    assert leaving.json()["deprovisioned"] == 1 and leaving.json()["updated"] == 1, leaving.text
    people = await _people(client, world)
    assert people[a]["active"] is False and people[b]["active"] is True
    duties = await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/directory/responsibilities",
        params={"personId": people[a]["id"]},
        headers=world.headers(SOEST, "agent"),
    )
    assert duties.json() == []
    pruned = await _import(client, world, f"{header}{a},Lange,,nein\n", prune="true")
    assert pruned.json()["deprovisioned"] >= 1, pruned.text
    assert (await _people(client, world))[b]["active"] is False


async def test_the_header_is_checked_and_only_the_town_admin_imports(
    client: Client, world: World, directory: Directory
) -> None:
    for text, words in (
        ("", "empty"),
        ("external_id,family_name,shoe_size\n", "shoe_size"),
        ("family_name\nMeier\n", "external_id"),
    ):
        response = await _import(client, world, text)
        assert response.status_code == 422, response.text
        assert words in response.text
    body = {"csv": f"external_id,family_name\n{_key()},Json\n"}
    as_json = await client.post(
        f"/v1/tenants/{world.slug(SOEST)}/directory/import", json=body, headers=world.headers(SOEST, "town-admin")
    )
    assert as_json.status_code == 200 and as_json.json()["created"] == 1, as_json.text
    for town, role, status in ((SOEST, "agent", 403), (GESEKE, "town-admin", 404), (SOEST, "partner", 403)):
        refused = await client.post(
            f"/v1/tenants/{world.slug(SOEST)}/directory/import", json=body, headers=world.headers(town, role)
        )
        assert refused.status_code == status, (town, role, refused.text)
    graphql = await gql(
        client,
        world.headers(SOEST, "town-admin"),
        """mutation($t: String!, $csv: String!) { importDirectory(tenant: $t, csv: $csv) {
             report { created unchanged problems { line field } } errors { code field } } }""",
        t=world.slug(SOEST),
        csv=f"external_id,family_name\n{_key()},Graph\n{_key()},\n",
    )
    assert graphql["data"]["importDirectory"] == {
        "report": {"created": 1, "unchanged": 0, "problems": [{"line": 3, "field": "family_name"}]},
        "errors": [],
    }
