"""Tenants, their departments, closing days, identity settings and agreements."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec
from dateutil.relativedelta import relativedelta

from backend.structs import LINES, Input, Schema

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, min_length=2, max_length=63)]
# Not blank: the database checks `length(btrim(name)) BETWEEN 1 AND 200`.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
# PostgreSQL `integer`.
Version = Annotated[int, msgspec.Meta(ge=1, le=2_147_483_647)]
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class TenantKind(StrEnum):
    DISTRICT = "district"
    TOWN = "town"
    MUNICIPALITY = "municipality"
    FEDERAL = "federal"
    OTHER = "other"


class TenantStatus(StrEnum):
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    OFFBOARDED = "offboarded"


class ServiceInterval(Schema, frozen=True):
    """Opening interval on an ISO weekday (1 = Monday … 7 = Sunday), local time of the tenant."""

    weekday: Annotated[int, msgspec.Meta(ge=1, le=7)]
    opens: ClockTime
    closes: ClockTime


# Service hours from the paper: Monday to Friday, 8 to 18.
DEFAULT_SERVICE_HOURS: tuple[ServiceInterval, ...] = tuple(
    ServiceInterval(weekday=d, opens="08:00", closes="18:00") for d in range(1, 6)
)


class Tenant(Schema, frozen=True):
    id: UUID
    slug: str
    name: str
    kind: TenantKind
    is_operator: bool
    ags: str | None
    federal_state: str
    time_zone: str
    service_hours: list[ServiceInterval]
    leitweg_id: str | None
    status: TenantStatus
    version: int
    created_at: datetime
    updated_at: datetime


class TenantCreate(Input, frozen=True):
    slug: Slug
    name: Name
    kind: TenantKind
    federal_state: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] = "NW"
    ags: str | None = None
    time_zone: str = "Europe/Berlin"
    service_hours: list[ServiceInterval] = msgspec.field(default_factory=lambda: list(DEFAULT_SERVICE_HOURS))
    leitweg_id: str | None = None
    is_operator: bool = False
    status: TenantStatus = TenantStatus.ONBOARDING


class TenantUpdate(Input, frozen=True):
    """Only the fields given change. `version` guards against lost updates when given."""

    name: Name | None = None
    ags: str | None = None
    federal_state: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] | None = None
    time_zone: str | None = None
    service_hours: list[ServiceInterval] | None = None
    leitweg_id: str | None = None
    status: TenantStatus | None = None
    version: Version | None = None


class Department(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    name: str
    email: str | None
    phone: str | None
    active: bool


class DepartmentInput(Input, frozen=True):
    name: Name
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    active: bool = True


class ClosingDay(Schema, frozen=True):
    day: date
    name: Name


class IssuerDiscovery(Schema, frozen=True):
    """Whether the issuer's discovery document could be fetched when it was registered."""

    fetched: bool
    problem: str | None = None  # what to check when it could not (never which network error)


class IdentityIssuer(Schema, frozen=True):
    tenant_id: UUID
    id: UUID
    issuer: str
    audience: str
    org_claim: str | None
    org_value: str | None
    role_claim: str
    role_mapping: dict[str, str]
    # Only in the answer to registering the issuer (null in lists): its discovery, tried once.
    discovery: IssuerDiscovery | None = None


class IssuerKeys(Schema, frozen=True):
    """The signing keys an issuer publishes now, as just fetched."""

    issuer_id: UUID
    issuer: str
    key_ids: list[str]
    fetched_at: datetime


class IdentityIssuerInput(Input, frozen=True):
    issuer: Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=500)]
    audience: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    role_mapping: Annotated[
        dict[str, str],
        msgspec.Meta(
            description="claim value → our role; a key starting with / is a group path and matches its subgroups"
        ),
    ] = msgspec.field(default_factory=dict)
    role_claim: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=200,
            description="claim path of the roles or groups: dotted (realm_access.roles; escape a dot in a key "
            "as \\., e.g. resource_access.buergerservice\\.app.roles) or a JSON Pointer "
            "(/resource_access/buergerservice.app/roles)",
        ),
    ] = "roles"
    org_claim: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    org_value: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


def period_end(starts_on: date, months: int) -> date:
    """Last day of a period of `months` months that begins with the day `starts_on` (BGB § 188
    (2), (3)): the day before the day of the same number, or the last day of the final month
    when that month has no such day. A term from 31 January ends on 29 February (not the 28th),
    one from 29 February 2016 ends on 28 February every year, one from 1 March on 29 February
    in a leap year."""
    if starts_on.day == 1:  # the day before is a month's last day: keep it the last day
        return starts_on + relativedelta(months=months) - relativedelta(days=1)
    return starts_on - relativedelta(days=1) + relativedelta(months=months)


def first_year_end(starts_on: date) -> date:
    """Last day of an agreement's first year, whose introductory rate (0.95 EUR per minute in the
    paper) a yearly cost-based rate does not replace (BGB § 188 as `period_end`)."""
    return period_end(starts_on, 12)


def notice_deadline_before(term_end: date, months: int) -> date:
    """Last day a notice of `months` months can be received to end a term on `term_end`: the
    period counted back from the day after the end, so a term ending 30 June takes notice until
    31 December (not 30 December)."""
    return term_end + relativedelta(days=1) - relativedelta(months=months) - relativedelta(days=1)


class NoticeParty(StrEnum):
    OPERATOR = "operator"
    CLIENT = "client"


class Agreement(Schema, frozen=True):
    """Öffentlich-rechtliche Vereinbarung: an initial term, then renewals until it ends.

    `ends_on` is the last day of service once the agreement was terminated (None: running).
    """

    tenant_id: UUID
    id: UUID
    operator_tenant_id: UUID
    starts_on: date
    initial_term_months: int
    renewal_term_months: int
    notice_period_months: int
    ends_on: date | None
    scope_notes: str
    version: int
    noticed_on: date | None = None  # when notice was given (None: running, or ended otherwise)
    noticed_by_party: NoticeParty | None = None

    @property
    def first_year_end(self) -> date:
        return first_year_end(self.starts_on)

    def is_active_on(self, day: date) -> bool:
        # Same rule as the SQL function auth_client_tenant_ids (tested to agree).
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)

    def term_end_on_or_after(self, day: date) -> date:
        """Last day of the term running on `day` (or of the first term, before the start)."""
        end = period_end(self.starts_on, self.initial_term_months)
        renewals = 0
        while end < day:
            renewals += 1
            end = period_end(self.starts_on, self.initial_term_months + renewals * self.renewal_term_months)
        return end

    def current_term_end(self, day: date) -> date | None:
        """End of the term in force on `day`; None once the agreement has ended."""
        if self.ends_on is not None and day > self.ends_on:
            return None
        end = self.term_end_on_or_after(day)
        return min(end, self.ends_on) if self.ends_on is not None else end

    def notice_deadline(self, term_end: date) -> date:
        """Last day on which notice ends the agreement at `term_end`."""
        return notice_deadline_before(term_end, self.notice_period_months)

    def earliest_end_if_noticed_on(self, day: date) -> date:
        """The term end a notice given on `day` reaches: the first whose deadline is not past."""
        end = self.term_end_on_or_after(day)
        while self.notice_deadline(end) < day:
            end = self.term_end_on_or_after(end + relativedelta(days=1))
        return end


class AgreementCreate(Input, frozen=True):
    client_tenant_id: UUID
    starts_on: date
    initial_term_months: Annotated[int, msgspec.Meta(ge=1, le=240)] = 24
    renewal_term_months: Annotated[int, msgspec.Meta(ge=1, le=120)] = 12
    notice_period_months: Annotated[int, msgspec.Meta(ge=0, le=24)] = 6
    scope_notes: Annotated[str, msgspec.Meta(max_length=2000), LINES] = ""


class AgreementTermination(Input, frozen=True):
    """Notice given on `noticed_on`; the agreement ends at the first reachable term end."""

    noticed_on: date


class AgreementView(Schema, frozen=True):
    """An agreement with what follows from it on a given day."""

    agreement: Agreement
    on: date
    active: bool
    current_term_end: date | None
    notice_deadline: date | None  # the last day to give notice for `notice_term_end`
    notice_term_end: date | None = None  # the term end a notice given on `on` reaches


class SignInRefusalView(Schema, frozen=True):
    """One refused token of an issuer: why and when, and which claims it had (names only)."""

    reason: str
    message: str
    at: datetime
    claim: str | None
    token_claims: list[str]


class TokenCheck(Input, frozen=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=16384, description="the bearer token to check")]


class TokenReason(Schema, frozen=True):
    code: str
    message: str
    claim: str | None


class TokenVerdict(Schema, frozen=True):
    """Whether the token would sign in now, and every reason it would not. Nobody is signed in."""

    accepted: bool
    reasons: list[TokenReason]
    issuer: str | None
    tenant_slug: str | None
    roles: list[str]
    scopes: list[str]
    role_claim: str | None
    role_claim_values: list[str]
    expires_at: datetime | None
