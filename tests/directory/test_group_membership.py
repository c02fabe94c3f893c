"""Department membership from a group claim of the town's identity provider (decision 037): the
town names the claim and which group is which department; department staff whose token (from
the real test provider, signed with the town's key) carries such a group see that department's
tickets by default, with a group path counting for its subgroups. An unknown group changes
nothing, and another town's token carrying the same group name gets nothing of this town."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.directory.conftest import GESEKE, KREIS, SOEST, created
from tests.support.world import AUDIENCE, World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient
SET = """mutation($tenant: String!, $input: GroupMembershipInput!) {
  setDirectoryGroupMembership(tenant: $tenant, input: $input) {
    groupMembership { claim groups { groupName departmentId departmentName } } errors { code field } } }"""


def token(world: World, town: str, groups: Any, roles: tuple[str, ...] = ("department",)) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": world.oidc.issuer_url(town),
        "aud": AUDIENCE,
        "sub": f"group-staff-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "exp": now + 600,
        "roles": list(roles),
        "org": town,
        "realm_access": {"groups": groups},
    }
    return {"Authorization": f"Bearer {world.oidc.sign(town, claims)}"}


async def _department(client: Client, world: World, town: str, name: str) -> str:
    body = {"name": f"{name} {uuid.uuid4().hex[:6]}"}
    admin = world.headers(town, "town-admin")
    return str(
        (await created(await client.post(f"/v1/tenants/{world.slug(town)}/departments", json=body, headers=admin)))[
            "id"
        ]
    )


async def _ticket(client: Client, world: World, department_id: str) -> str:
    body = {
        "tenantSlug": world.slug(SOEST),
        "subject": "Rückruf",
        "concern": "Bitte zurückrufen",
        "citizen": {"consent": False, "preferredChannel": "none"},
        "departmentId": department_id,
    }
    return str(
        (await created(await client.post("/v1/tickets", json=body, headers=world.headers(KREIS, "agent"))))["id"]
    )


async def _ticket_ids(client: Client, headers: dict[str, str], **query: str) -> set[str]:
    seen: set[str] = set()
    after = None
    for _ in range(200):  # the shared town has many tickets: walk every page
        params = {"first": "100", **query, **({"after": after} if after else {})}
        response = await client.get("/v1/tickets", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen |= {t["id"] for t in page["items"]}
        after = page.get("nextCursor")
        if not after:
            return seen
    raise AssertionError("too many pages")


async def test_group_claim_makes_department_membership(client: Client, world: World) -> None:
    slug = world.slug(SOEST)
    bau = await _department(client, world, SOEST, "Bauaufsicht")
    ordnung = await _department(client, world, SOEST, "Ordnungsamt")
    elsewhere = await _department(client, world, SOEST, "Standesamt")
    admin = world.headers(SOEST, "town-admin")
    body = {
        "claim": "realm_access.groups",
        "groups": [{"groupName": "/soest/bau", "departmentId": bau}, {"groupName": "ordnung", "departmentId": ordnung}],
    }
    stored = await client.put(f"/v1/tenants/{slug}/directory/group-membership", json=body, headers=admin)
    assert stored.status_code == 200, stored.text
    assert stored.json()["claim"] == "realm_access.groups"
    assert {g["groupName"]: g["departmentId"] for g in stored.json()["groups"]} == {
        "/soest/bau": bau,
        "ordnung": ordnung,
    }
    read = await client.get(f"/v1/tenants/{slug}/directory/group-membership", headers=admin)
    assert read.json() == stored.json()

    bau_ticket = await _ticket(client, world, bau)
    ordnung_ticket = await _ticket(client, world, ordnung)
    other_ticket = await _ticket(client, world, elsewhere)

    # A subgroup of the mapped group path, plus a group nobody mapped: the Bauaufsicht only.
    staff = token(world, SOEST, ["/soest/bau/nord", "/unbekannt"])
    mine = await _ticket_ids(client, staff, tenant=slug)
    assert bau_ticket in mine and ordnung_ticket not in mine and other_ticket not in mine
    # Two mapped groups: both departments.
    both = await _ticket_ids(client, token(world, SOEST, ["/soest/bau", "ordnung"]), tenant=slug)
    assert {bau_ticket, ordnung_ticket} <= both and other_ticket not in both
    # Everyone of the town's when asked.
    everything = await _ticket_ids(client, staff, tenant=slug, allDepartments="true")
    assert {bau_ticket, ordnung_ticket, other_ticket} <= everything
    # Only unknown groups: as staff not in the directory, the town's tickets (not narrowed).
    unknown = await _ticket_ids(client, token(world, SOEST, ["/soest", "bau", "/soest/baustelle"]), tenant=slug)
    assert {bau_ticket, ordnung_ticket, other_ticket} <= unknown
    # A role spanning the town (an agent of the town) is not narrowed by its groups.
    spanning = await _ticket_ids(client, token(world, SOEST, ["/soest/bau"], ("department", "agent")), tenant=slug)
    assert {bau_ticket, other_ticket} <= spanning

    # Another town's department staff with the same group: Soest's mapping is not theirs.
    geseke = token(world, GESEKE, ["/soest/bau", "ordnung"])
    assert (await client.get("/v1/tickets", params={"tenant": slug}, headers=geseke)).status_code == 404
    assert not {bau_ticket, ordnung_ticket, other_ticket} & await _ticket_ids(client, geseke)

    # Without a claim, membership comes from the directory only again.
    cleared = await client.put(f"/v1/tenants/{slug}/directory/group-membership", json={}, headers=admin)
    assert cleared.json() == {"claim": None, "groups": []}
    assert other_ticket in await _ticket_ids(client, token(world, SOEST, ["/soest/bau"]), tenant=slug)


async def test_bad_mappings_are_refused_and_change_nothing(client: Client, world: World) -> None:
    # Its own town: the shared Stadt Soest's mapping is another test's.
    slug = world.slug(GESEKE)
    admin = world.headers(GESEKE, "town-admin")
    url = f"/v1/tenants/{slug}/directory/group-membership"
    own = await _department(client, world, GESEKE, "Bauamt")
    foreign = await _department(client, world, SOEST, "Fremd")
    good = {"claim": "groups", "groups": [{"groupName": "bau", "departmentId": own}]}
    assert (await client.put(url, json=good, headers=admin)).status_code == 200
    for body in (
        {"claim": "groups", "groups": [{"groupName": "x", "departmentId": foreign}]},  # another town's department
        {"claim": "groups", "groups": [{"groupName": "x", "departmentId": str(uuid.uuid4())}]},
        {"groups": [{"groupName": "x", "departmentId": own}]},  # groups without a claim
        {"claim": "a..b"},
        {"claim": "groups", "groups": [{"groupName": "//a", "departmentId": own}]},
        {
            "claim": "groups",
            "groups": [{"groupName": "x", "departmentId": own}, {"groupName": "x", "departmentId": own}],
        },
        {"claim": "groups", "groups": [{"groupName": "", "departmentId": own}]},
        {"claim": "groups\x00", "groups": []},
        {"claim": "groups", "groups": "bau"},
        {"claim": "groups", "unknown": 1},
    ):
        refused = await client.put(url, json=body, headers=admin)
        assert refused.status_code in (400, 422), (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    kept = (await client.get(url, headers=admin)).json()
    assert (kept["claim"], [(g["groupName"], g["departmentId"]) for g in kept["groups"]]) == ("groups", [("bau", own)])
    # GraphQL: typed errors, nothing changed.
    answer = await gql(client, admin, SET, tenant=slug, input={"claim": "a..b", "groups": []})
    assert answer["data"]["setDirectoryGroupMembership"]["errors"][0]["field"] == "claim"
    # Who may: the town's admin (and platform admins); not agents, partners, other towns.
    assert (await client.put(url, json=good, headers=world.headers(GESEKE, "agent"))).status_code == 403
    assert (await client.put(url, json=good, headers=world.headers(GESEKE, "partner"))).status_code == 403
    assert (await client.put(url, json=good, headers=world.headers(SOEST, "town-admin"))).status_code == 404
    cleared = await client.put(url, json={}, headers=admin)
    assert cleared.status_code == 200
