"""Department work: department staff see their own department's tickets by default, the
department taken from the town's directory by the subject they sign in with; they see the rest
of their town's when they ask for it; people whose role spans the town are not narrowed."""

from __future__ import annotations

import uuid

import httpx

from auth.principal import Principal
from auth.roles import Role
from backend.state import unit_of_work
from backend.tickets import service as tickets
from tests.directory.conftest import KREIS, SOEST, Directory, created
from tests.support.world import World

Client = httpx.AsyncClient


async def _ticket(client: Client, world: World, department_id: str) -> str:
    body = {
        "tenantSlug": world.slug(SOEST),
        "subject": "Rückruf",
        "concern": "Bitte zurückrufen",
        "citizen": {"consent": False, "preferredChannel": "none"},
        "departmentId": department_id,
    }
    response = await client.post("/v1/tickets", json=body, headers=world.headers(KREIS, "agent"))
    return str((await created(response))["id"])


async def test_department_staff_see_their_department_by_default(
    client: Client, world: World, directory: Directory
) -> None:
    soest = world.tenant_ids[SOEST]
    admin = world.headers(SOEST, "town-admin")
    departments = (await client.get(f"/v1/tenants/{world.slug(SOEST)}/departments", headers=admin)).json()
    buergerbuero = next(d["id"] for d in departments if d["name"] == "Bürgerbüro")
    own = await _ticket(client, world, str(directory.department_id))
    other = await _ticket(client, world, buergerbuero)
    subject = f"staff-{uuid.uuid4().hex[:8]}"
    await created(
        await client.post(
            f"{directory.base(world)}/people",
            json={"familyName": "Sachbearbeiter", "subject": subject, "departmentId": str(directory.department_id)},
            headers=admin,
        )
    )

    def staff(*roles: Role, who: str = subject) -> Principal:
        return Principal(
            issuer="test",
            subject=who,
            tenant_id=soest,
            tenant_slug=world.slug(SOEST),
            roles=frozenset(roles),
            acting_tenant_ids=frozenset({soest}),
        )

    async def seen(principal: Principal, **options: bool) -> set[str]:
        found: set[str] = set()
        after = None
        async with unit_of_work(world.state, principal, readonly=True) as uow:
            while True:
                page = await tickets.list_tickets(uow, tenant_slug=world.slug(SOEST), first=100, after=after, **options)
                found |= {str(t.id) for t in page.items}
                if page.next_cursor is None:
                    return found
                after = page.next_cursor

    mine = await seen(staff(Role.DEPARTMENT))
    assert own in mine and other not in mine
    everything = await seen(staff(Role.DEPARTMENT), all_departments=True)
    assert {own, other} <= everything
    assert {own, other} <= await seen(staff(Role.DEPARTMENT, Role.SUPERVISOR))
    assert {own, other} <= await seen(staff(Role.DEPARTMENT, who="not-in-the-directory"))
