"""Call records: idempotent posts (also concurrent), conflicts, events, outcomes, tenancy, the
bulk import through COPY, and erasing caller numbers."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from auth.principal import Principal
from auth.roles import Scope
from backend.db.tenancy import tenant_transaction
from backend.state import unit_of_work
from backend.telephony import call_import, calls
from tests.support.world import World
from tests.telephony.helpers import gql

Client = httpx.AsyncClient
SOEST_CENTRAL = "02921 103-0"
OUTCOME_GQL = """mutation($id: UUID!, $input: CallOutcomeInput!) {
  recordCallOutcome(id: $id, input: $input) { call { outcome outcomeDepartmentId } errors { code field message } }
}"""


def record(**fields: Any) -> dict[str, Any]:
    return {
        "externalId": f"c-{uuid.uuid4()}",
        "dialled": SOEST_CENTRAL,
        "caller": "0171 2345678",
        "queue": "zentrale",
        "offeredAt": "2026-03-02T10:00:00+01:00",
        "answeredAt": "2026-03-02T10:00:42+01:00",
        "endedAt": "2026-03-02T10:03:13+01:00",
        "agent": "agent-7",
        **fields,
    }


async def post(
    client: Client, world: World, body: dict[str, Any], town: str = "kreis-soest", path: str = "/v1/calls"
) -> httpx.Response:
    return await client.post(path, json=body, headers=world.headers(town, "telephony"))


async def test_a_complete_record_is_stored_with_its_tenant_and_raw_seconds(client: Client, telephony: World) -> None:
    response = await post(client, telephony, record())
    assert response.status_code == 200, response.text
    call = response.json()
    assert call["tenantId"] == str(telephony.tenant_ids["stadt-soest"])
    assert (call["dialled"], call["caller"], call["purpose"]) == ("+4929211030", "+491712345678", "central")
    assert (call["waitSeconds"], call["talkSeconds"], call["outcome"]) == (42, 151, None)
    assert call["sourceSystem"] == "kreis-soest-telephony"


async def test_same_payload_same_answer_other_payload_409_and_nothing_changed(client: Client, telephony: World) -> None:
    body = record()
    first = await post(client, telephony, body)
    again = await post(client, telephony, body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    also_same = await post(client, telephony, {**body, "offeredAt": "2026-03-02T09:00:00Z", "dialled": "+492921 1030"})
    assert also_same.json() == first.json()  # the same instant and number, written differently
    other = await post(client, telephony, {**body, "endedAt": "2026-03-02T10:09:00+01:00", "agent": "agent-8"})
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "DUPLICATE"  # the external id was recorded with other values
    assert other.json()["detail"].endswith("(agent, endedAt)")
    stored = await client.get(f"/v1/calls/{first.json()['id']}", headers=telephony.headers("kreis-soest", "agent"))
    assert stored.json()["endedAt"] == first.json()["endedAt"] and stored.json()["agent"] == "agent-7"


async def test_concurrent_duplicates_make_one_call_and_conflicts_lose(client: Client, telephony: World) -> None:
    body = record()
    answers = await asyncio.gather(*(post(client, telephony, body) for _ in range(8)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.json()["id"] for r in answers}) == 1
    racing = record()
    variants = [racing, {**racing, "agent": "agent-9"}] * 4
    results = await asyncio.gather(*(post(client, telephony, v) for v in variants))
    winners = {json.dumps(r.json()["agent"]) for r in results if r.status_code == 200}
    assert len(winners) == 1  # whichever came first; the other variant got 409 every time
    assert sorted(r.status_code for r in results) == [200] * 4 + [409] * 4


async def test_events_build_the_call_idempotently(client: Client, telephony: World) -> None:
    external = f"ev-{uuid.uuid4()}"
    offered = {
        "externalId": external,
        "type": "offered",
        "at": "2026-03-02T11:00:00+01:00",
        "dialled": "115",
        "caller": "02942 98765",
    }
    answered = {"externalId": external, "type": "answered", "at": "2026-03-02T11:00:30+01:00", "agent": "a-1"}
    ended = {"externalId": external, "type": "ended", "at": "2026-03-02T11:05:30+01:00"}
    early = await post(client, telephony, answered, path="/v1/calls/events")
    assert early.status_code == 404
    first = await post(client, telephony, offered, path="/v1/calls/events")
    assert first.status_code == 200, first.text
    assert first.json()["tenantId"] == str(telephony.tenant_ids["stadt-geseke"])  # 115 by the caller's area code
    assert first.json()["resolvedBy"] == "caller_area_code" and first.json()["purpose"] == "115"
    for event in (answered, answered, ended):
        assert (await post(client, telephony, event, path="/v1/calls/events")).status_code == 200
    conflicting = await post(client, telephony, {**answered, "agent": "a-2"}, path="/v1/calls/events")
    assert conflicting.status_code == 409
    final = await post(client, telephony, ended, path="/v1/calls/events")
    assert (final.json()["waitSeconds"], final.json()["talkSeconds"], final.json()["agent"]) == (30, 300, "a-1")


async def test_an_unanswered_call_is_abandoned(client: Client, telephony: World) -> None:
    body = record(answeredAt=None, agent=None, endedAt="2026-03-02T10:01:10+01:00")
    call = (await post(client, telephony, body)).json()
    assert (call["outcome"], call["waitSeconds"], call["talkSeconds"]) == ("abandoned", 70, None)


async def test_bad_records_are_refused(client: Client, telephony: World) -> None:
    cases = [
        record(dialled="not a number"),
        record(dialled="+49 30 1234567"),  # not ours
        record(offeredAt="2026-03-02T10:00:00"),  # no offset
        record(answeredAt="2026-03-02T09:00:00+01:00"),  # answered before offered
        record(endedAt="2126-03-02T10:03:13+01:00"),  # a century: the seconds would not fit
        record(answeredAt=None, endedAt="2026-03-10T10:00:00+01:00"),  # over a week
        record(unknown=1),
    ]
    for body in cases:
        response = await post(client, telephony, body)
        assert response.status_code in (400, 422), (body, response.text)
        assert "0171" not in response.text and "491712345678" not in response.text  # no caller echoed


async def test_geseke_system_cannot_post_or_read_soest_calls(client: Client, telephony: World) -> None:
    soest_call = (await post(client, telephony, record())).json()
    refused = await post(client, telephony, record(), town="stadt-geseke")
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "dialled"
    own = await post(client, telephony, record(dialled="02942 500-0"), town="stadt-geseke")
    assert own.status_code == 200, own.text
    geseke = telephony.headers("stadt-geseke", "telephony")
    assert (await client.get(f"/v1/calls/{soest_call['id']}", headers=geseke)).status_code == 404
    listed = await client.get("/v1/calls", headers=geseke, params={"first": 100})
    assert listed.status_code == 200
    assert {c["tenantId"] for c in listed.json()["items"]} == {str(telephony.tenant_ids["stadt-geseke"])}
    assert (
        await client.get("/v1/calls", headers=geseke, params={"tenant": telephony.slug("stadt-soest")})
    ).status_code == 404
    # Same external id from another system is another call: ids are the system's own.
    same_id = await post(
        client, telephony, record(externalId=soest_call["externalId"], dialled="02942 500-0"), town="stadt-geseke"
    )
    assert same_id.status_code == 200 and same_id.json()["id"] != soest_call["id"]
    # Agents of Geseke cannot record an outcome of a Soest call either.
    body = await gql(
        client,
        telephony.headers("stadt-geseke", "agent"),
        OUTCOME_GQL,
        id=soest_call["id"],
        input={"outcome": "SETTLED_FIRST_CONTACT"},
    )
    assert body["data"]["recordCallOutcome"]["errors"][0]["code"] == "NOT_FOUND"


async def test_agents_record_the_outcome(client: Client, telephony: World) -> None:
    call = (await post(client, telephony, record())).json()
    agent = telephony.headers("kreis-soest", "agent")
    missing = await gql(client, agent, OUTCOME_GQL, id=call["id"], input={"outcome": "TRANSFERRED_TO_DEPARTMENT"})
    assert missing["data"]["recordCallOutcome"]["errors"][0]["field"] == "departmentId"
    departments = await client.get(f"/v1/tenants/{telephony.slug('stadt-soest')}/departments", headers=agent)
    department = departments.json()[0]["id"]
    done = await gql(
        client,
        agent,
        OUTCOME_GQL,
        id=call["id"],
        input={"outcome": "TRANSFERRED_TO_DEPARTMENT", "departmentId": department},
    )
    assert done["data"]["recordCallOutcome"] == {
        "call": {"outcome": "TRANSFERRED_TO_DEPARTMENT", "outcomeDepartmentId": department},
        "errors": [],
    }
    listed = await gql(
        client,
        agent,
        "query($s: String) { calls(tenantSlug: $s, first: 100) { nodes { id outcome "
        "callerSpoken } pageInfo { hasNextPage } } }",
        s=telephony.slug("stadt-soest"),
    )
    mine = next(n for n in listed["data"]["calls"]["nodes"] if n["id"] == call["id"])
    assert mine["callerSpoken"] == "0 1 7 1 – 2 3 4 5 6 7 8"
    rest = await client.put(
        f"/v1/calls/{call['id']}/outcome",
        json={"outcome": "settled_first_contact"},
        headers=telephony.headers("kreis-soest", "telephony"),
    )
    assert rest.status_code == 403  # systems post calls; outcomes are the agents'


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns = [
        "external_id",
        "dialled",
        "caller",
        "queue",
        "offered_at",
        "answered_at",
        "ended_at",
        "agent",
        "wait_seconds",
    ]
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(str(row.get(c) or "") for c in columns))
    return ("\n".join(lines) + "\n").encode()


async def test_bulk_import_of_ten_thousand_rows_reports_bad_lines_and_is_idempotent(
    client: Client, db: asyncpg.Pool, telephony: World
) -> None:
    batch = uuid.uuid4().hex[:8]
    start = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    numbers = ("02921 103-0", "+4929211030", "02921 30-0", "02942 500-12", "115")
    rows = []
    for i in range(10_000):
        offered = start + timedelta(seconds=3 * i)
        rows.append(
            {
                "external_id": f"{batch}-{i}",
                "dialled": numbers[i % len(numbers)],
                "caller": f"02942 {100000 + i}" if i % 3 else "",
                "queue": "q1",
                "offered_at": offered.isoformat(),
                "answered_at": (offered + timedelta(seconds=20)).isoformat(),
                "ended_at": (offered + timedelta(seconds=200)).isoformat(),
                "agent": f"a{i % 7}",
            }
        )
    rows[10]["dialled"] = "kein anschluss"  # line 12
    rows[20]["offered_at"] = "yesterday"  # line 22
    rows[30]["dialled"] = "+49 30 1234567"  # not ours, line 32
    rows[40]["ended_at"] = (start - timedelta(hours=1)).isoformat()  # ends before it starts, line 42
    headers = {**telephony.headers("kreis-soest", "telephony"), "content-type": "text/csv"}
    first = await client.post("/v1/calls/import", content=_csv(rows), headers=headers)
    assert first.status_code == 200, first.text
    report = first.json()
    assert [e["line"] for e in report["errors"]] == [12, 22, 32, 42]
    assert report["errors"][0]["externalId"] == f"{batch}-10"
    assert (report["rows"], report["inserted"], report["duplicates"], report["errorCount"]) == (10_000, 9_996, 0, 4)
    again = (await client.post("/v1/calls/import", content=_csv(rows), headers=headers)).json()
    assert (again["inserted"], again["duplicates"], again["errorCount"]) == (0, 9_996, 4)
    rows[100]["agent"] = "someone else"  # line 102: a recorded call with other facts
    changed = (await client.post("/v1/calls/import", content=_csv(rows), headers=headers)).json()
    assert (changed["inserted"], changed["duplicates"]) == (0, 9_995)
    assert [e["line"] for e in changed["errors"]] == [12, 22, 32, 42, 102]
    async with tenant_transaction(db, list(telephony.tenant_ids.values()), readonly=True) as conn:
        counted = await conn.fetch(
            "SELECT tenant_id, count(*) AS n FROM calls WHERE external_id LIKE $1 GROUP BY tenant_id", f"{batch}-%"
        )
    by_tenant = {str(r["tenant_id"]): r["n"] for r in counted}
    assert sum(by_tenant.values()) == 9_996
    # 115 lines were resolved by the caller's area code (02942: Geseke; hidden: the operator).
    assert set(by_tenant) == {str(t) for t in telephony.tenant_ids.values()}


async def test_an_import_written_in_chunks_reports_as_one(
    client: Client, db: asyncpg.Pool, telephony: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of three rows (parsed while the previous chunk is written): duplicates and
    conflicts across chunks, bad lines in several chunks, all reported by line, in order."""
    monkeypatch.setattr(call_import, "IMPORT_CHUNK_ROWS", 3)
    monkeypatch.setattr(call_import, "_PARSE_SLICE", 2)
    batch = uuid.uuid4().hex[:8]
    start = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    rows = [
        {
            "external_id": f"{batch}-{i}",
            "dialled": "02921 103-0",
            "queue": "q1",
            "offered_at": (start + timedelta(minutes=i)).isoformat(),
            "agent": "a1",
        }
        for i in range(10)
    ]
    rows.insert(4, {**rows[0]})  # line 6: line 2 again, same facts: a duplicate
    rows.insert(8, {**rows[1], "agent": "a2"})  # line 10: line 3 again, other facts: a conflict
    rows[2]["dialled"] = "kein anschluss"  # line 4
    rows[11]["offered_at"] = "soon"  # line 13
    headers = {**telephony.headers("kreis-soest", "telephony"), "content-type": "text/csv"}
    report = (await client.post("/v1/calls/import", content=_csv(rows), headers=headers)).json()
    assert [(e["line"], e["message"].startswith("this call was already")) for e in report["errors"]] == [
        (4, False),
        (10, True),
        (13, False),
    ]
    assert (report["rows"], report["inserted"], report["duplicates"], report["errorCount"]) == (12, 8, 1, 3)
    again = (await client.post("/v1/calls/import", content=_csv(rows), headers=headers)).json()
    assert (again["inserted"], again["duplicates"], [e["line"] for e in again["errors"]]) == (0, 9, [4, 10, 13])
    async with tenant_transaction(db, list(telephony.tenant_ids.values()), readonly=True) as conn:
        stored = await conn.fetch("SELECT external_id, agent FROM calls WHERE external_id LIKE $1", f"{batch}-%")
    assert len(stored) == 8
    assert {r["agent"] for r in stored if r["external_id"] == f"{batch}-1"} == {"a1"}  # the first line won


async def test_json_lines_import(client: Client, telephony: World) -> None:
    lines = [json.dumps(record(externalId=f"jl-{uuid.uuid4()}")) for _ in range(3)]
    garbled = json.dumps(record(externalId=f"jl-{uuid.uuid4()}", endedAt="2126-03-02T10:03:13+01:00"))
    body = "\n".join([lines[0], "{not json", lines[1], "[1, 2]", lines[2], json.dumps({"externalId": "x"}), garbled])
    headers = {**telephony.headers("kreis-soest", "telephony"), "content-type": "application/x-ndjson"}
    report = (await client.post("/v1/calls/import", content=body.encode(), headers=headers)).json()
    assert (report["inserted"], report["errorCount"]) == (3, 4)
    assert [e["line"] for e in report["errors"]] == [2, 4, 6, 7]  # a garbled time is one bad line
    partner = {**telephony.headers("kreis-soest", "partner"), "content-type": "application/x-ndjson"}
    assert (await client.post("/v1/calls/import", content=body.encode(), headers=partner)).status_code == 403


async def test_imports_refuse_control_characters_and_numbers_for_times(client: Client, telephony: World) -> None:
    """Each import line is an Input: a control character or a time given as a number is that
    line's error (JSON lines are typed: `offeredAt: 0` was 1970-01-01), the rest go in."""
    good = record(externalId=f"cc-{uuid.uuid4()}")
    lines = [
        json.dumps(good),
        json.dumps(record(externalId=f"cc-{uuid.uuid4()}", agent="a\u0007")),  # the escape, as JSON sends it
        json.dumps(record(externalId=f"cc-{uuid.uuid4()}", queue="q\n1")),
        json.dumps(record(externalId=f"cc-{uuid.uuid4()}", offeredAt=0, answeredAt=None, endedAt=None)),
        json.dumps(record(externalId=f"cc-{uuid.uuid4()}", agent="Zoë \\ Ümit")),  # a backslash is fine
    ]
    headers = {**telephony.headers("kreis-soest", "telephony"), "content-type": "application/x-ndjson"}
    report = (await client.post("/v1/calls/import", content="\n".join(lines).encode(), headers=headers)).json()
    assert [e["line"] for e in report["errors"]] == [2, 3, 4], report
    assert "control characters" in report["errors"][0]["message"]
    assert "single line" in report["errors"][1]["message"]
    assert (report["inserted"], report["errorCount"]) == (2, 3)

    batch = uuid.uuid4().hex[:8]
    rows = [
        _line(f"{batch}-0", agent="a\x07"),
        _line(f"{batch}-1"),
        _line(f"{batch}-2", agent='"quoted\nacross lines"'),
    ]
    report = await _import(client, telephony, rows)
    assert [e["line"] for e in report["errors"]] == [2, 5], report  # a quoted cell spans lines 4-5
    assert report["inserted"] == 1


@pytest.mark.clock  # the retention period counts back from now
async def test_caller_numbers_are_erased_after_the_retention_period(
    client: Client, db: asyncpg.Pool, telephony: World
) -> None:
    old = (
        await post(client, telephony, record(offeredAt="2020-01-06T10:00:00+01:00", answeredAt=None, endedAt=None))
    ).json()
    fresh = (
        await post(client, telephony, record(offeredAt=datetime.now(UTC).isoformat(), answeredAt=None, endedAt=None))
    ).json()
    kreis = telephony.tenant_ids["kreis-soest"]
    system = Principal(
        issuer="test",
        subject="kreis-soest-telephony",
        tenant_id=kreis,
        tenant_slug="kreis-soest",
        scopes=frozenset({Scope.CALLS_WRITE}),
        client_id="kreis-soest-telephony",
        acting_tenant_ids=frozenset(telephony.tenant_ids.values()),
    )
    async with unit_of_work(telephony.state, system) as uow:
        assert await calls.erase_expired_callers(uow) >= 1
    async with tenant_transaction(db, list(telephony.tenant_ids.values()), readonly=True) as conn:
        found = await conn.fetch(
            "SELECT id, caller, caller_erased_at FROM calls WHERE id = ANY($1)",
            [uuid.UUID(old["id"]), uuid.UUID(fresh["id"])],
        )
    rows = {r["id"]: r for r in found}
    assert rows[uuid.UUID(old["id"])]["caller"] is None and rows[uuid.UUID(old["id"])]["caller_erased_at"]
    assert rows[uuid.UUID(fresh["id"])]["caller"] == "+491712345678"
    # Re-posting the old record after erasure is still the same call, not a conflict.
    again = await post(
        client,
        telephony,
        record(externalId=old["externalId"], offeredAt="2020-01-06T10:00:00+01:00", answeredAt=None, endedAt=None),
    )
    assert again.status_code == 200 and again.json()["id"] == old["id"]


# --- computed figures follow the facts (decision 006) ----------------------------------------------


async def event(client: Client, world: World, external: str, kind: str, at: str, **fields: Any) -> httpx.Response:
    body = {"externalId": external, "type": kind, "at": at, **fields}
    return await post(client, world, body, path="/v1/calls/events")


async def stored_call(client: Client, world: World, call_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/calls/{call_id}", headers=world.headers("kreis-soest", "agent"))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def figures(call: dict[str, Any]) -> tuple[Any, ...]:
    return call["waitSeconds"], call["talkSeconds"], call["outcome"]


async def test_an_answer_arriving_after_the_end_recomputes_the_figures(client: Client, telephony: World) -> None:
    """Sequence A (a retried `answered` after `ended`): the call was answered, not abandoned."""
    external = f"late-{uuid.uuid4()}"
    offered = await event(client, telephony, external, "offered", "2026-03-02T10:00:00+01:00", dialled=SOEST_CENTRAL)
    assert offered.status_code == 200, offered.text
    ended = await event(client, telephony, external, "ended", "2026-03-02T10:03:00+01:00")
    assert figures(ended.json()) == (180, None, "abandoned")  # as it stands: ended unanswered
    answered = await event(client, telephony, external, "answered", "2026-03-02T10:00:42+01:00", agent="a-3")
    assert answered.status_code == 200, answered.text
    assert figures(answered.json()) == (42, 138, None)
    assert figures(await stored_call(client, telephony, answered.json()["id"])) == (42, 138, None)
    again = await event(client, telephony, external, "answered", "2026-03-02T10:00:42+01:00", agent="a-3")
    assert again.json() == answered.json()


async def test_a_reported_wait_replaces_a_computed_one_once(client: Client, telephony: World) -> None:
    """Sequence B: the events give a computed wait (42 s); the complete record then brings the
    PBX's own (30 s): not a conflict. A different reported wait after that still is."""
    body = record()
    external = body["externalId"]
    await event(client, telephony, external, "offered", body["offeredAt"], dialled=SOEST_CENTRAL, caller=body["caller"])
    await event(client, telephony, external, "answered", body["answeredAt"], agent="agent-7")
    ended = await event(client, telephony, external, "ended", body["endedAt"])
    assert figures(ended.json()) == (42, 151, None)
    reported = await post(client, telephony, {**body, "waitSeconds": 30})
    assert reported.status_code == 200, reported.text
    assert figures(reported.json()) == (30, 151, None)
    same = await post(client, telephony, {**body, "waitSeconds": 30})
    assert same.status_code == 200 and same.json() == reported.json()
    for kind, at in (("answered", body["answeredAt"]), ("ended", body["endedAt"])):  # no recomputing it
        repeated = await event(
            client, telephony, external, kind, at, **({"agent": "agent-7"} if kind == "answered" else {})
        )
        assert repeated.json() == reported.json()
    other = await post(client, telephony, {**body, "waitSeconds": 31})
    assert other.status_code == 409 and other.json()["detail"].endswith("(waitSeconds)")
    assert await stored_call(client, telephony, reported.json()["id"]) == reported.json()


async def test_an_agents_outcome_is_never_replaced_by_a_computed_one(client: Client, telephony: World) -> None:
    agent = telephony.headers("kreis-soest", "agent")
    # Recorded while the call rang; the call then ends unanswered: the agent's outcome stays.
    external = f"agent-{uuid.uuid4()}"
    call = (
        await event(client, telephony, external, "offered", "2026-03-02T10:00:00+01:00", dialled=SOEST_CENTRAL)
    ).json()
    done = await gql(client, agent, OUTCOME_GQL, id=call["id"], input={"outcome": "SETTLED_FIRST_CONTACT"})
    assert done["data"]["recordCallOutcome"]["errors"] == []
    ended = await event(client, telephony, external, "ended", "2026-03-02T10:01:00+01:00")
    assert figures(ended.json()) == (60, None, "settled_first_contact")
    # An agent's own 'abandoned' is not the computed one: a late answer does not clear it.
    external = f"agent-{uuid.uuid4()}"
    await event(client, telephony, external, "offered", "2026-03-02T10:00:00+01:00", dialled=SOEST_CENTRAL)
    call = (await event(client, telephony, external, "ended", "2026-03-02T10:02:00+01:00")).json()
    done = await gql(client, agent, OUTCOME_GQL, id=call["id"], input={"outcome": "ABANDONED", "note": "hung up"})
    assert done["data"]["recordCallOutcome"]["errors"] == []
    answered = await event(client, telephony, external, "answered", "2026-03-02T10:01:30+01:00", agent="a-1")
    assert figures(answered.json()) == (90, 30, "abandoned")


def _import_headers(world: World) -> dict[str, str]:
    return {**world.headers("kreis-soest", "telephony"), "content-type": "text/csv"}


async def _import(client: Client, world: World, rows: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.post("/v1/calls/import", content=_csv(rows), headers=_import_headers(world))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _line(external: str, **fields: Any) -> dict[str, Any]:
    return {
        "external_id": external,
        "dialled": SOEST_CENTRAL,
        "queue": "q1",
        "offered_at": "2026-03-02T10:00:00+01:00",
        "answered_at": "2026-03-02T10:00:42+01:00",
        "ended_at": "2026-03-02T10:03:00+01:00",
        "agent": "a-1",
        **fields,
    }


async def _by_external(client: Client, world: World, external: str) -> dict[str, Any]:
    # Posting the offered event again is a no-op that answers with the stored call.
    response = await event(client, world, external, "offered", "2026-03-02T10:00:00+01:00", dialled=SOEST_CENTRAL)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_import_then_events_compute_as_a_single_post_would(client: Client, telephony: World) -> None:
    unanswered, measured = f"imp-{uuid.uuid4()}", f"imp-{uuid.uuid4()}"
    rows = [_line(unanswered, answered_at=None, agent=None), _line(measured)]
    report = await _import(client, telephony, rows)
    assert (report["inserted"], report["errorCount"]) == (2, 0)
    # The answer arrives after the import had the call ended unanswered.
    answered = await event(client, telephony, unanswered, "answered", "2026-03-02T10:00:42+01:00", agent="a-1")
    assert answered.status_code == 200, answered.text
    assert figures(answered.json()) == (42, 138, None)
    # The PBX's measured wait replaces the one the import computed.
    reported = await event(
        client, telephony, measured, "answered", "2026-03-02T10:00:42+01:00", agent="a-1", waitSeconds=30
    )
    assert reported.status_code == 200, reported.text
    assert figures(reported.json()) == (30, 138, None)
    # The same file again: all duplicates, the reported wait kept.
    again = await _import(client, telephony, [rows[1]])
    assert (again["inserted"], again["duplicates"], again["errorCount"]) == (0, 1, 0)
    assert figures(await _by_external(client, telephony, measured)) == (30, 138, None)


async def test_events_then_import_compare_only_reported_figures(client: Client, telephony: World) -> None:
    external = f"imp-{uuid.uuid4()}"
    await event(client, telephony, external, "offered", "2026-03-02T10:00:00+01:00", dialled=SOEST_CENTRAL, queue="q1")
    await event(client, telephony, external, "answered", "2026-03-02T10:00:42+01:00", agent="a-1")
    ended = await event(client, telephony, external, "ended", "2026-03-02T10:03:00+01:00")
    assert figures(ended.json()) == (42, 138, None)
    without_wait = await _import(client, telephony, [_line(external)])
    assert (without_wait["inserted"], without_wait["duplicates"], without_wait["errorCount"]) == (0, 1, 0)
    with_wait = await _import(client, telephony, [_line(external, wait_seconds=30)])
    assert (with_wait["inserted"], with_wait["duplicates"], with_wait["errorCount"]) == (0, 1, 0)
    assert figures(await _by_external(client, telephony, external)) == (30, 138, None)
    again = await _import(client, telephony, [_line(external, wait_seconds=30)])
    assert (again["duplicates"], again["errorCount"]) == (1, 0)
    other = await _import(client, telephony, [_line(external, wait_seconds=31)])
    assert [e["line"] for e in other["errors"]] == [2] and other["duplicates"] == 0
    assert figures(await _by_external(client, telephony, external)) == (30, 138, None)


async def test_within_one_file_the_first_reported_wait_wins(client: Client, telephony: World) -> None:
    external = f"imp-{uuid.uuid4()}"
    rows = [_line(external), _line(external, wait_seconds=30), _line(external, wait_seconds=31)]
    report = await _import(client, telephony, rows)
    assert (report["inserted"], report["duplicates"], [e["line"] for e in report["errors"]]) == (1, 1, [4])
    assert figures(await _by_external(client, telephony, external)) == (30, 138, None)
    again = await _import(client, telephony, rows)
    assert (again["inserted"], again["duplicates"], [e["line"] for e in again["errors"]]) == (0, 2, [4])


async def test_a_crafted_list_cursor_is_a_validation_error(client: Client, telephony: World) -> None:
    """The same `moment|id` cursors as the ticket lists, read back as strictly: a naive or
    out-of-range moment is a 422 naming `after`, never a 500 from the database driver."""
    headers = telephony.headers("kreis-soest", "agent")
    zero = "00000000-0000-0000-0000-000000000000"
    for after in (f"0001-01-01T00:00:00+01:00|{zero}", f"2026-03-02T10:00:00|{zero}", "garbage"):
        response = await client.get("/v1/calls", params={"after": after}, headers=headers)
        assert response.status_code == 422, (after, response.text)
        assert response.json()["errors"][0]["field"] == "after"
