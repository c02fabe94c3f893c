"""The test world with the demo telephony data: the published numbers of the three tenants,
115 at Kreis Soest, Geseke's town operator's absences, and the 115 area-code table."""

from __future__ import annotations

import pytest_asyncio

from backend.telephony.demo import load_demo_telephony
from tests.support.world import World, system_principal


@pytest_asyncio.fixture(scope="session")
async def telephony(world: World) -> World:
    operator = system_principal(world.tenant_ids["kreis-soest"], set(world.tenant_ids.values()))
    await load_demo_telephony(world.state, operator, world.tenant_ids)
    await load_demo_telephony(world.state, operator, world.tenant_ids)  # idempotent
    return world
