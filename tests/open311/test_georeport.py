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
    created = await submit(client, soest, **{"attribute[colour]": "red"})
    assert created["service_notice"].startswith("Bürgerbüro")
    one = await client.get(
        f"{BASE}/requests/{created['service_request_id']}.json", params={"jurisdiction_id": soest.slug}
    )
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
    # A page of 100: the sweep's bursts (test_concurrent_requests) put more than 50 before it.
    tickets = (await client.get("/v1/tickets", params={"tenant": soest.slug, "first": 100}, headers=staff)).json()[
        "items"
    ]
    ticket = next(t for t in tickets if str(t["number"]) == created["service_request_id"])
    assert ticket["source"] == "partner" and ticket["leikaKey"] == LITTER
    detail = (await client.get(f"/v1/tickets/{ticket['id']}", headers=staff)).json()
    personal = detail["personalData"]
    assert personal["email"] == EMAIL and personal["name"] == f"{NAME_FIRST} {NAME_LAST}"
    assert personal["consent"] is True and personal["preferredChannel"] == "email"
    assert personal["callbackNumber"] == "+492921123456"
    assert DESCRIPTION in personal["concern"] and "Art des Abfalls: Sperrmüll" in personal["concern"]
    assert "Menge: etwa 2 m³" in personal["concern"] and "colour" not in personal["concern"]  # not asked: left out
    # Mark-a-Spot follows the status notes.
    moved = await client.post(f"/v1/tickets/{ticket['id']}/status", json={"status": "in_progress"}, headers=staff)
    assert moved.status_code == 200, moved.text
    again = await client.get(
        f"{BASE}/requests/{created['service_request_id']}.json", params={"jurisdiction_id": soest.slug}
    )
    assert again.json()[0]["status_notes"] == "in progress at Bürgerbüro"


async def _count(client: Client, town: Town) -> int:
    listed = await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": town.slug})
    assert listed.status_code == 200, listed.text
    return len(listed.json())


async def test_bad_reports_are_refused_with_the_error_array_and_change_nothing(client: Client, soest: Town) -> None:
    before = await _count(client, soest)
    cases: list[tuple[dict[str, str], str]] = [
        ({"service_code": ""}, "service_code"),  # missing
        ({"service_code": "not a key"}, "service_code"),
        ({"lat": "51.57"}, "lat"),  # without long
        ({"lat": "north", "long": "8.1"}, "lat"),
        ({"lat": "91", "long": "8.1"}, "lat"),
        ({"lat": "nan", "long": "8.1"}, "lat"),
        ({"address_string": ""}, "location"),  # no location at all
        ({"phone": "call me maybe"}, "phone"),
        ({"email": "not-an-address"}, "email"),
        ({"attribute[kind]": ""}, "kind"),  # required attribute missing
        ({"attribute[kind]": "gold"}, "kind"),  # not one of the values
        ({"address_string": "Brüderstraße\x0712"}, "address_string"),  # a bell: XML could not hold it
        ({"first_name": "Hanne\nlore"}, "name"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"description": "x" * 4001}, "description"),
    ]
    for overrides, word in cases:
        response = await client.post(f"{BASE}/requests.json", data=report(soest, **overrides))
        description = error(response, 400)
        assert word in description or word.replace("_", " ") in description, (overrides, description)
    # A service_code the town does not offer is not found (the specification's 404).
    assert "service_code" in error(
        await client.post(f"{BASE}/requests.json", data=report(soest, service_code="12345")), 404
    )
    # Unreadable JSON is a 400 as well.
    broken = await client.post(
        f"{BASE}/requests.json", content=b"{not json", headers={"content-type": "application/json"}
    )
    error(broken, 400)
    assert await _count(client, soest) == before


async def test_submitting_needs_a_valid_key_of_the_town(
    client: Client, world: World, soest: Town, geseke: Town
) -> None:
    before = await _count(client, soest)
    error(await client.post(f"{BASE}/requests.json", data=report(soest, api_key="")), 403)
    error(await client.post(f"{BASE}/requests.json", data=report(soest, api_key="o311_guessed")), 403)
    # Geseke's partner cannot hand reports to Soest: the town is not found for it.
    error(await client.post(f"{BASE}/requests.json", data=report(soest, api_key=geseke.key)), 404)
    # A revoked key is refused from then on.
    admin = world.headers(SOEST, "town-admin")
    issued = await client.post(f"/v1/tenants/{soest.slug}/open311-keys", json={"description": "Alt"}, headers=admin)
    key = issued.json()["key"]
    await submit(client, soest, api_key=key)
    revoked = await client.post(
        f"/v1/tenants/{soest.slug}/open311-keys/{issued.json()['apiKey']['id']}/revocation", headers=admin
    )
    assert revoked.status_code == 200 and revoked.json()["revokedAt"] is not None, revoked.text
    error(await client.post(f"{BASE}/requests.json", data=report(soest, api_key=key)), 403)
    assert await _count(client, soest) == before + 1


async def test_keys_are_shown_once_and_stored_hashed(client: Client, world: World, soest: Town) -> None:
    admin = world.headers(SOEST, "town-admin")
    listed = await client.get(f"/v1/tenants/{soest.slug}/open311-keys", headers=admin)
    assert listed.status_code == 200, listed.text
    assert soest.key not in listed.text
    mine = next(k for k in listed.json() if k["id"] == soest.key_id)
    assert soest.key.startswith(mine["keyPrefix"]) and mine["description"] == "Klarschiff"
    async with world.state.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM open311_api_keys WHERE key_prefix = $1", soest.key)
    assert stored == 0
    # Another town's admin does not find Soest's keys; agents may not issue keys.
    other = await client.get(
        f"/v1/tenants/{soest.slug}/open311-keys", headers=world.headers("stadt-geseke", "town-admin")
    )
    assert other.status_code == 404
    refused = await client.post(
        f"/v1/tenants/{soest.slug}/open311-keys", json={"description": "x"}, headers=world.headers(SOEST, "agent")
    )
    assert refused.status_code == 403
    blank = await client.post(f"/v1/tenants/{soest.slug}/open311-keys", json={"description": "  "}, headers=admin)
    assert blank.status_code == 422


async def test_a_partners_bearer_token_may_submit_as_json_and_roles_without_the_grant_may_not(
    client: Client, world: World, soest: Town
) -> None:
    body = {k: v for k, v in report(soest).items() if k != "api_key" and not k.startswith("attribute[")}
    body["attribute"] = {"kind": "bags"}  # type: ignore[assignment]
    response = await client.post(f"{BASE}/requests.json", json=body, headers=world.headers(SOEST, "partner"))
    assert response.status_code == 201, response.text
    conforms("request_created", response.json())
    refused = await client.post(f"{BASE}/requests.json", json=body, headers=world.headers(SOEST, "editor"))
    assert "not allowed" in error(refused, 403)
    invalid = await client.post(f"{BASE}/requests.json", json=body, headers={"Authorization": "Bearer nonsense"})
    error(invalid, 401)


async def test_requests_by_ids_status_service_and_dates(client: Client, world: World, soest: Town) -> None:
    first = await submit(client, soest)
    second = await submit(client, soest, service_code=POTHOLE, lat="51.571234", long="8.105678", address_string="")
    ids = f"{first['service_request_id']},{second['service_request_id']}"
    both = await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, "service_request_id": ids})
    conforms("service_requests", both.json())
    assert {r["service_request_id"] for r in both.json()} == set(ids.split(","))
    located = next(r for r in both.json() if r["service_code"] == POTHOLE)
    assert (located["lat"], located["long"], located["address"]) == (51.571234, 8.105678, None)
    potholes = await client.get(
        f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, "service_code": POTHOLE}
    )
    conforms("service_requests", potholes.json())
    assert potholes.json() and {r["service_code"] for r in potholes.json()} == {POTHOLE}
    # Close the first: the department answers and closes it.
    staff = world.headers(SOEST, "department")
    tickets = (await client.get("/v1/tickets", params={"tenant": soest.slug, "first": 100}, headers=staff)).json()
    ticket = next(t for t in tickets["items"] if str(t["number"]) == first["service_request_id"])
    await client.post(f"/v1/tickets/{ticket['id']}/status", json={"status": "in_progress"}, headers=staff)
    reached = await client.post(
        f"/v1/tickets/{ticket['id']}/callback-attempts",
        json={"channel": "email", "reached": True, "markAnswered": True},
        headers=staff,
    )
    assert reached.status_code == 201, reached.text
    moved = await client.post(f"/v1/tickets/{ticket['id']}/status", json={"status": "closed"}, headers=staff)
    assert moved.status_code == 200, moved.text
    closed = await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, "status": "closed"})
    conforms("service_requests", closed.json())
    assert first["service_request_id"] in {r["service_request_id"] for r in closed.json()}
    assert {r["status"] for r in closed.json()} == {"closed"}
    assert (
        next(r for r in closed.json() if r["service_request_id"] == first["service_request_id"])["status_notes"]
        == "done"
    )
    still_open = await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, "status": "open"})
    assert first["service_request_id"] not in {r["service_request_id"] for r in still_open.json()}
    # A window in the past holds none of them; a bad or reversed window is a 400.
    past = await client.get(
        f"{BASE}/requests.json",
        params={
            "jurisdiction_id": soest.slug,
            "start_date": "2010-01-01T00:00:00Z",
            "end_date": "2010-02-01T00:00:00Z",
        },
    )
    assert past.status_code == 200 and past.json() == []
    for params in (
        {"start_date": "yesterday"},
        {"start_date": "2010-01-01T00:00:00"},  # no offset
        {"start_date": "2010-13"},  # no such month
        {"start_date": "20x0"},
        {"start_date": "２０１０"},  # digits, but not ASCII ones
        {"end_date": "2010-02-30"},
        {"start_date": "2010-02-01T00:00:00Z", "end_date": "2010-01-01T00:00:00Z"},
        {"status": "pending"},
        {"service_request_id": "1,two"},
        {"service_code": "x"},
    ):
        error(await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, **params}), 400)
    error(await client.get(f"{BASE}/requests/999999999.json", params={"jurisdiction_id": soest.slug}), 404)
    error(await client.get(f"{BASE}/requests/abc.json", params={"jurisdiction_id": soest.slug}), 404)


async def test_tokens_name_the_request(client: Client, soest: Town) -> None:
    created = await submit(client, soest)
    response = await client.get(f"{BASE}/tokens/{created['token']}.json", params={"jurisdiction_id": soest.slug})
    assert response.status_code == 200, response.text
    conforms("tokens", response.json())
    assert response.json() == [{"service_request_id": created["service_request_id"], "token": created["token"]}]
    xml = etree.fromstring(
        (await client.get(f"{BASE}/tokens/{created['token']}.xml", params={"jurisdiction_id": soest.slug})).content
    )
    assert xml.findtext("request/service_request_id") == created["service_request_id"]
    error(await client.get(f"{BASE}/tokens/not-a-token.json", params={"jurisdiction_id": soest.slug}), 404)


async def test_xml_answers_and_errors_are_shaped_as_the_specification_shows(client: Client, soest: Town) -> None:
    response = await client.post(f"{BASE}/requests.xml", data=report(soest))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("text/xml")
    created = etree.fromstring(response.content)
    assert created.tag == "service_requests"
    number = created.findtext("request/service_request_id")
    assert number and created.findtext("request/token")
    listed = etree.fromstring(
        (await client.get(f"{BASE}/requests/{number}.xml", params={"jurisdiction_id": soest.slug})).content
    )
    request = listed.find("request")
    assert request is not None and request.findtext("status") == "open"
    assert request.findtext("agency_responsible") == "Bürgerbüro"
    assert all(request.find(name) is None for name in ("description", "email", "phone", "first_name", "last_name"))
    refused = await client.post(f"{BASE}/requests.xml", data=report(soest, service_code=""))
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/xml")
    errors = etree.fromstring(refused.content)
    assert errors.tag == "errors" and errors.findtext("error/code") == "400" and errors.findtext("error/description")
    unknown_format = await client.get(f"{BASE}/requests/{number}.csv", params={"jurisdiction_id": soest.slug})
    error(unknown_format, 404)


async def test_the_town_must_be_named_when_several_offer_open311(client: Client, soest: Town, geseke: Town) -> None:
    description = error(await client.get(f"{BASE}/services.json"), 400)
    assert "jurisdiction_id" in description
    error(await client.get(f"{BASE}/services.json", params={"jurisdiction_id": "atlantis"}), 404)
    # Refused at the door (decision 019), still as GeoReport's error array.
    assert "control" in error(await client.get(f"{BASE}/services.json", params={"jurisdiction_id": "a\x00b"}), 400)
    # The key names its town: jurisdiction_id may be left out, or must match.
    keyed = await client.get(f"{BASE}/services.json", params={"api_key": geseke.key})
    assert keyed.status_code == 200, keyed.text
    error(await client.get(f"{BASE}/services.json", params={"api_key": geseke.key, "jurisdiction_id": soest.slug}), 404)


async def test_german_error_descriptions_follow_accept_language(client: Client, soest: Town) -> None:
    response = await client.post(
        f"{BASE}/requests.json", data=report(soest, service_code="12345"), headers={"Accept-Language": "de"}
    )
    assert error(response, 404) == "service_code nicht gefunden"
    assert response.headers["content-language"] == "de"


async def test_the_town_admin_keeps_the_services_and_bad_definitions_are_refused(
    client: Client, world: World, soest: Town
) -> None:
    admin = world.headers(SOEST, "town-admin")
    services = f"/v1/tenants/{soest.slug}/open311-services"
    listed = await client.get(services, headers=admin)
    assert listed.status_code == 200 and {s["serviceCode"] for s in listed.json()} >= {POTHOLE, LITTER}
    listing = {"code": "kind", "datatype": "singlevaluelist", "description": "Art"}
    for code, body in (
        ("abc", {"serviceName": "Keine Ziffern"}),
        ("99000000000001", {"serviceName": "   "}),
        ("99000000000001", {"serviceName": "Liste ohne Werte", "attributes": [listing]}),
        (
            "99000000000001",
            {"serviceName": "Doppelt", "attributes": [{**listing, "values": [{"key": "a", "name": "A"}]}] * 2},
        ),
        ("99000000000001", {"serviceName": "Fremde Abteilung", "departmentId": "00000000-0000-0000-0000-000000000311"}),
        ("99000000000001", {"serviceName": "Glocke\x07"}),
        ("99000000000001", {"serviceName": "Unbekannt", "colour": "red"}),
    ):
        response = await client.put(f"{services}/{code}", json=body, headers=admin)
        assert response.status_code == 422, (code, body, response.text)
    # Another town's admin does not find Soest; removing twice finds nothing the second time.
    foreign = await client.put(
        f"{services}/99000000000002", json={"serviceName": "x"}, headers=world.headers("stadt-geseke", "town-admin")
    )
    assert foreign.status_code == 404
    added = await client.put(f"{services}/99000000000002", json={"serviceName": "Kurz da"}, headers=admin)
    assert added.status_code == 200, added.text
    assert (await client.delete(f"{services}/99000000000002", headers=admin)).status_code == 204
    assert (await client.delete(f"{services}/99000000000002", headers=admin)).status_code == 404
    public = await client.get(f"{BASE}/services.json", params={"jurisdiction_id": soest.slug})
    assert "99000000000002" not in {s["service_code"] for s in public.json()}


async def test_odd_bodies_are_400s_never_500s(client: Client, soest: Town) -> None:
    before = await _count(client, soest)
    json_bodies: list[Any] = [
        [],
        "text",
        {"api_key": 311, "jurisdiction_id": soest.slug, "service_code": LITTER},
        {"api_key": soest.key, "jurisdiction_id": ["a"], "service_code": LITTER},
        {"api_key": soest.key, "service_code": 99108022000000, "address_string": "x", "attribute": {"kind": "bulky"}},
        {"api_key": soest.key, "service_code": LITTER, "address_string": "x", "attribute": ["kind"]},
        {"api_key": soest.key, "service_code": LITTER, "address_string": "x", "attribute": {"kind": {"a": 1}}},
        {"api_key": soest.key, "service_code": LITTER, "lat": "1e400", "long": "8", "attribute": {"kind": "bulky"}},
        {"api_key": soest.key, "service_code": LITTER, "address_string": ["x"], "attribute": {"kind": "bulky"}},
    ]
    for body in json_bodies:
        response = await client.post(f"{BASE}/requests.json", json=body)
        assert response.status_code in (400, 403), (body, response.status_code, response.text)
        conforms("errors", response.json())
    odd = [
        {"content": b"\xff\xfe garbage", "headers": {"content-type": "text/plain"}},
        {
            "content": b"api_key=" + soest.key.encode() + b"&service_code=%ff%fe",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        {"files": {"photo": ("a.jpg", b"\xff\xd8", "image/jpeg")}, "data": {**report(soest)}},
        {"data": {**report(soest), "attribute[kind][]": ["bulky", "bags"]}},
    ]
    for arguments in odd:
        response = await client.post(f"{BASE}/requests.json", **arguments)  # type: ignore[arg-type]
        assert response.status_code in (201, 400, 403), (arguments, response.status_code, response.text)
    assert await _count(client, soest) <= before + 1  # only the multipart report (its photo is ignored)
