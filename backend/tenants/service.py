"""The rules for tenants, departments, identity settings and agreements.

Every function takes the unit of work (transaction scoped to the principal's tenants), checks
the permission matrix, validates, and calls the repository. A tenant the principal may not
reach is reported as not found, exactly like one that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from redis.exceptions import RedisError

from auth.claims import ClaimPathError, check_group_path, parse_claim_path
from auth.oidc import REASONS, KeysUnavailable
from auth.permissions import Operation, require
from auth.principal import Principal
from auth.roles import OPERATOR_ONLY_ROLES, Role
from backend import clock
from backend.errors import (
    Conflict,
    Duplicate,
    InvalidTransition,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    VersionConflict,
)
from backend.i18n import Message, _l
from backend.state import AppState, UnitOfWork, unit_of_work
from backend.tenants import reach, repository, signin
from backend.tenants.refusals import RedisRefusalLog
from backend.tenants.schemas import (
    SLUG_PATTERN,
    Agreement,
    AgreementCreate,
    AgreementTermination,
    AgreementView,
    ClosingDay,
    Department,
    DepartmentInput,
    IdentityIssuer,
    IdentityIssuerInput,
    IssuerDiscovery,
    IssuerKeys,
    SignInRefusalView,
    Tenant,
    TenantCreate,
    TenantUpdate,
    TokenReason,
    TokenVerdict,
)
from backend.tenants.validation import (
    check_ags,
    check_federal_state,
    check_leitweg_id,
    check_service_hours,
    check_time_zone,
)

BERLIN = ZoneInfo("Europe/Berlin")
MAX_PAGE_SIZE = 100
_SLUG = re.compile(SLUG_PATTERN)
# Agreement dates: wide enough for any real agreement, narrow enough that term ends and
# notice deadlines (up to 240 + renewal months away) stay inside Python's years 1 … 9999.
EARLIEST_AGREEMENT_DAY = date(1900, 1, 1)
LATEST_AGREEMENT_DAY = date(2199, 12, 31)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Tenant]
    next_cursor: str | None


async def tenant(uow: UnitOfWork, tenant_slug: str) -> Tenant:
    return await reach.reach(uow, tenant_slug, Operation.TENANT_READ)


async def home_tenant(uow: UnitOfWork) -> Tenant:
    require(uow.principal, Operation.ME_READ)
    return await repository.get_tenant(uow.conn, uow.principal.tenant_id)


async def list_tenants(uow: UnitOfWork, first: int = 50, after: str | None = None) -> Page:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            _l("first must be between 1 and {max_page_size}", max_page_size=MAX_PAGE_SIZE), field="first"
        )
    if after is not None and not _SLUG.match(after):
        raise ValidationFailed(_l("not a cursor from a previous page"), field="after")
    reachable = require(uow.principal, Operation.TENANT_READ)
    rows = await repository.list_tenants(uow.conn, list(reachable), after, first + 1)
    items = rows[:first]
    return Page(items=items, next_cursor=items[-1].slug if len(rows) > first else None)


async def tenants_by_ids(uow: UnitOfWork, tenant_ids: list[UUID]) -> dict[UUID, Tenant]:
    reachable = require(uow.principal, Operation.TENANT_READ)
    wanted = [t for t in tenant_ids if t in reachable]
    return {t.id: t for t in await repository.list_tenants_by_ids(uow.conn, wanted)}


async def create_tenant(uow: UnitOfWork, data: TenantCreate) -> Tenant:
    require(uow.principal, Operation.TENANT_CREATE)
    check_ags(data.ags)
    check_federal_state(data.federal_state)
    check_time_zone(data.time_zone)
    check_service_hours(data.service_hours)
    check_leitweg_id(data.leitweg_id)
    tenant_id = uuid4()
    await uow.include_tenant(tenant_id)
    try:
        async with uow.conn.transaction():  # savepoint: a duplicate slug leaves nothing behind
            tenant = await repository.insert_tenant(uow.conn, tenant_id, data)
    except asyncpg.UniqueViolationError:
        raise Duplicate(_l("a tenant with slug {slug!r} already exists", slug=data.slug), field="slug") from None
    uow.after_commit(lambda: signin.signin_changed(uow.app))
    return tenant


async def update_tenant(uow: UnitOfWork, tenant_slug: str, data: TenantUpdate) -> Tenant:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.TENANT_UPDATE)).id
    uow.after_commit(uow.app.tenant_changed)
    check_ags(data.ags)
    check_federal_state(data.federal_state)
    check_time_zone(data.time_zone)
    check_service_hours(data.service_hours)
    check_leitweg_id(data.leitweg_id)
    changes: dict[str, Any] = {
        key: value for key, value in msgspec.structs.asdict(data).items() if value is not None and key != "version"
    }
    if "service_hours" in changes:
        changes["service_hours"] = msgspec.to_builtins(data.service_hours)
    if "status" in changes:
        changes["status"] = changes["status"].value
    updated = await repository.update_tenant(uow.conn, tenant_id, changes, data.version)
    if updated is None:
        raise VersionConflict(_l("the tenant was changed by someone else; reload and try again"))
    if "status" in changes:
        # Sign-in drops offboarded tenants' issuers (auth_issuer_bindings) and ends the
        # operator's access to them; both are remembered by sign-in, so they are dropped now.
        uow.after_commit(lambda: signin.signin_changed(uow.app))
    return updated


async def departments(uow: UnitOfWork, tenant_ids: list[UUID]) -> dict[UUID, list[Department]]:
    """Departments of several tenants at once (for GraphQL data loaders and REST)."""
    reachable = require(uow.principal, Operation.DEPARTMENT_READ)
    wanted = [t for t in tenant_ids if t in reachable]
    grouped: dict[UUID, list[Department]] = {t: [] for t in tenant_ids}
    for department in await repository.list_departments(uow.conn, wanted):
        grouped[department.tenant_id].append(department)
    return grouped


async def tenant_departments(uow: UnitOfWork, tenant_slug: str) -> list[Department]:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.DEPARTMENT_READ)).id
    return (await departments(uow, [tenant_id]))[tenant_id]


async def add_department(uow: UnitOfWork, tenant_slug: str, data: DepartmentInput) -> Department:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.DEPARTMENT_WRITE)).id
    uow.after_commit(uow.app.tenant_changed)
    try:
        async with uow.conn.transaction():
            return await repository.insert_department(
                uow.conn, tenant_id, uuid4(), data.name, data.email, data.phone, data.active
            )
    except asyncpg.UniqueViolationError:
        raise Duplicate(_l("a department named {name!r} already exists", name=data.name), field="name") from None


async def update_department(
    uow: UnitOfWork, tenant_slug: str, department_id: UUID, data: DepartmentInput
) -> Department:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.DEPARTMENT_WRITE)).id
    uow.after_commit(uow.app.tenant_changed)
    try:
        async with uow.conn.transaction():
            department = await repository.update_department(
                uow.conn, tenant_id, department_id, data.name, data.email, data.phone, data.active
            )
    except asyncpg.UniqueViolationError:
        raise Duplicate(_l("a department named {name!r} already exists", name=data.name), field="name") from None
    if department is None:
        raise NotFound(_l("department not found"))
    return department


async def closing_days(uow: UnitOfWork, tenant_slug: str) -> list[ClosingDay]:
    tenant_id = (await reach.reach(uow, tenant_slug, Operation.TENANT_READ)).id
    return await repository.list_closing_days(uow.conn, tenant_id)


async def closing_days_by_tenant(uow: UnitOfWork, tenant_ids: list[UUID]) -> dict[UUID, list[ClosingDay] | NotFound]:
    """Closing days of several tenants in one query; a tenant out of reach is not found."""
    reachable = require(uow.principal, Operation.TENANT_READ)
    grouped: dict[UUID, list[ClosingDay] | NotFound] = {
        t: [] if t in reachable else NotFound(_l("tenant not found")) for t in tenant_ids
    }
    for tenant_id, day in await repository.list_closing_days_of(uow.conn, [t for t in tenant_ids if t in reachable]):
        days = grouped[tenant_id]
        assert isinstance(days, list)
        days.append(day)
    return grouped


async def set_closing_day(uow: UnitOfWork, tenant_slug: str, day: ClosingDay) -> list[ClosingDay]:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.DEPARTMENT_WRITE)).id
    uow.after_commit(uow.app.tenant_changed)
    name = day.name.strip()
    if not 1 <= len(name) <= 200 or "\x00" in name:
        raise ValidationFailed(_l("a closing day needs a name of 1 to 200 characters"), field="name")
    await repository.upsert_closing_day(uow.conn, tenant_id, day.day, name)
    return await repository.list_closing_days(uow.conn, tenant_id)


async def remove_closing_day(uow: UnitOfWork, tenant_slug: str, day: date) -> list[ClosingDay]:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.DEPARTMENT_WRITE)).id
    uow.after_commit(uow.app.tenant_changed)
    if not await repository.delete_closing_day(uow.conn, tenant_id, day):
        raise NotFound(_l("closing day not found"))
    return await repository.list_closing_days(uow.conn, tenant_id)


async def identity_issuers(uow: UnitOfWork, tenant_slug: str) -> list[IdentityIssuer]:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.IDENTITY_READ)).id
    return await repository.list_identity_issuers(uow.conn, tenant_id)


async def identity_issuers_by_tenant(
    uow: UnitOfWork, tenant_ids: list[UUID]
) -> dict[UUID, list[IdentityIssuer] | NotFound]:
    """Identity issuers of several tenants in one query; a tenant out of reach is not found."""
    reachable = require(uow.principal, Operation.IDENTITY_READ)
    grouped: dict[UUID, list[IdentityIssuer] | NotFound] = {
        t: [] if t in reachable else NotFound(_l("tenant not found")) for t in tenant_ids
    }
    for issuer in await repository.list_identity_issuers_of(uow.conn, [t for t in tenant_ids if t in reachable]):
        issuers = grouped[issuer.tenant_id]
        assert isinstance(issuers, list)
        issuers.append(issuer)
    return grouped


async def add_identity_issuer(uow: UnitOfWork, tenant_slug: str, data: IdentityIssuerInput) -> IdentityIssuer:
    tenant = await reach.reach_seen(uow, tenant_slug, Operation.IDENTITY_WRITE)
    tenant_id = tenant.id
    if (data.org_claim is None) != (data.org_value is None):
        raise ValidationFailed(_l("give both the organisation claim and its value, or neither"), field="orgClaim")
    if uow.app.settings.is_production and not data.issuer.startswith("https://"):
        raise ValidationFailed(_l("issuers must use https in production"), field="issuer")
    # Literal addresses are refused here; host names where they resolve, at every fetch.
    if refused := uow.app.outbound.url_refusal(data.issuer):
        raise ValidationFailed(_l("issuer refused: {reason}", reason=refused), field="issuer")
    unknown = sorted(set(data.role_mapping.values()) - {role.value for role in Role})
    if unknown:
        raise ValidationFailed(
            _l("unknown roles in role mapping: {unknown}", unknown=", ".join(unknown)), field="roleMapping"
        )
    # Refused here rather than by every token later (decision 016): a path that cannot be read
    # used to register and then lock the town out with nothing but 401s.
    try:
        parse_claim_path(data.role_claim)
    except ClaimPathError as error:
        message = _l(
            "role claim {claim!r} is not a claim path: {reason}",
            claim=data.role_claim,
            reason=Message(error.msgid, error.params),
        )
        raise ValidationFailed(message, field="roleClaim") from None
    for key in data.role_mapping:
        try:
            check_group_path(key)
        except ClaimPathError as error:
            raise ValidationFailed(Message(error.msgid, error.params), field="roleMapping") from None
    operator_only = sorted({role.value for role in OPERATOR_ONLY_ROLES} & set(data.role_mapping.values()))
    if operator_only and not tenant.is_operator:
        raise ValidationFailed(
            _l(
                "only the operator's issuers grant {operator_only}; a town's sign-in cannot",
                operator_only=", ".join(operator_only),
            ),
            field="roleMapping",
        )
    # An issuer shared by several tenants must tell them apart by organisation; the lookup runs
    # across tenants, so the rule sees whether (and by which claim) others trust it, no more.
    others = await repository.issuer_sharing(uow.conn, data.issuer)
    if others and (data.org_value is None or not all(b["told_apart"] for b in others)):
        raise Conflict(
            _l(
                "this issuer is already registered; several tenants can share an issuer only when "
                "each is told apart by an organisation claim"
            ),
            field="issuer",
        )
    # Told apart by the same claim: another claim could make the others' tokens ambiguous, and
    # sign-in refuses those (one town locking the others out). The database holds this too.
    if any(b["org_claim"] != data.org_claim for b in others):
        raise Conflict(
            _l("tenants sharing this issuer are told apart by another organisation claim; use the same claim"),
            field="orgClaim",
        )
    # Tried once, so the admin learns now (not from their people's 401s) that sign-in cannot
    # work yet; registered either way (the identity provider may come up later).
    problem = await uow.app.verifier.jwks.discovery_problem(data.issuer)
    discovery = IssuerDiscovery(fetched=problem is None, problem=problem)
    try:
        async with uow.conn.transaction():
            issuer = await repository.insert_identity_issuer(
                uow.conn,
                tenant_id,
                uuid4(),
                data.issuer,
                data.audience,
                data.org_claim,
                data.org_value,
                data.role_claim,
                data.role_mapping,
            )
    except asyncpg.UniqueViolationError:
        raise Duplicate(_l("this issuer and organisation are already registered"), field="issuer") from None
    except asyncpg.ExclusionViolationError:  # registered concurrently with another claim
        raise Conflict(_l("tenants sharing this issuer use another organisation claim"), field="orgClaim") from None
    uow.after_commit(lambda: signin.signin_changed(uow.app))
    return msgspec.structs.replace(issuer, discovery=discovery)


async def remove_identity_issuer(uow: UnitOfWork, tenant_slug: str, issuer_id: UUID) -> None:
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.IDENTITY_WRITE)).id
    issuer = await repository.delete_identity_issuer(uow.conn, tenant_id, issuer_id)
    if issuer is None:
        raise NotFound(_l("identity issuer not found"))
    uow.after_commit(lambda: signin.signin_changed(uow.app))


async def refresh_issuer_keys(uow: UnitOfWork, tenant_slug: str, issuer_id: UUID) -> IssuerKeys:
    """Fetch the issuer's signing keys now (its identity provider withdrew a key, say after a
    leak): tokens signed with a withdrawn key are refused at once on every instance, not when
    the cached keys expire. Nothing changes when the keys cannot be fetched."""
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.IDENTITY_WRITE)).id
    issuer = await repository.get_identity_issuer(uow.conn, tenant_id, issuer_id)
    try:
        key_set = await uow.app.verifier.jwks.refresh(issuer.issuer)
    except KeysUnavailable:
        # Nothing about why (refused address, closed port, bad document): that would let a
        # town admin map our network. The reason is in the server's log.
        raise ServiceUnavailable(_l("could not fetch the issuer's keys; the keys in use stay as they were")) from None
    # Tokens verified before are remembered under the sign-in generation: a new one drops them.
    uow.after_commit(lambda: signin.signin_changed(uow.app))
    return IssuerKeys(
        issuer_id=issuer.id,
        issuer=issuer.issuer,
        key_ids=sorted(key.kid for key in key_set.keys if key.kid),
        fetched_at=clock.now(),
    )


async def sign_in_refusals(
    uow: UnitOfWork, tenant_slug: str, issuer_id: UUID, limit: int = 50
) -> list[SignInRefusalView]:
    """The last refused tokens of one of the tenant's issuers, newest first (decision 016)."""
    tenant_id = (await reach.reach_seen(uow, tenant_slug, Operation.IDENTITY_READ)).id
    issuer = await repository.get_identity_issuer(uow.conn, tenant_id, issuer_id)
    return await issuer_refusals(uow, issuer, limit)


async def issuer_refusals(uow: UnitOfWork, issuer: IdentityIssuer, limit: int = 50) -> list[SignInRefusalView]:
    """The same for an issuer already read (GraphQL `IdentityIssuer.recentRefusals`)."""
    if issuer.tenant_id not in require(uow.principal, Operation.IDENTITY_READ):
        raise NotFound(_l("tenant not found"))
    try:
        kept = await RedisRefusalLog(uow.app.redis, uow.app.namespace).recent(issuer.tenant_id, issuer.issuer, limit)
    except RedisError:
        raise ServiceUnavailable(_l("the refusal log cannot be read right now (Redis is unreachable)")) from None
    return [
        SignInRefusalView(
            reason=r.reason,
            message=REASONS.get(r.reason, r.reason),
            at=datetime.fromtimestamp(r.at, UTC),
            claim=r.claim,
            token_claims=list(r.token_claims),
        )
        for r in kept
    ]


async def check_token(app: AppState, principal: Principal, token: str) -> TokenVerdict:
    """Would this token sign in, and if not, every reason why — for an admin of the issuer's
    tenant. Nobody is signed in; the token is neither remembered nor logged. Issuers of
    tenants outside the caller's reach answer like unregistered ones.
    Takes no unit of work: the diagnosis reads issuers on a connection of its own, which must
    not be asked for while a transaction holds another (decision 013)."""
    tenants = require(principal, Operation.IDENTITY_READ)
    diagnosis = await app.verifier.diagnose(token, tenants)
    slug = None
    if diagnosis.tenant_id is not None:
        async with unit_of_work(app, principal, readonly=True) as uow:
            slug = (await repository.get_tenant(uow.conn, diagnosis.tenant_id)).slug
    return TokenVerdict(
        accepted=diagnosis.accepted,
        reasons=[TokenReason(code=r.reason, message=r.message, claim=r.claim) for r in diagnosis.reasons],
        issuer=diagnosis.issuer,
        tenant_slug=slug,
        roles=sorted(diagnosis.roles),
        scopes=sorted(diagnosis.scopes),
        role_claim=diagnosis.role_claim,
        role_claim_values=list(diagnosis.role_claim_values),
        expires_at=datetime.fromtimestamp(diagnosis.expires_at, UTC) if diagnosis.expires_at is not None else None,
    )


def _check_agreement_day(day: date, field: str) -> None:
    if not EARLIEST_AGREEMENT_DAY <= day <= LATEST_AGREEMENT_DAY:
        raise ValidationFailed(
            _l(
                "the date must lie between {earliest_agreement_day} and {latest_agreement_day}",
                earliest_agreement_day=EARLIEST_AGREEMENT_DAY.isoformat(),
                latest_agreement_day=LATEST_AGREEMENT_DAY.isoformat(),
            ),
            field=field,
        )


def view_agreement(agreement: Agreement, on: date) -> AgreementView:
    """The agreement on a day. `notice_deadline` belongs to `notice_term_end` (the end a notice
    given that day reaches), which is the current term's end only while its deadline is ahead."""
    term_end = agreement.current_term_end(on)
    deadline = notice_term_end = None
    if term_end is not None and agreement.ends_on is None:
        notice_term_end = agreement.earliest_end_if_noticed_on(on)
        deadline = agreement.notice_deadline(notice_term_end)
    return AgreementView(
        agreement=agreement,
        on=on,
        active=agreement.is_active_on(on),
        current_term_end=term_end,
        notice_deadline=deadline,
        notice_term_end=notice_term_end,
    )


async def list_agreements(uow: UnitOfWork, on: date | None = None) -> list[AgreementView]:
    reachable = require(uow.principal, Operation.AGREEMENT_READ)
    if on is not None:
        _check_agreement_day(on, "on")
    day = on or clock.today()
    return [view_agreement(a, day) for a in await repository.list_agreements(uow.conn, list(reachable))]


async def active_client_ids(uow: UnitOfWork, operator_id: UUID, on: date | None = None) -> list[UUID]:
    """The towns an operator serves on a day (default today), among the agreements the principal
    may read: `list_agreements`' `active`, without working out each agreement's terms and notice
    (the XZuFi import asks this once per message)."""
    reachable = require(uow.principal, Operation.AGREEMENT_READ)
    day = on or clock.today()
    return [
        a.tenant_id
        for a in await repository.list_agreements(uow.conn, list(reachable))
        if a.operator_tenant_id == operator_id and a.is_active_on(day)
    ]


async def agreement(uow: UnitOfWork, agreement_id: UUID, operation: Operation) -> Agreement:
    """One agreement whose client the operation reaches (billing hangs tariffs on agreements)."""
    reachable = reach.reachable(uow, operation)
    found = await repository.find_agreement_by_id(uow.conn, agreement_id, list(reachable))
    if found is None:
        raise NotFound(_l("agreement not found"))
    return found


async def create_agreement(uow: UnitOfWork, data: AgreementCreate) -> AgreementView:
    reachable = require(uow.principal, Operation.AGREEMENT_WRITE)
    _check_agreement_day(data.starts_on, "startsOn")
    operator = await repository.get_tenant(uow.conn, uow.principal.tenant_id)
    if not operator.is_operator:
        raise ValidationFailed(_l("only an operator's platform admin can conclude agreements"))
    if data.client_tenant_id not in reachable or data.client_tenant_id == operator.id:
        raise NotFound(_l("client tenant not found"))
    await repository.get_tenant(uow.conn, data.client_tenant_id)
    await repository.lock_agreements_between(uow.conn, data.client_tenant_id, operator.id)
    if await repository.overlapping_agreement_exists(uow.conn, data.client_tenant_id, operator.id, data.starts_on):
        raise Conflict(_l("this client already has an agreement with the operator in that period"))
    try:
        async with uow.conn.transaction():
            agreement = await repository.insert_agreement(
                uow.conn,
                data.client_tenant_id,
                uuid4(),
                operator.id,
                data.starts_on,
                data.initial_term_months,
                data.renewal_term_months,
                data.notice_period_months,
                data.scope_notes,
            )
    except asyncpg.ExclusionViolationError:  # concluded concurrently
        raise Conflict(_l("this client already has an agreement with the operator in that period")) from None
    uow.after_commit(lambda: signin.signin_changed(uow.app))
    uow.after_commit(uow.app.tenant_changed)  # routing serves a town only under an agreement in force
    return view_agreement(agreement, clock.today())


async def terminate_agreement(uow: UnitOfWork, agreement_id: UUID, data: AgreementTermination) -> AgreementView:
    """Notice given on a day ends the agreement at the first term end it still reaches. Either
    party gives it: the operator's platform admin, or the town's own admin (recorded which)."""
    reachable = require(uow.principal, Operation.AGREEMENT_NOTICE)
    _check_agreement_day(data.noticed_on, "noticedOn")
    agreement = await repository.find_agreement_by_id(uow.conn, agreement_id, list(reachable))
    if agreement is None:
        raise NotFound(_l("agreement not found"))
    if agreement.ends_on is not None:
        raise InvalidTransition(_l("the agreement already ends on {ends_on}", ends_on=agreement.ends_on.isoformat()))
    if data.noticed_on < agreement.starts_on:
        raise ValidationFailed(_l("notice cannot be given before the agreement starts"), field="noticedOn")
    ends_on = agreement.earliest_end_if_noticed_on(data.noticed_on)
    party = "client" if uow.principal.tenant_id == agreement.tenant_id else "operator"
    updated = await repository.set_agreement_end(
        uow.conn, agreement.tenant_id, agreement.id, ends_on, data.noticed_on, party, uow.principal.log_id
    )
    if updated is None:
        raise VersionConflict(_l("the agreement was changed by someone else; reload and try again"))
    uow.after_commit(lambda: signin.signin_changed(uow.app))
    uow.after_commit(uow.app.tenant_changed)
    return view_agreement(updated, clock.today())
