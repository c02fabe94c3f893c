"""The forwarding decision's hot path (decision 039): the town, its people's presence and the
callback rule held in process. In the steady state a decision makes no database statement; a
presence change anywhere is read as the rows written since (one statement) on every instance;
an expired telephone event stops counting without any write; a late commit is never missed."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest_asyncio
import time_machine
from asyncpg.connection import LoggedQuery

from auth.principal import Principal
from auth.roles import Role
from backend.db.tenancy import tenant_transaction
from backend.directory import compiled, repository, service
from backend.main import create_app
from backend.settings import Settings
from backend.state import unit_of_work
from backend.tickets import service as tickets
from tests.directory.conftest import KREIS, SOEST, created
from tests.support.asgi import serve
from tests.support.servers import app_process
from tests.support.world import World

Client = httpx.AsyncClient
# Tuesday 2026-03-10, 10:00 in Soest (CET): the department (Mon–Fri 8–16) is open.
TUESDAY_10 = datetime.fromisoformat("2026-03-10T10:00:00+01:00")


@dataclasses.dataclass
class Own:
    """A person of Stadt Soest's Bauordnung responsible for a LeiKa key of their own."""

    person: dict[str, Any]
    key: str
    number: str


@pytest_asyncio.fixture(scope="module")
async def department(client: Client, world: World) -> uuid.UUID:
    """A department of these tests' own (open Mon–Fri 8–16), so the people they add do not
    crowd the shared Bauordnung that other tests search."""
    slug, admin = world.slug(SOEST), world.headers(SOEST, "town-admin")
    made = await created(
        await client.post(
            f"/v1/tenants/{slug}/departments", json={"name": f"Vermittlung {uuid.uuid4().hex[:6]}"}, headers=admin
        )
    )
    line = await client.put(
        f"/v1/tenants/{slug}/directory/department-lines/{made['id']}",
        json={
            "phone": "02921 103-8000",
            "hours": [{"weekday": d, "opens": "08:00", "closes": "16:00"} for d in range(1, 6)],
        },
        headers=admin,
    )
    assert line.status_code == 200, line.text
    return uuid.UUID(made["id"])


async def own_person(http: Client, base_url: str, world: World, department: uuid.UUID) -> Own:
    digits = f"{uuid.uuid4().int % 10**5:05d}"
    key = f"98{uuid.uuid4().int % 10**12:012d}"
    admin = world.headers(SOEST, "town-admin")
    person = await created(
        await http.post(
            f"{base_url}/v1/tenants/{world.slug(SOEST)}/directory/people",
            json={
                "familyName": f"Heiß{digits}",
                "departmentId": str(department),
                "phone": f"+4929219{digits}",
            },
            headers=admin,
        )
    )
    await created(
        await http.post(
            f"{base_url}/v1/tenants/{world.slug(SOEST)}/directory/responsibilities",
            json={"personId": person["id"], "leikaKey": key},
            headers=admin,
        )
    )
    return Own(person, key, f"+4929219{digits}")


async def first_option(http: Client, base_url: str, world: World, key: str, at: datetime) -> dict[str, Any]:
    response = await http.get(
        f"{base_url}/v1/forwarding",
        params={"tenant": world.slug(SOEST), "leikaKey": key, "at": at.isoformat()},
        headers=world.headers(KREIS, "agent"),
    )
    assert response.status_code == 200, response.text
    option: dict[str, Any] = response.json()["options"][0]
    return option


async def phone_event(
    http: Client, base_url: str, world: World, own: Own, state: str, at: datetime, seconds: int = 300
) -> None:
    response = await http.post(
        f"{base_url}/v1/tenants/{world.slug(SOEST)}/directory/presence-events",
        json={"number": own.number, "state": state, "at": at.isoformat(), "expiresInSeconds": seconds},
        headers=world.headers(KREIS, "telephony"),
    )
    assert response.status_code == 200, response.text


async def test_a_presence_event_on_one_instance_changes_the_decision_on_the_other(
    settings: Settings, world: World, department: uuid.UUID
) -> None:
    with app_process(settings) as first, app_process(settings) as second:
        async with httpx.AsyncClient(timeout=10) as http:
            own = await own_person(http, first.url, world, department)
            for _ in range(2):  # the second instance compiles, then answers from what it holds
                option = await first_option(http, second.url, world, own.key, TUESDAY_10)
                assert (option["personId"], option["available"]) == (own.person["id"], True), option
            await phone_event(http, first.url, world, own, "busy", TUESDAY_10 - timedelta(minutes=1))
            option = await first_option(http, second.url, world, own.key, TUESDAY_10)
            assert (option["available"], option["reason"]) == (False, "busy on the telephone"), option
            await phone_event(http, first.url, world, own, "idle", TUESDAY_10 - timedelta(seconds=30))
            option = await first_option(http, second.url, world, own.key, TUESDAY_10)
            assert (option["available"], option["reason"]) == (True, "available (telephone idle)"), option
            # And the other way round: posted on the second, in force on the first at once.
            await phone_event(http, second.url, world, own, "logged_off", TUESDAY_10 - timedelta(seconds=10))
            option = await first_option(http, first.url, world, own.key, TUESDAY_10)
            assert (option["available"], option["reason"]) == (False, "logged off the telephone"), option


def agent(world: World) -> Principal:
    kreis, soest = world.tenant_ids[KREIS], world.tenant_ids[SOEST]
    return Principal(
        issuer="test",
        subject="hot-path-agent",
        tenant_id=kreis,
        tenant_slug=world.slug(KREIS),
        roles=frozenset({Role.AGENT}),
        acting_tenant_ids=frozenset({kreis, soest}),
    )


async def test_an_expired_telephone_event_no_longer_counts(client: Client, world: World, department: uuid.UUID) -> None:
    own = await own_person(client, "", world, department)
    await phone_event(client, "", world, own, "busy", TUESDAY_10, seconds=60)
    # The decision's moment from the clock, pinned: within the event's minute it counts …
    for moment, available in (
        (TUESDAY_10 + timedelta(seconds=30), False),
        (TUESDAY_10 + timedelta(seconds=59), False),
        (TUESDAY_10 + timedelta(seconds=60), True),  # … from its expiry on it says nothing
        (TUESDAY_10 + timedelta(hours=2), True),
    ):
        with time_machine.travel(moment, tick=False):
            decision = await service.forwarding_decision(world.state, agent(world), world.slug(SOEST), own.key)
        option = decision.options[0]
        assert (option.person_id, option.available) == (uuid.UUID(own.person["id"]), available), (moment, option)
        assert decision.at == moment
    # Nothing was written meanwhile: the held rows are the same, only the moment moved.
    assert not (await first_option(client, "", world, own.key, TUESDAY_10 + timedelta(seconds=1)))["available"]


class Statements:
    """Every statement the app's pool runs, via asyncpg's query logger on each connection."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def __call__(self, record: LoggedQuery) -> None:
        self.ran.append(" ".join(record.query.split()))

    async def settle(self) -> list[str]:
        for _ in range(3):  # loggers are called with loop.call_soon
            await asyncio.sleep(0)
        taken, self.ran = self.ran, []
        return [q for q in taken if not q.startswith("SELECT pg_advisory_unlock_all()")]


async def test_a_decision_in_the_steady_state_makes_no_statement_and_a_presence_change_one(
    settings: Settings, world: World, department: uuid.UUID
) -> None:
    pool_size = 2
    app = create_app(dataclasses.replace(settings, db_pool_min=pool_size, db_pool_max=pool_size))
    log = Statements()
    async with serve(app, "http://hot-path") as http:
        pool = app.state.app_state.pool
        held = [await pool.acquire() for _ in range(pool_size)]  # reaches every connection
        for conn in held:
            conn.add_query_logger(log)
        for conn in held:
            await pool.release(conn)
        own = await own_person(http, "", world, department)
        await first_option(http, "", world, own.key, TUESDAY_10)  # compiles the town
        await log.settle()
        for _ in range(5):
            assert (await first_option(http, "", world, own.key, TUESDAY_10))["available"] is True
        assert await log.settle() == []
        await phone_event(http, "", world, own, "busy", TUESDAY_10 - timedelta(minutes=1))
        await log.settle()
        before = compiled.compilations
        assert (await first_option(http, "", world, own.key, TUESDAY_10))["available"] is False
        ran = await log.settle()
        assert len([q for q in ran if "directory_presence" in q]) == 1, ran
        assert not [q for q in ran if "directory_people" in q], ran
        assert compiled.compilations == before, "a presence change compiled the whole directory"
        assert (await first_option(http, "", world, own.key, TUESDAY_10))["available"] is False
        assert await log.settle() == []


async def test_a_burst_of_decisions_after_a_change_agrees_with_it(
    client: Client, world: World, department: uuid.UUID
) -> None:
    own = await own_person(client, "", world, department)

    async def burst() -> set[bool]:
        options = await asyncio.gather(*(first_option(client, "", world, own.key, TUESDAY_10) for _ in range(12)))
        return {o["available"] for o in options}

    assert await burst() == {True}
    await phone_event(client, "", world, own, "busy", TUESDAY_10 - timedelta(minutes=1))
    assert await burst() == {False}
    await phone_event(client, "", world, own, "idle", TUESDAY_10 - timedelta(seconds=1))
    assert await burst() == {True}


async def test_a_late_commit_is_read_after_an_earlier_ones(client: Client, world: World, department: uuid.UUID) -> None:
    """Two writers: the one that began first commits last. A read between the two commits sees
    only the second; the next read, from that read's watermark, still finds the first."""
    soest = world.tenant_ids[SOEST]
    pool = world.state.pool
    late, early = [await own_person(client, "", world, department) for _ in range(2)]
    late_id, early_id = uuid.UUID(late.person["id"]), uuid.UUID(early.person["id"])
    until = TUESDAY_10 + timedelta(hours=1)
    async with tenant_transaction(pool, [soest], readonly=True) as reader:
        start = compiled.Live(0).merged(await repository.presence_written_since(reader, soest, 0))
    written, read = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:  # a task of its own: its own connection, its own commit
        async with tenant_transaction(pool, [soest]) as slow:
            await repository.upsert_phone_state(slow, soest, late_id, "busy", TUESDAY_10, until)
            written.set()
            await read.wait()

    slow = asyncio.create_task(slow_writer())
    await written.wait()
    async with tenant_transaction(pool, [soest]) as quick:
        await repository.upsert_phone_state(quick, soest, early_id, "ringing", TUESDAY_10, until)
    async with tenant_transaction(pool, [soest], readonly=True) as reader:
        between = start.merged(await repository.presence_written_since(reader, soest, start.watermark))
    read.set()
    await slow
    assert early_id in between.phone and late_id not in between.phone
    async with tenant_transaction(pool, [soest], readonly=True) as reader:
        after = between.merged(await repository.presence_written_since(reader, soest, between.watermark))
    assert (after.phone[late_id]["state"], after.phone[early_id]["state"]) == ("busy", "ringing")


async def test_a_change_of_the_towns_ticket_routes_is_in_force_at_once(client: Client, world: World) -> None:
    """The message's department comes from the tickets' responsibility table, held with the
    town: an entry added there moves the decision's department at once."""
    admin = world.headers(SOEST, "town-admin")
    slug = world.slug(SOEST)
    name = f"Hotline {uuid.uuid4().hex[:6]}"
    department = await created(await client.post(f"/v1/tenants/{slug}/departments", json={"name": name}, headers=admin))
    line = await client.put(
        f"/v1/tenants/{slug}/directory/department-lines/{department['id']}",
        json={"phone": "02921 103-7000"},
        headers=admin,
    )
    assert line.status_code == 200, line.text
    key = f"97{uuid.uuid4().int % 10**12:012d}"  # nobody is responsible for it

    async def departments() -> list[str | None]:
        response = await client.get(
            "/v1/forwarding",
            params={"tenant": slug, "leikaKey": key, "at": TUESDAY_10.isoformat()},
            headers=world.headers(KREIS, "agent"),
        )
        assert response.status_code == 200, response.text
        return [o["departmentName"] for o in response.json()["options"]]

    assert name not in await departments()
    town_admin = Principal(
        issuer="test",
        subject="hot-path-admin",
        tenant_id=world.tenant_ids[SOEST],
        tenant_slug=slug,
        roles=frozenset({Role.TOWN_ADMIN}),
        acting_tenant_ids=frozenset({world.tenant_ids[SOEST]}),
    )
    async with unit_of_work(world.state, town_admin) as uow:
        await tickets.import_route(uow, world.tenant_ids[SOEST], key[:10], uuid.UUID(department["id"]))
    assert await departments() == [name, name]  # the line, open; the message for the department


async def test_a_burst_after_a_directory_change_compiles_the_town_once(
    client: Client, world: World, department: uuid.UUID
) -> None:
    own = await own_person(client, "", world, department)  # a directory change: a new generation
    before = compiled.compilations
    options = await asyncio.gather(*(first_option(client, "", world, own.key, TUESDAY_10) for _ in range(12)))
    assert {o["personId"] for o in options} == {own.person["id"]}
    assert compiled.compilations == before + 1
    # A town the principal may not reach stays missing, also while another's read is shared.
    partnerless = await client.get(
        "/v1/forwarding",
        params={"tenant": world.slug(SOEST), "leikaKey": own.key},
        headers=world.headers("stadt-geseke", "agent"),
    )
    assert partnerless.status_code == 404, partnerless.text
    partner = await client.get(  # a partner system has no grant at all, held town or not
        "/v1/forwarding", params={"tenant": world.slug(SOEST)}, headers=world.headers(SOEST, "partner")
    )
    assert partner.status_code == 403, partner.text
