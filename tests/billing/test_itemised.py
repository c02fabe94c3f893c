"""The itemised call list (Einzelverbindungsnachweis): every call behind an invoice's lines with
start, talk and billed seconds and its share of the line, the caller's number shortened or left
out as the town's billing profile says; the calls of each line add up to it exactly, over the
service, REST (JSON and CSV) and GraphQL."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.billing import invoices
from backend.billing.itemised import apportioned, shown_caller
from backend.billing.schemas import ItemisedCaller, ItemisedCallList
from backend.errors import NotFound
from backend.state import unit_of_work
from tests.billing.support import Billing, CallSpec, add_calls, local, prepare_world_billing, profile
from tests.support.world import World

Client = httpx.AsyncClient


def test_the_caller_number_is_shortened_or_left_out() -> None:
    assert shown_caller("+4929214711", ItemisedCaller.SHORTENED, 3) == "+4929214xxx"
    assert shown_caller("+4929214711", ItemisedCaller.SHORTENED, 1) == "+492921471x"
    assert shown_caller("+49 2921 47-11", ItemisedCaller.SHORTENED, 3) == "+49 2921 4x-xx"
    assert shown_caller("+4929214711", ItemisedCaller.OMITTED, 3) is None
    assert shown_caller(None, ItemisedCaller.SHORTENED, 3) is None  # erased after retention


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=7200), min_size=1, max_size=40))
def test_shares_add_up_to_the_line_and_stay_within_a_cent(seconds: list[int]) -> None:
    price = Decimal("0.95")
    exact = [price * s / 60 for s in seconds]
    line = sum(exact, Decimal(0)).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    shares = apportioned(exact, line)
    assert sum(shares, Decimal(0)) == line
    assert all(abs(share - amount) < Decimal("0.01") for share, amount in zip(shares, exact, strict=True))


def _sums_match(listing: ItemisedCallList) -> None:
    """Every itemised line is exactly the sum of its calls: count, billed seconds, amount."""
    for line in listing.lines:
        if not line.itemised:
            continue
        mine = [c for c in listing.calls if c.line_no == line.line_no]
        assert len(mine) == line.calls
        assert sum(c.billed_seconds for c in mine) == line.billable_seconds
        assert sum((c.amount for c in mine), Decimal(0)) == line.amount


async def test_the_list_adds_up_to_the_invoice_lines(world: World, billing: Billing) -> None:
    """Per second with a 0.20 EUR minimum: 61 s, 59 s and an hour by their seconds (three calls at
    0.0158… EUR a second: rounded one by one they would not add up), 1 s and 10 s at the minimum."""
    soest = billing.clients["soest"]
    await billing.add_tariff("soest", date(2026, 1, 1), "0.95", increment=1, minimum="0.20")
    day = date(2026, 5, 4)
    calls = [
        CallSpec(local(day, 9, 0), talk_seconds=61, caller="+4929214711"),
        CallSpec(local(day, 9, 5), talk_seconds=59, caller="+4929215550"),
        CallSpec(local(day, 9, 10), talk_seconds=3599, caller="+492921123456"),
        CallSpec(local(day, 9, 15), talk_seconds=1, caller="+4929214711"),
        CallSpec(local(day, 9, 20), talk_seconds=10),  # no caller number (suppressed)
        CallSpec(local(day, 9, 25)),  # not answered: not billed, not listed
    ]
    await add_calls(world.state.pool, soest, billing.operator, calls)
    async with unit_of_work(world.state, billing.finance()) as uow:
        draft = await invoices.run_invoice(uow, soest, "2026-05")
    # A call that arrives after the run belongs to a later invoice's corrections, not to this one.
    await add_calls(world.state.pool, soest, billing.operator, [CallSpec(local(day, 11), talk_seconds=30)])
    async with unit_of_work(world.state, billing.finance()) as uow:
        issued = await invoices.issue_invoice(uow, draft.id)
    async with unit_of_work(world.state, billing.finance(soest), readonly=True) as uow:
        listing = await invoices.itemised_calls(uow, issued.id)
    assert [(line.kind.value, line.calls, line.amount) for line in issued.lines] == [
        ("usage", 3, Decimal("58.88")),  # 3719 s × 0.95 EUR / 60 = 58.8841…
        ("minimum_charge", 2, Decimal("0.40")),
    ]
    assert all(line.itemised for line in listing.lines) and len(listing.calls) == 5
    _sums_match(listing)
    assert listing.total_amount == issued.net_amount
    assert listing.total_billed_seconds == sum(line.billable_seconds for line in issued.lines)
    assert [(c.talk_seconds, c.billed_seconds, c.at_minimum, c.caller) for c in listing.calls] == [
        (61, 61, False, "+4929214xxx"),
        (59, 59, False, "+4929215xxx"),
        (3599, 3599, False, "+492921123xxx"),
        (1, 1, True, "+4929214xxx"),
        (10, 10, True, None),
    ]
    assert [c.started_at for c in listing.calls] == [spec.offered_at for spec in calls[:5]]
    assert listing.caller_shown is ItemisedCaller.SHORTENED and listing.number == issued.number

    # The town leaves the number out; another town cannot read the list.
    async with unit_of_work(world.state, billing.finance()) as uow:
        omitted = msgspec.structs.replace(profile("Stadt Soest"), itemised_caller=ItemisedCaller.OMITTED)
        await invoices.set_billing_profile(uow, billing.slugs[soest], omitted)
        assert all(c.caller is None for c in (await invoices.itemised_calls(uow, issued.id)).calls)
    async with unit_of_work(world.state, billing.finance(billing.clients["geseke"]), readonly=True) as uow:
        with pytest.raises(NotFound):
            await invoices.itemised_calls(uow, issued.id)


@pytest.fixture
async def ids(client: Client, world: World) -> dict[str, Any]:
    return await prepare_world_billing(client, world)


async def test_rest_and_graphql_list_the_calls_of_an_invoice(client: Client, world: World, ids: dict[str, Any]) -> None:
    issued = ids["issued_invoice_id"]
    soest = world.headers("stadt-soest", "finance")
    response = await client.get(f"/v1/invoices/{issued}/calls", headers=soest)
    assert response.status_code == 200, response.text
    body = response.json()
    invoice = (await client.get(f"/v1/invoices/{issued}", headers=soest)).json()
    assert body["totalAmount"] == invoice["netAmount"] == "2.85"  # 61 s + 59 s per started minute
    assert [(c["talkSeconds"], c["billedSeconds"], c["amount"]) for c in body["calls"]] == [
        (61, 120, "1.90"),
        (59, 60, "0.95"),
    ]
    assert (
        await client.get(f"/v1/invoices/{issued}/calls", headers=world.headers("stadt-geseke", "finance"))
    ).status_code == 404

    csv_response = await client.get(f"/v1/invoices/{issued}/calls.csv", headers=world.headers("kreis-soest", "finance"))
    assert csv_response.status_code == 200 and csv_response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_response.text)))
    assert rows[0][:3] == ["line", "started_at", "caller"]
    assert [r[4:] for r in rows[1:3]] == [["61", "120", "no", "1.90"], ["59", "60", "no", "0.95"]]
    assert rows[-1][2] == "total" and rows[-1][-1] == "2.85"
    # The German spreadsheet dialect, as the figures have it: BOM, semicolons, decimal comma.
    german = await client.get(
        f"/v1/invoices/{issued}/calls.csv", params={"dialect": "de"}, headers=world.headers("kreis-soest", "finance")
    )
    assert german.status_code == 200 and german.content.startswith("\ufeff".encode())
    de_rows = list(csv.reader(io.StringIO(german.text.lstrip("\ufeff")), delimiter=";"))
    assert [r[4:] for r in de_rows[1:3]] == [["61", "120", "nein", "1,90"], ["59", "60", "nein", "0,95"]]
    assert de_rows[-1][-1] == "2,85"
    unknown = await client.get(
        f"/v1/invoices/{issued}/calls.csv", params={"dialect": "xls"}, headers=world.headers("kreis-soest", "finance")
    )
    assert unknown.status_code in (400, 422) and unknown.headers["content-type"].startswith("application/problem+json")

    query = """query($id: UUID!) { itemisedCalls(invoiceId: $id) {
        totalAmount lines { lineNo amount itemised } calls { lineNo billedSeconds amount } } }"""
    answer = await client.post("/graphql", json={"query": query, "variables": {"id": str(issued)}}, headers=soest)
    data = answer.json()
    assert not data.get("errors"), data
    listed = data["data"]["itemisedCalls"]
    assert listed["totalAmount"] == "2.85" and listed["lines"] == [{"lineNo": 1, "amount": "2.85", "itemised": True}]
    geseke = await client.post(
        "/graphql",
        json={"query": query, "variables": {"id": str(issued)}},
        headers=world.headers("stadt-geseke", "finance"),
    )
    assert geseke.json()["data"]["itemisedCalls"] is None
