"""Demo telephony data: the published central numbers of Kreis Soest, Stadt Soest and Stadt
Geseke, 115 at the operator, Geseke's town operator's absences, and the 115 area-code table
of Kreis Soest from the official list of its municipalities. Idempotent, through the services."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from uuid import UUID

from auth.principal import Principal
from backend.state import AppState, unit_of_work
from backend.telephony import service
from backend.telephony.numbers import normalise_area_code, normalise_block, normalise_number
from backend.telephony.schemas import (
    AreaCodeInput,
    NumberKind,
    Purpose,
    RoutingWindow,
    ServiceNumberCreate,
    WeeklyAbsenceInput,
)
from backend.tenants import service as tenants

MUNICIPALITIES = Path(__file__).resolve().parent / "data" / "kreis_soest_gemeinden.csv"
OPERATOR = "kreis-soest"
# (tenant slug, number, kind, purpose, routing window, valid from, greeting)
NUMBERS = (
    (
        "kreis-soest",
        "02921 30-0",
        NumberKind.NUMBER,
        Purpose.CENTRAL,
        RoutingWindow.SERVICE_HOURS,
        date(2015, 1, 1),
        None,
    ),
    ("kreis-soest", "02921 30", NumberKind.BLOCK, Purpose.CENTRAL, RoutingWindow.SERVICE_HOURS, date(2015, 1, 1), None),
    (
        "kreis-soest",
        "115",
        NumberKind.NUMBER,
        Purpose.ONE_ONE_FIVE,
        RoutingWindow.SERVICE_HOURS,
        date(2019, 1, 1),
        None,
    ),
    (
        "stadt-soest",
        "02921 103-0",
        NumberKind.NUMBER,
        Purpose.CENTRAL,
        RoutingWindow.SERVICE_HOURS,
        date(2016, 1, 1),
        None,
    ),
    (
        "stadt-soest",
        "02921 103",
        NumberKind.BLOCK,
        Purpose.CENTRAL,
        RoutingWindow.SERVICE_HOURS,
        date(2016, 1, 1),
        None,
    ),
    # Geseke (paper): the centre switches calls only while the town hall's operator is absent.
    (
        "stadt-geseke",
        "02942 500-0",
        NumberKind.NUMBER,
        Purpose.CENTRAL,
        RoutingWindow.OPERATOR_ABSENT,
        date(2018, 1, 1),
        None,
    ),
    (
        "stadt-geseke",
        "02942 500",
        NumberKind.BLOCK,
        Purpose.CENTRAL,
        RoutingWindow.OPERATOR_ABSENT,
        date(2018, 1, 1),
        None,
    ),
)
# The town hall operator's lunch break, and Friday afternoons.
GESEKE_ABSENCES = (
    *(WeeklyAbsenceInput(weekday=d, starts="12:30", ends="13:30", note="Mittagspause") for d in range(1, 5)),
    WeeklyAbsenceInput(weekday=5, starts="12:00", ends="18:00", note="Freitagnachmittag"),
)


def area_code_entries(clients: dict[str, UUID]) -> list[AreaCodeInput]:
    """Every (area code, municipality) of Kreis Soest; towns that are client tenants named."""
    by_ags = {"05974040": clients.get("stadt-soest"), "05974020": clients.get("stadt-geseke")}
    entries = []
    with MUNICIPALITIES.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for code in row["ortsnetz_vorwahlen"].split("|"):
                entries.append(
                    AreaCodeInput(
                        area_code=code,
                        ags=row["ags"],
                        municipality=row["gemeinde"],
                        client_tenant_id=by_ags.get(row["ags"]),
                    )
                )
    return entries


async def load_demo_telephony(app: AppState, operator: Principal, tenant_ids: dict[str, UUID]) -> None:
    """`operator`: a platform admin of Kreis Soest acting for all demo tenants (slug → id)."""
    async with unit_of_work(app, operator) as uow:
        have = {(n.tenant_id, n.number, n.kind) for n in await service.list_service_numbers(uow, None, None)}
        for slug, raw, kind, purpose, window, valid_from, greeting in NUMBERS:
            number = normalise_block(raw) if kind is NumberKind.BLOCK else normalise_number(raw)
            if (tenant_ids[slug], number, kind) in have:
                continue
            await service.create_service_number(
                uow,
                ServiceNumberCreate(
                    tenant_id=tenant_ids[slug],
                    number=raw,
                    kind=kind,
                    purpose=purpose,
                    routing_window=window,
                    valid_from=valid_from,
                    greeting=greeting,
                ),
            )
        # The mapping's keys are the demo's names; the tenants' slugs may differ (tests suffix them).
        found = await tenants.tenants_by_ids(uow, [tenant_ids["stadt-geseke"], tenant_ids[OPERATOR]])
        geseke, operator_slug = found[tenant_ids["stadt-geseke"]].slug, found[tenant_ids[OPERATOR]].slug
        if not (await service.absences(uow, geseke)).weekly:
            for absence in GESEKE_ABSENCES:
                await service.add_weekly_absence(uow, geseke, absence)
        present = {(a.area_code, a.ags) for a in await service.area_codes(uow, operator_slug)}
        for entry in area_code_entries(tenant_ids):
            if (normalise_area_code(entry.area_code), entry.ags) not in present:
                await service.set_area_code(uow, operator_slug, entry)
