"""The XZuFi import of messages in the real network's shapes (decision 024, amendment
2026-12-07): a PVOG page with responsibilities sent apart from their office and deletions by
`klasse`, against the real database."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from backend.knowledge.index_worker import IndexWorker
from backend.state import unit_of_work
from tests.knowledge.conftest import KREIS, SOEST
from tests.knowledge.test_xzufi_bulk import KEYS, SNAPSHOT, _import, _neutral, _operator_world, _snapshot
from tests.knowledge.xzufi_messages import NS, suffix
from tests.knowledge.xzufi_real_messages import hundesteuer_befreiung, pvog_page
from tests.support.world import World, system_principal

IMPORT = "/v1/knowledge/xzufi-imports"


def shared_world_safe(message: str, tag: str) -> str:
    """The message with its dog-tax words made this test's own, so that searches of other tests in
    the session's shared world ("Hundesteuer …") do not find these services first."""
    return message.replace("Hundesteuer", f"Zwinger{tag}")


async def imported(client: httpx.AsyncClient, world: World, text: str) -> dict[str, Any]:
    response = await client.post(
        IMPORT,
        content=text.encode(),
        headers={**world.headers(KREIS, "platform-admin"), "Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def routes_of(client: httpx.AsyncClient, world: World, town: str) -> dict[str, str]:
    response = await client.get(
        f"/v1/tenants/{world.slug(town)}/ticket-routes", headers=world.headers(KREIS, "platform-admin")
    )
    assert response.status_code == 200, response.text
    return {r["keyPrefix"]: r["departmentName"] for r in response.json()["routes"]}


async def office_data(world: World, office_id: str) -> dict[str, Any]:
    kreis = world.tenant_ids["kreis-soest"]
    admin = system_principal(kreis, set(world.tenant_ids.values()))
    async with unit_of_work(world.state, admin, readonly=True) as uow:
        data: dict[str, Any] = await uow.conn.fetchval(
            "SELECT data FROM xzufi_objects WHERE tenant_id = $1 AND kind = 'organisationseinheit' AND xzufi_id = $2",
            kreis,
            office_id,
        )
    return data


async def test_a_pvog_page_with_responsibilities_sent_apart_routes_the_towns_calls(
    client: httpx.AsyncClient, world: World
) -> None:
    tag = suffix()
    office_name = f"Steueramt Soest {tag}"
    # The session's shared world is searched by other tests: the dog tax goes in under a word of its own.
    page = shared_world_safe(pvog_page(tag), tag).replace("Steueramt Soest", office_name)
    report = await imported(client, world, page)
    assert (report["created"], report["officesCreated"], report["responsibilities"]) == (1, 1, 1), report
    assert report["deletesUnknown"] == 2  # a service and a responsibility never received
    assert report["unknownElements"] == 2  # the onlinedienst and its deletion
    assert [(e["kind"], e["xzufiId"]) for e in report["errors"]] == [("zustaendigkeit", f"L100040.ZS.{tag}4")]
    routes = await routes_of(client, world, SOEST)
    assert routes["99037004000000"] == office_name  # the responsibility inside the office (ARS → Soest)
    office_id = f"L100040.OE.{tag}2"
    data = await office_data(world, office_id)
    assert f"L100040.LB.{tag}6" in data["leistungen"]  # sent apart, for a service not received yet

    # The service the responsibility sent apart names arrives on its own, under another prefix:
    # the office it named becomes the route for Soest.
    report = await imported(client, world, shared_world_safe(hundesteuer_befreiung(tag), tag))
    assert (report["created"], report["responsibilities"], report["errors"]) == (1, 1, []), report
    assert (await routes_of(client, world, SOEST))["99037003000000"] == office_name

    # The same page again changes nothing; a new version of the office keeps what was sent apart.
    again = await imported(client, world, page)
    assert (again["unchanged"], again["officesUnchanged"], again["created"]) == (1, 1, 0), again
    changed = page.replace("Termine nach Vereinbarung.", "Termine nach Vereinbarung, auch telefonisch.")
    assert (await imported(client, world, changed))["officesUpdated"] == 1
    assert f"L100040.LB.{tag}6" in (await office_data(world, office_id))["leistungen"]

    # `loesche klasse="Zustaendigkeit"` takes it off the office; the town's route stays for editors.
    gone = (
        f'<?xml version="1.0"?><xzufi.transfer xmlns="{NS}" xzufiVersion="2.2.0">'
        f'<loesche klasse="Zustaendigkeit"><id>L100040.ZS.{tag}5</id></loesche></xzufi.transfer>'
    )
    report = await imported(client, world, gone)
    assert (report["deletesUnknown"], report["errors"]) == (0, []), report
    data = await office_data(world, office_id)
    assert f"L100040.LB.{tag}6" not in data["leistungen"]
    assert f"L100040.LB.{tag}1" in data["leistungen"]


async def test_both_import_paths_agree_on_a_pvog_page(world: World) -> None:
    """Bulk (new services together) and one by one leave the same knowledge, routes and objects
    from a page in the real shapes and the service its responsibility sent apart names."""
    state = world.state
    tag = suffix()
    texts = [
        pvog_page(tag).replace("99037004000000", KEYS[0]),
        hundesteuer_befreiung(tag).replace("99037003000000", KEYS[3]),
    ]
    reports: dict[bool, list[Any]] = {}
    snapshots: dict[bool, dict[str, list[str]]] = {}
    for bulk in (True, False):
        ids, admin = await _operator_world(state)
        done = [await _import(state, admin, text, bulk=bulk) for text in texts]
        if bulk:
            await IndexWorker(state).drain()  # the search index the bulk path queued
        reports[bulk] = [_neutral(msgspec.to_builtins(r), {}, tag) for r in done]
        snapshots[bulk] = await _snapshot(state, admin, ids, tag)
    first, second = reports[True]
    assert (first["created"], first["officesCreated"], first["responsibilities"]) == (1, 1, 1), first
    assert (second["created"], second["responsibilities"]) == (1, 1), second
    assert reports[True] == reports[False]
    for what in SNAPSHOT:
        assert snapshots[True][what] == snapshots[False][what], what
    assert len(snapshots[True]["routes"]) == 2
