"""SQL for tariffs, party data, figure targets, the agreements billing reads, cost bases and
figures. Explicit columns, $n parameters, tenants always given (row-level security is the second
line). Rollups, the ledger and invoices are in `invoice_repository`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
import msgspec

from backend.billing.schemas import (
    BillingProfile,
    BillingProfileInput,
    CostBase,
    CostBaseInput,
    FigureTargets,
    FigureTargetsInput,
    RateConsent,
    RateEvent,
    RateEventKind,
    Tariff,
)
from backend.db.rows import row_to

TARIFF_COLUMNS = """tenant_id, id, agreement_id, operator_tenant_id, lower(valid) AS valid_from,
    upper(valid) - 1 AS valid_to, price_per_minute, first_period_seconds, increment_seconds,
    first_period_seconds || '/' || increment_seconds AS billing_increment, minimum_charge, note, cost_base_year,
    version"""
PROFILE_COLUMNS = """tenant_id, legal_name, street, postal_code, city, country_code, email, phone, contact_name,
    iban, bic, payment_days, tax_exemption_reason, itemised_caller, itemised_hidden_digits, version"""
COST_BASE_COLUMNS = """tenant_id, year, staff, it, overheads, other, total, own_items, note, adopted_rate, adopted_at,
    recorded_by, version"""


# --- party data and targets -----------------------------------------------------------------------


async def find_profile(conn: asyncpg.Connection, tenant_id: UUID) -> BillingProfile | None:
    row = await conn.fetchrow(f"SELECT {PROFILE_COLUMNS} FROM billing_profiles WHERE tenant_id = $1", tenant_id)
    return row_to(BillingProfile, row) if row else None


async def upsert_profile(conn: asyncpg.Connection, tenant_id: UUID, data: BillingProfileInput) -> BillingProfile:
    row = await conn.fetchrow(
        f"""INSERT INTO billing_profiles (tenant_id, legal_name, street, postal_code, city, country_code, email,
                                          phone, contact_name, iban, bic, payment_days, tax_exemption_reason,
                                          itemised_caller, itemised_hidden_digits)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            ON CONFLICT (tenant_id) DO UPDATE SET
                legal_name = EXCLUDED.legal_name, street = EXCLUDED.street, postal_code = EXCLUDED.postal_code,
                city = EXCLUDED.city, country_code = EXCLUDED.country_code, email = EXCLUDED.email,
                phone = EXCLUDED.phone, contact_name = EXCLUDED.contact_name, iban = EXCLUDED.iban,
                bic = EXCLUDED.bic, payment_days = EXCLUDED.payment_days,
                tax_exemption_reason = EXCLUDED.tax_exemption_reason, itemised_caller = EXCLUDED.itemised_caller,
                itemised_hidden_digits = EXCLUDED.itemised_hidden_digits,
                version = billing_profiles.version + 1, updated_at = now()
            RETURNING {PROFILE_COLUMNS}""",
        tenant_id,
        data.legal_name.strip(),
        data.street.strip(),
        data.postal_code.strip(),
        data.city.strip(),
        data.country_code,
        data.email.strip(),
        data.phone.strip(),
        data.contact_name.strip(),
        data.iban,
        data.bic,
        data.payment_days,
        data.tax_exemption_reason.strip(),
        data.itemised_caller.value,
        data.itemised_hidden_digits,
    )
    assert row is not None
    return row_to(BillingProfile, row)


async def list_targets(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> dict[UUID, FigureTargets]:
    rows = await conn.fetch(
        f"""SELECT {TARGET_COLUMNS} FROM figure_targets WHERE tenant_id = ANY($1::uuid[])""",
        list(tenant_ids),
    )
    return {r["tenant_id"]: row_to(FigureTargets, r) for r in rows}


TARGET_COLUMNS = """tenant_id, first_contact_target, first_contact_target_115, service_level_target,
    service_level_seconds, short_abandon_seconds, callback_target"""


async def upsert_targets(conn: asyncpg.Connection, tenant_id: UUID, data: FigureTargetsInput) -> FigureTargets:
    row = await conn.fetchrow(
        f"""INSERT INTO figure_targets (tenant_id, first_contact_target, first_contact_target_115,
                                        service_level_target, service_level_seconds, short_abandon_seconds,
                                        callback_target)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (tenant_id) DO UPDATE SET first_contact_target = EXCLUDED.first_contact_target,
               first_contact_target_115 = EXCLUDED.first_contact_target_115,
               service_level_target = EXCLUDED.service_level_target,
               service_level_seconds = EXCLUDED.service_level_seconds,
               short_abandon_seconds = EXCLUDED.short_abandon_seconds,
               callback_target = EXCLUDED.callback_target, updated_at = now()
           RETURNING {TARGET_COLUMNS}""",
        tenant_id,
        data.first_contact_target,
        data.first_contact_target_115,
        data.service_level_target,
        data.service_level_seconds,
        data.short_abandon_seconds,
        data.callback_target,
    )
    assert row is not None
    return row_to(FigureTargets, row)


# --- agreements (read) ----------------------------------------------------------------------------


async def agreement_for_period(
    conn: asyncpg.Connection, client_id: UUID, operator_id: UUID, start: date, end: date
) -> asyncpg.Record | None:
    """The operator's agreement with the client that runs during [start, end)."""
    return await conn.fetchrow(
        """SELECT tenant_id, id, operator_tenant_id, starts_on, ends_on FROM agreements
           WHERE tenant_id = $1 AND operator_tenant_id = $2 AND starts_on < $4
             AND (ends_on IS NULL OR ends_on >= $3)
           ORDER BY starts_on DESC LIMIT 1""",
        client_id,
        operator_id,
        start,
        end,
    )


async def agreements_of_operator(
    conn: asyncpg.Connection, operator_id: UUID, tenant_ids: Sequence[UUID], start: date, end: date
) -> list[asyncpg.Record]:
    """The operator's agreements with (reachable) clients that run during [start, end)."""
    return list(
        await conn.fetch(
            """SELECT a.tenant_id, a.id, a.starts_on, a.ends_on, t.name FROM agreements a
               JOIN tenants t ON t.id = a.tenant_id
               WHERE a.operator_tenant_id = $1 AND a.tenant_id = ANY($2::uuid[]) AND a.starts_on < $4
                 AND (a.ends_on IS NULL OR a.ends_on >= $3)
               ORDER BY t.name, a.starts_on""",
            operator_id,
            list(tenant_ids),
            start,
            end,
        )
    )


# --- tariffs --------------------------------------------------------------------------------------


def _tariff(row: asyncpg.Record) -> Tariff:
    return row_to(Tariff, row)


async def list_tariffs(conn: asyncpg.Connection, tenant_ids: Sequence[UUID]) -> list[Tariff]:
    rows = await conn.fetch(
        f"""SELECT {TARIFF_COLUMNS} FROM tariffs WHERE tenant_id = ANY($1::uuid[])
            ORDER BY tenant_id, lower(valid)""",
        list(tenant_ids),
    )
    return [_tariff(r) for r in rows]


async def find_tariff(
    conn: asyncpg.Connection, tariff_id: UUID, tenant_ids: Sequence[UUID], *, for_update: bool = False
) -> Tariff | None:
    row = await conn.fetchrow(
        f"""SELECT {TARIFF_COLUMNS} FROM tariffs WHERE id = $1 AND tenant_id = ANY($2::uuid[])
            {"FOR UPDATE" if for_update else ""}""",
        tariff_id,
        list(tenant_ids),
    )
    return _tariff(row) if row else None


async def tariff_in_force(conn: asyncpg.Connection, tenant_id: UUID, day: date) -> Tariff | None:
    row = await conn.fetchrow(
        f"SELECT {TARIFF_COLUMNS} FROM tariffs WHERE tenant_id = $1 AND valid @> $2::date", tenant_id, day
    )
    return _tariff(row) if row else None


async def insert_tariff(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    tariff_id: UUID,
    agreement_id: UUID,
    operator_id: UUID,
    valid_from: date,
    valid_to: date | None,
    price: Decimal,
    increment: int,
    minimum: Decimal | None,
    note: str,
    created_by: str,
    cost_base_year: int | None = None,
    first_period: int | None = None,
) -> Tariff:
    row = await conn.fetchrow(
        f"""INSERT INTO tariffs (tenant_id, id, agreement_id, operator_tenant_id, valid, price_per_minute,
                                 increment_seconds, minimum_charge, note, created_by, cost_base_year,
                                 first_period_seconds)
            VALUES ($1, $2, $3, $4, daterange($5::date, $6::date + 1, '[)'), $7, $8, $9, $10, $11, $12,
                    coalesce($13::int, $8))
            RETURNING {TARIFF_COLUMNS}""",
        tenant_id,
        tariff_id,
        agreement_id,
        operator_id,
        valid_from,
        valid_to,
        price,
        increment,
        minimum,
        note,
        created_by,
        cost_base_year,
        first_period,
    )
    assert row is not None
    return _tariff(row)


async def update_tariff(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    tariff_id: UUID,
    valid_from: date,
    valid_to: date | None,
    price: Decimal,
    increment: int,
    minimum: Decimal | None,
    note: str,
    expected_version: int | None,
    first_period: int | None = None,
) -> Tariff | None:
    row = await conn.fetchrow(
        f"""UPDATE tariffs SET valid = daterange($3::date, $4::date + 1, '[)'), price_per_minute = $5,
                   increment_seconds = $6, first_period_seconds = coalesce($10::int, $6), minimum_charge = $7,
                   note = $8, version = version + 1, updated_at = now()
            WHERE tenant_id = $1 AND id = $2 AND ($9::int IS NULL OR version = $9)
            RETURNING {TARIFF_COLUMNS}""",
        tenant_id,
        tariff_id,
        valid_from,
        valid_to,
        price,
        increment,
        minimum,
        note,
        expected_version,
        first_period,
    )
    return _tariff(row) if row else None


async def invoiced_days_overlap(
    conn: asyncpg.Connection, tenant_id: UUID, ranges: Sequence[tuple[date, date | None]], tariff_id: UUID | None
) -> str | None:
    """The number of an issued invoice covering any of the half-open day `ranges` (directly or by
    correction lines of `tariff_id`); None when those days are not invoiced."""
    lowers = [r[0] for r in ranges]
    uppers = [r[1] for r in ranges]
    number: str | None = await conn.fetchval(
        """WITH changed AS (SELECT daterange(l, u, '[)') AS days FROM unnest($2::date[], $3::date[]) AS x(l, u))
           SELECT i.number FROM invoices i
           WHERE i.tenant_id = $1 AND i.kind = 'invoice' AND i.status = 'issued'
             AND (
                  (i.purpose = 'usage' AND EXISTS (SELECT 1 FROM changed c WHERE c.days && i.period))
               OR ($4::uuid IS NOT NULL AND EXISTS (
                      SELECT 1 FROM invoice_lines l, changed c
                      WHERE l.tenant_id = i.tenant_id AND l.invoice_id = i.id AND l.tariff_id = $4
                        AND l.covers && c.days)))
           ORDER BY i.number LIMIT 1""",
        tenant_id,
        lowers,
        uppers,
        tariff_id,
    )
    return number


async def rebuild(conn: asyncpg.Connection, tenant_id: UUID, start: date, end: date | None) -> int:
    """Re-rate the tenant's calls on days [start, end) (end None: open-ended)."""
    rebuilt: int = await conn.fetchval("SELECT billing_rebuild($1, $2, $3)", tenant_id, start, end)
    return rebuilt


# --- cost bases -----------------------------------------------------------------------------------


async def upsert_cost_base(
    conn: asyncpg.Connection, operator_id: UUID, data: CostBaseInput, recorded_by: str
) -> CostBase | None:
    """Insert or replace a year's cost base; None when it was adopted already (then fixed)."""
    row = await conn.fetchrow(
        f"""INSERT INTO cost_bases (tenant_id, year, staff, it, overheads, other, note, recorded_by, own_items)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (tenant_id, year) DO UPDATE SET staff = EXCLUDED.staff, it = EXCLUDED.it,
                overheads = EXCLUDED.overheads, other = EXCLUDED.other, note = EXCLUDED.note,
                own_items = EXCLUDED.own_items,
                recorded_by = EXCLUDED.recorded_by, recorded_at = now(), version = cost_bases.version + 1
            WHERE cost_bases.adopted_rate IS NULL
            RETURNING {COST_BASE_COLUMNS}""",
        operator_id,
        data.year,
        data.staff,
        data.it,
        data.overheads,
        data.other,
        data.note,
        recorded_by,
        msgspec.to_builtins(data.own_items),
    )
    return row_to(CostBase, row) if row else None


async def find_cost_base(
    conn: asyncpg.Connection, operator_id: UUID, year: int, *, for_update: bool = False
) -> CostBase | None:
    row = await conn.fetchrow(
        f"""SELECT {COST_BASE_COLUMNS} FROM cost_bases WHERE tenant_id = $1 AND year = $2
            {"FOR UPDATE" if for_update else ""}""",
        operator_id,
        year,
    )
    return row_to(CostBase, row) if row else None


async def list_cost_bases(conn: asyncpg.Connection, operator_id: UUID) -> list[CostBase]:
    rows = await conn.fetch(
        f"SELECT {COST_BASE_COLUMNS} FROM cost_bases WHERE tenant_id = $1 ORDER BY year", operator_id
    )
    return [row_to(CostBase, r) for r in rows]


async def mark_adopted(conn: asyncpg.Connection, operator_id: UUID, year: int, rate: Decimal, by: str) -> None:
    await conn.execute(
        """UPDATE cost_bases SET adopted_rate = $3, adopted_at = now(), adopted_by = $4
           WHERE tenant_id = $1 AND year = $2""",
        operator_id,
        year,
        rate,
        by,
    )


async def billable_seconds_by_client(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], start: date, end: date
) -> dict[UUID, int]:
    rows = await conn.fetch(
        """SELECT tenant_id, sum(billable_seconds)::bigint AS seconds FROM call_rollups
           WHERE tenant_id = ANY($1::uuid[]) AND day >= $2 AND day < $3 GROUP BY tenant_id""",
        list(tenant_ids),
        start,
        end,
    )
    return {r["tenant_id"]: r["seconds"] for r in rows}


async def unrated_seconds_by_tenant(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], start: date, end: date, first: int, increment: int
) -> dict[UUID, int]:
    """Talked calls without a tariff on days [start, end), counted as a `first`/`increment` tariff
    would bill them (each call's raw seconds are kept in call_charges)."""
    rows = await conn.fetch(
        """SELECT tenant_id, sum(billing_billable_seconds(talk_seconds, $4, $5))::bigint AS seconds
           FROM call_charges
           WHERE tenant_id = ANY($1::uuid[]) AND day >= $2 AND day < $3 AND tariff_id IS NULL
           GROUP BY tenant_id""",
        list(tenant_ids),
        start,
        end,
        first,
        increment,
    )
    return {r["tenant_id"]: r["seconds"] for r in rows}


async def billed_by_client(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], start: date, end: date
) -> dict[UUID, Decimal]:
    """Net amounts of issued (not cancelled) usage lines covering days in [start, end)."""
    rows = await conn.fetch(
        """SELECT l.tenant_id, sum(l.amount) AS amount
           FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
           WHERE l.tenant_id = ANY($1::uuid[]) AND i.kind = 'invoice' AND i.status = 'issued'
             AND l.kind IN ('usage', 'minimum_charge') AND l.covers && daterange($2, $3, '[)')
           GROUP BY l.tenant_id""",
        list(tenant_ids),
        start,
        end,
    )
    return {r["tenant_id"]: r["amount"] for r in rows}


# --- the rate agreed with the towns ---------------------------------------------------------------

CONSENT_COLUMNS = """tenant_id, operator_tenant_id, year, rate, respond_by, decision, note, decided_by, decided_at"""
EVENT_COLUMNS = """tenant_id, id, operator_tenant_id, year, kind, rate, note, actor, at"""


async def find_rate_proposal(
    conn: asyncpg.Connection, operator_id: UUID, year: int, *, for_update: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT tenant_id, year, rate, respond_by, status, adoption_reason FROM rate_proposals
            WHERE tenant_id = $1 AND year = $2 {"FOR UPDATE" if for_update else ""}""",
        operator_id,
        year,
    )


async def lock_rate_year(conn: asyncpg.Connection, operator_id: UUID, year: int) -> None:
    """Until the transaction ends, the one who changes a year's costs, proposes or adopts its rate:
    a proposal is made from the costs as they stand, and costs change only before it."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('rate-year:' || $1::uuid::text || ':' || $2::int::text, 0))",
        operator_id,
        year,
    )


async def insert_rate_proposal(
    conn: asyncpg.Connection, operator_id: UUID, year: int, rate: Decimal, respond_by: date, by: str
) -> bool:
    """False when the year was proposed already."""
    status = await conn.execute(
        """INSERT INTO rate_proposals (tenant_id, year, rate, respond_by, proposed_by) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, year) DO NOTHING""",
        operator_id,
        year,
        rate,
        respond_by,
        by,
    )
    return status.endswith(" 1")


async def insert_consents(
    conn: asyncpg.Connection, client_ids: Sequence[UUID], operator_id: UUID, year: int, rate: Decimal, respond_by: date
) -> None:
    await conn.execute(
        """INSERT INTO rate_consents (tenant_id, operator_tenant_id, year, rate, respond_by)
           SELECT c, $2, $3, $4, $5 FROM unnest($1::uuid[]) AS c""",
        list(client_ids),
        operator_id,
        year,
        rate,
        respond_by,
    )


async def find_consent(
    conn: asyncpg.Connection, tenant_id: UUID, year: int, *, for_update: bool = False
) -> tuple[RateConsent, datetime | None] | None:
    """A town's answer to the year's proposal, and when the rate was adopted (None: still open)."""
    row = await conn.fetchrow(
        f"""SELECT {CONSENT_COLUMNS}, adopted_at FROM rate_consents WHERE tenant_id = $1 AND year = $2
            ORDER BY operator_tenant_id LIMIT 1 {"FOR UPDATE" if for_update else ""}""",
        tenant_id,
        year,
    )
    if row is None:
        return None
    values = dict(row)
    adopted_at = values.pop("adopted_at")
    return row_to(RateConsent, values), adopted_at


async def decide_consent(
    conn: asyncpg.Connection, consent: RateConsent, decision: str, note: str, by: str
) -> RateConsent:
    row = await conn.fetchrow(
        f"""UPDATE rate_consents SET decision = $4, note = $5, decided_by = $6, decided_at = clock_timestamp()
            WHERE tenant_id = $1 AND operator_tenant_id = $2 AND year = $3
            RETURNING {CONSENT_COLUMNS}""",
        consent.tenant_id,
        consent.operator_tenant_id,
        consent.year,
        decision,
        note,
        by,
    )
    assert row is not None
    return row_to(RateConsent, row)


async def list_consents(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], year: int, *, for_update: bool = False
) -> list[RateConsent]:
    """`for_update`: the answers hold still until the transaction ends (an adoption reads them)."""
    rows = await conn.fetch(
        f"""SELECT {CONSENT_COLUMNS} FROM rate_consents c WHERE tenant_id = ANY($1::uuid[]) AND year = $2
            ORDER BY (SELECT name FROM tenants t WHERE t.id = c.tenant_id), tenant_id
            {"FOR UPDATE" if for_update else ""}""",
        list(tenant_ids),
        year,
    )
    return [row_to(RateConsent, r) for r in rows]


async def consents_adopted(conn: asyncpg.Connection, tenant_ids: Sequence[UUID], year: int) -> bool:
    adopted: bool = await conn.fetchval(
        """SELECT coalesce(bool_and(adopted_at IS NOT NULL), false) FROM rate_consents
           WHERE tenant_id = ANY($1::uuid[]) AND year = $2""",
        list(tenant_ids),
        year,
    )
    return adopted


async def mark_rate_adopted(
    conn: asyncpg.Connection, operator_id: UUID, year: int, client_ids: Sequence[UUID], by: str, reason: str | None
) -> None:
    await conn.execute(
        """UPDATE rate_proposals SET status = 'adopted', adopted_by = $3, adopted_at = now(), adoption_reason = $4
           WHERE tenant_id = $1 AND year = $2""",
        operator_id,
        year,
        by,
        reason,
    )
    await conn.execute(
        """UPDATE rate_consents SET adopted_at = now()
           WHERE tenant_id = ANY($3::uuid[]) AND operator_tenant_id = $1 AND year = $2""",
        operator_id,
        year,
        list(client_ids),
    )


async def insert_rate_events(
    conn: asyncpg.Connection,
    client_ids: Sequence[UUID],
    operator_id: UUID,
    year: int,
    kind: RateEventKind,
    rate: Decimal,
    note: str,
    actor: str,
) -> None:
    await conn.execute(
        """INSERT INTO rate_events (tenant_id, id, operator_tenant_id, year, kind, rate, note, actor)
           SELECT c, gen_random_uuid(), $2, $3, $4, $5, $6, $7 FROM unnest($1::uuid[]) AS c""",
        list(client_ids),
        operator_id,
        year,
        kind.value,
        rate,
        note,
        actor,
    )


async def list_rate_events(conn: asyncpg.Connection, tenant_ids: Sequence[UUID], year: int) -> list[RateEvent]:
    rows = await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM rate_events WHERE tenant_id = ANY($1::uuid[]) AND year = $2
            ORDER BY at, tenant_id, id""",
        list(tenant_ids),
        year,
    )
    return [row_to(RateEvent, r) for r in rows]


# --- figures --------------------------------------------------------------------------------------


async def figure_sums(
    conn: asyncpg.Connection, tenant_ids: Sequence[UUID], start: date, end: date
) -> list[asyncpg.Record]:
    """Per tenant: every call ('all') and 115 calls ('115'), from the daily rollups."""
    return list(
        await conn.fetch(
            """SELECT tenant_id, scope,
                      sum(offered)::bigint AS offered, sum(answered)::bigint AS answered,
                      sum(abandoned)::bigint AS abandoned, sum(answered_within_30s)::bigint AS answered_within_30s,
                      sum(wait_reported)::bigint AS wait_reported,
                      sum(settled_first_contact)::bigint AS settled_first_contact,
                      sum(forwarded_as_ticket)::bigint AS forwarded_as_ticket,
                      sum(transferred)::bigint AS transferred, sum(talk_seconds)::bigint AS talk_seconds,
                      sum(billable_seconds)::bigint AS billable_seconds, sum(unrated_calls)::bigint AS unrated_calls
               FROM call_rollups r
               CROSS JOIN LATERAL (VALUES ('all'), (CASE WHEN r.purpose = '115' THEN '115' END)) AS s(scope)
               WHERE r.tenant_id = ANY($1::uuid[]) AND r.day >= $2 AND r.day < $3 AND s.scope IS NOT NULL
               GROUP BY tenant_id, scope""",
            list(tenant_ids),
            start,
            end,
        )
    )
