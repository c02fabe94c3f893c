"""Demo billing for `make run` (issue 17): the three demo tenants' invoice addresses, Geseke's
0.95 EUR per minute from 2018-01-01 (the paper's first-year rate, per started minute) and a Soest
tariff (0.95 EUR, the first minute whole, then to the second), and a month of demo calls, so a
newcomer's first invoice run (`POST /v1/invoice-runs`, last month) yields an invoice instead of
0.00 EUR with unrated calls. Idempotent, through the services."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from auth.principal import Principal
from auth.roles import Scope
from backend import clock
from backend.billing import invoices, tariffs
from backend.billing.schemas import BillingProfileInput, TariffCreate
from backend.state import AppState, unit_of_work
from backend.telephony import call_import
from backend.telephony.schemas import CallRecordInput
from backend.tenants import service as tenants

BERLIN = ZoneInfo("Europe/Berlin")
# (slug, first day, price per minute, first period, increment)
TARIFFS = (
    ("stadt-geseke", date(2018, 1, 1), Decimal("0.95"), 60, 60),
    ("stadt-soest", date(2016, 1, 1), Decimal("0.95"), 60, 1),
)
PROFILES = {
    "kreis-soest": ("Kreis Soest – Der Landrat", "Hoher Weg 1-3", "59494", "Soest", "+49 2921 30-0"),
    "stadt-soest": ("Stadt Soest – Der Bürgermeister", "Am Vreithof 8", "59494", "Soest", "+49 2921 103-0"),
    "stadt-geseke": ("Stadt Geseke – Der Bürgermeister", "Bachstraße 2", "59590", "Geseke", "+49 2942 500-0"),
}
# Dialled numbers of the demo (backend/telephony/demo.py) and calls per working day.
CALLS_PER_DAY = {
    "stadt-soest": ("+492921103100", 9),
    "stadt-geseke": ("+492942500100", 5),
    "kreis-soest": ("+492921300", 4),  # the operator's own: in the yearly rate's divisor, never invoiced
}
# A valid IBAN from public examples (check digits 02); not a real account of the demo towns.
DEMO_IBAN = "DE02120300000000202051"


def last_month(today: date) -> tuple[int, int]:
    first = today.replace(day=1) - timedelta(days=1)
    return first.year, first.month


def demo_calls(year: int, month: int) -> list[CallRecordInput]:
    """A month of calls on working days (Mon–Fri, 8–17 h Berlin time), the same every time:
    about one in twelve abandoned in the queue, the rest talked 20 s to 8 min."""
    rng = random.Random(f"demo-calls-{year}-{month:02d}")  # noqa: S311  # demo data, the same every run
    day = date(year, month, 1)
    calls: list[CallRecordInput] = []
    while day.month == month:
        if day.weekday() < 5:
            for slug, (dialled, count) in CALLS_PER_DAY.items():
                for n in range(count):
                    offered = datetime(day.year, day.month, day.day, 8, tzinfo=BERLIN) + timedelta(
                        seconds=rng.randrange(9 * 3600)
                    )
                    wait = rng.randrange(3, 90)
                    answered = None if rng.random() < 1 / 12 else offered + timedelta(seconds=wait)
                    talk = rng.randrange(20, 480)
                    calls.append(
                        CallRecordInput(
                            external_id=f"demo-{slug}-{day.isoformat()}-{n:02d}",
                            dialled=dialled,
                            offered_at=offered,
                            caller=f"+492921{rng.randrange(10**5, 10**6)}",
                            answered_at=answered,
                            ended_at=(answered + timedelta(seconds=talk))
                            if answered
                            else offered + timedelta(seconds=wait),
                        )
                    )
        day += timedelta(days=1)
    return calls


async def load_billing_demo(app: AppState, operator: Principal, tenant_ids: dict[str, UUID]) -> None:
    """`operator`: a platform admin of Kreis Soest acting for all demo tenants (slug → id)."""
    await load_billing_setup(app, operator, {slug: slug for slug in tenant_ids})
    await load_demo_calls(app, tenant_ids, clock.today())


async def load_billing_setup(app: AppState, operator: Principal, slugs: dict[str, str]) -> None:
    """Invoice addresses and tariffs of the demo tenants (`slugs`: demo slug → the tenant's slug)."""
    async with unit_of_work(app, operator) as uow:
        for name, (legal_name, street, postal_code, city, phone) in PROFILES.items():
            if await invoices.billing_profile(uow, slugs[name]) is None:
                await invoices.set_billing_profile(
                    uow,
                    slugs[name],
                    BillingProfileInput(
                        legal_name=legal_name,
                        street=street,
                        postal_code=postal_code,
                        city=city,
                        email=f"finanzen@{name}.example.org",
                        phone=phone,
                        contact_name="Kämmerei",
                        iban=DEMO_IBAN,
                    ),
                )
        agreements = {a.agreement.tenant_id: a.agreement for a in await tenants.list_agreements(uow)}
        for name, starts_on, price, first, step in TARIFFS:
            client = await tenants.tenant(uow, slugs[name])
            agreement = agreements.get(client.id)
            if agreement is None or await tariffs.list_tariffs(uow, slugs[name]):
                continue
            await tariffs.create_tariff(
                uow,
                TariffCreate(
                    agreement_id=agreement.id,
                    valid_from=max(starts_on, agreement.starts_on),
                    price_per_minute=price,
                    increment_seconds=step,  # type: ignore[arg-type]  # one of the trade's increments
                    first_period_seconds=first,
                    note="Demo",
                ),
            )


async def load_demo_calls(app: AppState, tenant_ids: dict[str, UUID], today: date) -> None:
    """Last month's demo calls, as the operator's telephone system imports them (idempotent by
    their ids)."""
    telephone_system = Principal(
        issuer="system",
        subject="demo-telephony",
        tenant_id=tenant_ids["kreis-soest"],
        tenant_slug="kreis-soest",
        scopes=frozenset({Scope.CALLS_WRITE}),
        acting_tenant_ids=frozenset(tenant_ids.values()),
        client_id="demo-telephony",
    )
    lines = b"\n".join(msgspec.json.encode(call) for call in demo_calls(*last_month(today)))
    async with unit_of_work(app, telephone_system) as uow:
        await call_import.import_calls(uow, lines, "application/x-ndjson")
