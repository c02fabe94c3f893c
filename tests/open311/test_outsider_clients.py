"""GeoReport v2 as outside clients really send it (FixMyStreet's Open311.pm, the open311 ruby
and python clients, Mark-a-Spot): unencoded `+` offsets, W3C dates without a time, both
statuses, the api_key and jurisdiction in the query of a POST, XML everywhere."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from lxml import etree

from tests.open311.conftest import BASE, LITTER, POTHOLE, SOEST, Town, conforms, report, submit
from tests.support.world import World

LAMP = "99108033000000"  # a made-up LeiKa key: Straßenbeleuchtung

Client = httpx.AsyncClient


def _ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    conforms("service_requests", response.json())
    return {r["service_request_id"] for r in response.json()}


@pytest.mark.parametrize(
    "start",
    [
        "2020-01-01T00:00:00+01:00",  # FixMyStreet sends the offset unencoded: `+` reads as a space
        "2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00.000Z",  # the ruby client's iso8601(3)
        "2020-01-01T00:00Z",  # W3C allows minutes without seconds
        "2020-01-01",  # W3C "complete date"
        "2020-01",  # W3C "year and month"
        "2020",  # W3C "year"
    ],
)
async def test_start_dates_as_clients_write_them(client: Client, soest: Town, start: str) -> None:
    created = await submit(client, soest)
    # A literal query string, as a client that does not percent-encode builds it.
    response = await client.get(f"{BASE}/requests.json?jurisdiction_id={soest.slug}&start_date={start}")
    assert created["service_request_id"] in _ids(response)


@pytest.mark.parametrize(
    "end",
    ["2020-01-31T23:59:59+01:00", "2020-01-31T23:59:59-05:00", "2020-01-31", "2020-01", "2020"],
)
async def test_end_dates_in_the_past_hold_nothing_new(client: Client, soest: Town, end: str) -> None:
    await submit(client, soest)
    response = await client.get(
        f"{BASE}/requests.json?jurisdiction_id={soest.slug}&start_date=2020-01-01&end_date={end}"
    )
    assert _ids(response) == set()


async def test_a_day_as_end_date_includes_the_whole_day(client: Client, soest: Town) -> None:
    created = await submit(client, soest)
    one = await client.get(
        f"{BASE}/requests/{created['service_request_id']}.json", params={"jurisdiction_id": soest.slug}
    )
    day = one.json()[0]["requested_datetime"][:10]  # the Berlin date of the request
    response = await client.get(
        f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, "start_date": day, "end_date": day}
    )
    assert created["service_request_id"] in _ids(response)


async def test_both_statuses_and_the_status_case_clients_send(client: Client, soest: Town) -> None:
    created = await submit(client, soest)
    for status in ("open,closed", "open, closed", "OPEN", "Open"):
        response = await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, "status": status})
        assert created["service_request_id"] in _ids(response), status


async def test_post_with_key_and_jurisdiction_in_the_query(client: Client, soest: Town) -> None:
    body = report(soest)
    key, town = body.pop("api_key"), body.pop("jurisdiction_id")
    response = await client.post(
        f"{BASE}/requests.json",
        params={"api_key": key, "jurisdiction_id": town},
        data=body,
        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert response.status_code == 201, response.text
    conforms("request_created", response.json())
    wrong = await client.post(f"{BASE}/requests.json", params={"api_key": key, "jurisdiction_id": "nowhere"}, data=body)
    assert wrong.status_code == 404, wrong.text
    conforms("errors", wrong.json())


async def test_a_mark_a_spot_report_with_coordinates_and_a_photo_url(client: Client, soest: Town) -> None:
    created = await submit(
        client,
        soest,
        service_code=POTHOLE,
        address_string="",
        lat="51.5711",
        long="8.1064",
        media_url="https://example.org/photos/1.jpg",
        email="",
        first_name="",
        last_name="",
        phone="",
    )
    one = await client.get(
        f"{BASE}/requests/{created['service_request_id']}.json", params={"jurisdiction_id": soest.slug}
    )
    request = one.json()[0]
    assert (request["lat"], request["long"], request["media_url"]) == (
        51.5711,
        8.1064,
        "https://example.org/photos/1.jpg",
    )


async def test_xml_for_services_definition_and_one_request(client: Client, soest: Town) -> None:
    services = await client.get(f"{BASE}/services.xml", params={"jurisdiction_id": soest.slug})
    assert services.status_code == 200 and services.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(services.content)
    assert root.tag == "services" and LITTER in [s.findtext("service_code") for s in root.findall("service")]
    definition = etree.fromstring(
        (await client.get(f"{BASE}/services/{LITTER}.xml", params={"jurisdiction_id": soest.slug})).content
    )
    assert definition.tag == "service_definition"
    values = definition.findall("attributes/attribute/values/value")
    assert [v.findtext("key") for v in values] == ["bulky", "bags"]
    created = await submit(client, soest)
    one = etree.fromstring(
        (
            await client.get(
                f"{BASE}/requests/{created['service_request_id']}.xml", params={"jurisdiction_id": soest.slug}
            )
        ).content
    )
    assert one.tag == "service_requests" and one.findtext("request/status") == "open"
    missing = await client.get(f"{BASE}/services/123.xml", params={"jurisdiction_id": soest.slug})
    assert missing.status_code == 404 and etree.fromstring(missing.content).findtext("error/code") == "404"


async def test_spec_error_codes(client: Client, soest: Town) -> None:
    no_code = report(soest)
    del no_code["service_code"]
    for data, status in (
        (no_code, 400),
        (report(soest, api_key="o311_wrong"), 403),
        (report(soest, service_code="12345"), 404),
        (report(soest, **{"attribute[kind]": "glass"}), 400),
        (report(soest, jurisdiction_id="nowhere"), 404),
    ):
        response = await client.post(f"{BASE}/requests.json", data=data)
        assert response.status_code == status, (data, response.text)
        conforms("errors", response.json())
        assert response.json()[0]["code"] == status


async def test_friday_afternoon_is_expected_monday_afternoon(client: Client, soest: Town) -> None:
    """`expected_datetime` is the callback deadline: 24 hours on working days (decision 041)."""
    with time_machine.travel(datetime(2027, 1, 15, 15, 0, tzinfo=ZoneInfo("Europe/Berlin")), tick=True):  # Friday
        created = await submit(client, soest)
        one = await client.get(
            f"{BASE}/requests/{created['service_request_id']}.json", params={"jurisdiction_id": soest.slug}
        )
    expected = one.json()[0]["expected_datetime"]
    assert expected.startswith("2027-01-18T15:00:0") and expected.endswith("+01:00"), one.text


async def test_repeated_parameters_count_like_commas(client: Client, soest: Town) -> None:
    """The specification: service_code and status "can be declared multiple times, comma delimited"."""
    litter = await submit(client, soest)
    pothole = await submit(client, soest, service_code=POTHOLE)
    both = await client.get(
        f"{BASE}/requests.json?jurisdiction_id={soest.slug}&service_code={LITTER}&service_code={POTHOLE}"
        "&status=open&status=closed"
    )
    assert {litter["service_request_id"], pothole["service_request_id"]} <= _ids(both)
    ids = await client.get(
        f"{BASE}/requests.json?jurisdiction_id={soest.slug}"
        f"&service_request_id={litter['service_request_id']}&service_request_id={pothole['service_request_id']}"
    )
    assert _ids(ids) == {litter["service_request_id"], pothole["service_request_id"]}


async def test_digits_that_are_not_ascii_are_refused_not_a_500(client: Client, soest: Town) -> None:
    listed = await client.get(
        f"{BASE}/requests.json", params={"jurisdiction_id": soest.slug, "service_request_id": "²"}
    )
    assert listed.status_code == 400, listed.text
    conforms("errors", listed.json())
    one = await client.get(f"{BASE}/requests/%C2%B2.json", params={"jurisdiction_id": soest.slug})
    assert one.status_code == 404, one.text


async def test_number_and_datetime_attributes_are_checked(client: Client, world: World, soest: Town) -> None:
    """A definition may ask a `number` or a `datetime` (the specification: ISO 8601)."""
    admin = world.headers(SOEST, "town-admin")
    definition = {
        "serviceName": "Defekte Straßenlaterne",
        "departmentId": str(soest.department_id),
        "attributes": [
            {"code": "poles", "datatype": "number", "description": "Anzahl Masten", "required": True, "order": 1},
            {"code": "since", "datatype": "datetime", "description": "Seit wann", "order": 2},
        ],
    }
    put = await client.put(f"/v1/tenants/{soest.slug}/open311-services/{LAMP}", json=definition, headers=admin)
    assert put.status_code == 200, put.text
    try:
        await _answer_lamp_reports(client, soest)
    finally:  # other tests list exactly the fixture's services
        await client.delete(f"/v1/tenants/{soest.slug}/open311-services/{LAMP}", headers=admin)


async def _answer_lamp_reports(client: Client, soest: Town) -> None:
    for answers, status in (
        ({"attribute[poles]": "2"}, 201),
        ({"attribute[poles]": "1,5", "attribute[since]": "2026-12-01T18:00:00+01:00"}, 201),
        ({"attribute[poles]": "3", "attribute[since]": "2026-12-01"}, 201),
        ({"attribute[poles]": "zwei"}, 400),
        ({"attribute[poles]": "NaN"}, 400),
        ({"attribute[poles]": "2", "attribute[since]": "letzte Woche"}, 400),
    ):
        response = await client.post(f"{BASE}/requests.json", data=report(soest, service_code=LAMP, **answers))
        assert response.status_code == status, (answers, response.text)
        if status == 400:
            conforms("errors", response.json())
