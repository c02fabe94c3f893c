"""Builders for billing tests: a fresh operator with client towns, principals, calls inserted as
the telephony domain stores them (the application role, one multi-row statement), and the world's
towns made billable for the REST/GraphQL tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from auth.principal import Principal
from auth.roles import Role
from backend.billing import invoices, tariffs
from backend.billing.schemas import BillingProfileInput, TariffCreate
from backend.db.tenancy import tenant_transaction
from backend.state import AppState, unit_of_work
from backend.tenants import service as tenants_service
from backend.tenants.schemas import AgreementCreate, TenantKind
from backend.tenants.validation import leitweg_id_with_check_digits
from tests.support.world import World, make_tenant, system_principal

BERLIN = ZoneInfo("Europe/Berlin")
# A valid IBAN (check digits 02) used in public examples; the Kreis' real account is not needed.
IBAN = "DE02120300000000202051"


def profile(name: str, city: str = "Soest", postal_code: str = "59494", iban: str | None = IBAN) -> BillingProfileInput:
    return BillingProfileInput(
        legal_name=name,
        street="Hoher Weg 1-3",
        postal_code=postal_code,
        city=city,
        email=f"finanzen@{uuid.uuid4().hex[:6]}.example.org",
        phone="+49 2921 30-0",
        contact_name="Kämmerei",
        iban=iban,
    )


PROFILE_BODY: dict[str, Any] = {
    "legalName": "Kreis Soest – Der Landrat",
    "street": "Hoher Weg 1-3",
    "postalCode": "59494",
    "city": "Soest",
    "email": "buergerservice@kreis-soest.example.org",
    "phone": "+49 2921 30-0",
    "contactName": "Kämmerei Kreis Soest",
    "iban": IBAN,
}


@dataclass
class Billing:
    """An operator and its client towns, each with an agreement, a billing profile and a Leitweg-ID."""

    state: AppState
    operator: UUID
    clients: dict[str, UUID]
    agreements: dict[str, UUID]
    names: dict[UUID, str] = field(default_factory=dict)
    slugs: dict[UUID, str] = field(default_factory=dict)

    def finance(self, home: UUID | None = None) -> Principal:
        """Finance of the operator (acting for every client) or of one town (its own only)."""
        tenant = home or self.operator
        acting = {self.operator, *self.clients.values()} if tenant == self.operator else {tenant}
        return Principal(
            issuer="test",
            subject=f"finance-{tenant}",
            tenant_id=tenant,
            tenant_slug="test",
            roles=frozenset({Role.FINANCE}),
            acting_tenant_ids=frozenset(acting),
        )

    async def add_tariff(
        self,
        town: str,
        valid_from: date,
        price: str,
        *,
        valid_to: date | None = None,
        increment: int = 60,
        minimum: str | None = None,
        first_period: int | None = None,
    ) -> Any:
        async with unit_of_work(self.state, self.finance()) as uow:
            return await tariffs.create_tariff(
                uow,
                TariffCreate(
                    agreement_id=self.agreements[town],
                    valid_from=valid_from,
                    valid_to=valid_to,
                    price_per_minute=Decimal(price),
                    increment_seconds=increment,  # type: ignore[arg-type]
                    first_period_seconds=first_period,
                    minimum_charge=Decimal(minimum) if minimum else None,
                ),
            )


async def make_billing(
    state: AppState, towns: tuple[str, ...] = ("soest", "geseke"), starts_on: dict[str, date] | None = None
) -> Billing:
    suffix = uuid.uuid4().hex[:6]
    operator = await make_tenant(state, f"op-{suffix}", kind=TenantKind.DISTRICT, is_operator=True, ags="05974")
    clients: dict[str, UUID] = {}
    for index, town in enumerate(towns):
        clients[town] = await make_tenant(
            state,
            f"{town}-{suffix}",
            name=f"Stadt {town.title()}",
            ags=f"059740{20 + index:02d}",
            leitweg_id=leitweg_id_with_check_digits(f"059740{20 + index:02d}", "BUERGERSERVICE"),
        )
    admin = system_principal(operator, {operator, *clients.values()})
    agreements = {}
    async with unit_of_work(state, admin) as uow:
        for town, tenant_id in clients.items():
            view = await tenants_service.create_agreement(
                uow,
                AgreementCreate(client_tenant_id=tenant_id, starts_on=(starts_on or {}).get(town, date(2018, 1, 1))),
            )
            agreements[town] = view.agreement.id
            await invoices.set_billing_profile(
                uow, f"{town}-{suffix}", profile(f"Stadt {town.title()}", city=town.title())
            )
        await invoices.set_billing_profile(uow, f"op-{suffix}", profile("Kreis Soest – Der Landrat"))
    billing = Billing(state=state, operator=operator, clients=clients, agreements=agreements)
    billing.slugs = {operator: f"op-{suffix}", **{v: f"{k}-{suffix}" for k, v in clients.items()}}
    billing.names = {operator: "Kreis Soest", **{v: f"Stadt {k.title()}" for k, v in clients.items()}}
    return billing


def local(day: date, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BERLIN)


@dataclass(frozen=True)
class CallSpec:
    offered_at: datetime
    talk_seconds: int | None = None  # None: not answered
    wait_seconds: int = 10
    outcome: str | None = None
    purpose: str = "central"
    department_id: UUID | None = None
    ringing: bool = False  # only offered so far: answered, ended and outcome follow as updates
    caller: str | None = None


async def add_calls(pool: asyncpg.Pool, tenant_id: UUID, source_tenant_id: UUID, calls: list[CallSpec]) -> list[UUID]:
    """Insert calls in one statement, as the application role (the billing triggers rate them)."""
    ids = [uuid.uuid4() for _ in calls]
    rows = []
    for call_id, spec in zip(ids, calls, strict=True):
        answered = spec.offered_at + timedelta(seconds=spec.wait_seconds) if spec.talk_seconds is not None else None
        ended = (
            answered + timedelta(seconds=spec.talk_seconds)
            if answered is not None and spec.talk_seconds is not None
            else spec.offered_at + timedelta(seconds=spec.wait_seconds)
        )
        outcome = spec.outcome or ("abandoned" if answered is None else None)
        if spec.ringing:
            answered = ended = outcome = None  # type: ignore[assignment]
        rows.append(
            (
                call_id,
                uuid.uuid4().hex,
                spec.purpose,
                spec.offered_at,
                answered,
                ended,
                spec.wait_seconds,
                spec.talk_seconds,
                outcome,
                spec.department_id,
                spec.caller,
            )
        )
    async with tenant_transaction(pool, [tenant_id]) as conn:
        await conn.execute(
            """INSERT INTO calls (tenant_id, id, source_tenant_id, source_system, external_id, service_number_id,
                                  dialled, purpose, resolved_by, offered_at, answered_at, ended_at, wait_seconds,
                                  talk_seconds, outcome, outcome_department_id, caller)
               SELECT $1, r.id, $2, 'billing-test', r.external_id, gen_random_uuid(), '+492921300', r.purpose,
                      'dialled_number', r.offered_at, r.answered_at, r.ended_at, r.wait_seconds, r.talk_seconds,
                      r.outcome, r.department_id, r.caller
               FROM unnest($3::uuid[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                           $8::timestamptz[], $9::int[], $10::int[], $11::text[], $12::uuid[], $13::text[])
                    AS r(id, external_id, purpose, offered_at, answered_at, ended_at, wait_seconds, talk_seconds,
                         outcome, department_id, caller)""",
            tenant_id,
            source_tenant_id,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
            [r[5] for r in rows],
            [r[6] for r in rows],
            [r[7] for r in rows],
            [r[8] for r in rows],
            [r[9] for r in rows],
            [r[10] for r in rows],
        )
    return ids


def talks(day: date, *seconds: int, hour: int = 10) -> list[CallSpec]:
    """Answered calls on a day with the given talk seconds, a minute apart."""
    return [CallSpec(local(day, hour, i), talk_seconds=s) for i, s in enumerate(seconds)]


# --- the world's towns, billable (REST/GraphQL and the permission matrix) ----------------------------

_PREPARED: dict[str, dict[str, Any]] = {}
WORLD_YEAR = 2150  # far from every other test's days
# A year that is over on every day the tests run (a true-up waits for 31 December) and that no
# other test puts calls into; Geseke's world agreement runs from 2018.
SETTLED_YEAR = 2022


async def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def prepare_world_billing(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """Once per world: billing profiles and Leitweg-IDs for the three tenants, a Soest tariff for
    2150, calls in January 2150, an issued January invoice, a February draft, a 2150 cost base.
    Returns ids for the permission matrix (and the isolation tests)."""
    if world.suffix in _PREPARED:
        return _PREPARED[world.suffix]
    admin = world.headers("kreis-soest", "platform-admin")
    finance = world.headers("kreis-soest", "finance")
    for town, coarse in (("stadt-soest", "05974040"), ("stadt-geseke", "05974020")):
        leitweg = leitweg_id_with_check_digits(coarse, "BUERGERSERVICE")
        await _created(
            await client.patch(f"/v1/tenants/{world.slug(town)}", json={"leitwegId": leitweg}, headers=admin)
        )
        body = {**PROFILE_BODY, "legalName": town.replace("-", " ").title(), "email": f"finanzen@{town}.example.org"}
        await _created(await client.put(f"/v1/tenants/{world.slug(town)}/billing-profile", json=body, headers=admin))
    await _created(
        await client.put(f"/v1/tenants/{world.slug('kreis-soest')}/billing-profile", json=PROFILE_BODY, headers=admin)
    )
    agreements = (await client.get("/v1/agreements", headers=admin)).json()
    soest_id = world.tenant_ids["stadt-soest"]
    soest_agreement = next(a["agreement"]["id"] for a in agreements if a["agreement"]["tenantId"] == str(soest_id))
    tariff = await _created(
        await client.post(
            "/v1/tariffs",
            json={
                "agreementId": soest_agreement,
                "validFrom": f"{WORLD_YEAR}-01-01",
                "validTo": f"{WORLD_YEAR}-12-31",
                "pricePerMinute": "0.95",
            },
            headers=finance,
        )
    )
    await add_calls(
        world.state.pool,
        soest_id,
        world.tenant_ids["kreis-soest"],
        [*talks(date(WORLD_YEAR, 1, 5), 61, 59), *talks(date(WORLD_YEAR, 2, 5), 120)],
    )
    issued = await _created(
        await client.post(
            "/v1/invoice-runs", json={"tenantId": str(soest_id), "period": f"{WORLD_YEAR}-01"}, headers=finance
        )
    )
    await _created(await client.post(f"/v1/invoices/{issued['id']}/issue", headers=finance))
    draft = await _created(
        await client.post(
            "/v1/invoice-runs", json={"tenantId": str(soest_id), "period": f"{WORLD_YEAR}-02"}, headers=finance
        )
    )
    await _created(
        await client.put(
            "/v1/cost-bases",
            json={"year": WORLD_YEAR, "staff": "100.00", "it": "20.00", "overheads": "10.00"},
            headers=finance,
        )
    )
    # The 2150 rate proposed to the towns, both of which accept it: ready for adoption.
    await _created(
        await client.post(
            "/v1/rate-proposals", json={"year": WORLD_YEAR, "respondBy": f"{WORLD_YEAR}-06-30"}, headers=finance
        )
    )
    for town in ("stadt-soest", "stadt-geseke"):
        await _created(
            await client.post(
                f"/v1/tenants/{world.slug(town)}/rate-decisions",
                json={"year": WORLD_YEAR, "decision": "accepted"},
                headers=world.headers(town, "finance"),
            )
        )
    # Geseke's finished year, invoiced in full, with a cost base: ready for a true-up.
    geseke_id = world.tenant_ids["stadt-geseke"]
    geseke_agreement = next(a["agreement"]["id"] for a in agreements if a["agreement"]["tenantId"] == str(geseke_id))
    await _created(
        await client.post(
            "/v1/tariffs",
            json={
                "agreementId": geseke_agreement,
                "validFrom": f"{SETTLED_YEAR}-01-01",
                "validTo": f"{SETTLED_YEAR}-12-31",
                "pricePerMinute": "0.95",
            },
            headers=finance,
        )
    )
    await add_calls(world.state.pool, geseke_id, world.tenant_ids["kreis-soest"], talks(date(SETTLED_YEAR, 3, 3), 300))
    year_before = await _created(
        await client.post(
            "/v1/invoice-runs", json={"tenantId": str(geseke_id), "period": str(SETTLED_YEAR)}, headers=finance
        )
    )
    await _created(await client.post(f"/v1/invoices/{year_before['id']}/issue", headers=finance))
    await _created(
        await client.put(
            "/v1/cost-bases",
            json={"year": SETTLED_YEAR, "staff": "10.00", "it": "0", "overheads": "0"},
            headers=finance,
        )
    )
    prepared = {
        "tariff_id": UUID(tariff["id"]),
        "issued_invoice_id": UUID(issued["id"]),
        "draft_invoice_id": UUID(draft["id"]),
        "soest_agreement_id": UUID(soest_agreement),
        "client_id": soest_id,
        "true_up_client_id": geseke_id,
        "true_up_year": SETTLED_YEAR,
    }
    _PREPARED[world.suffix] = prepared
    return prepared


async def answer_call(
    pool: asyncpg.Pool, tenant_id: UUID, call_id: UUID, wait_seconds: int, talk_seconds: int, outcome: str | None
) -> None:
    """What the telephony domain does when the answered/ended events of a ringing call arrive."""
    async with tenant_transaction(pool, [tenant_id]) as conn:
        await conn.execute(
            """UPDATE calls SET answered_at = offered_at + make_interval(secs => $3::int),
                      ended_at = offered_at + make_interval(secs => $3::int + $4::int),
                      wait_seconds = $3, talk_seconds = $4, outcome = $5, updated_at = now()
               WHERE tenant_id = $1 AND id = $2""",
            tenant_id,
            call_id,
            wait_seconds,
            talk_seconds,
            outcome,
        )


async def set_outcome(pool: asyncpg.Pool, tenant_id: UUID, call_id: UUID, outcome: str) -> None:
    async with tenant_transaction(pool, [tenant_id]) as conn:
        await conn.execute(
            "UPDATE calls SET outcome = $3, outcome_at = now() WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            call_id,
            outcome,
        )
