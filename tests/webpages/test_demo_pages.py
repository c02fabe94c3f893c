"""The demo's web pages (`make run`): shipped files, stored as the worker stores pages, found by
"Sperrmüll Geseke" for Geseke; loading again changes nothing; Soest's page stays Soest's."""

from __future__ import annotations

import uuid

from backend.state import unit_of_work
from backend.webpages import service
from backend.webpages.demo import load_demo_pages
from tests.support.world import World, make_tenant, system_principal


async def test_demo_pages_are_found_offline(world: World) -> None:
    suffix = uuid.uuid4().hex[:6]
    geseke = await make_tenant(world.state, f"demo-geseke-{suffix}", name="Stadt Geseke")
    soest = await make_tenant(world.state, f"demo-soest-{suffix}", name="Stadt Soest")
    ids = {"stadt-geseke": geseke, "stadt-soest": soest}
    assert await load_demo_pages(world.state.pool, ids) == 4
    assert await load_demo_pages(world.state.pool, ids) == 4  # again: the same pages, updated in place
    async with unit_of_work(world.state, system_principal(geseke, {geseke}), readonly=True) as uow:
        hits = await service.search_pages(uow, "Sperrmüll Geseke", f"demo-geseke-{suffix}")
        sites = await service.sites(uow, f"demo-geseke-{suffix}")
    assert [h.url for h in hits] == ["https://www.geseke.de/leben/abfall/sperrmuell"]
    assert len(sites) == 1 and not sites[0].active  # never fetched from the real town's server
    async with unit_of_work(world.state, system_principal(soest, {soest}), readonly=True) as uow:
        soest_hits = await service.search_pages(uow, "Sperrmüll", f"demo-soest-{suffix}")
    assert [h.url for h in soest_hits] == ["https://www.soest.de/buergerservice/sperrmuell"]
