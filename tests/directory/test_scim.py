"""SCIM 2.0 per town with the requests identity providers really send: Entra ID's create, its
capitalised `"Replace"` with `active` as the string "False", its filtered email path and its
member patches; Keycloak's (and Okta's) patch without a path whose value is an object, and PUT.
Deprovisioning takes the person out of their responsibilities and gives their open tickets
back to the department's queue with an event. Errors are SCIM's error message; only the town's
own provisioning client gets in."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.directory.conftest import GESEKE, KREIS, SOEST, Directory
from tests.support.world import World

Client = httpx.AsyncClient
SCIM_JSON = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _base(world: World, town: str = SOEST) -> str:
    return f"/scim/v2/{world.slug(town)}"


def _headers(world: World, town: str = SOEST, kind: str = "provisioning") -> dict[str, str]:
    return {**world.headers(town, kind), "Content-Type": SCIM_JSON, "Accept": SCIM_JSON}


def entra_user(user_name: str, family: str = "Hoffmann") -> dict[str, Any]:
    """As Entra ID's provisioning service posts a new user."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": user_name,
        "active": True,
        "displayName": f"Sabine {family}",
        "emails": [{"primary": True, "type": "work", "value": f"{user_name}"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"Sabine {family}", "familyName": family, "givenName": "Sabine"},
        "title": "Sachbearbeitung Bauordnung",
        "phoneNumbers": [{"type": "work", "value": f"+49 2921 103-{uuid.uuid4().int % 9000 + 1000}"}],
        ENTERPRISE: {"department": "Bauordnung"},
        "roles": [],
    }


def _user_name() -> str:
    return f"s.{uuid.uuid4().hex[:8]}@soest.de"


async def _scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status), body
    assert body.get("scimType") == scim_type, body
    return body


async def test_discovery_endpoints(client: Client, world: World) -> None:
    for path in ("ServiceProviderConfig", "ResourceTypes", "Schemas"):
        response = await client.get(f"{_base(world)}/{path}", headers=_headers(world))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(SCIM_JSON)
    config = (await client.get(f"{_base(world)}/ServiceProviderConfig", headers=_headers(world))).json()
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is False
    types = (await client.get(f"{_base(world)}/ResourceTypes", headers=_headers(world))).json()
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}


async def test_entra_create_filter_patch_and_delete(client: Client, world: World, directory: Directory) -> None:
    users = f"{_base(world)}/Users"
    name = _user_name()
    created = await client.post(users, json=entra_user(name), headers=_headers(world))
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith(SCIM_JSON)
    user = created.json()
    assert user["userName"] == name and user["active"] is True
    assert user["name"] == {"givenName": "Sabine", "familyName": "Hoffmann"}
    assert user[ENTERPRISE] == {"department": "Bauordnung"}
    assert user["meta"]["location"].endswith(f"/Users/{user['id']}")
    person = await client.get(f"{directory.base(world)}/people/{user['id']}", headers=world.headers(SOEST, "agent"))
    assert person.json()["departmentId"] == str(directory.department_id)
    assert person.json()["function"] == "Sachbearbeitung Bauordnung"

    await _scim_error(
        await client.post(users, json=entra_user(name.upper()), headers=_headers(world)), 409, "uniqueness"
    )

    found = (
        await client.get(users, params={"filter": f'userName eq "{name.upper()}"'}, headers=_headers(world))
    ).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"], found
    none = await client.get(users, params={"filter": 'userName eq "nobody@soest.de"'}, headers=_headers(world))
    assert none.json()["totalResults"] == 0 and none.json()["Resources"] == []
    for bad in ('name.familyName co "H"', "userName eq nobody", 'emails eq "x"'):
        await _scim_error(
            await client.get(users, params={"filter": bad}, headers=_headers(world)), 400, "invalidFilter"
        )

    patched = await client.patch(
        f"{users}/{user['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": "neu@soest.de"},
                {"op": "Replace", "path": "name.familyName", "value": "Hoffmann-Berg"},
                {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Bürgerbüro"},
            ],
        },
        headers=_headers(world),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["emails"][0]["value"] == "neu@soest.de"
    assert patched.json()["name"]["familyName"] == "Hoffmann-Berg"
    assert patched.json()[ENTERPRISE] == {"department": "Bürgerbüro"}

    await _scim_error(
        await client.patch(
            f"{users}/{user['id']}", json={"schemas": [PATCH], "Operations": []}, headers=_headers(world)
        ),
        400,
        "invalidSyntax",
    )
    await _scim_error(
        await client.patch(
            f"{users}/{user['id']}",
            json={"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "maybe"}]},
            headers=_headers(world),
        ),
        400,
        "invalidValue",
    )
    await _scim_error(await client.post(users, content=b"{not json", headers=_headers(world)), 400, "invalidSyntax")

    deleted = await client.delete(f"{users}/{user['id']}", headers=_headers(world))
    assert deleted.status_code == 204, deleted.text
    await _scim_error(await client.get(f"{users}/{user['id']}", headers=_headers(world)), 404)
    await _scim_error(await client.delete(f"{users}/{user['id']}", headers=_headers(world)), 404)
    await _scim_error(await client.get(f"{users}/not-a-uuid", headers=_headers(world)), 404)


async def _ticket_assigned_to(client: Client, world: World, directory: Directory, person_id: str) -> dict[str, Any]:
    ticket = await client.post(
        "/v1/tickets",
        json={
            "tenantSlug": world.slug(SOEST),
            "subject": "Bauantrag",
            "concern": "Rückfrage zum Bauantrag",
            "citizen": {"consent": False, "preferredChannel": "none"},
            "departmentId": str(directory.department_id),
        },
        headers=world.headers(KREIS, "agent"),
    )
    assert ticket.status_code == 201, ticket.text
    assigned = await client.put(
        f"/v1/tickets/{ticket.json()['id']}/assignment",
        json={"personId": person_id},
        headers=world.headers(SOEST, "department"),
    )
    assert assigned.status_code == 200, assigned.text
    body: dict[str, Any] = assigned.json()
    assert "assignee" in body, body
    assert body["assigneePersonId"] == person_id and body["assignee"] == "Sabine Hoffmann"
    return body


async def test_deactivation_returns_tickets_and_responsibilities(
    client: Client, world: World, directory: Directory
) -> None:
    users = f"{_base(world)}/Users"
    entra = (await client.post(users, json=entra_user(_user_name()), headers=_headers(world))).json()
    admin = world.headers(SOEST, "town-admin")
    duty = await client.post(
        f"{directory.base(world)}/responsibilities",
        json={"personId": entra["id"], "leikaKey": "99108099000000"},
        headers=admin,
    )
    assert duty.status_code == 201, duty.text
    ticket = await _ticket_assigned_to(client, world, directory, entra["id"])

    # Entra ID: capitalised op, active as a string.
    patched = await client.patch(
        f"{users}/{entra['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
        headers=_headers(world),
    )
    assert patched.status_code == 200 and patched.json()["active"] is False, patched.text
    detail = await client.get(f"/v1/tickets/{ticket['id']}", headers=world.headers(SOEST, "department"))
    after = detail.json()["ticket"]
    assert after["assignee"] is None and after["assigneePersonId"] is None
    assert after["departmentId"] == str(directory.department_id)
    events = await client.get(f"/v1/tickets/{ticket['id']}/events", headers=world.headers(SOEST, "department"))
    returned = [e for e in events.json() if e["details"].get("previousAssigneePersonId") == entra["id"]]
    assert len(returned) == 1 and returned[0]["kind"] == "ticket.assigned", events.text
    duties = await client.get(
        f"{directory.base(world)}/responsibilities", params={"personId": entra["id"]}, headers=admin
    )
    assert duties.json() == []
    refused = await client.put(
        f"/v1/tickets/{ticket['id']}/assignment",
        json={"personId": entra["id"]},
        headers=world.headers(SOEST, "department"),
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "personId", refused.text
    unknown = await client.put(
        f"/v1/tickets/{ticket['id']}/assignment",
        json={"assignee": "Frau Niemand"},
        headers=world.headers(SOEST, "department"),
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "assignee", unknown.text
    by_name = await client.put(
        f"/v1/tickets/{ticket['id']}/assignment",
        json={"assignee": "bernd schmidt"},
        headers=world.headers(SOEST, "department"),
    )
    assert by_name.json()["assigneePersonId"] == directory.schmidt["id"], by_name.text

    # Keycloak / Okta: no path, the value an object; then PUT of the whole resource.
    keycloak = (await client.post(users, json=entra_user(_user_name(), "Krause"), headers=_headers(world))).json()
    again = await client.patch(
        f"{users}/{keycloak['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "value": {"active": False, "name.givenName": "Iris"}}],
        },
        headers=_headers(world),
    )
    assert again.status_code == 200 and again.json()["active"] is False, again.text
    assert again.json()["name"]["givenName"] == "Iris"
    replaced = await client.put(
        f"{users}/{keycloak['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": keycloak["userName"],
            "name": {"givenName": "Iris", "familyName": "Krause"},
            "active": True,
        },
        headers=_headers(world),
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["active"] is True and replaced.json()["emails"] == []
    assert replaced.json()[ENTERPRISE] == {"department": "Bauordnung"}  # no extension: kept


async def test_groups_are_departments(client: Client, world: World, directory: Directory) -> None:
    groups = f"{_base(world)}/Groups"
    user = (await client.post(f"{_base(world)}/Users", json=entra_user(_user_name()), headers=_headers(world))).json()
    name = f"Tiefbau {uuid.uuid4().hex[:6]}"
    created = await client.post(
        groups,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": []},
        headers=_headers(world),
    )
    assert created.status_code == 201, created.text
    group = created.json()
    await _scim_error(await client.post(groups, json={"displayName": name}, headers=_headers(world)), 409, "uniqueness")
    add = {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user["id"]}]}
    added = await client.patch(
        f"{groups}/{group['id']}", json={"schemas": [PATCH], "Operations": [add]}, headers=_headers(world)
    )
    assert [m["value"] for m in added.json()["members"]] == [user["id"]], added.text
    person = await client.get(f"{directory.base(world)}/people/{user['id']}", headers=world.headers(SOEST, "agent"))
    assert person.json()["departmentId"] == group["id"]
    found = await client.get(groups, params={"filter": f'displayName eq "{name}"'}, headers=_headers(world))
    assert found.json()["totalResults"] == 1 and found.json()["Resources"][0]["id"] == group["id"]
    remove = {"op": "Remove", "path": f'members[value eq "{user["id"]}"]'}
    removed = await client.patch(
        f"{groups}/{group['id']}", json={"schemas": [PATCH], "Operations": [remove]}, headers=_headers(world)
    )
    assert removed.json()["members"] == [], removed.text
    paged = await client.get(groups, params={"startIndex": "2", "count": "1"}, headers=_headers(world))
    assert paged.json()["startIndex"] == 2 and paged.json()["itemsPerPage"] == 1, paged.text
    assert paged.json()["totalResults"] >= 3
    assert (await client.delete(f"{groups}/{group['id']}", headers=_headers(world))).status_code == 204
    await _scim_error(await client.get(f"{groups}/{group['id']}", headers=_headers(world)), 404)


async def test_only_the_towns_own_provisioning_client_gets_in(client: Client, world: World) -> None:
    users = f"{_base(world)}/Users"
    await _scim_error(await client.get(users), 401)
    for town, kind, status in (
        (SOEST, "partner", 403),
        (SOEST, "town-admin", 403),
        (KREIS, "agent", 403),
        (KREIS, "telephony", 403),
        (GESEKE, "provisioning", 404),
    ):
        await _scim_error(await client.get(users, headers=_headers(world, town, kind)), status)
        await _scim_error(
            await client.post(users, json=entra_user(_user_name()), headers=_headers(world, town, kind)), status
        )
    geseke = await client.get(f"{_base(world, GESEKE)}/Users", headers=_headers(world, GESEKE))
    assert geseke.status_code == 200
    soest_ids = {r["id"] for r in (await client.get(users, headers=_headers(world))).json()["Resources"]}
    assert not soest_ids & {r["id"] for r in geseke.json()["Resources"]}
