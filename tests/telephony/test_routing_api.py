"""The routing decision over REST (telephony systems) and GraphQL (agents); the shared cache
across two app instances; answers from PostgreSQL while Redis is down."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from backend.db.tenancy import tenant_transaction
from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState
from backend.telephony import cache
from tests.support.asgi import serve
from tests.support.metrics import scrape, value
from tests.support.world import World
from tests.telephony.helpers import add_number, gql, unique_number

Client = httpx.AsyncClient
MONDAY_10 = "2026-03-02T10:00:00+01:00"
FRONLEICHNAM_10 = "2026-06-04T10:00:00+02:00"
ROUTING_GQL = """query($d: String!, $c: String, $at: DateTime) {
  routingDecision(dialled: $d, caller: $c, at: $at) {
    ours takesCall reason reasonDetail resolvedBy greeting
    tenant { slug name } candidates { municipality tenant { slug } }
    departments { name } serviceHours { weekday opens closes }
    serviceNumber { number kind purpose routingWindow }
  }
}"""


async def routing(
    client: Client,
    world: World,
    dialled: str,
    *,
    at: str = MONDAY_10,
    caller: str | None = None,
    town: str = "kreis-soest",
    who: str = "telephony",
) -> dict[str, object]:
    params = {"dialled": dialled, "at": at, **({"caller": caller} if caller else {})}
    response = await client.get("/v1/routing", params=params, headers=world.headers(town, who))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_telephony_system_gets_tenant_window_greeting_departments_and_hours(
    client: Client, telephony: World
) -> None:
    decision = await routing(client, telephony, "+49 (0)2921 103-0")
    assert decision["ours"] is True and decision["takesCall"] is True
    assert decision["reason"] == "within_service_hours" and decision["resolvedBy"] == "dialled_number"
    assert decision["tenant"] == {
        "id": str(telephony.tenant_ids["stadt-soest"]),
        "slug": telephony.slug("stadt-soest"),
        "name": "Stadt Soest " + telephony.suffix.title(),
    }
    assert decision["greeting"] == "Stadt Soest " + telephony.suffix.title()
    assert "Bürgerbüro" in [d["name"] for d in decision["departments"]]  # type: ignore[attr-defined]
    assert decision["serviceHours"][0] == {"weekday": 1, "opens": "08:00", "closes": "18:00"}  # type: ignore[index]
    evening = await routing(client, telephony, "02921 103-0", at="2026-03-02T19:00:00+01:00")
    assert (evening["takesCall"], evening["reason"]) == (False, "outside_service_hours")
    extension = await routing(client, telephony, "02921 103-4711")  # a bare extension of the block
    assert extension["tenant"] == decision["tenant"]
    assert extension["serviceNumber"]["kind"] == "block"  # type: ignore[index]


async def test_unknown_numbers_get_a_clear_not_ours_and_bad_input_a_422(client: Client, telephony: World) -> None:
    unknown = await routing(client, telephony, unique_number())
    assert (unknown["ours"], unknown["takesCall"], unknown["reason"], unknown["tenant"]) == (
        False,
        False,
        "not_ours",
        None,
    )
    bad = await client.get(
        "/v1/routing", params={"dialled": "not a number"}, headers=telephony.headers("kreis-soest", "telephony")
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "dialled"
    naive = await client.get(
        "/v1/routing",
        params={"dialled": "02921 30-0", "at": "2026-03-02T10:00:00"},
        headers=telephony.headers("kreis-soest", "telephony"),
    )
    assert naive.status_code == 422


async def test_geseke_numbers_follow_the_town_operators_absence_and_its_holidays(
    client: Client, telephony: World
) -> None:
    present = await routing(client, telephony, "02942 500-0")
    assert (present["takesCall"], present["reason"]) == (False, "operator_present")
    lunch = await routing(client, telephony, "02942 500-0", at="2026-03-02T12:45:00+01:00")
    assert (lunch["takesCall"], lunch["reason"]) == (True, "operator_absent")
    friday = await routing(client, telephony, "02942 500-0", at="2026-03-06T15:00:00+01:00")
    assert friday["takesCall"] is True
    holiday = await routing(client, telephony, "02942 500-0", at=FRONLEICHNAM_10)
    assert (holiday["takesCall"], holiday["reason"], holiday["reasonDetail"]) == (
        False,
        "public_holiday",
        "Fronleichnam",
    )


async def test_dated_absences_and_closing_days_change_the_answer(client: Client, telephony: World) -> None:
    geseke = telephony.slug("stadt-geseke")
    admin = telephony.headers("stadt-geseke", "town-admin")
    leave = await client.post(
        f"/v1/tenants/{geseke}/operator-absences/dated",
        headers=admin,
        json={"startsAt": "2027-03-01T00:00:00+01:00", "endsAt": "2027-03-06T00:00:00+01:00", "note": "Urlaub"},
    )
    assert leave.status_code == 201, leave.text
    on_leave = await routing(client, telephony, "02942 500-0", at="2027-03-02T10:00:00+01:00")
    assert (on_leave["takesCall"], on_leave["reason"]) == (True, "operator_absent")
    removed = await client.delete(f"/v1/tenants/{geseke}/operator-absences/{leave.json()['id']}", headers=admin)
    assert removed.status_code == 204
    back = await routing(client, telephony, "02942 500-0", at="2027-03-02T10:00:00+01:00")
    assert back["reason"] == "operator_present"
    # A closing day is the tenants domain's; its change reaches routing through the app's
    # tenant-change listeners right after commit.
    closing = await client.put(
        f"/v1/tenants/{geseke}/closing-days/2027-02-08", params={"name": "Rosenmontag"}, headers=admin
    )
    assert closing.status_code == 200, closing.text
    closed = await routing(client, telephony, "02942 500-0", at="2027-02-08T12:45:00+01:00")
    assert (closed["takesCall"], closed["reason"], closed["reasonDetail"]) == (False, "closing_day", "Rosenmontag")


async def test_115_by_caller_area_code(client: Client, telephony: World) -> None:
    geseke = await routing(client, telephony, "115", caller="02942 12345")
    assert geseke["resolvedBy"] == "caller_area_code"
    assert geseke["tenant"]["slug"] == telephony.slug("stadt-geseke")  # type: ignore[index]
    soest = await routing(client, telephony, "115", caller="+49 2921 123456")
    assert soest["resolvedBy"] == "ambiguous_area_code" and soest["tenant"] is None
    candidates = {(c["municipality"], c["tenant"]["slug"]) for c in soest["candidates"]}  # type: ignore[attr-defined]
    assert candidates == {("Soest", telephony.slug("stadt-soest")), ("Bad Sassendorf", telephony.slug("kreis-soest"))}
    for caller in (None, "anonymous", "+31 20 123 4567", "0171 1234567"):
        fallback = await routing(client, telephony, "115", caller=caller)
        assert fallback["resolvedBy"] == "operator_fallback", caller
        assert fallback["tenant"]["slug"] == telephony.slug("kreis-soest")  # type: ignore[index]


async def test_agents_ask_through_graphql(client: Client, telephony: World) -> None:
    body = await gql(
        client, telephony.headers("kreis-soest", "agent"), ROUTING_GQL, d="02942 500-0", at="2026-03-02T12:45:00+01:00"
    )
    assert "errors" not in body, body
    decision = body["data"]["routingDecision"]
    assert decision["takesCall"] is True and decision["reason"] == "OPERATOR_ABSENT"
    assert decision["tenant"]["slug"] == telephony.slug("stadt-geseke")
    assert decision["serviceNumber"] == {
        "number": "+4929425000",
        "kind": "NUMBER",
        "purpose": "CENTRAL",
        "routingWindow": "OPERATOR_ABSENT",
    }
    ambiguous = await gql(client, telephony.headers("kreis-soest", "agent"), ROUTING_GQL, d="115", c="02921 777")
    assert len(ambiguous["data"]["routingDecision"]["candidates"]) == 2


async def test_geseke_cannot_resolve_soest_numbers_and_others_need_the_grant(client: Client, telephony: World) -> None:
    soest = await routing(client, telephony, "02921 103-0", town="stadt-geseke")
    assert soest["ours"] is False and soest["tenant"] is None
    own = await routing(client, telephony, "02942 500-0", town="stadt-geseke")
    assert own["ours"] is True
    agent = await gql(client, telephony.headers("stadt-geseke", "agent"), ROUTING_GQL, d="02921 103-0")
    assert agent["data"]["routingDecision"]["ours"] is False
    partner = await client.get(
        "/v1/routing", params={"dialled": "02942 500-0"}, headers=telephony.headers("stadt-geseke", "partner")
    )
    assert partner.status_code == 403
    anonymous = await client.get("/v1/routing", params={"dialled": "02942 500-0"})
    assert anonymous.status_code == 401


async def test_a_change_on_one_instance_is_seen_by_the_other_at_once(settings: Settings, telephony: World) -> None:
    system = telephony.headers("kreis-soest", "telephony")
    admin = telephony.headers("kreis-soest", "platform-admin")
    first, second = create_app(settings), create_app(settings)
    async with serve(first, "http://one.local") as one, serve(second, "http://two.local") as two:
        state: AppState = second.state.app_state
        number = unique_number()
        params = {"dialled": number, "at": MONDAY_10}
        assert (await two.get("/v1/routing", params=params, headers=system)).json()["ours"] is False
        created = await add_number(one, telephony, "stadt-soest", number)
        after_create = (await two.get("/v1/routing", params=params, headers=system)).json()
        assert after_create["tenant"]["id"] == str(telephony.tenant_ids["stadt-soest"])
        assert after_create["takesCall"] is True
        changed = await one.patch(
            f"/v1/service-numbers/{created['id']}", headers=admin, json={"routingWindow": "always"}
        )
        assert changed.status_code == 200
        evening = {"dialled": number, "at": "2026-03-02T22:00:00+01:00"}
        assert (await two.get("/v1/routing", params=evening, headers=system)).json()["reason"] == "always_open"
        moved = await one.post(
            f"/v1/service-numbers/{created['id']}/move",
            headers=admin,
            json={"toTenantId": str(telephony.tenant_ids["stadt-geseke"]), "on": "2026-01-01"},
        )
        assert moved.status_code == 200, moved.text
        after_move = (await two.get("/v1/routing", params=params, headers=system)).json()
        assert after_move["tenant"]["id"] == str(telephony.tenant_ids["stadt-geseke"])

        # Control: the second instance really answers from its cached table. A row written
        # behind the services' back (no after-commit invalidation) stays unseen until the
        # generation moves on.
        hidden = unique_number()
        soest = telephony.tenant_ids["stadt-soest"]
        async with tenant_transaction(state.pool, [soest]) as conn:
            await conn.execute(
                """INSERT INTO service_numbers (tenant_id, id, number, kind, purpose, valid)
                   VALUES ($1, gen_random_uuid(), $2, 'number', 'central', daterange('2016-01-01', NULL))""",
                soest,
                hidden,
            )
        behind = {"dialled": hidden, "at": MONDAY_10}
        assert (await two.get("/v1/routing", params=behind, headers=system)).json()["ours"] is False
        await cache.routing_changed(state)
        assert (await two.get("/v1/routing", params=behind, headers=system)).json()["ours"] is True


async def test_an_old_table_answers_while_it_is_replaced_in_the_background(telephony: World) -> None:
    """The age limit is a safety net: reaching it must not make requests wait for a compile
    (a p99 spike once a minute), unless the table is far too old to be trusted."""
    state: AppState = telephony.state
    await cache.routing_changed(state)
    current = await cache.cached_routing(state)
    assert current is not None and await cache.cached_routing(state) is current
    local = cache._local(state)

    current.table.compiled_at -= cache.MAX_AGE_SECONDS + 1  # old, within twice the limit
    assert await cache.cached_routing(state) is current  # answers at once …
    assert local.refreshing is not None
    await local.refreshing  # … while a new table is loaded
    replaced = await cache.cached_routing(state)
    assert replaced is not None and replaced is not current and cache._fresh(replaced)

    replaced.table.compiled_at -= 2 * cache.MAX_AGE_SECONDS + 1  # too old: waited for
    waited = await cache.cached_routing(state)
    assert waited is not None and waited is not replaced and cache._fresh(waited)


@pytest.fixture
def settings_without_redis(settings: Settings) -> Settings:
    return dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")


async def test_redis_down_answers_from_postgresql(
    client: Client, settings_without_redis: Settings, telephony: World
) -> None:
    system = telephony.headers("kreis-soest", "telephony")
    app = create_app(settings_without_redis)
    async with serve(app, "http://noredis.local") as degraded:
        for dialled, caller, at in (
            ("02921 103-0", None, MONDAY_10),
            ("02942 500-0", None, FRONLEICHNAM_10),
            ("02942 500-4711", None, "2026-03-02T12:45:00+01:00"),
            ("115", "02921 555", MONDAY_10),
            ("115", "02942 555", MONDAY_10),
            (unique_number(), None, MONDAY_10),
        ):
            params = {"dialled": dialled, "at": at, **({"caller": caller} if caller else {})}
            answer = await degraded.get("/v1/routing", params=params, headers=system)
            assert answer.status_code == 200, answer.text
            cached = await client.get("/v1/routing", params=params, headers=system)
            assert answer.json() == cached.json(), dialled
        geseke_system = telephony.headers("stadt-geseke", "telephony")
        soest = await degraded.get("/v1/routing", params={"dialled": "02921 103-0"}, headers=geseke_system)
        assert soest.json()["ours"] is False
        figures = await scrape(degraded)  # what tells the engineer on call why routing got slower
    assert value(figures, "bs_routing_lookups_total", source="database") == 7
    assert value(figures, "bs_routing_lookups_total", source="cache") == 0


class HungRedis:
    """A Redis that accepts connections and never answers (a hung server, not a refused port)."""

    def __init__(self) -> None:
        self.received: list[bytearray] = []  # what each connection sent
        self._server: asyncio.Server | None = None
        self._clients: list[asyncio.StreamWriter] = []

    @property
    def connections(self) -> int:
        """Connections for commands; the generation lease's own subscription (decision 009),
        which names itself `lease:…` first and retries on its own schedule, is not one."""
        return sum(1 for sent in self.received if b"lease:" not in sent)

    async def __aenter__(self) -> str:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sent = bytearray()
            self.received.append(sent)
            self._clients.append(writer)
            while data := await reader.read(4096):  # read the commands, answer nothing
                sent += data

        self._server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aexit__(self, *_: object) -> None:
        for writer in self._clients:
            writer.close()
        assert self._server is not None
        self._server.close()


async def test_a_hung_redis_is_waited_for_once_then_skipped(
    client: Client, settings: Settings, telephony: World
) -> None:
    """Every Redis command would wait the socket timeout, several per routing request. After the
    first one timed out, Redis is skipped for a few seconds: the requests after it answer from
    PostgreSQL without opening another connection to the hung server."""
    system = telephony.headers("kreis-soest", "telephony")
    params = {"dialled": "02921 103-0", "at": MONDAY_10}
    expected = (await client.get("/v1/routing", params=params, headers=system)).json()
    hung = HungRedis()
    async with hung as url:
        app = create_app(dataclasses.replace(settings, redis_url=url))
        async with serve(app, "http://hung.local") as degraded:
            answers = [(await degraded.get("/v1/routing", params=params, headers=system)) for _ in range(5)]
            assert [a.status_code for a in answers] == [200] * 5
            assert all(a.json() == expected for a in answers)
            assert app.state.app_state.redis.paused
    assert hung.connections == 1  # the first command's; every later one was skipped
