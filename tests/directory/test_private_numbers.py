"""A person's private number (decision 037): kept apart from the person's record, read one
person at a time over REST or GraphQL, and every read audited (who, when, which person, which
route) in the read's own transaction; the town admin reads the audit."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.directory.conftest import GESEKE, KREIS, SOEST, Directory, created
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient
PRIVATE = (
    """query($tenant: String!, $id: UUID!) { directoryPrivateNumber(tenant: $tenant, id: $id) { personId number } }"""
)
READS = """query($tenant: String!, $personId: UUID) { privateNumberReads(tenant: $tenant, personId: $personId) {
  items { personId actorSubject via } nextCursor } }"""


async def _probe(client: Client, world: World, directory: Directory) -> dict[str, Any]:
    body = {"familyName": f"Privat {uuid.uuid4().hex[:6]}", "departmentId": str(directory.department_id)}
    return await created(
        await client.post(f"{directory.base(world)}/people", json=body, headers=world.headers(SOEST, "town-admin"))
    )


async def _reads(client: Client, world: World, person_id: str, **query: str) -> httpx.Response:
    return await client.get(
        f"/v1/tenants/{world.slug(SOEST)}/directory/private-number-reads",
        params={"personId": person_id, **query},
        headers=world.headers(SOEST, "town-admin"),
    )


async def test_reads_are_audited_over_rest_and_graphql(client: Client, world: World, directory: Directory) -> None:
    probe = await _probe(client, world, directory)
    url = f"{directory.base(world)}/people/{probe['id']}/private-number"
    admin = world.headers(SOEST, "town-admin")
    # Setting it is not a read: the admin typed it.
    stored = await client.put(url, json={"number": "0171 2345678"}, headers=admin)
    assert stored.json() == {"personId": probe["id"], "number": "+491712345678"}
    assert (await _reads(client, world, probe["id"])).json() == {"items": [], "nextCursor": None}

    # Not in the person's record, nor in the list of people.
    person = (await client.get(f"{directory.base(world)}/people/{probe['id']}", headers=admin)).json()
    assert "+491712345678" not in str(person)
    listed = (await client.get(f"{directory.base(world)}/people", headers=admin)).json()
    assert "+491712345678" not in str(listed)

    read = await client.get(url, headers=world.headers(KREIS, "agent"))
    assert read.json() == {"personId": probe["id"], "number": "+491712345678"}
    graphql = await gql(client, world.headers(SOEST, "department"), PRIVATE, tenant=world.slug(SOEST), id=probe["id"])
    assert graphql["data"]["directoryPrivateNumber"]["number"] == "+491712345678"

    page = (await _reads(client, world, probe["id"])).json()
    assert [(r["actorSubject"], r["via"]) for r in page["items"]] == [
        (f"{KREIS}-agent", "GET /v1/tenants/{slug}/directory/people/{personId}/private-number"),
        (f"{SOEST}-department", "GraphQL directoryPrivateNumber"),
    ]
    assert all(r["personId"] == probe["id"] and r["actorIssuer"] and r["at"] for r in page["items"])
    first = (await _reads(client, world, probe["id"], first="1")).json()
    assert len(first["items"]) == 1 and first["nextCursor"]
    rest = (await _reads(client, world, probe["id"], first="1", after=first["nextCursor"])).json()
    assert rest["items"][0]["actorSubject"] == f"{SOEST}-department"
    over_graphql = await gql(client, admin, READS, tenant=world.slug(SOEST), personId=probe["id"])
    assert len(over_graphql["data"]["privateNumberReads"]["items"]) == 2


async def test_who_may_not_read_gets_nothing_and_leaves_no_record(
    client: Client, world: World, directory: Directory
) -> None:
    probe = await _probe(client, world, directory)
    url = f"{directory.base(world)}/people/{probe['id']}/private-number"
    admin = world.headers(SOEST, "town-admin")
    assert (await client.put(url, json={"number": "0171 7654321"}, headers=admin)).status_code == 200
    assert (await client.get(url, headers=world.headers(SOEST, "partner"))).status_code == 403
    assert (await client.get(url, headers=world.headers(GESEKE, "agent"))).status_code == 404
    missing = f"{directory.base(world)}/people/{uuid.uuid4()}/private-number"
    assert (await client.get(missing, headers=world.headers(KREIS, "agent"))).status_code == 404
    assert (await _reads(client, world, probe["id"])).json()["items"] == []
    # The audit itself: the town's admin only.
    assert (await _reads(client, world, probe["id"])).status_code == 200
    reads = f"/v1/tenants/{world.slug(SOEST)}/directory/private-number-reads"
    assert (await client.get(reads, headers=world.headers(KREIS, "agent"))).status_code == 403
    assert (await client.get(reads, headers=world.headers(GESEKE, "town-admin"))).status_code == 404


async def test_bad_input_changes_nothing(client: Client, world: World, directory: Directory) -> None:
    probe = await _probe(client, world, directory)
    url = f"{directory.base(world)}/people/{probe['id']}/private-number"
    admin = world.headers(SOEST, "town-admin")
    assert (await client.put(url, json={"number": "0171 1112223"}, headers=admin)).status_code == 200
    for body in ({"number": "not a number"}, {"number": "1"}, {"number": "0171\x001"}, {"number": 171}, {"nr": "x"}):
        refused = await client.put(url, json=body, headers=admin)
        assert refused.status_code in (400, 422), (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    reads = f"/v1/tenants/{world.slug(SOEST)}/directory/private-number-reads"
    for query in ({"first": "0"}, {"first": "101"}, {"after": "not-a-cursor"}, {"personId": "x"}):
        refused = await client.get(reads, params=query, headers=admin)
        assert refused.status_code in (400, 422), (query, refused.text)
    assert (await client.get(url, headers=world.headers(KREIS, "agent"))).json()["number"] == "+491711112223"
    # null removes it.
    assert (await client.put(url, json={"number": None}, headers=admin)).json()["number"] is None
    assert (await client.get(url, headers=world.headers(KREIS, "agent"))).json()["number"] is None
