"""GeoReport v2 as partner clients use it: every answer checked against the schemas written from
the specification, JSON and XML, errors as GeoReport's error array with the HTTP status."""

from __future__ import annotations

from typing import Any

import httpx
from lxml import etree

from tests.open311.conftest import (
    BASE,
    DESCRIPTION,
    EMAIL,
    LITTER,
    NAME_FIRST,
    NAME_LAST,
    POTHOLE,
    SOEST,
    Town,
    conforms,
    report,
    submit,
)
from tests.support.world import World

Client = httpx.AsyncClient
PERSONAL = (NAME_FIRST, NAME_LAST, EMAIL, "123456", DESCRIPTION)


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    conforms("errors", response.json())
    assert response.json()[0]["code"] == status
    description: str = response.json()[0]["description"]
    return description


async def test_discovery_in_both_formats(client: Client) -> None:
    response = await client.get(f"{BASE}/discovery.json")
    assert response.status_code == 200, response.text
    conforms("discovery", response.json())
    assert response.json()["endpoints"][0]["url"].endswith("/open311/v2/")
    xml = etree.fromstring((await client.get(f"{BASE}/discovery.xml")).content)
    assert xml.tag == "discovery"
    assert [f.text for f in xml.iterfind("endpoints/endpoint/formats/format")] == ["application/json", "text/xml"]


async def test_services_list_the_towns_offer_with_metadata_where_attributes_are_asked(
    client: Client, soest: Town
) -> None:
    response = await client.get(f"{BASE}/services.json", params={"jurisdiction_id": soest.slug})
    assert response.status_code == 200, response.text
    conforms("services", response.json())
    by_code = {s["service_code"]: s for s in response.json()}
    assert set(by_code) == {POTHOLE, LITTER}
    assert by_code[LITTER]["metadata"] is True and by_code[POTHOLE]["metadata"] is False
    assert by_code[LITTER]["keywords"] == "Müll,Sperrmüll" and by_code[LITTER]["group"] == "Sauberkeit"
    xml = etree.fromstring((await client.get(f"{BASE}/services.xml", params={"jurisdiction_id": soest.slug})).content)
    assert xml.tag == "services"
    assert {s.findtext("service_code"): s.findtext("metadata") for s in xml.iterfind("service")} == {
        POTHOLE: "false",
        LITTER: "true",
    }


async def test_service_definition(client: Client, soest: Town) -> None:
    response = await client.get(f"{BASE}/services/{LITTER}.json", params={"jurisdiction_id": soest.slug})
    assert response.status_code == 200, response.text
    conforms("service_definition", response.json())
    kind = response.json()["attributes"][0]
    assert (kind["code"], kind["required"], kind["datatype"]) == ("kind", True, "singlevaluelist")
    assert kind["values"] == [{"key": "bulky", "name": "Sperrmüll"}, {"key": "bags", "name": "Müllsäcke"}]
    xml = etree.fromstring(
        (await client.get(f"{BASE}/services/{LITTER}.xml", params={"jurisdiction_id": soest.slug})).content
    )
    assert xml.tag == "service_definition"
    assert [v.findtext("key") for v in xml.iterfind("attributes/attribute/values/value")] == ["bulky", "bags"]
    missing = await client.get(f"{BASE}/services/12345.json", params={"jurisdiction_id": soest.slug})
    error(missing, 404)


async def test_a_klarschiff_report_becomes_a_ticket_and_can_be_followed(
    client: Client, world: World, soest: Town
) -> None:
    created = await submit(client, soest)
    assert created["service_notice"].startswith("Bürgerbüro")
    one = await client.get(f"{BASE}/requests/{created['service_request_id']}.json", params={"jurisdiction_id": soest.slug})
    assert one.status_code == 200, one.text
    conforms("service_requests", one.json())
    request: dict[str, Any] = one.json()[0]
    assert request["status"] == "open"
    assert request["agency_responsible"] == "Bürgerbüro"
    assert request["status_notes"] == "forwarded to Bürgerbüro"
    assert request["address"] == "Brüderstraße 12, 59494 Soest" and request["lat"] is None
    assert request["expected_datetime"] > request["requested_datetime"]
    for value in PERSONAL:
        assert value not in one.text
    # The department sees the citizen's data as in every ticket (with consent, audited).
    staff = world.headers(SOEST, "department")
    tickets = (await client.get("/v1/tickets", params={"tenant": soest.slug}, headers=staff)).json()["items"]
    ticket = next(t for t in tickets if str(t["number"]) == created["service_request_id"])
    assert ticket["source"] == "partner" and ticket["leikaKey"] == LITTER
    detail = (await client.get(f"/v1/tickets/{ticket['id']}", headers=staff)).json()
    personal = detail["personalData"]
    assert personal["email"] == EMAIL and personal["name"] == f"{NAME_FIRST} {NAME_LAST}"
    assert personal["consent"] is True and personal["preferredChannel"] == "email"
    assert personal["callbackNumber"] == "+492921123456"
    assert DESCRIPTION in personal["concern"] and "Art des Abfalls: Sperrmüll" in personal["concern"]
    # Mark-a-Spot follows the status notes.
    moved = await client.post(f"/v1/tickets/{ticket['id']}/status", json={"status": "in_progress"}, headers=staff)
    assert moved.status_code == 200, moved.text
    again = await client.get(f"{BASE}/requests/{created['service_request_id']}.json", params={"jurisdiction_id": soest.slug})
    assert again.json()[0]["status_notes"] == "in progress at Bürgerbüro"
