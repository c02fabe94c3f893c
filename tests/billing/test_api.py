"""Billing over REST and GraphQL with real tokens: cross-tenant isolation (Geseke's finance never
sees Soest's invoices, tariffs or figures), the operator's finance issues, Decimal on the wire
(strings in JSON, the Decimal scalar in GraphQL), XRechnung and CSV downloads."""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from lxml import etree

from backend.settings import PROJECT_ROOT
from tests.billing.support import WORLD_YEAR, prepare_world_billing
from tests.billing.xrechnung_check import Validator
from tests.support.world import World

Client = httpx.AsyncClient
SOEST, GESEKE, KREIS = "stadt-soest", "stadt-geseke", "kreis-soest"


async def gql(client: Client, world: World, town: str, role: str, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=world.headers(town, role)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def ids(client: Client, world: World) -> dict[str, Any]:
    return await prepare_world_billing(client, world)


async def test_rest_isolation_of_invoices(client: Client, world: World, ids: dict[str, Any]) -> None:
    soest_id = str(world.tenant_ids[SOEST])
    issued = ids["issued_invoice_id"]
    operator = await client.get("/v1/invoices", params={"year": WORLD_YEAR}, headers=world.headers(KREIS, "finance"))
    assert operator.status_code == 200
    assert str(issued) in {i["id"] for i in operator.json()}
    own = await client.get("/v1/invoices", params={"year": WORLD_YEAR}, headers=world.headers(SOEST, "finance"))
    assert own.status_code == 200 and own.json() and {i["tenantId"] for i in own.json()} == {soest_id}
    assert (await client.get(f"/v1/invoices/{issued}", headers=world.headers(SOEST, "finance"))).status_code == 200

    geseke = world.headers(GESEKE, "finance")
    listed = await client.get("/v1/invoices", params={"year": WORLD_YEAR}, headers=geseke)
    assert listed.status_code == 200 and all(i["tenantId"] != soest_id for i in listed.json())
    for path in (f"/v1/invoices/{issued}", f"/v1/invoices/{issued}/xrechnung"):
        response = await client.get(path, headers=geseke)
        assert response.status_code == 404, path
        assert response.json()["code"] == "NOT_FOUND"
    assert (await client.get("/v1/invoices", params={"tenant": world.slug(SOEST)}, headers=geseke)).status_code == 404
    assert (await client.get("/v1/tariffs", params={"tenant": world.slug(SOEST)}, headers=geseke)).status_code == 404
    tariffs = await client.get("/v1/tariffs", headers=geseke)
    assert tariffs.status_code == 200 and all(t["tenantId"] != soest_id for t in tariffs.json())
    runs = await client.post(
        "/v1/invoice-runs", json={"tenantId": soest_id, "period": f"{WORLD_YEAR}-05"}, headers=geseke
    )
    assert runs.status_code == 403  # a town's finance never runs invoices, not even its own
    assert (await client.post(f"/v1/invoices/{ids['draft_invoice_id']}/issue", headers=geseke)).status_code == 404
    # Only finance reads invoices: the operator's agents and supervisors do not.
    for role in ("agent", "supervisor", "platform-admin"):
        assert (await client.get("/v1/invoices", headers=world.headers(KREIS, role))).status_code == 403


async def test_graphql_isolation_of_invoices_and_figures(client: Client, world: World, ids: dict[str, Any]) -> None:
    issued = str(ids["issued_invoice_id"])
    query = """query($id: UUID!, $year: Int) {
        invoice(id: $id) { id number netAmount lines { amount unitPrice quantity minutes } }
        invoices(year: $year) { id tenantId }
    }"""
    operator = await gql(client, world, KREIS, "finance", query, id=issued, year=WORLD_YEAR)
    assert not operator.get("errors"), operator
    invoice = operator["data"]["invoice"]
    assert invoice["netAmount"] == "2.85"  # the Decimal scalar: a string, exactly
    assert invoice["lines"][0] == {"amount": "2.85", "unitPrice": "0.9500", "quantity": "3.0000", "minutes": "3.0000"}
    geseke = await gql(client, world, GESEKE, "finance", query, id=issued, year=WORLD_YEAR)
    assert not geseke.get("errors"), geseke
    assert geseke["data"]["invoice"] is None
    assert all(i["tenantId"] != str(world.tenant_ids[SOEST]) for i in geseke["data"]["invoices"])

    figures = """query($from: Date!, $to: Date!, $tenant: String) {
        figures(from: $from, to: $to, tenantSlug: $tenant) {
            rows { tenantId scope offered billedMinutes firstContactTarget } total { offered }
        }
    }"""
    window = {"from": f"{WORLD_YEAR}-01-01", "to": f"{WORLD_YEAR}-01-31"}
    seen = await gql(client, world, KREIS, "supervisor", figures, **window)
    soest_rows = [r for r in seen["data"]["figures"]["rows"] if r["tenantId"] == str(world.tenant_ids[SOEST])]
    assert soest_rows and soest_rows[0]["offered"] == 2 and soest_rows[0]["billedMinutes"] == "3.0000"
    own = await gql(client, world, GESEKE, "supervisor", figures, **window)
    assert {r["tenantId"] for r in own["data"]["figures"]["rows"]} == {str(world.tenant_ids[GESEKE])}
    hidden = await gql(client, world, GESEKE, "supervisor", figures, tenant=world.slug(SOEST), **window)
    assert hidden["data"] is None and hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    denied = await gql(client, world, GESEKE, "agent", figures, **window)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_rest_isolation_of_figures_and_csv(client: Client, world: World, ids: dict[str, Any]) -> None:
    window = {"from": f"{WORLD_YEAR}-01-01", "to": f"{WORLD_YEAR}-01-31"}
    geseke = world.headers(GESEKE, "finance")
    report = await client.get("/v1/figures", params=window, headers=geseke)
    assert report.status_code == 200
    assert {r["tenantId"] for r in report.json()["rows"]} == {str(world.tenant_ids[GESEKE])}
    assert (
        await client.get("/v1/figures", params={**window, "tenant": world.slug(SOEST)}, headers=geseke)
    ).status_code == 404
    download = await client.get("/v1/figures.csv", params=window, headers=world.headers(KREIS, "finance"))
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    soest = next(r for r in rows if r["tenant"].startswith("Stadt Soest") and r["scope"] == "all")
    assert (soest["offered"], soest["billed_minutes"], soest["from"]) == ("2", "3.0000", f"{WORLD_YEAR}-01-01")


async def test_operator_finance_downloads_valid_xrechnung(
    client: Client, world: World, ids: dict[str, Any], validator: Validator
) -> None:
    issued = ids["issued_invoice_id"]
    for town in (KREIS, SOEST):
        response = await client.get(f"/v1/invoices/{issued}/xrechnung", headers=world.headers(town, "finance"))
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
        assert response.headers["content-disposition"].endswith('.xml"')
        report = validator.validate(response.content)
        assert report.accepted, report.errors
    buyer_reference = etree.fromstring(response.content).findtext(
        "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}BuyerReference"
    )
    assert buyer_reference is not None and buyer_reference.startswith("05974040-")


async def test_money_is_decimal_on_the_wire_and_in_the_database(
    client: Client, world: World, ids: dict[str, Any], admin_url: str
) -> None:
    response = await client.get(f"/v1/invoices/{ids['issued_invoice_id']}", headers=world.headers(KREIS, "finance"))
    body = response.json()
    assert body["netAmount"] == "2.85" and body["grossAmount"] == "2.85" and body["taxAmount"] == "0.00"
    assert body["lines"][0]["unitPrice"] == "0.9500" and body["lines"][0]["amount"] == "2.85"
    tariffs = (
        await client.get("/v1/tariffs", params={"tenant": world.slug(SOEST)}, headers=world.headers(KREIS, "finance"))
    ).json()
    assert {t["pricePerMinute"] for t in tariffs} >= {"0.9500"}
    conn = await asyncpg.connect(admin_url)
    try:
        floats = await conn.fetch(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type IN ('real', 'double precision', 'money')
                 AND table_name IN ('tariffs', 'invoices', 'invoice_lines', 'cost_bases', 'call_rollups',
                                    'call_charges', 'figure_targets', 'billing_profiles', 'invoice_counters')"""
        )
        money = await conn.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type = 'numeric'
                 AND table_name IN ('tariffs', 'invoices', 'invoice_lines', 'cost_bases')"""
        )
    finally:
        await conn.close()
    assert floats == []
    assert {
        ("tariffs", "price_per_minute"),
        ("invoices", "net_amount"),
        ("invoice_lines", "amount"),
        ("cost_bases", "total"),
    } <= {(r["table_name"], r["column_name"]) for r in money}


def test_no_float_in_the_billing_code() -> None:
    """Money paths never touch binary floating point: no float literal, no float() in backend/billing."""
    for path in sorted(Path(PROJECT_ROOT, "backend", "billing").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), (path.name, node.lineno)
            assert not (isinstance(node, ast.Name) and node.id == "float"), (path.name, node.lineno)


async def test_graphql_names_the_tenant_tenant_and_still_takes_tenant_slug(
    client: Client, world: World, ids: dict[str, Any]
) -> None:
    soest, geseke = world.slug(SOEST), world.slug(GESEKE)
    profile = "query($t: String, $s: String) { billingProfile(tenant: $t, tenantSlug: $s) { legalName } }"
    for given in ({"t": soest}, {"s": soest}, {"t": soest, "s": soest}):
        answer = await gql(client, world, KREIS, "finance", profile, **given)
        assert answer["data"]["billingProfile"] == {"legalName": "Stadt Soest"}, (given, answer)
    for given in ({}, {"t": soest, "s": geseke}):
        refused = await gql(client, world, KREIS, "finance", profile, **given)
        assert refused["data"]["billingProfile"] is None, given
        assert refused["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED", (given, refused)
    hidden = await gql(client, world, GESEKE, "finance", profile, t=soest)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    tariffs = "query($t: String) { tariffs(tenant: $t) { tenantId pricePerMinute } }"
    own = await gql(client, world, KREIS, "finance", tariffs, t=soest)
    assert own["data"]["tariffs"] and {t["tenantId"] for t in own["data"]["tariffs"]} == {str(world.tenant_ids[SOEST])}
    assert (await gql(client, world, GESEKE, "finance", tariffs, t=soest))["errors"][0]["extensions"]["code"] == (
        "NOT_FOUND"
    )

    # A mutation without a tenant is a payload error, nothing run.
    run = 'mutation { runInvoice(period: "2150-04") { invoice { id } errors { code field } } }'
    ran = await gql(client, world, KREIS, "finance", run)
    assert ran["data"]["runInvoice"] == {"invoice": None, "errors": [{"code": "VALIDATION_FAILED", "field": "tenant"}]}

    # The old name is published as deprecated, the new one is not.
    shape = """{ __type(name: "Query") { fields { name args(includeDeprecated: true) {
        name isDeprecated deprecationReason } } } }"""
    fields = (await gql(client, world, KREIS, "finance", shape))["data"]["__type"]["fields"]
    args = {a["name"]: a for f in fields if f["name"] == "billingProfile" for a in f["args"]}
    assert args["tenant"]["isDeprecated"] is False
    assert args["tenantSlug"]["isDeprecated"] is True and args["tenantSlug"]["deprecationReason"] == "Use tenant."


async def test_put_on_a_tariff_keeps_its_note_when_left_out(client: Client, world: World, ids: dict[str, Any]) -> None:
    """PUT replaces the terms, but a client sending only the terms must not wipe the clerk's note:
    left out or null keeps it, "" clears it (stated in the OpenAPI description)."""
    finance = world.headers(KREIS, "finance")
    path = f"/v1/tariffs/{ids['tariff_id']}"
    terms = {"validFrom": f"{WORLD_YEAR}-01-01", "validTo": f"{WORLD_YEAR}-12-31", "pricePerMinute": "0.95"}
    noted = await client.put(path, json={**terms, "note": "Ratsbeschluss 12/2025"}, headers=finance)
    assert noted.status_code == 200, noted.text
    for body in (terms, {**terms, "note": None}):
        kept = await client.put(path, json=body, headers=finance)
        assert kept.status_code == 200, kept.text
        assert kept.json()["note"] == "Ratsbeschluss 12/2025"
    cleared = await client.put(path, json={**terms, "note": ""}, headers=finance)
    assert cleared.status_code == 200 and cleared.json()["note"] == ""
    spec = (await client.get("/docs/openapi.json")).json()
    assert "`note` is kept when left out" in spec["paths"]["/v1/tariffs/{tariff_id}"]["put"]["description"]


async def test_towns_read_and_answer_the_rate_consultation(client: Client, world: World, ids: dict[str, Any]) -> None:
    """The world's 2150 rate was proposed and accepted by both towns (support.prepare_world_billing):
    each town reads its own steps over REST and GraphQL, never the other's; an objection without a
    note is a typed GraphQL error; the operator sees both towns."""
    soest_id, geseke_id = str(world.tenant_ids[SOEST]), str(world.tenant_ids[GESEKE])
    own = await client.get(
        "/v1/rate-consultation", params={"year": WORLD_YEAR}, headers=world.headers(GESEKE, "town-admin")
    )
    assert own.status_code == 200, own.text
    body = own.json()
    assert {e["tenantId"] for e in body["events"]} == {geseke_id}
    assert [e["kind"] for e in body["events"]][:2] == ["proposed", "accepted"]
    assert [c["decision"] for c in body["consents"]] == ["accepted"]
    other = await client.get(
        "/v1/rate-consultation",
        params={"year": WORLD_YEAR, "tenant": world.slug(SOEST)},
        headers=world.headers(GESEKE, "finance"),
    )
    assert other.status_code == 404
    operator = await client.get(
        "/v1/rate-consultation", params={"year": WORLD_YEAR}, headers=world.headers(KREIS, "finance")
    )
    assert {c["tenantId"] for c in operator.json()["consents"]} >= {soest_id, geseke_id}
    # Only the town's finance or town admin answers; an agent is forbidden.
    agent = await client.post(
        f"/v1/tenants/{world.slug(GESEKE)}/rate-decisions",
        json={"year": WORLD_YEAR, "decision": "accepted"},
        headers=world.headers(GESEKE, "agent"),
    )
    assert agent.status_code == 403

    query = """query($year: Int!) { rateConsultation(year: $year) { rate adopted events { kind tenantId note } } }"""
    read = await gql(client, world, GESEKE, "finance", query, year=WORLD_YEAR)
    assert not read.get("errors"), read
    assert {e["tenantId"] for e in read["data"]["rateConsultation"]["events"]} == {geseke_id}
    mutation = """mutation($tenant: String, $year: Int!, $note: String!) {
        decideRate(tenant: $tenant, year: $year, decision: OBJECTED, note: $note) {
            consent { decision } errors { code field message } } }"""
    refused = await gql(
        client, world, GESEKE, "finance", mutation, tenant=world.slug(GESEKE), year=WORLD_YEAR, note=" "
    )
    answer = refused["data"]["decideRate"]
    # The note is missing (VALIDATION_FAILED) — or, when the permission matrix ran first and
    # adopted the world's 2150 rate, answers are closed (INVALID_TRANSITION): typed either way.
    assert answer["consent"] is None and answer["errors"][0]["code"] in ("VALIDATION_FAILED", "INVALID_TRANSITION")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/tariffs", {"validFrom": "2150-01-01", "pricePerMinute": "0.95", "incrementSeconds": 7}),
        ("POST", "/v1/tariffs", {"validFrom": "2150-01-01", "pricePerMinute": "0.95", "firstPeriodSeconds": 0}),
        ("POST", "/v1/tariffs", {"validFrom": "2150-01-01", "pricePerMinute": "0.95", "firstPeriodSeconds": 601}),
        (
            "PUT",
            "/v1/cost-bases",
            {"year": 2140, "staff": "1", "it": "0", "overheads": "0", "ownItems": [{"label": "x", "amount": "-1"}]},
        ),
        (
            "PUT",
            "/v1/cost-bases",
            {"year": 2140, "staff": "1", "it": "0", "overheads": "0", "ownItems": [{"label": " ", "amount": "0.5"}]},
        ),
        ("POST", "/v1/rate-proposals", {"year": 2150, "respondBy": "2020-01-01"}),
        ("POST", "/v1/rate-proposals", {"year": 2150}),
        ("POST", "/v1/rate-adoptions", {"year": 2150, "reason": "x" * 2001}),
    ],
)
async def test_bad_money_input_is_a_clear_422_and_changes_nothing(
    client: Client, world: World, ids: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> None:
    if path == "/v1/tariffs":
        body = {**body, "agreementId": str(ids["soest_agreement_id"])}
    before = (await client.get("/v1/cost-bases", headers=world.headers(KREIS, "finance"))).json()
    response = await client.request(method, path, json=body, headers=world.headers(KREIS, "finance"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert (await client.get("/v1/cost-bases", headers=world.headers(KREIS, "finance"))).json() == before


async def test_bad_answers_and_settings_of_a_town(client: Client, world: World, ids: dict[str, Any]) -> None:
    town = world.headers(GESEKE, "finance")
    decision = await client.post(
        f"/v1/tenants/{world.slug(GESEKE)}/rate-decisions", json={"year": WORLD_YEAR, "decision": "maybe"}, headers=town
    )
    assert decision.status_code == 422 and decision.json()["code"] == "VALIDATION_FAILED"
    profile = {
        "legalName": "Stadt Geseke",
        "street": "Bachstraße 2",
        "postalCode": "59590",
        "city": "Geseke",
        "email": "finanzen@geseke.example.org",
        "phone": "+49 2942 500-0",
        "contactName": "Kämmerei",
    }
    for bad in ({"itemisedHiddenDigits": 11}, {"itemisedHiddenDigits": 0}, {"itemisedCaller": "full"}):
        response = await client.put(
            f"/v1/tenants/{world.slug(GESEKE)}/billing-profile", json={**profile, **bad}, headers=town
        )
        assert response.status_code == 422, (bad, response.text)
    year = await client.get("/v1/rate-consultation", params={"year": "1999"}, headers=town)
    assert year.status_code == 422 and year.json()["errors"][0]["field"] == "year"
    calls = await client.get("/v1/invoices/not-a-uuid/calls", headers=town)
    assert calls.status_code == 422


async def test_patch_on_a_tariff_changes_only_what_it_sends(client: Client, world: World, ids: dict[str, Any]) -> None:
    """PATCH merges: a field left out keeps its value; the merged result passes the same checks
    as a full change, and a refused patch changes nothing."""
    finance = world.headers(KREIS, "finance")
    path = f"/v1/tariffs/{ids['tariff_id']}"
    listed = (await client.get("/v1/tariffs", headers=finance)).json()
    before = next(t for t in listed if t["id"] == str(ids["tariff_id"]))
    noted = await client.patch(path, json={"note": "nur die Notiz"}, headers=finance)
    assert noted.status_code == 200, noted.text
    after = noted.json()
    assert after["note"] == "nur die Notiz" and after["version"] == before["version"] + 1
    unchanged = ("validFrom", "validTo", "pricePerMinute", "incrementSeconds", "firstPeriodSeconds", "minimumCharge")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    for bad in ({"incrementSeconds": 7}, {"firstPeriodSeconds": 601}, {"pricePerMinute": "-1"}, {"colour": "blau"}):
        refused = await client.patch(path, json=bad, headers=finance)
        assert refused.status_code in (400, 422), (bad, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    stale = await client.patch(path, json={"note": "alt", "version": before["version"]}, headers=finance)
    assert stale.status_code == 409, stale.text
    assert (await client.patch(path, json={"note": "x"}, headers=world.headers(KREIS, "agent"))).status_code == 403
    now = next(t for t in (await client.get("/v1/tariffs", headers=finance)).json() if t["id"] == str(ids["tariff_id"]))
    assert now == after
