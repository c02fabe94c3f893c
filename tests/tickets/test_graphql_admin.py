"""GraphQL for the rest of the ticket work: settings and routing table (town admin), comments,
assignment and department changes (department staff) — thin over the same service rules."""

from __future__ import annotations

import uuid
from uuid import UUID

import httpx

from tests.support.world import World
from tests.tickets.conftest import GESEKE, KREIS, create_ticket, directory_person, graphql


async def test_settings_and_routes_over_graphql(
    client: httpx.AsyncClient, world: World, departments: dict[str, UUID]
) -> None:
    admin = world.headers(GESEKE, "town-admin")
    slug = world.slug(GESEKE)
    read = await graphql(
        client,
        admin,
        "query($s: String!) { ticketSettings(tenantSlug: $s) { deadlineRule retentionDays dueSoonMinutes version } }",
        s=slug,
    )
    settings = read["data"]["ticketSettings"]
    assert settings["deadlineRule"] in ("WORKING_DAYS_24H", "SERVICE_HOURS_24H")
    changed = await graphql(
        client,
        admin,
        """mutation($s: String!, $v: Int) { updateTicketSettings(tenantSlug: $s, input: {dueSoonMinutes: 90,
               version: $v}) { settings { dueSoonMinutes version } errors { code field } } }""",
        s=slug,
        v=settings["version"],
    )
    payload = changed["data"]["updateTicketSettings"]
    assert payload["errors"] == [] and payload["settings"]["dueSoonMinutes"] == 90
    restored = await client.patch(f"/v1/tenants/{slug}/ticket-settings", json={"dueSoonMinutes": 120}, headers=admin)
    assert restored.json()["dueSoonMinutes"] == 120
    invalid = await graphql(
        client,
        admin,
        """mutation($s: String!) { updateTicketSettings(tenantSlug: $s, input: {retentionDays: 0}) {
               settings { retentionDays } errors { code field } } }""",
        s=slug,
    )
    assert invalid["data"]["updateTicketSettings"]["errors"][0]["code"] == "VALIDATION_FAILED"
    routes = await graphql(
        client,
        admin,
        """mutation($s: String!, $d: UUID!) { setTicketRoutes(tenantSlug: $s, input: {defaultDepartmentId: $d,
               routes: [{keyPrefix: "99", departmentId: $d}]}) { routes { keyPrefix departmentName }
               errors { code } } }""",
        s=slug,
        d=str(departments[GESEKE]),
    )
    assert routes["data"]["setTicketRoutes"]["routes"] == [
        {"keyPrefix": None, "departmentName": "Bürgerbüro"},
        {"keyPrefix": "99", "departmentName": "Bürgerbüro"},
    ]
    seen = await graphql(
        client,
        world.headers(KREIS, "agent"),
        "query($s: String!) { ticketRoutes(tenantSlug: $s) { keyPrefix } }",
        s=slug,
    )
    assert [r["keyPrefix"] for r in seen["data"]["ticketRoutes"]] == [None, "99"]
    refused = await graphql(
        client,
        world.headers(KREIS, "agent"),
        """mutation($s: String!) { setTicketRoutes(tenantSlug: $s, input: {routes: []}) { errors { code } } }""",
        s=slug,
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_comments_assignment_and_department_over_graphql(
    client: httpx.AsyncClient, world: World, departments: dict[str, UUID]
) -> None:
    ticket = await create_ticket(client, world, departments, GESEKE)
    staff = world.headers(GESEKE, "department")
    comment = await graphql(
        client,
        staff,
        'mutation($id: UUID!) { addTicketComment(id: $id, body: "Rückfrage beim Bauamt") { comment { body } '
        "errors { code } } }",
        id=ticket["id"],
    )
    assert comment["data"]["addTicketComment"]["comment"]["body"] == "Rückfrage beim Bauamt"
    name = await directory_person(client, world, GESEKE, f"Sachbearbeiter 3 {uuid.uuid4().hex[:8]}")
    assigned = await graphql(
        client,
        staff,
        "mutation($id: UUID!, $name: String!) { assignTicket(id: $id, assignee: $name) { ticket { assignee version } "
        "errors { code } } }",
        id=ticket["id"],
        name=name,
    )
    assert assigned["data"]["assignTicket"]["ticket"]["assignee"] == name
    stale = await graphql(
        client,
        staff,
        """mutation($id: UUID!, $d: UUID!) { changeTicketDepartment(id: $id, departmentId: $d, version: 1) {
               ticket { id } errors { code field } } }""",
        id=ticket["id"],
        d=str(departments[GESEKE]),
    )
    assert stale["data"]["changeTicketDepartment"]["errors"] == [{"code": "VERSION_CONFLICT", "field": "version"}]
    read = await graphql(
        client,
        staff,
        "query($id: UUID!) { ticket(id: $id) { comments { body authorSubject } events { kind actorSubject } } }",
        id=ticket["id"],
    )
    assert [c["body"] for c in read["data"]["ticket"]["comments"]] == ["Rückfrage beim Bauamt"]
    assert [e["kind"] for e in read["data"]["ticket"]["events"]][-2:] == ["COMMENT_ADDED", "ASSIGNED"]
