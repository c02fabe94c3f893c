"""A 115 call assigned to the wrong town is re-assigned (issue 17 §3): to another candidate town
or back to the operator, only with a reason, recorded as an event naming who, when and why,
and only until an issued invoice covers its day (a cancelled invoice frees it again). Before,
a second assignment was 409 for ever."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest

from tests.billing.support import prepare_world_billing
from tests.support.world import World

Client = httpx.AsyncClient
pytestmark = pytest.mark.clock  # invoices are issued on today's date


async def test_a_wrongly_assigned_115_call_moves_with_a_reason_until_invoiced(client: Client, telephony: World) -> None:
    await prepare_world_billing(client, telephony)  # billing profiles of the world's towns
    kreis, soest = str(telephony.tenant_ids["kreis-soest"]), str(telephony.tenant_ids["stadt-soest"])
    finance, agent = telephony.headers("kreis-soest", "finance"), telephony.headers("kreis-soest", "agent")
    # A year of its own, before the shared world's tariffs (2149–2150, and the adopted rate from 2151
    # on, open-ended): its tariff and invoice are this test's alone.
    year = random.randrange(2110, 2140)
    agreement = next(
        a for a in (await client.get("/v1/agreements", headers=finance)).json() if a["agreement"]["tenantId"] == soest
    )["agreement"]["id"]
    tariff = await client.post(
        "/v1/tariffs",
        json={
            "agreementId": agreement,
            "validFrom": f"{year}-06-01",
            "validTo": f"{year}-06-30",
            "pricePerMinute": "0.95",
        },
        headers=finance,
    )
    assert tariff.status_code == 201, tariff.text
    offered = f"{year}-06-03T10:00:00+02:00"
    posted = await client.post(
        "/v1/calls",
        json={
            "externalId": f"re-{uuid.uuid4()}",
            "dialled": "115",
            "caller": "02921 4711",  # Soest and Bad Sassendorf: the agent picks
            "offeredAt": offered,
            "answeredAt": f"{year}-06-03T10:00:20+02:00",
            "endedAt": f"{year}-06-03T10:04:20+02:00",
        },
        headers=telephony.headers("kreis-soest", "telephony"),
    )
    assert posted.status_code == 200 and posted.json()["resolvedBy"] == "ambiguous_area_code", posted.text
    call = posted.json()["id"]

    async def assign(to: str, reason: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"tenantId": to, **({"reason": reason} if reason else {})}
        return await client.put(f"/v1/calls/{call}/tenant", json=body, headers=agent)

    assert (await assign(soest)).json()["tenantId"] == soest
    no_reason = await assign(kreis)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason", no_reason.text
    back = await assign(kreis, "Anrufer wohnt in Bad Sassendorf")
    assert back.status_code == 200 and back.json()["tenantId"] == kreis, back.text
    again = await assign(soest, "doch Soest: Ortsteil Ostönnen")
    assert again.status_code == 200 and again.json()["tenantId"] == soest, again.text
    events = await client.get(f"/v1/calls/{call}/reassignments", headers=agent)
    assert events.status_code == 200, events.text
    assert [(e["fromTenantId"], e["toTenantId"], e["reason"]) for e in events.json()] == [
        (soest, kreis, "Anrufer wohnt in Bad Sassendorf"),
        (kreis, soest, "doch Soest: Ortsteil Ostönnen"),
    ]
    assert all(e["reassignedBy"] and e["reassignedAt"] for e in events.json())
    hidden = await client.get(
        f"/v1/calls/{call}/reassignments", headers=telephony.headers("stadt-geseke", "supervisor")
    )
    assert hidden.status_code == 404

    # June is invoiced to Soest: the call stays there (409); a cancelled invoice frees it again.
    draft = await client.post("/v1/invoice-runs", json={"tenantId": soest, "period": f"{year}-06"}, headers=finance)
    assert draft.status_code == 201, draft.text
    issued = await client.post(f"/v1/invoices/{draft.json()['id']}/issue", headers=finance)
    assert issued.status_code in (200, 201), issued.text
    late = await assign(kreis, "zu spät")
    assert late.status_code == 409 and late.json()["code"] == "INVALID_TRANSITION", late.text
    cancelled = await client.post(
        f"/v1/invoices/{draft.json()['id']}/cancellation", json={"reason": "falscher Ort"}, headers=finance
    )
    assert cancelled.status_code in (200, 201), cancelled.text
    freed = await assign(kreis, "nach Storno richtiggestellt")
    assert freed.status_code == 200 and freed.json()["tenantId"] == kreis, freed.text
