"""The third sweep (decision 004): a 115 call's town set at once by several agents with different
towns, while the telephone system reports its end, and while its day is invoiced. One assignment
takes; the others are told the call is assigned (409) or that moving it needs a reason (422);
never a 500 or a deadlock's "try again"; the call's minutes are counted once, under its town; and
a call whose day an issued invoice covers does not move."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import date
from typing import Any

import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from tests.billing.support import prepare_world_billing
from tests.http.test_concurrent_writes import _no_deadlock
from tests.support.world import World

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
ROUNDS = int(os.environ.get("SWEEP_ROUNDS", "3"))
pytestmark = pytest.mark.clock  # invoices are issued on today's date
# Years of this module's calls and tariffs: before test_call_reassignment's (2110-2139) and the
# shared world's (2149 on).
YEARS = range(2100, 2110)


async def _two_towns_area(client: Client, world: World) -> str:
    """A fresh area code whose places belong to Soest and to Geseke: its 115 calls are ambiguous."""
    code = f"03{random.randrange(10**4):04d}"  # no other test's area code starts so
    for town, ags in ((SOEST, "05974040"), (GESEKE, "05974020")):
        body = {
            "areaCode": code,
            "ags": ags,
            "municipality": f"Ort {town}",
            "clientTenantId": str(world.tenant_ids[town]),
        }
        made = await client.put(
            f"/v1/tenants/{world.slug(KREIS)}/area-codes", json=body, headers=world.headers(KREIS, "platform-admin")
        )
        assert made.status_code == 200, made.text
    return code


async def _call(client: Client, world: World, code: str, day: str, *, ended: bool = True) -> dict[str, Any]:
    body = {
        "externalId": f"sweep3-{uuid.uuid4()}",
        "dialled": "115",
        "caller": f"{code}4711",
        "offeredAt": f"{day}T10:00:00+02:00",
        "answeredAt": f"{day}T10:00:20+02:00",
        **({"endedAt": f"{day}T10:04:20+02:00"} if ended else {}),
    }
    posted = await client.post("/v1/calls", json=body, headers=world.headers(KREIS, "telephony"))
    assert posted.status_code == 200 and posted.json()["resolvedBy"] == "ambiguous_area_code", posted.text
    return {**posted.json(), "externalId": body["externalId"]}


def _assign(client: Client, world: World, call: dict[str, Any], town: str, reason: str | None = None) -> Any:
    body = {"tenantId": str(world.tenant_ids[town]), **({"reason": reason} if reason else {})}
    return client.put(f"/v1/calls/{call['id']}/tenant", json=body, headers=world.headers(KREIS, "agent"))


async def _counted(world: World, day: str) -> dict[str, tuple[int, int]]:
    """(calls, talk seconds) per town in the day's rollups (the figures and invoices read these)."""
    names = {v: k for k, v in world.tenant_ids.items()}
    async with tenant_transaction(world.state.pool, list(world.tenant_ids.values())) as conn:
        rows = await conn.fetch(
            """SELECT tenant_id, sum(offered)::int AS calls, sum(talk_seconds)::int AS talk FROM call_rollups
               WHERE day = $1::date GROUP BY tenant_id""",
            date.fromisoformat(day),
        )
    return {names[r["tenant_id"]]: (r["calls"], r["talk"]) for r in rows if r["calls"] or r["talk"]}


async def test_a_calls_town_set_at_once_by_several_agents_with_different_towns(
    client: Client, telephony: World
) -> None:
    world = telephony
    code = await _two_towns_area(client, world)
    year = random.choice(YEARS)
    for n in range(ROUNDS):
        day = f"{year}-03-{n + 2:02d}"
        before = await _counted(world, day)
        call = await _call(client, world, code, day)
        responses = await asyncio.gather(*(_assign(client, world, call, (SOEST, GESEKE)[k % 2]) for k in range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert all(s < 500 for s in statuses), [r.text for r in responses if r.status_code >= 500]
        _no_deadlock(list(responses))
        assert statuses.count(200) == 1 and set(statuses) <= {200, 409, 422}, [r.text for r in responses]
        town = next(r.json()["tenantId"] for r in responses if r.status_code == 200)
        seen = await client.get(f"/v1/calls/{call['id']}", headers=world.headers(KREIS, "agent"))
        assert seen.json()["tenantId"] == town
        moves = await client.get(f"/v1/calls/{call['id']}/reassignments", headers=world.headers(KREIS, "agent"))
        assert moves.json() == []  # the first assignment is no move
        after = await _counted(world, day)
        name = next(k for k, v in world.tenant_ids.items() if str(v) == town)
        assert after.get(name, (0, 0))[0] - before.get(name, (0, 0))[0] == 1, (before, after)


async def test_a_calls_town_set_while_the_call_ends(client: Client, telephony: World) -> None:
    """The end reported by the telephone system and the agent's assignment at once: both taken,
    the call's talk time counted once, under the town it went to."""
    world = telephony
    code = await _two_towns_area(client, world)
    year = random.choice(YEARS)
    for n in range(ROUNDS):
        day = f"{year}-04-{n + 2:02d}"
        before = await _counted(world, day)
        call = await _call(client, world, code, day, ended=False)
        end = {"externalId": call["externalId"], "type": "ended", "at": f"{day}T10:04:20+02:00"}
        ended = client.post("/v1/calls/events", json=end, headers=world.headers(KREIS, "telephony"))
        town = (SOEST, GESEKE)[n % 2]
        responses = await asyncio.gather(_assign(client, world, call, town), ended, _assign(client, world, call, town))
        _no_deadlock(list(responses))
        assert sorted(r.status_code for r in responses) == [200, 200, 409], [r.text for r in responses]
        seen = (await client.get(f"/v1/calls/{call['id']}", headers=world.headers(KREIS, "agent"))).json()
        assert seen["tenantId"] == str(world.tenant_ids[town]) and seen["endedAt"] is not None, seen
        after = await _counted(world, day)
        delta = {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in after.items()}
        assert {k: v for k, v in delta.items() if v != (0, 0)} == {town: (1, 240)}, (before, after)


async def test_a_call_moved_while_its_day_is_invoiced_stays_with_the_invoice(client: Client, telephony: World) -> None:
    """Either the issue comes first and the call stays (409 INVALID_TRANSITION), or the move does:
    then the invoice is issued from a draft that still counted the call, as when the move comes
    well before the issue (the next run's correction lines credit it, decision 008)."""
    world = telephony
    await prepare_world_billing(client, world)
    finance, soest = world.headers(KREIS, "finance"), str(world.tenant_ids[SOEST])
    code = await _two_towns_area(client, world)
    year = random.choice(YEARS)
    agreement = next(
        a for a in (await client.get("/v1/agreements", headers=finance)).json() if a["agreement"]["tenantId"] == soest
    )["agreement"]["id"]
    for n in range(min(ROUNDS * 2, 12)):  # a month of the year each round
        month = f"{year}-{n + 1:02d}"
        tariff = {"agreementId": agreement, "validFrom": f"{month}-01", "validTo": f"{month}-28"}
        made = await client.post("/v1/tariffs", json={**tariff, "pricePerMinute": "0.95"}, headers=finance)
        assert made.status_code == 201, made.text
        call = await _call(client, world, code, f"{month}-03")
        assert (await _assign(client, world, call, SOEST)).status_code == 200
        draft = await client.post("/v1/invoice-runs", json={"tenantId": soest, "period": month}, headers=finance)
        assert draft.status_code == 201, draft.text

        async def move(delay: float, call: dict[str, Any] = call) -> httpx.Response:
            await asyncio.sleep(delay)
            return await _assign(client, world, call, GESEKE, "Anrufer wohnt in Geseke")

        issued, moved = await asyncio.gather(
            client.post(f"/v1/invoices/{draft.json()['id']}/issue", headers=finance), move((n % 3) * 0.003)
        )
        _no_deadlock([issued, moved])
        assert issued.status_code == 200, issued.text
        assert moved.status_code in (200, 409), moved.text
        seen = (await client.get(f"/v1/calls/{call['id']}", headers=world.headers(KREIS, "agent"))).json()
        if moved.status_code == 409:
            assert moved.json()["code"] == "INVALID_TRANSITION" and seen["tenantId"] == soest
        else:
            assert seen["tenantId"] == str(world.tenant_ids[GESEKE])
        late = await _assign(client, world, call, KREIS, "zu spät")
        assert late.status_code == 409 or seen["tenantId"] != soest, late.text  # an invoiced call stays
