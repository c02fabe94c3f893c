"""The centre now (issue 17 §5), from the data the service already has: calls waiting per town
and in total, the longest wait, agents talking (answered, not ended, by agent id) / available /
in wrap-up (the statuses agents' clients set), today's service level and first-contact rate so
far, callbacks due in the next hour and overdue; a town's supervisor sees only its own town."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from auth.principal import Principal
from auth.roles import Role
from backend.centre import service
from backend.centre.schemas import AgentStatus, AgentStatusInput
from backend.db.tenancy import tenant_transaction
from backend.errors import NotFound
from backend.state import unit_of_work
from tests.billing.support import Billing, make_billing
from tests.support.world import World

pytestmark = pytest.mark.clock
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=BERLIN)


def supervisor(billing: Billing, home: UUID | None = None) -> Principal:
    tenant = home or billing.operator
    acting = {billing.operator, *billing.clients.values()} if tenant == billing.operator else {tenant}
    return Principal(
        issuer="test",
        subject=f"supervisor-{tenant}",
        tenant_id=tenant,
        tenant_slug="x",
        roles=frozenset({Role.SUPERVISOR}),
        acting_tenant_ids=frozenset(acting),
    )


def agent(billing: Billing) -> Principal:
    return Principal(
        issuer="test",
        subject="agent",
        tenant_id=billing.operator,
        tenant_slug="x",
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset({billing.operator, *billing.clients.values()}),
    )


async def calls(pool: asyncpg.Pool, billing: Billing, tenant: UUID, rows: list[dict[str, Any]]) -> None:
    """Calls as the telephony domain stores them: offered seconds before NOW, answered/ended after
    `answered`/`ended` seconds (None: not yet), by `agent`, with `outcome`."""
    async with tenant_transaction(pool, [tenant]) as conn:
        for row in rows:
            offered = NOW - timedelta(seconds=row["ago"])
            answered = offered + timedelta(seconds=row["answered"]) if row.get("answered") is not None else None
            ended = offered + timedelta(seconds=row["ended"]) if row.get("ended") is not None else None
            wait = row.get("answered") if answered else (row.get("ended") if ended else None)
            talk = int((ended - answered).total_seconds()) if answered and ended else None
            outcome = row.get("outcome") or ("abandoned" if ended and not answered else None)
            await conn.execute(
                """INSERT INTO calls (tenant_id, id, source_tenant_id, source_system, external_id, service_number_id,
                                      dialled, purpose, resolved_by, offered_at, answered_at, ended_at, agent,
                                      wait_seconds, talk_seconds, outcome)
                   VALUES ($1, gen_random_uuid(), $2, 'centre-test', $3, gen_random_uuid(), '+492921300', 'central',
                           'dialled_number', $4, $5, $6, $7, $8, $9, $10)""",
                tenant,
                billing.operator,
                uuid.uuid4().hex,
                offered,
                answered,
                ended,
                row.get("agent"),
                wait,
                talk,
                outcome,
            )


async def test_the_centre_now_from_calls_statuses_and_tickets(world: World) -> None:
    billing = await make_billing(world.state)
    soest, geseke = billing.clients["soest"], billing.clients["geseke"]
    pool = world.state.pool
    await calls(
        pool,
        billing,
        soest,
        [
            {"ago": 40},  # waiting 40 s
            {"ago": 95},  # waiting 95 s: the longest
            {"ago": 300, "answered": 20, "agent": "4711"},  # talking
            {"ago": 3600, "answered": 10, "ended": 200, "outcome": "settled_first_contact"},
            {"ago": 3000, "answered": 50, "ended": 300, "outcome": "forwarded_as_ticket"},
            {"ago": 2000, "ended": 3},  # hung up at once: out of the service level
            {"ago": 36 * 3600},  # yesterday's "waiting" call whose end never came: not waiting
        ],
    )
    await calls(pool, billing, geseke, [{"ago": 10}, {"ago": 200, "answered": 5, "agent": "4712"}])
    async with unit_of_work(world.state, agent(billing)) as uow:
        await service.set_agent_status(uow, AgentStatusInput(agent="4711", status=AgentStatus.WRAP_UP))  # talking wins
        await service.set_agent_status(uow, AgentStatusInput(agent="4713", status=AgentStatus.AVAILABLE))
        await service.set_agent_status(uow, AgentStatusInput(agent="4714", status=AgentStatus.WRAP_UP))
        await service.set_agent_status(uow, AgentStatusInput(agent="4715", status=AgentStatus.AVAILABLE))
    async with unit_of_work(world.state, supervisor(billing), readonly=True) as uow:
        now = await service.snapshot(uow, frozenset({billing.operator, soest, geseke}), NOW)
    towns = {t.tenant_id: t for t in now.towns}
    assert (now.waiting, now.longest_wait_seconds) == (3, 95)
    assert (towns[soest].waiting, towns[soest].longest_wait_seconds, towns[geseke].waiting) == (2, 95, 1)
    assert (now.agents_talking, now.agents_available, now.agents_in_wrap_up) == (2, 2, 1)
    # Soest today: 6 offered, 1 hung up within 5 s; the 2 waiting have waited over 30 s and
    # count as missed; answered within 30 s: the talking call (20 s) and the settled one → 2 of 5.
    assert towns[soest].offered_today == 6
    assert (towns[soest].service_level, towns[soest].service_level_target) == (Decimal("0.4000"), Decimal("0.75"))
    # Geseke: one call waiting 10 s is not decided yet; the other answered in 5 s → 1 of 1.
    assert (towns[geseke].offered_today, towns[geseke].service_level) == (2, Decimal("1.0000"))
    assert towns[soest].first_contact_rate == Decimal("0.5000")
    assert towns[billing.operator].waiting == 0
    # A town's supervisor sees its own town, and no other.
    async with unit_of_work(world.state, supervisor(billing, geseke), readonly=True) as uow:
        own = await service.centre_now(uow, None, NOW)
        assert [t.tenant_id for t in own.towns] == [geseke] and own.waiting == 1
        with pytest.raises(NotFound):
            await service.centre_now(uow, billing.slugs[soest], NOW)


async def test_rest_and_the_agents_status(client: httpx.AsyncClient, world: World) -> None:
    supervisor_headers = world.headers("kreis-soest", "supervisor")
    now = await client.get("/v1/centre", headers=supervisor_headers)
    assert now.status_code == 200, now.text
    assert {"waiting", "longestWaitSeconds", "agentsTalking", "serviceLevel", "towns"} <= set(now.json())
    assert (await client.get("/v1/centre", headers=world.headers("kreis-soest", "agent"))).status_code == 403
    agent_headers = world.headers("kreis-soest", "agent")
    agent_id = f"pbx-{uuid.uuid4().hex[:8]}"
    put = await client.put("/v1/agent-status", json={"agent": agent_id, "status": "available"}, headers=agent_headers)
    assert put.status_code == 200 and put.json()["status"] == "available", put.text
    bad = await client.put("/v1/agent-status", json={"agent": agent_id, "status": "asleep"}, headers=agent_headers)
    assert bad.status_code in (400, 422)
    control = await client.put("/v1/agent-status", json={"agent": "a\x00b", "status": "away"}, headers=agent_headers)
    assert control.status_code in (400, 422)
    after = await client.get("/v1/centre", headers=supervisor_headers)
    assert after.json()["agentsAvailable"] == now.json()["agentsAvailable"] + 1


async def test_graphql_query_and_mutation(client: httpx.AsyncClient, world: World) -> None:
    async def gql(role: str, query: str, **variables: Any) -> dict[str, Any]:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=world.headers("kreis-soest", role)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    agent_id = f"gql-{uuid.uuid4().hex[:8]}"
    set_status = """mutation($agent: String!) { setAgentStatus(agent: $agent, status: WRAP_UP) {
        agentStatus { agent status } errors { code field } } }"""
    before = await gql("supervisor", "{ centreNow { agentsInWrapUp waiting towns { tenantName } } }")
    done = await gql("agent", set_status, agent=agent_id)
    assert done["data"]["setAgentStatus"] == {"agentStatus": {"agent": agent_id, "status": "WRAP_UP"}, "errors": []}
    too_long = await gql("agent", set_status, agent="x" * 101)
    assert too_long["data"]["setAgentStatus"]["errors"][0]["field"] == "agent"
    after = await gql("supervisor", "{ centreNow { agentsInWrapUp waiting towns { tenantName } } }")
    assert after["data"]["centreNow"]["agentsInWrapUp"] == before["data"]["centreNow"]["agentsInWrapUp"] + 1
    denied = await gql("finance", "{ centreNow { waiting } }")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
