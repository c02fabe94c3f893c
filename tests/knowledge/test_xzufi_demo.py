"""The demo's shipped XZuFi messages, loaded as `make run` loads them, into towns of their own:
a newcomer's search for "Sperrmüll Geseke" finds a real answer with contact and opening hours,
forwarding has a department for it, and loading twice changes nothing."""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from auth.principal import Principal
from auth.roles import Role
from backend.directory import service as directory
from backend.knowledge import search, service, xzufi_import
from backend.knowledge.demo import load_knowledge_demo
from backend.knowledge.demo_xzufi import MESSAGES, load_xzufi_demo
from backend.state import unit_of_work
from backend.tenants import service as tenants
from backend.tenants.schemas import AgreementCreate, TenantKind
from backend.tickets import service as tickets
from tests.support.world import World, make_tenant, system_principal


def _agent(tenant_id: UUID, slug: str, acting: set[UUID]) -> Principal:
    return Principal(
        issuer="test",
        subject="agent",
        tenant_id=tenant_id,
        tenant_slug=slug,
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset(acting),
    )


async def test_the_demo_answers_sperrmuell_geseke_with_contact_and_hours(world: World) -> None:
    state = world.state
    tag = uuid.uuid4().hex[:6]
    ids = {
        "kreis-soest": await make_tenant(
            state, f"demo-kreis-{tag}", kind=TenantKind.DISTRICT, is_operator=True, ags="05974"
        ),
        "stadt-soest": await make_tenant(state, f"demo-soest-{tag}", ags="05974040"),
        "stadt-geseke": await make_tenant(state, f"demo-geseke-{tag}", ags="05974020"),
    }
    async with unit_of_work(state, system_principal(ids["kreis-soest"], set(ids.values()))) as uow:
        for town in ("stadt-soest", "stadt-geseke"):
            await tenants.create_agreement(uow, AgreementCreate(client_tenant_id=ids[town], starts_on=date(2018, 1, 1)))
    await load_knowledge_demo(state, ids)  # as make run does: the catalogue and demo articles first
    await load_xzufi_demo(state, ids)
    operator = Principal(
        issuer="test",
        subject="admin",
        tenant_id=ids["kreis-soest"],
        tenant_slug="kreis-soest",
        roles=frozenset({Role.PLATFORM_ADMIN}),
        acting_tenant_ids=frozenset(ids.values()),
    )
    async with unit_of_work(state, operator) as uow:  # loading twice: nothing new
        again = [await xzufi_import.import_upload(uow, p.read_bytes(), p.name) for p in sorted(MESSAGES.glob("*.xml"))]
    assert sum(r.created + r.updated for r in again) == 0 and sum(r.unchanged for r in again) == 6
    assert all(r.errors == [] for r in again)

    geseke = _agent(ids["stadt-geseke"], f"demo-geseke-{tag}", {ids["stadt-geseke"]})
    async with unit_of_work(state, geseke, readonly=True) as uow:
        page = await search.search(uow, "Sperrmüll Geseke")
        # "Geseke" says nothing on a Geseke call; the words find the catalogue's bare "Sperrmüll"
        # as well, but the town's article, with the answer, comes first (fusion.article_first_among_twins).
        best = page.items[0]
        assert page.confident and best.title == "Sperrmüll Geseke – Abholung anmelden", page
        answer = await service.article_for_agent(uow, best.id)
        assert answer.sections.contacts[0].phone == "+49 2942 500-0"
        assert answer.sections.contacts[0].email == "abfallberatung@geseke.de"
        assert [h.weekday for h in answer.sections.opening_hours] == [1, 2, 4, 5]
        assert "Kubikmeter" in answer.sections.fees
        # The shared Personalausweis carries Geseke's Bürgerbüro (its local version from the
        # responsibility), while the description stays the operator's.
        ausweis = (await search.search(uow, "Personalausweis beantragen")).items[0]
        shown = await service.article_for_agent(uow, ausweis.id)
        assert shown.kind.value == "shared" and shown.local_version_id is not None
        assert [h.closes for h in shown.sections.opening_hours if h.weekday == 4] == ["18:00"]
    admin = system_principal(ids["kreis-soest"], set(ids.values()))
    async with unit_of_work(state, admin, readonly=True) as uow:
        proposed = await tickets.propose_department(uow, f"demo-geseke-{tag}", "99008001012000")
        departments = {d.id: d.name for d in await tenants.tenant_departments(uow, f"demo-geseke-{tag}")}
    assert proposed is not None and departments[proposed] == "Bürgerbüro"
    town_admin = Principal(
        issuer="test",
        subject="town-admin",
        tenant_id=ids["stadt-geseke"],
        tenant_slug=f"demo-geseke-{tag}",
        roles=frozenset({Role.TOWN_ADMIN}),
        acting_tenant_ids=frozenset({ids["stadt-geseke"]}),
    )
    async with unit_of_work(state, town_admin, readonly=True) as uow:
        lines = {line.name: line for line in await directory.department_lines(uow, f"demo-geseke-{tag}")}
    abfall = lines["Abfallberatung"]  # the office's line and hours, as structured data
    assert abfall.phone == "+4929425000"  # "+49 2942 500-0" in E.164
    assert abfall.hours is not None and (abfall.hours[2].weekday, abfall.hours[2].closes) == (4, "17:30")
