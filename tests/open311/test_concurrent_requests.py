"""GeoReport submissions at once (the second concurrency sweep): partner clients' retries and
two towns' clients posting together, in both formats, while maps read the lists. GeoReport has
no idempotency (decision 030): identical key-signed POSTs are so many reports, each its own
ticket with its own number; a partner's bearer token may send `Idempotency-Key` and then makes
one. Never a 500, never the backstop's "try again"."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.http.test_concurrent_writes import _no_deadlock
from tests.open311.conftest import BASE, GESEKE, SOEST, Town, report
from tests.support.world import World

Client = httpx.AsyncClient
BURST = 6


def _numbers(responses: list[httpx.Response]) -> list[str]:
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses if r.status_code >= 500]
    _no_deadlock(responses)
    return [r.json()[0]["service_request_id"] for r in responses if r.status_code == 201 and r.text.startswith("[")]


async def test_identical_reports_at_once_in_both_formats_are_each_a_ticket_and_lists_read_meanwhile(
    client: Client, soest: Town, geseke: Town
) -> None:
    towns = [soest, geseke] * (BURST // 2)
    marker = uuid.uuid4().hex[:8]
    posts = [
        client.post(f"{BASE}/requests.{fmt}", data=report(town, address_string=f"Burst {marker}"))
        for town in towns
        for fmt in ("json", "xml")
    ]
    reads = [client.get(f"{BASE}/requests.json", params={"jurisdiction_id": town.slug}) for town in (soest, geseke)]
    responses = await asyncio.gather(*posts, *reads)
    assert all(r.status_code == 201 for r in responses[: len(posts)]), [r.text for r in responses]
    assert all(r.status_code == 200 for r in responses[len(posts) :]), [r.text for r in responses]
    _no_deadlock(list(responses))
    for town in (soest, geseke):
        ours = [r for r, t in zip(responses, [t for t in towns for _ in range(2)], strict=False) if t is town]
        numbers = [r.json()[0]["service_request_id"] for r in ours if r.text.startswith("[")]
        numbers += [r.text.split("<service_request_id>")[1].split("<")[0] for r in ours if r.text.startswith("<")]
        assert len(set(numbers)) == len(ours) == BURST  # one ticket number each, none shared
        listed = await client.get(
            f"{BASE}/requests.json", params={"jurisdiction_id": town.slug, "service_request_id": ",".join(numbers)}
        )
        assert {r["service_request_id"] for r in listed.json()} == set(numbers)
        assert {r["address"] for r in listed.json()} == {f"Burst {marker}"}


async def test_a_key_of_one_town_naming_another_at_once_with_its_own_is_refused_and_makes_nothing(
    client: Client, soest: Town, geseke: Town
) -> None:
    marker = uuid.uuid4().hex[:8]
    bodies = [report(geseke, address_string=marker), report(geseke, jurisdiction_id=soest.slug, address_string=marker)]
    responses = await asyncio.gather(*(client.post(f"{BASE}/requests.json", data=bodies[i % 2]) for i in range(BURST)))
    assert [r.status_code for r in responses] == [201, 404] * (BURST // 2), [r.text for r in responses]
    numbers = _numbers(list(responses))
    listed = await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug})
    assert marker not in listed.text
    assert len(set(numbers)) == BURST // 2


async def test_a_partners_retries_with_one_idempotency_key_at_once_make_one_ticket(
    client: Client, world: World, soest: Town
) -> None:
    body = {k: v for k, v in report(soest).items() if k != "api_key" and not k.startswith("attribute[")}
    body["attribute"] = {"kind": "bags"}  # type: ignore[assignment]
    for town in (SOEST, GESEKE):
        headers = {**world.headers(town, "partner"), "Idempotency-Key": str(uuid.uuid4())}
        responses = await asyncio.gather(
            *(client.post(f"{BASE}/requests.json", json=body, headers=headers) for _ in range(BURST))
        )
        numbers = _numbers(list(responses))
        if town == SOEST:  # its own town: one report, the retries answered again or told it still runs
            assert {r.status_code for r in responses} <= {201, 409} and len(set(numbers)) == 1, [
                r.text for r in responses
            ]
            replays = [r for r in responses if r.status_code == 201]
            assert len({r.json()[0]["token"] for r in replays}) == 1
        else:  # Geseke's partner naming Soest: refused alike, nothing made
            assert {r.status_code for r in responses} <= {403, 404, 409} and numbers == [], [r.text for r in responses]
