"""Imports sent twice at once (a retry while the first is still running, two operators' jobs):
no 500, one article per service or external id, and the second import reports what the first
made rather than failing."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx

from backend.knowledge import importing
from backend.knowledge.demo import catalogue_path
from backend.state import unit_of_work
from backend.tenants.schemas import TenantKind
from tests.knowledge.test_xzufi_import import GESEKE_AGS, post
from tests.knowledge.xzufi_messages import leistung, message, office, suffix
from tests.support.world import World, make_tenant, system_principal

Client = httpx.AsyncClient
GESEKE = "stadt-geseke"


async def test_one_xzufi_message_imported_three_times_at_once_makes_one_article(
    client: Client, world: World, db: asyncpg.Pool
) -> None:
    s = suffix()
    text = message(
        leistung(f"GES-BURST-{s}", f"Sperrmüll Burst {s}", areas=(GESEKE_AGS,)),
        office(f"GES-OE-BURST-{s}", f"Burstamt {s}", ags=GESEKE_AGS, responsible=((f"GES-BURST-{s}", GESEKE_AGS),)),
    )
    responses = await asyncio.gather(*(post(client, world, text) for _ in range(3)))
    assert [r.status_code for r in responses] == [200] * 3, [r.text for r in responses]
    reports = [r.json() for r in responses]
    assert sorted(r["created"] for r in reports) == [0, 0, 1], reports
    assert all(r["errors"] == [] for r in reports), reports
    async with db.acquire() as conn:
        departments = await conn.fetchval(
            "SELECT count(*) FROM departments WHERE tenant_id = $1 AND name = $2",
            world.tenant_ids[GESEKE],
            f"Burstamt {s}",
        )
    assert departments <= 1


async def test_one_article_import_sent_four_times_at_once_makes_one_article(client: Client, world: World) -> None:
    external = f"burst-{uuid.uuid4().hex[:8]}"
    rows = [{"externalId": external, "title": f"Burst {external}", "summary": "Burst."}]
    headers = {**world.headers(GESEKE, "editor"), "Content-Type": "application/x-ndjson"}
    text = "\n".join(json.dumps(r) for r in rows)
    responses = await asyncio.gather(
        *(
            client.post("/v1/articles/import", params={"publish": "true"}, content=text.encode(), headers=headers)
            for _ in range(4)
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(r.json()["created"] for r in responses) == 1, [r.json() for r in responses]


async def test_two_catalogue_imports_of_one_operator_at_once_both_answer(world: World) -> None:
    """A retry of a catalogue import while the first is running (a fresh operator, so the
    session's catalogue stays as it is): both answer, and the catalogue is the second's."""
    operator = await make_tenant(
        world.state, f"op-{uuid.uuid4().hex[:6]}", kind=TenantKind.DISTRICT, is_operator=True, ags="05974"
    )
    admin = system_principal(operator, {operator})
    rows = [line for line in catalogue_path().read_text(encoding="utf-8").splitlines()[:200] if line]
    first, second = "\n".join(rows[:120]), "\n".join([rows[0], *rows[60:]])

    async def load(text: str) -> object:
        async with unit_of_work(world.state, admin) as uow:
            return await importing.import_catalogue(uow, text)

    for _ in range(2):
        outcomes = await asyncio.gather(load(first), load(second), return_exceptions=True)
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
