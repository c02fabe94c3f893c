"""One GraphQL argument for a tenant, `tenant` (issue 13), in tickets, telephony and tenants.

The old names (`tenantSlug`, `slug`) still work and are deprecated; where the tenant is required,
one of the two must be given, and giving both with different values is refused, never guessed.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.world import World

GESEKE, SOEST = "stadt-geseke", "stadt-soest"


async def run(client: httpx.AsyncClient, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_queries_take_the_tenant_as_tenant_and_still_under_their_old_names(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = world.headers(GESEKE, "town-admin")
    slug = world.slug(GESEKE)
    for field, selection in (
        ("ticketSettings", "{ retentionDays }"),
        ("telephonySettings", "{ callerRetentionDays }"),
    ):
        new = await run(client, admin, f"query($t: String) {{ {field}(tenant: $t) {selection} }}", t=slug)
        old = await run(client, admin, f"query($t: String) {{ {field}(tenantSlug: $t) {selection} }}", t=slug)
        assert "errors" not in new and new["data"] == old["data"], (field, new)
    tenant = await run(client, admin, "query($t: String) { tenant(tenant: $t) { slug } }", t=slug)
    assert tenant["data"]["tenant"] == {"slug": slug}
    by_old_name = await run(client, admin, "query($t: String) { tenant(slug: $t) { slug } }", t=slug)
    assert by_old_name["data"]["tenant"] == {"slug": slug}
    other = await run(client, admin, "query($t: String) { tenant(tenant: $t) { slug } }", t=world.slug(SOEST))
    assert other["data"]["tenant"] is None  # another town's tenant looks like none at all


async def test_a_required_tenant_missing_or_given_twice_is_a_validation_error(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = world.headers(GESEKE, "town-admin")
    slug = world.slug(GESEKE)
    missing = await run(client, admin, "{ ticketSettings { retentionDays } }")
    assert codes(missing) == ["VALIDATION_FAILED"]
    twice = await run(
        client,
        admin,
        "query($t: String, $o: String) { telephonySettings(tenant: $t, tenantSlug: $o) { callerRetentionDays } }",
        t=slug,
        o=world.slug(SOEST),
    )
    assert codes(twice) == ["VALIDATION_FAILED"]
    same = await run(
        client,
        admin,
        "query($t: String) { telephonySettings(tenant: $t, tenantSlug: $t) { callerRetentionDays } }",
        t=slug,
    )
    assert "errors" not in same
    no_tenant = await run(client, admin, "{ tenant { slug } }")
    assert codes(no_tenant) == ["VALIDATION_FAILED"]


async def test_lists_span_my_tenants_without_one_and_narrow_to_the_tenant_given(
    client: httpx.AsyncClient, world: World
) -> None:
    agent = world.headers("kreis-soest", "agent")
    narrowed = await run(
        client,
        agent,
        "query($t: String) { tickets(tenant: $t, first: 100) { nodes { tenantId } } }",
        t=world.slug(GESEKE),
    )
    assert {n["tenantId"] for n in narrowed["data"]["tickets"]["nodes"]} <= {str(world.tenant_ids[GESEKE])}
    numbers = await run(
        client, agent, "query($t: String) { serviceNumbers(tenant: $t) { tenantId } }", t=world.slug(GESEKE)
    )
    assert "errors" not in numbers
    assert {n["tenantId"] for n in numbers["data"]["serviceNumbers"]} <= {str(world.tenant_ids[GESEKE])}
    unknown = await run(client, agent, '{ calls(tenant: "no-such-town") { nodes { id } } }')
    assert codes(unknown) == ["NOT_FOUND"]


async def test_mutations_take_the_tenant_as_tenant_and_report_a_missing_one_in_the_payload(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = world.headers(GESEKE, "town-admin")
    slug = world.slug(GESEKE)
    changed = await run(
        client,
        admin,
        """mutation($t: String) { setTelephonySettings(tenant: $t, callerRetentionDays: 90) {
               telephonySettings { callerRetentionDays } errors { code field } } }""",
        t=slug,
    )
    assert changed["data"]["setTelephonySettings"] == {"telephonySettings": {"callerRetentionDays": 90}, "errors": []}
    missing = await run(
        client,
        admin,
        """mutation { setClosingDay(day: "2031-12-24", name: "Heiligabend") {
               closingDays { day } errors { code field } } }""",
    )
    assert missing["data"]["setClosingDay"] == {
        "closingDays": None,
        "errors": [{"code": "VALIDATION_FAILED", "field": "tenant"}],
    }
    town = await run(client, admin, "query($t: String) { tenant(tenant: $t) { departments { id } } }", t=slug)
    department = town["data"]["tenant"]["departments"][0]["id"]
    created = await run(
        client,
        world.headers(GESEKE, "agent"),
        """mutation($t: String, $d: UUID) { createTicket(input: {tenant: $t, subject: "Sperrmüll", concern: "Termin",
               departmentId: $d, citizen: {consent: false, preferredChannel: NONE}}) {
               ticket { tenantId } errors { code field } } }""",
        t=slug,
        d=department,
    )
    payload = created["data"]["createTicket"]
    assert payload["errors"] == [] and payload["ticket"]["tenantId"] == str(world.tenant_ids[GESEKE])
    nameless = await run(
        client,
        world.headers(GESEKE, "agent"),
        """mutation { createTicket(input: {subject: "Sperrmüll", concern: "Termin",
               citizen: {consent: false, preferredChannel: NONE}}) { ticket { id } errors { code field } } }""",
    )
    assert nameless["data"]["createTicket"]["errors"] == [{"code": "VALIDATION_FAILED", "field": "tenant"}]


async def test_the_old_argument_names_are_published_as_deprecated(client: httpx.AsyncClient, world: World) -> None:
    admin = world.headers(GESEKE, "town-admin")
    body = await run(
        client,
        admin,
        """{ __type(name: "Query") { fields { name args(includeDeprecated: true) {
               name isDeprecated deprecationReason } } } }""",
    )
    fields = {f["name"]: {a["name"]: a for a in f["args"]} for f in body["data"]["__type"]["fields"]}
    for field, old in (("tickets", "tenantSlug"), ("calls", "tenantSlug"), ("tenant", "slug")):
        assert "tenant" in fields[field] and not fields[field]["tenant"]["isDeprecated"]
        assert fields[field][old]["isDeprecated"] and fields[field][old]["deprecationReason"] == "Use tenant."
