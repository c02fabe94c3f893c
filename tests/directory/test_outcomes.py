"""Recording the qualified transfer (decision 038): a call transferred to a directory person (or
the department's line), taken or not, over REST (the agent's telephone integration) and GraphQL
(the desktop); the figures count transfers taken as settled by qualified transfer beside the
first-contact rate, whose meaning stays. Retries change nothing; bad input changes nothing.

The figures are read for a day of 2147 on which only this module puts calls into the world's
Soest, so every count is known."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx

from tests.directory.conftest import DAY, KREIS, SOEST, Directory, a_call
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient
OUTCOME_GQL = """mutation($id: UUID!, $input: CallOutcomeInput!) {
  recordCallOutcome(id: $id, input: $input) {
    call { outcome outcomeDepartmentId outcomePersonId transferTaken } errors { code field }
  }
}"""


async def put_outcome(client: Client, world: World, call_id: str, body: dict[str, Any], role: str = "agent") -> Any:
    return await client.put(f"/v1/calls/{call_id}/outcome", json=body, headers=world.headers(KREIS, role))


async def test_transfers_taken_count_as_settled_beside_first_contact(
    client: Client, numbers: World, directory: Directory
) -> None:
    world, agent = numbers, numbers.headers(KREIS, "agent")
    taken, not_taken, line, settled = [await a_call(client, world, hour=f"1{n}:00") for n in range(4)]
    # The desktop: transferred to Frau Müller, who took it; her department is implied.
    done = await gql(
        client,
        agent,
        OUTCOME_GQL,
        id=taken["id"],
        input={"outcome": "TRANSFERRED_TO_DEPARTMENT", "personId": directory.mueller["id"], "transferTaken": True},
    )
    expected = {
        "outcome": "TRANSFERRED_TO_DEPARTMENT",
        "outcomeDepartmentId": str(directory.department_id),
        "outcomePersonId": directory.mueller["id"],
        "transferTaken": True,
    }
    assert done["data"]["recordCallOutcome"] == {"call": expected, "errors": []}
    # The agent's telephone integration over REST: Herr Schmidt did not take it; then the
    # department's general line took another call. A retry answers the same and counts once.
    body = {
        "outcome": "transferred_to_department",
        "personId": directory.schmidt["id"],
        "departmentId": str(directory.department_id),
        "transferTaken": False,
    }
    first, again = [await put_outcome(client, world, not_taken["id"], body) for _ in range(2)]
    assert (first.status_code, again.status_code) == (200, 200), first.text
    assert again.json() == first.json()
    assert (first.json()["outcomePersonId"], first.json()["transferTaken"]) == (directory.schmidt["id"], False)
    to_line = {"outcome": "transferred_to_department", "departmentId": str(directory.department_id)}
    response = await put_outcome(client, world, line["id"], {**to_line, "transferTaken": True})
    assert response.json()["outcomePersonId"] is None and response.json()["transferTaken"] is True
    assert (await put_outcome(client, world, settled["id"], {"outcome": "settled_first_contact"})).status_code == 200
    retried = await gql(
        client,
        agent,
        OUTCOME_GQL,
        id=taken["id"],
        input={"outcome": "TRANSFERRED_TO_DEPARTMENT", "personId": directory.mueller["id"], "transferTaken": True},
    )
    assert retried == done  # the desktop retries too

    supervisor = world.headers(KREIS, "supervisor")
    params = {"from": DAY, "to": DAY, "tenant": world.slug(SOEST)}
    report = await client.get("/v1/figures", params=params, headers=supervisor)
    assert report.status_code == 200, report.text
    row = next(r for r in report.json()["rows"] if r["scope"] == "all")
    counts = ("settledFirstContact", "transferredToDepartment", "transfersTaken", "transfersNotTaken")
    assert [row[k] for k in counts] == [1, 3, 2, 1]
    # Kept meaning: first contact is 1 of 4; settled by qualified transfer 2 of 4; together 3 of 4.
    rates = ("firstContactRate", "qualifiedTransferRate", "settledRate")
    assert [row[k] for k in rates] == ["0.2500", "0.5000", "0.7500"]
    graphql = await gql(
        client,
        supervisor,
        """query($t: String) { figures(from: "2147-06-03", to: "2147-06-03", tenant: $t) {
             rows { scope transfersTaken transfersNotTaken settledRate } } }""",
        t=world.slug(SOEST),
    )
    assert {"scope": "ALL", "transfersTaken": 2, "transfersNotTaken": 1, "settledRate": "0.7500"} in graphql["data"][
        "figures"
    ]["rows"], graphql
    spreadsheet = await client.get("/v1/figures.csv", params=params, headers=supervisor)
    lines = list(csv.DictReader(io.StringIO(spreadsheet.text)))
    assert next(r for r in lines if r["scope"] == "all")["transfers_taken"] == "2"

    # A message taken after a transfer not taken: the call becomes a ticket's, and the failed
    # transfer still counts as not taken (never as settled).
    ticket = await client.post(
        "/v1/tickets",
        json={
            "tenantSlug": world.slug(SOEST),
            "subject": "Rückruf Bauantrag",
            "concern": "Frage zum Bauantrag",
            "citizen": {"consent": False, "preferredChannel": "none"},
            "departmentId": str(directory.department_id),
            "callId": not_taken["id"],
        },
        headers=agent,
    )
    assert ticket.status_code == 201, ticket.text
    after = (await client.get("/v1/figures", params=params, headers=supervisor)).json()
    row = next(r for r in after["rows"] if r["scope"] == "all")
    later = ("forwardedAsTicket", "transferredToDepartment", "transfersTaken", "transfersNotTaken")
    assert [row[k] for k in later] == [1, 2, 2, 1]


async def test_bad_transfers_are_refused_and_change_nothing(
    client: Client, numbers: World, directory: Directory
) -> None:
    world = numbers
    call = await a_call(client, world, day="2026-03-02")
    transfer = {"outcome": "transferred_to_department", "transferTaken": True}
    cases = [
        ({**transfer, "personId": str(uuid.uuid4())}, 404, "personId"),  # nobody of the town
        ({**transfer, "personId": directory.mueller["id"], "departmentId": str(uuid.uuid4())}, 422, "departmentId"),
        ({"outcome": "settled_first_contact", "personId": directory.mueller["id"]}, 422, "personId"),
        ({"outcome": "settled_first_contact", "transferTaken": True}, 422, "personId"),
        ({**transfer, "personId": "Müller"}, 400, None),
        ({**transfer, "personId": directory.mueller["id"], "transferTaken": "ja"}, 400, None),
    ]
    for body, status, field in cases:
        response = await put_outcome(client, world, call["id"], body)
        assert response.status_code in ((400, 422) if status == 400 else (status,)), (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        if field is not None:
            assert field in response.text, response.text
    graphql = await gql(
        client,
        world.headers(KREIS, "agent"),
        OUTCOME_GQL,
        id=call["id"],
        input={"outcome": "TRANSFERRED_TO_DEPARTMENT", "personId": str(uuid.uuid4())},
    )
    assert graphql["data"]["recordCallOutcome"]["errors"] == [{"code": "NOT_FOUND", "field": "personId"}]
    # A partner system and the telephone system never record outcomes; another town's people
    # cannot see the call.
    for town, role, status in ((SOEST, "partner", 403), (KREIS, "telephony", 403), ("stadt-geseke", "agent", 404)):
        response = await client.put(
            f"/v1/calls/{call['id']}/outcome",
            json={**transfer, "personId": directory.mueller["id"]},
            headers=world.headers(town, role),
        )
        assert response.status_code == status, (town, role, response.text)
    stored = (await client.get(f"/v1/calls/{call['id']}", headers=world.headers(KREIS, "agent"))).json()
    assert (stored["outcome"], stored["outcomePersonId"], stored["transferTaken"]) == (None, None, None)
