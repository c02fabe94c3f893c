"""The service level as the 115 standard counts it (issue 17 §4, decision 029): the share of the
OFFERED calls answered within 30 s, calls hung up within the first seconds left out (a setting,
default 5 s); every figure with its target and whether it was met; CSV in the German
spreadsheet dialect on request."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from backend.billing import figures, reports
from backend.billing.schemas import CsvDialect, FigureScope, FigureTargetsInput
from backend.state import unit_of_work
from tests.billing.support import Billing, CallSpec, add_calls, local, prepare_world_billing
from tests.support.world import World, system_principal

NOV_3 = date(2026, 11, 3)
NOW = local(date(2026, 12, 6), 12)


async def geseke_november(billing: Billing) -> None:
    """7 calls offered: 4 answered within 30 s, 1 after 45 s, 1 abandoned after 40 s, 1 hung up
    after 3 s (a wrong number). Counted as the standard does: 4 of 6 = 66.67 %; the old figure
    (answered within 30 s of the answered calls) showed 4 of 5 = 80 %."""
    await add_calls(
        billing.state.pool,
        billing.clients["geseke"],
        billing.operator,
        [
            CallSpec(local(NOV_3, 9, 0), talk_seconds=60, wait_seconds=10, outcome="settled_first_contact"),
            CallSpec(local(NOV_3, 9, 5), talk_seconds=60, wait_seconds=20, outcome="settled_first_contact"),
            CallSpec(local(NOV_3, 9, 10), talk_seconds=60, wait_seconds=30, outcome="forwarded_as_ticket"),
            CallSpec(local(NOV_3, 9, 15), talk_seconds=60, wait_seconds=25, outcome="settled_first_contact"),
            CallSpec(local(NOV_3, 9, 20), talk_seconds=60, wait_seconds=45, outcome="settled_first_contact"),
            CallSpec(local(NOV_3, 9, 25), wait_seconds=40),  # abandoned: counts against the level
            CallSpec(local(NOV_3, 9, 30), wait_seconds=3),  # hung up at once: left out
        ],
    )


async def report(billing: Billing, **kwargs: Any) -> Any:
    async with unit_of_work(billing.state, billing.finance()) as uow:
        return await figures.figures(
            uow, date(2026, 11, 1), date(2026, 11, 30), billing.slugs[billing.clients["geseke"]], now=NOW, **kwargs
        )


async def test_service_level_counts_offered_calls_without_the_short_abandons(billing: Billing) -> None:
    await geseke_november(billing)
    found = await report(billing)
    row = next(r for r in found.rows if r.scope is FigureScope.ALL)
    assert (row.offered, row.abandoned, row.abandoned_short) == (7, 2, 1)
    assert row.share_answered_within_30s == Decimal("0.8000")  # the old figure, kept for comparison
    assert (row.service_level_answered, row.service_level_offered) == (4, 6)
    assert row.service_level == Decimal("0.6667")
    assert (row.service_level_target, row.meets_service_level_target) == (Decimal("0.75"), False)
    # first contact: 4 settled of 5 with an outcome = 80 % against 60 %: met
    assert (row.first_contact_rate, row.first_contact_target, row.meets_first_contact_target) == (
        Decimal("0.8000"),
        Decimal("0.60"),
        True,
    )
    assert row.callback_target == Decimal("0.90") and row.callback_on_time_rate is None
    assert row.meets_callback_target is None  # no callback was due: nothing to meet
    one_one_five = next(r for r in found.rows if r.scope is FigureScope.ONE_ONE_FIVE)
    assert one_one_five.service_level is None and one_one_five.callback_target is None
    total = next(r for r in found.total if r.scope is FigureScope.ALL)
    assert (total.service_level, total.service_level_offered) == (Decimal("0.6667"), 6)


async def test_the_short_abandon_seconds_and_the_targets_are_settings(billing: Billing) -> None:
    await geseke_november(billing)
    slug = billing.slugs[billing.clients["geseke"]]
    admin = system_principal(billing.operator, {billing.clients["geseke"]})
    async with unit_of_work(billing.state, admin) as uow:
        # The 3-second hang-up now counts (grace 2 s); the level is 4 of 7, against a lower target.
        await figures.set_figure_targets(
            uow,
            slug,
            FigureTargetsInput(short_abandon_seconds=2, service_level_target=Decimal("0.55")),
        )
    row = next(r for r in (await report(billing)).rows if r.scope is FigureScope.ALL)
    assert (row.short_abandon_seconds, row.abandoned_short, row.service_level_offered) == (2, 0, 7)
    assert (row.service_level, row.meets_service_level_target) == (Decimal("0.5714"), True)
    async with unit_of_work(billing.state, admin) as uow:
        # 45 s counts as in time when the level is "within 60 s"
        await figures.set_figure_targets(uow, slug, FigureTargetsInput(service_level_seconds=60))
    row = next(r for r in (await report(billing)).rows if r.scope is FigureScope.ALL)
    assert (row.service_level_answered, row.service_level_offered, row.service_level) == (5, 6, Decimal("0.8333"))


async def test_german_csv_dialect(billing: Billing) -> None:
    await geseke_november(billing)
    found = await report(billing)
    text = reports.figures_csv(found, CsvDialect.DE)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))
    geseke = next(r for r in rows if r["tenant"] == "Stadt Geseke" and r["scope"] == "all")
    assert (geseke["service_level"], geseke["meets_service_level_target"]) == ("0,6667", "nein")
    assert geseke["billed_minutes"].endswith(",0000")
    plain = list(csv.DictReader(io.StringIO(reports.figures_csv(found))))
    assert next(r for r in plain if r["tenant"] == "Stadt Geseke")["service_level"] == "0.6667"


async def test_csv_dialect_over_rest(client: httpx.AsyncClient, world: World) -> None:
    await prepare_world_billing(client, world)
    window = {"from": "2026-11-01", "to": "2026-11-30"}
    headers = world.headers("kreis-soest", "finance")
    german = await client.get("/v1/figures.csv", params={**window, "dialect": "de"}, headers=headers)
    assert german.status_code == 200 and german.content.startswith("\ufeff".encode())
    assert german.text.lstrip("\ufeff").startswith("tenant;scope;from;to;")
    plain = await client.get("/v1/figures.csv", params=window, headers=headers)
    assert plain.status_code == 200 and plain.text.startswith("tenant,scope,from,to,")
    bad = await client.get("/v1/figures.csv", params={**window, "dialect": "excel"}, headers=headers)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
