"""The role × operation matrix (`auth.permissions.PERMISSIONS`) drives these tests.

1. Unit level: for every Operation and every role and machine-client kind, `may()`,
   `reachable_tenants()`, `require()` and `can_reach()` agree with the table (OWN → only the home
   tenant, ACTING → the acting set).
2. HTTP level: every REST route that needs a principal is mapped to the operations its handler
   checks (in order). Each role and machine kind hits each route with a real token from the test
   provider: 403 exactly when the matrix has no grant, otherwise an ordinary answer. Reads of a
   client tenant answer 404 exactly when the grant's reach does not cover it.

New operations and new routes are covered automatically: the test fails when an Operation has no
route mapping and no explicit exemption, or when a route with a principal has no mapping entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from auth.errors import Forbidden
from auth.permissions import PERMISSIONS, Grant, Operation, Reach, can_reach, may, reachable_tenants, require
from auth.principal import Principal
from auth.roles import MACHINE_CLIENT_SCOPES, OPERATOR_ONLY_ROLES, Role, Scope
from backend.db.tenancy import all_tenants_transaction
from backend.knowledge import repository as knowledge_repository
from backend.knowledge.demo import catalogue_path
from backend.state import unit_of_work
from backend.telephony.demo import load_demo_telephony
from backend.webpages import repository as web_repository
from backend.webpages.crawling import content_hash
from tests.billing.support import PROFILE_BODY, prepare_world_billing
from tests.support.world import World, system_principal

Client = httpx.AsyncClient

# Every person role and every machine-client kind of the demo set-up.
KINDS: tuple[str, ...] = (*(role.value for role in Role), *MACHINE_CLIENT_SCOPES)
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"


def grants_of(kind: str) -> frozenset[Grant]:
    if kind in MACHINE_CLIENT_SCOPES:
        return frozenset(MACHINE_CLIENT_SCOPES[kind])
    return frozenset({Role(kind)})


def table_reaches(operation: Operation, grants: frozenset[Grant]) -> set[Reach]:
    """What the table says, read directly (not through the functions under test)."""
    row = PERMISSIONS[operation]
    return {row[grant] for grant in grants if grant in row}


def expected_reach(
    operation: Operation,
    grants: frozenset[Grant],
    home: UUID,
    acting: frozenset[UUID],
    settled: frozenset[UUID] = frozenset(),
) -> set[UUID]:
    reaches = table_reaches(operation, grants)
    if Reach.SETTLED in reaches:
        return set(acting | settled)
    if Reach.ACTING in reaches:
        return set(acting)
    if Reach.OWN in reaches:
        return {home}
    return set()


# --------------------------------------------------------------------------- unit level

HOME, CLIENT, STRANGER, FORMER = UUID(int=1), UUID(int=2), UUID(int=3), UUID(int=4)


def principal_of(kind: str) -> Principal:
    machine = kind in MACHINE_CLIENT_SCOPES
    return Principal(
        issuer="https://idp.test/home",
        subject=kind,
        tenant_id=HOME,
        tenant_slug="home",
        roles=frozenset() if machine else frozenset({Role(kind)}),
        scopes=frozenset(MACHINE_CLIENT_SCOPES[kind]) if machine else frozenset(),
        acting_tenant_ids=frozenset({HOME, CLIENT}),
        client_id=kind if machine else None,
        settled_tenant_ids=frozenset({FORMER}),  # a former client: only SETTLED grants reach it
    )


def test_the_table_has_a_row_for_every_operation_and_only_known_grants() -> None:
    assert set(PERMISSIONS) == set(Operation)
    for operation, row in PERMISSIONS.items():
        assert row, f"{operation} grants nothing to anyone"
        for grant, reach in row.items():
            assert isinstance(grant, Role | Scope), (operation, grant)
            assert isinstance(reach, Reach), (operation, grant, reach)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("operation", list(Operation), ids=[op.value for op in Operation])
def test_functions_agree_with_the_table(operation: Operation, kind: str) -> None:
    principal = principal_of(kind)
    assert principal.is_machine is (kind in MACHINE_CLIENT_SCOPES)
    expected = expected_reach(
        operation, grants_of(kind), HOME, principal.acting_tenant_ids, principal.settled_tenant_ids
    )
    assert may(principal, operation) is bool(table_reaches(operation, grants_of(kind)))
    assert reachable_tenants(principal, operation) == expected
    if expected:
        assert require(principal, operation) == expected
    else:
        with pytest.raises(Forbidden):
            require(principal, operation)
    for tenant_id in (HOME, CLIENT, STRANGER, FORMER):
        assert can_reach(principal, operation, tenant_id) is (tenant_id in expected)


@pytest.mark.parametrize("operation", list(Operation), ids=[op.value for op in Operation])
def test_several_grants_take_the_widest_reach(operation: Operation) -> None:
    """A town admin who is also an agent: ACTING from one grant beats OWN from the other."""
    grants: frozenset[Grant] = frozenset({Role.TOWN_ADMIN, Role.AGENT, Scope.ARTICLES_READ})
    principal = Principal(
        issuer="i",
        subject="s",
        tenant_id=HOME,
        tenant_slug="home",
        roles=frozenset({Role.TOWN_ADMIN, Role.AGENT}),
        scopes=frozenset({Scope.ARTICLES_READ}),
        acting_tenant_ids=frozenset({HOME, CLIENT}),
    )
    expected = expected_reach(operation, grants, HOME, principal.acting_tenant_ids)
    assert reachable_tenants(principal, operation) == expected


def test_require_takes_the_widest_reach_of_any_two_grants() -> None:
    """`require` ranks the grants itself (decision 040, 2026-12-07): for every pair of grants,
    a role with a scope too, it answers what the table says, or refuses."""
    every: list[Grant] = [*Role, *Scope]
    checked = 0
    for n, first in enumerate(every):
        for second in every[n:]:
            grants: frozenset[Grant] = frozenset({first, second})
            principal = Principal(
                issuer="i",
                subject="s",
                tenant_id=HOME,
                tenant_slug="home",
                roles=frozenset(g for g in grants if isinstance(g, Role)),
                scopes=frozenset(g for g in grants if isinstance(g, Scope)),
                acting_tenant_ids=frozenset({HOME, CLIENT}),
                settled_tenant_ids=frozenset({FORMER}),
            )
            for operation in Operation:
                expected = expected_reach(operation, grants, HOME, principal.acting_tenant_ids, frozenset({FORMER}))
                if expected:
                    assert require(principal, operation) == expected, (operation, grants)
                else:
                    with pytest.raises(Forbidden):
                        require(principal, operation)
                checked += 1
    assert checked > 1_000


def test_no_grant_at_all_is_forbidden_everywhere() -> None:
    nobody = Principal(
        issuer="i", subject="s", tenant_id=HOME, tenant_slug="home", acting_tenant_ids=frozenset({HOME, CLIENT})
    )
    for operation in Operation:
        assert not may(nobody, operation)
        assert reachable_tenants(nobody, operation) == frozenset()
        with pytest.raises(Forbidden):
            require(nobody, operation)


# --------------------------------------------------------------------------- HTTP level


@dataclass
class Target:
    """What the routes are pointed at: the caller's home tenant and objects made for the test."""

    slug: str
    department_id: UUID
    issuer_id: UUID
    agreement_id: UUID
    trusted_issuer_id: UUID  # the home tenant's real identity provider (its keys can be fetched)
    free_client_id: UUID  # a tenant without agreement, for POST /v1/agreements
    day: str = "2099-12-24"
    ticket_id: UUID | None = None  # a ticket of the operator's own tenant
    endpoint_id: UUID | None = None  # a webhook endpoint of the operator's own tenant
    tenant_id: UUID | None = None  # the id of `slug` (bodies name tenants by id)
    number: str = ""  # a service number of the operator's own tenant …
    number_id: UUID | None = None  # … and its id
    absence_id: UUID | None = None  # a dated absence of the operator's own tenant
    call_id: UUID | None = None  # a call to `number`, offered and not yet ended
    call_115_id: UUID | None = None  # a 115 call from an area of several towns, stored under the operator …
    soest_id: UUID | None = None  # … that Stadt Soest is a candidate for
    area_code: str = ""  # a 115 area-code entry of the operator's own tenant
    ags: str = ""
    article_id: UUID | None = None  # a published local article of the operator's own tenant
    leika_key: str = ""  # a service of the operator's LeiKa catalogue …
    client_slug: str = ""  # … read for a client town (an operator is not served by itself)
    billing: dict[str, Any] = field(default_factory=dict)  # tests.billing.support.prepare_world_billing
    client_issuer_id: UUID | None = None  # the client town's real identity provider
    directory: dict[str, str] = field(default_factory=dict)  # matrix_directory(): people and their ids
    web: dict[str, str] = field(default_factory=dict)  # matrix_web_page(): a site and a page of the operator
    open311_key_id: UUID | None = None  # an Open311 api key of the operator's own tenant

    def person(self) -> dict[str, str]:
        """The operator's matrix person, or Stadt Soest's when the route is read for the client."""
        return {"person_id": self.directory["client_person_id" if self.slug == self.client_slug else "person_id"]}

    def scim_user(self) -> dict[str, str]:
        return {"user_id": self.directory["scim_person_id"]}

    def scim_group(self) -> dict[str, str]:
        return {"group_id": self.directory["scim_group_id"]}

    def unique(self) -> str:
        return uuid.uuid4().hex[:8]

    @staticmethod
    def unique_number() -> str:
        """A Düsseldorf number nobody else owns (telephony tests use Munich and Hamburg)."""
        return f"+49211{uuid.uuid4().int % 10**7:07d}"

    def path_params(self) -> dict[str, str]:
        return {
            "slug": self.slug,
            "department_id": str(self.department_id),
            "issuer_id": str(self.issuer_id),
            "agreement_id": str(self.agreement_id),
            "day": self.day,
            "ticket_id": str(self.ticket_id),
            "endpoint_id": str(self.endpoint_id),
            "number_id": str(self.number_id),
            "absence_id": str(self.absence_id),
            "call_id": str(self.call_id),
            "area_code": self.area_code,
            "ags": self.ags,
            "article_id": str(self.article_id),
            "leika_key": self.leika_key,
            "tariff_id": str(self.billing.get("tariff_id")),
            "invoice_id": str(self.billing.get("issued_invoice_id")),
            "key_id": str(self.open311_key_id),
            "service_code": "99000000000311",
        }


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # litestar's path_format, e.g. /v1/tenants/{slug}
    operations: tuple[Operation, ...]  # every operation the handler requires, in the order it checks
    body: Callable[[Target], Any] | None = None
    query: Callable[[Target], dict[str, str]] = field(default=lambda target: {})
    params: Callable[[Target], dict[str, str]] = field(default=lambda target: {})  # path parameters overridden

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def url(self, target: Target) -> str:
        return self.path.format(**{**target.path_params(), **self.params(target)})


def matrix_tariff(target: Target) -> dict[str, str]:
    day = (date(2190, 1, 1) + timedelta(days=uuid.uuid4().int % 730)).isoformat()
    return {"agreementId": str(target.agreement_id), "validFrom": day, "validTo": day, "pricePerMinute": "0.95"}


def matrix_call(target: Target) -> dict[str, str]:
    """A call to the target's service number, offered and not yet ended (an outcome may follow)."""
    return {
        "externalId": f"matrix-{target.unique()}",
        "dialled": target.number,
        "offeredAt": "2026-03-02T10:00:00+01:00",
    }


def matrix_article(suffix: str) -> dict[str, str]:
    return {"externalId": f"matrix-{suffix}", "title": f"Matrix {suffix}", "summary": "Matrix"}


R, T = Operation, Operation.TENANT_READ  # T: every `/tenants/{slug}` route first looks the tenant up
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/me", (R.ME_READ,)),
    Route("GET", "/v1/tenants", (T,)),
    Route(
        "POST",
        "/v1/tenants",
        (R.TENANT_CREATE,),
        body=lambda t: {"slug": f"matrix-{t.unique()}", "name": "Matrix", "kind": "town"},
    ),
    Route("GET", "/v1/tenants/{slug}", (T,)),
    Route("PATCH", "/v1/tenants/{slug}", (T, R.TENANT_UPDATE), body=lambda t: {"federalState": "NW"}),
    Route("GET", "/v1/tenants/{slug}/departments", (T, R.DEPARTMENT_READ)),
    Route(
        "POST",
        "/v1/tenants/{slug}/departments",
        (T, R.DEPARTMENT_WRITE),
        body=lambda t: {"name": f"Matrix {t.unique()}"},
    ),
    Route(
        "PUT",
        "/v1/tenants/{slug}/departments/{department_id}",
        (T, R.DEPARTMENT_WRITE),
        body=lambda t: {"name": f"Matrix {t.department_id}"},
    ),
    Route("GET", "/v1/tenants/{slug}/closing-days", (T, R.TENANT_READ)),
    Route(
        "PUT", "/v1/tenants/{slug}/closing-days/{day}", (T, R.DEPARTMENT_WRITE), query=lambda t: {"name": "Matrixtag"}
    ),
    Route("DELETE", "/v1/tenants/{slug}/closing-days/{day}", (T, R.DEPARTMENT_WRITE)),
    Route("GET", "/v1/tenants/{slug}/identity-issuers", (T, R.IDENTITY_READ)),
    Route(
        "POST",
        "/v1/tenants/{slug}/identity-issuers",
        (T, R.IDENTITY_WRITE),
        body=lambda t: {"issuer": f"https://idp.invalid/matrix-{t.unique()}", "audience": "matrix"},
    ),
    Route("DELETE", "/v1/tenants/{slug}/identity-issuers/{issuer_id}", (T, R.IDENTITY_WRITE)),
    Route(
        "POST",
        "/v1/tenants/{slug}/identity-issuers/{issuer_id}/key-refresh",
        (T, R.IDENTITY_WRITE),
        params=lambda t: {"issuer_id": str(t.trusted_issuer_id)},
    ),
    Route(
        "GET",
        "/v1/tenants/{slug}/identity-issuers/{issuer_id}/refusals",
        (T, R.IDENTITY_READ),
        params=lambda t: {"issuer_id": str(t.client_issuer_id if t.slug == t.client_slug else t.trusted_issuer_id)},
    ),
    Route("POST", "/v1/identity-issuers/verify-token", (R.IDENTITY_READ,), body=lambda t: {"token": "not-a-token"}),
    Route("GET", "/v1/agreements", (R.AGREEMENT_READ,), query=lambda t: {"on": "2020-01-01"}),
    Route(
        "POST",
        "/v1/agreements",
        (R.AGREEMENT_WRITE,),
        body=lambda t: {"clientTenantId": str(t.free_client_id), "startsOn": "2190-01-01"},
    ),
    Route(
        "POST",
        "/v1/agreements/{agreement_id}/termination",
        (R.AGREEMENT_NOTICE,),
        body=lambda t: {"noticedOn": "2190-02-01"},
    ),
    # Tickets (backend/tickets/controller.py): tenant slugs are looked up with the ticket operation.
    Route(
        "POST",
        "/v1/tickets",
        (R.TICKET_CREATE,),
        body=lambda t: {
            "tenantSlug": t.slug,
            "subject": "Matrix",
            "concern": "Matrix",
            "citizen": {"consent": False, "preferredChannel": "none"},
            "departmentId": str(t.department_id),
        },
    ),
    Route("GET", "/v1/tickets", (R.TICKET_READ,)),
    Route("GET", "/v1/tickets/changes", (R.TICKET_READ,)),
    Route("GET", "/v1/tickets/{ticket_id}", (R.TICKET_PERSONAL_READ,)),
    Route("GET", "/v1/tickets/{ticket_id}/events", (R.TICKET_READ,)),
    Route("POST", "/v1/tickets/{ticket_id}/status", (R.TICKET_WORK,), body=lambda t: {"status": "in_progress"}),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/callback-attempts",
        (R.TICKET_WORK,),
        body=lambda t: {"channel": "phone", "reached": False},
    ),
    Route("POST", "/v1/tickets/{ticket_id}/comments", (R.TICKET_WORK,), body=lambda t: {"body": "Matrix"}),
    Route(
        "PUT",
        "/v1/tickets/{ticket_id}/assignment",
        (R.TICKET_WORK,),
        body=lambda t: {"personId": t.directory["person_id"]},
    ),
    Route(
        "PUT",
        "/v1/tickets/{ticket_id}/department",
        (R.TICKET_WORK,),
        body=lambda t: {"departmentId": str(t.department_id)},
    ),
    Route("GET", "/v1/tenants/{slug}/ticket-settings", (R.TICKET_CONFIGURE,)),
    Route("PATCH", "/v1/tenants/{slug}/ticket-settings", (R.TICKET_CONFIGURE,), body=lambda t: {"dueSoonMinutes": 120}),
    Route("GET", "/v1/tenants/{slug}/ticket-routes", (R.TICKET_READ,)),
    Route(
        "PUT",
        "/v1/tenants/{slug}/ticket-routes",
        (R.TICKET_CONFIGURE,),
        body=lambda t: {"defaultDepartmentId": str(t.department_id)},
    ),
    Route("GET", "/v1/tenants/{slug}/ticket-audit", (R.TICKET_AUDIT_READ,)),
    Route("GET", "/v1/tenants/{slug}/webhooks", (R.TICKET_WEBHOOKS,)),
    Route(
        "POST",
        "/v1/tenants/{slug}/webhooks",
        (R.TICKET_WEBHOOKS,),
        body=lambda t: {"url": "http://127.0.0.1:9/matrix"},  # the discard port: refused at once
    ),
    # Before the DELETE: a removed endpoint cannot be resumed (409).
    Route("POST", "/v1/tenants/{slug}/webhooks/{endpoint_id}/resume", (R.TICKET_WEBHOOKS,)),
    Route("DELETE", "/v1/tenants/{slug}/webhooks/{endpoint_id}", (R.TICKET_WEBHOOKS,)),
    Route("POST", "/v1/tenants/{slug}/webhooks/{endpoint_id}/secret-rotation", (R.TICKET_WEBHOOKS,)),
    Route("GET", "/v1/tenants/{slug}/webhook-deliveries", (R.TICKET_WEBHOOKS,)),
    # Telephony (backend/telephony/controller.py, service.py).
    Route("GET", "/v1/routing", (R.ROUTING_READ,), query=lambda t: {"dialled": t.number}),
    Route("GET", "/v1/service-numbers", (R.SERVICE_NUMBER_READ,)),
    Route(
        "POST",
        "/v1/service-numbers",
        (R.SERVICE_NUMBER_WRITE,),
        body=lambda t: {"tenantId": str(t.tenant_id), "number": t.unique_number(), "validFrom": "2016-01-01"},
    ),
    Route("GET", "/v1/service-numbers/{number_id}", (R.SERVICE_NUMBER_READ,)),
    Route(
        "PATCH",
        "/v1/service-numbers/{number_id}",
        (R.SERVICE_NUMBER_WRITE,),
        body=lambda t: {"greeting": f"Matrix {t.unique()}"},
    ),
    Route(
        "POST",
        "/v1/service-numbers/{number_id}/move",
        (R.SERVICE_NUMBER_WRITE,),
        # Far ahead: the number stays the operator's for every other route (and test) here.
        body=lambda t: {"toTenantId": str(t.free_client_id), "on": "2099-01-01"},
    ),
    Route("GET", "/v1/tenants/{slug}/operator-absences", (T, R.SERVICE_NUMBER_READ)),
    Route(
        "POST",
        "/v1/tenants/{slug}/operator-absences/weekly",
        (T, R.ABSENCE_WRITE),
        body=lambda t: {"weekday": 7, "starts": "03:00", "ends": "03:01", "note": "Matrix"},
    ),
    Route(
        "POST",
        "/v1/tenants/{slug}/operator-absences/dated",
        (T, R.ABSENCE_WRITE),
        body=lambda t: {"startsAt": "2099-06-01T08:00:00+02:00", "endsAt": "2099-06-01T09:00:00+02:00"},
    ),
    Route("DELETE", "/v1/tenants/{slug}/operator-absences/{absence_id}", (T, R.ABSENCE_WRITE)),
    Route("GET", "/v1/tenants/{slug}/area-codes", (T, R.SERVICE_NUMBER_READ)),
    Route(
        "PUT",
        "/v1/tenants/{slug}/area-codes",
        (T, R.AREA_CODE_WRITE),
        body=lambda t: {"areaCode": t.area_code, "ags": t.ags, "municipality": "Matrixdorf"},
    ),
    Route("DELETE", "/v1/tenants/{slug}/area-codes/{area_code}/{ags}", (T, R.AREA_CODE_WRITE)),
    Route("POST", "/v1/calls", (R.CALL_WRITE,), body=lambda t: matrix_call(t)),
    Route(
        "POST",
        "/v1/calls/events",
        (R.CALL_WRITE,),
        body=lambda t: {
            "externalId": f"matrix-{t.unique()}",
            "type": "offered",
            "at": "2026-03-02T10:00:00+01:00",
            "dialled": t.number,
        },
    ),
    # One JSON line (application/json is read as JSON lines).
    Route("POST", "/v1/calls/import", (R.CALL_WRITE,), body=lambda t: matrix_call(t)),
    Route("GET", "/v1/calls", (R.CALL_READ,)),
    Route("GET", "/v1/calls/{call_id}", (R.CALL_READ,)),
    Route("GET", "/v1/calls/{call_id}/reassignments", (R.CALL_READ,)),
    # The centre live (backend/centre/controller.py)
    Route("GET", "/v1/centre", (R.CENTRE_READ,)),
    Route("PUT", "/v1/agent-status", (R.AGENT_STATUS_WRITE,), body=lambda t: {"agent": "matrix", "status": "away"}),
    Route(
        "PUT",
        "/v1/calls/{call_id}/outcome",
        (R.CALL_OUTCOME_WRITE,),
        body=lambda t: {"outcome": "settled_first_contact"},
    ),
    # The first principal with the grant moves the call to Stadt Soest; later ones get 409.
    Route(
        "PUT",
        "/v1/calls/{call_id}/tenant",
        (R.CALL_TENANT_ASSIGN,),
        body=lambda t: {"tenantId": str(t.soest_id)},
        params=lambda t: {"call_id": str(t.call_115_id)},
    ),
    Route("GET", "/v1/tenants/{slug}/telephony-settings", (R.TELEPHONY_SETTINGS,)),
    Route(
        "PUT",
        "/v1/tenants/{slug}/telephony-settings",
        (R.TELEPHONY_SETTINGS,),
        body=lambda t: {"callerRetentionDays": 90},
    ),
    # Knowledge (backend/knowledge/controller.py): without `tenant`, the principal's home tenant.
    Route("GET", "/v1/articles/search", (R.ARTICLE_READ,), query=lambda t: {"q": "Abfallgebühr"}),
    Route("GET", "/v1/articles/{article_id}", (R.ARTICLE_READ,)),
    Route(
        "POST",
        "/v1/articles/import",
        (R.ARTICLE_IMPORT, R.ARTICLE_WRITE, R.ARTICLE_PUBLISH),  # ARTICLE_PUBLISH: with publish=true
        body=lambda t: [matrix_article(t.unique())],
        query=lambda t: {"publish": "true"},
    ),
    # A catalogue without entries: answered with a report, and the operator's catalogue (which
    # the knowledge tests load into the same tenant) stays as it is.
    Route("POST", "/v1/leika-catalogue", (R.CATALOGUE_IMPORT,), body=lambda t: {"csv": "leika_key,name\n"}),
    Route("GET", "/v1/leika-services/{leika_key}", (R.ARTICLE_READ,), query=lambda t: {"tenant": t.client_slug}),
    # XZuFi (backend/knowledge/controller_xzufi.py): a message deleting something never received
    # (counted, nothing changes); the transfer pointed at a closed local port (a failed run).
    Route("POST", "/v1/knowledge/xzufi-imports", (R.XZUFI_IMPORT,), body=lambda t: {"message": matrix_xzufi(t)}),
    Route("GET", "/v1/knowledge/articles/{article_id}/sources", (R.ARTICLE_READ,)),
    Route(
        "POST",
        "/v1/knowledge/articles/{article_id}/sources/confirm",
        (R.ARTICLE_DRAFT_READ, R.ARTICLE_WRITE),
        body=lambda t: {"sections": []},
    ),
    Route("PUT", "/v1/knowledge/xzufi-transfer", (R.XZUFI_IMPORT,), body=lambda t: MATRIX_TRANSFER),
    Route("GET", "/v1/knowledge/xzufi-transfer", (R.XZUFI_IMPORT,)),
    Route("POST", "/v1/knowledge/xzufi-transfer/run", (R.XZUFI_IMPORT,)),
    # Billing (backend/billing/controller.py): Soest's 2150 tariff, invoices and cost base from
    # tests.billing.support.prepare_world_billing; only the operator's own finance bills.
    Route("GET", "/v1/tariffs", (R.TARIFF_READ,)),
    Route(
        "POST",
        "/v1/tariffs",
        (R.TARIFF_WRITE,),
        # The matrix client's agreement (2190 until notice ends it; only platform admins reach
        # it): a tariff for one random day of its first term.
        body=lambda t: matrix_tariff(t),
    ),
    Route(
        "PUT",
        "/v1/tariffs/{tariff_id}",
        (R.TARIFF_WRITE,),
        body=lambda t: {"validFrom": "2150-01-01", "validTo": "2150-12-31", "pricePerMinute": "0.95", "note": "x"},
    ),
    Route("PATCH", "/v1/tariffs/{tariff_id}", (R.TARIFF_WRITE,), body=lambda t: {"note": "matrix"}),
    Route("GET", "/v1/invoices", (R.INVOICE_READ,)),
    Route(
        "POST",
        "/v1/invoice-runs",
        (R.INVOICE_WRITE,),
        body=lambda t: {"tenantId": str(t.billing["client_id"]), "period": "2150-03"},
    ),
    Route("GET", "/v1/invoices/{invoice_id}", (R.INVOICE_READ,)),
    Route(
        "POST",
        "/v1/invoices/{invoice_id}/issue",
        (R.INVOICE_WRITE,),
        params=lambda t: {"invoice_id": str(t.billing["draft_invoice_id"])},
    ),
    Route("POST", "/v1/invoices/{invoice_id}/cancellation", (R.INVOICE_WRITE,), body=lambda t: {"reason": "Matrix"}),
    Route("GET", "/v1/invoices/{invoice_id}/xrechnung", (R.INVOICE_READ,)),
    Route("GET", "/v1/invoices/{invoice_id}/calls", (R.INVOICE_READ,)),
    Route("GET", "/v1/invoices/{invoice_id}/calls.csv", (R.INVOICE_READ,)),
    Route(
        "POST",
        "/v1/true-ups",
        (R.INVOICE_WRITE,),
        body=lambda t: {"tenantId": str(t.billing["true_up_client_id"]), "year": t.billing["true_up_year"]},
    ),
    Route("GET", "/v1/tenants/{slug}/billing-profile", (R.BILLING_PROFILE_READ,)),
    Route("PUT", "/v1/tenants/{slug}/billing-profile", (R.BILLING_PROFILE_WRITE,), body=lambda t: PROFILE_BODY),
    Route("PUT", "/v1/tenants/{slug}/figure-targets", (R.FIGURES_CONFIGURE,), body=lambda t: {}),
    Route("GET", "/v1/cost-bases", (R.COST_BASE_READ,)),
    Route(
        "PUT",
        "/v1/cost-bases",
        (R.COST_BASE_WRITE,),
        body=lambda t: {"year": 2100 + uuid.uuid4().int % 40, "staff": "1.00", "it": "0", "overheads": "0"},
    ),
    Route("GET", "/v1/rate-proposal", (R.COST_BASE_READ,), query=lambda t: {"year": "2150"}),
    # A proposal of the world's settled year (the 2150 one is proposed and accepted by the world).
    Route(
        "POST",
        "/v1/rate-proposals",
        (R.COST_BASE_WRITE,),
        body=lambda t: {"year": t.billing["true_up_year"], "respondBy": "2150-06-30"},
    ),
    Route("GET", "/v1/rate-consultation", (R.RATE_CONSULTATION_READ,), query=lambda t: {"year": "2150"}),
    # A town's answer as a platform admin records it for the town (the operator's own staff reach
    # only their own tenant, which is asked nothing); before the adoption below closes the answers.
    Route(
        "POST",
        "/v1/tenants/{slug}/rate-decisions",
        (R.RATE_DECIDE,),
        params=lambda t: {"slug": t.client_slug},
        body=lambda t: {"year": 2150, "decision": "accepted"},
    ),
    Route("POST", "/v1/rate-adoptions", (R.COST_BASE_WRITE,), body=lambda t: {"year": 2150}),
    Route("GET", "/v1/agreement-terms", (R.AGREEMENT_READ,), query=lambda t: {"withinDays": "400"}),
    Route("GET", "/v1/figures", (R.FIGURES_READ,), query=lambda t: {"from": "2150-01-01", "to": "2150-01-31"}),
    Route("GET", "/v1/figures.csv", (R.FIGURES_READ,), query=lambda t: {"from": "2150-01-01", "to": "2150-01-31"}),
    # Directory (backend/directory/controller.py): people of the operator's own tenant from
    # matrix_directory(); a removal's first granted caller succeeds, the next finds nothing (404).
    Route("GET", "/v1/tenants/{slug}/directory/people", (R.DIRECTORY_READ,)),
    Route(
        "POST",
        "/v1/tenants/{slug}/directory/people",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"familyName": f"Matrix {t.unique()}"},
    ),
    Route("GET", "/v1/tenants/{slug}/directory/people/{person_id}", (R.DIRECTORY_READ,), params=Target.person),
    Route(
        "PUT",
        "/v1/tenants/{slug}/directory/people/{person_id}",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"familyName": "Matrix", "phone": t.directory["phone"], "subject": f"{KREIS}-agent"},
        params=Target.person,
    ),
    Route(
        "DELETE",
        "/v1/tenants/{slug}/directory/people/{person_id}",
        (R.DIRECTORY_WRITE,),
        params=lambda t: {"person_id": t.directory["disposable_person_id"]},
    ),
    Route("GET", "/v1/tenants/{slug}/directory/people/{person_id}/presence", (R.DIRECTORY_READ,), params=Target.person),
    Route("GET", "/v1/tenants/{slug}/directory/people/{person_id}/absences", (R.DIRECTORY_READ,), params=Target.person),
    # Private numbers and their audit, group membership (decision 037).
    Route(
        "GET",
        "/v1/tenants/{slug}/directory/people/{person_id}/private-number",
        (R.DIRECTORY_READ,),
        params=Target.person,
    ),
    Route(
        "PUT",
        "/v1/tenants/{slug}/directory/people/{person_id}/private-number",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"number": "0171 2345678"},
        params=Target.person,
    ),
    Route("GET", "/v1/tenants/{slug}/directory/private-number-reads", (R.DIRECTORY_AUDIT_READ,)),
    Route("GET", "/v1/tenants/{slug}/directory/group-membership", (R.IDENTITY_READ,)),
    Route("PUT", "/v1/tenants/{slug}/directory/group-membership", (R.IDENTITY_WRITE,), body=lambda t: {}),
    Route(
        "POST",
        "/v1/tenants/{slug}/directory/people/{person_id}/absences/weekly",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"weekday": 7, "starts": "01:00", "ends": "02:00"},
        params=Target.person,
    ),
    Route(
        "POST",
        "/v1/tenants/{slug}/directory/people/{person_id}/absences/dated",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"startsAt": "2099-07-01T08:00:00+02:00", "endsAt": "2099-07-01T09:00:00+02:00"},
        params=Target.person,
    ),
    Route(
        "DELETE",
        "/v1/tenants/{slug}/directory/people/{person_id}/absences/{absence_id}",
        (R.DIRECTORY_WRITE,),
        params=lambda t: {**t.person(), "absence_id": t.directory["absence_id"]},
    ),
    Route("GET", "/v1/tenants/{slug}/directory/responsibilities", (R.DIRECTORY_READ,)),
    Route(
        "POST",
        "/v1/tenants/{slug}/directory/responsibilities",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"personId": t.directory["person_id"], "topic": "Matrix"},
    ),
    Route(
        "DELETE",
        "/v1/tenants/{slug}/directory/responsibilities/{responsibility_id}",
        (R.DIRECTORY_WRITE,),
        params=lambda t: {"responsibility_id": t.directory["responsibility_id"]},
    ),
    Route("GET", "/v1/tenants/{slug}/directory/department-lines", (R.DIRECTORY_READ,)),
    Route(
        "PUT",
        "/v1/tenants/{slug}/directory/department-lines/{department_id}",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"phone": "02921 30-0"},
    ),
    # The matrix person signs in as the operator's agent (their subject); other roles are not in
    # the directory (404).
    Route("PUT", "/v1/directory/my-presence", (R.PRESENCE_SELF_WRITE,), body=lambda t: {"state": "available"}),
    Route(
        "POST",
        "/v1/tenants/{slug}/directory/presence-events",
        (R.PRESENCE_EVENT_WRITE,),
        body=lambda t: {"number": t.directory["phone"], "state": "idle"},
    ),
    Route("GET", "/v1/forwarding", (R.FORWARDING_READ,), query=lambda t: {"tenant": t.slug, "leikaKey": "99"}),
    Route(
        "POST",
        "/v1/forwarding/messages",
        (R.FORWARDING_READ, R.TICKET_CREATE),
        body=lambda t: {
            "tenant": t.slug,
            "at": datetime.now(UTC).isoformat(),
            "leikaKey": "99",
            "subject": "Matrix",
            "concern": "Matrix",
            "citizen": {"consent": False, "preferredChannel": "none"},
        },
    ),
    # Web pages (backend/webpages/controller.py): sites are registered under a made-up name (never
    # fetched: the worker is off in tests); the page is matrix_web_page()'s, its draft made once.
    Route("GET", "/v1/tenants/{slug}/web-sites", (R.WEB_SITE_MANAGE,)),
    Route(
        "POST",
        "/v1/tenants/{slug}/web-sites",
        (R.WEB_SITE_MANAGE,),
        body=lambda t: (
            {"baseUrl": f"https://matrix-{t.unique()}.invalid/", "startUrls": []}
            | {"sitemapUrl": "https://www.invalid/sitemap.xml", "allowedHosts": ["www.invalid"]}
        ),
    ),
    Route(
        "POST",
        "/v1/tenants/{slug}/web-sites/{site_id}/fetch",
        (R.WEB_SITE_MANAGE,),
        params=lambda t: {"site_id": t.web["site_id"]},
    ),
    Route("GET", "/v1/tenants/{slug}/web-pages", (R.ARTICLE_READ,), query=lambda t: {"q": "Sperrmüll"}),
    Route(
        "POST",
        "/v1/tenants/{slug}/web-pages/{page_id}/article-draft",
        (R.ARTICLE_WRITE,),
        params=lambda t: {"page_id": t.web["page_id"]},
    ),
    # Open311 (backend/open311/controller.py): the town's services and its partners' api keys.
    Route("GET", "/v1/tenants/{slug}/open311-services", (R.OPEN311_CONFIGURE,)),
    Route(
        "PUT",
        "/v1/tenants/{slug}/open311-services/{service_code}",
        (R.OPEN311_CONFIGURE,),
        body=lambda t: {"serviceName": "Matrix"},
    ),
    # After the PUT: the first granted caller removes it, later ones find nothing (404).
    Route("DELETE", "/v1/tenants/{slug}/open311-services/{service_code}", (R.OPEN311_CONFIGURE,)),
    Route("GET", "/v1/tenants/{slug}/open311-keys", (R.OPEN311_CONFIGURE,)),
    Route("POST", "/v1/tenants/{slug}/open311-keys", (R.OPEN311_CONFIGURE,), body=lambda t: {"description": "Matrix"}),
    Route("POST", "/v1/tenants/{slug}/open311-keys/{key_id}/revocation", (R.OPEN311_CONFIGURE,)),
    Route("GET", "/v1/tenants/{slug}/directory/search", (R.DIRECTORY_READ,), query=lambda t: {"q": "Matrix"}),
    Route(
        "POST",
        "/v1/tenants/{slug}/directory/import",
        (R.DIRECTORY_WRITE,),
        body=lambda t: {"csv": f"external_id,family_name\nmatrix-{t.unique()},Matrix\n"},
    ),
    # SCIM (backend/directory/controller_scim.py): only the town's own provisioning client, on the
    # operator's own people and departments from matrix_directory(); errors are SCIM's.
    *(
        Route("GET", f"/scim/v2/{{slug}}/{path}", (R.DIRECTORY_PROVISION,))
        for path in ("ServiceProviderConfig", "ResourceTypes", "Schemas", "Users", "Groups")
    ),
    Route(
        "POST",
        "/scim/v2/{slug}/Users",
        (R.DIRECTORY_PROVISION,),
        body=lambda t: {"userName": f"matrix-{t.unique()}", "name": {"familyName": "Matrix"}},
    ),
    Route("GET", "/scim/v2/{slug}/Users/{user_id}", (R.DIRECTORY_PROVISION,), params=Target.scim_user),
    Route(
        "PUT",
        "/scim/v2/{slug}/Users/{user_id}",
        (R.DIRECTORY_PROVISION,),
        params=Target.scim_user,
        body=lambda t: {"userName": t.directory["scim_user_name"], "name": {"familyName": "Matrix"}},
    ),
    Route(
        "PATCH",
        "/scim/v2/{slug}/Users/{user_id}",
        (R.DIRECTORY_PROVISION,),
        params=Target.scim_user,
        body=lambda t: {"Operations": [{"op": "Replace", "path": "title", "value": "Matrix"}]},
    ),
    Route(
        "DELETE",
        "/scim/v2/{slug}/Users/{user_id}",
        (R.DIRECTORY_PROVISION,),
        params=lambda t: {"user_id": t.directory["scim_disposable_id"]},
    ),
    Route(
        "POST",
        "/scim/v2/{slug}/Groups",
        (R.DIRECTORY_PROVISION,),
        body=lambda t: {"displayName": f"Matrix {t.unique()}"},
    ),
    Route("GET", "/scim/v2/{slug}/Groups/{group_id}", (R.DIRECTORY_PROVISION,), params=Target.scim_group),
    Route(
        "PUT",
        "/scim/v2/{slug}/Groups/{group_id}",
        (R.DIRECTORY_PROVISION,),
        params=Target.scim_group,
        body=lambda t: {"displayName": t.directory["scim_group_name"], "members": []},
    ),
    Route(
        "PATCH",
        "/scim/v2/{slug}/Groups/{group_id}",
        (R.DIRECTORY_PROVISION,),
        params=Target.scim_group,
        body=lambda t: {"Operations": [{"op": "Add", "path": "members", "value": []}]},
    ),
    Route(
        "DELETE",
        "/scim/v2/{slug}/Groups/{group_id}",
        (R.DIRECTORY_PROVISION,),
        params=lambda t: {"group_id": t.directory["scim_disposable_group_id"]},
    ),
)
# GeoReport v2 (`/open311/v2/…`) resolves no `principal`: its GETs are open for a town's
# non-personal data and its POST takes an api_key or a bearer token, answering with GeoReport's
# error array rather than problem+json. The tickets service's own grants (TICKET_CREATE,
# TICKET_READ) decide for bearer tokens; tests/open311/ checks them per role. Each route here
# with its reason; the test below fails on a GeoReport route missing from this list.
GEOREPORT_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/open311/v2/discovery.json"): "public: where the endpoint is",
    ("GET", "/open311/v2/discovery.xml"): "public: where the endpoint is",
    ("GET", "/open311/v2/services.json"): "public: the town's services (no personal data)",
    ("GET", "/open311/v2/services.xml"): "public: the town's services (no personal data)",
    ("GET", "/open311/v2/services/{service_file}"): "public: a service definition",
    ("GET", "/open311/v2/requests.json"): "public: requests without description or contact data",
    ("GET", "/open311/v2/requests.xml"): "public: requests without description or contact data",
    ("GET", "/open311/v2/requests/{request_file}"): "public: one request without personal data",
    ("GET", "/open311/v2/tokens/{token_file}"): "public: the request id a token stands for",
    ("POST", "/open311/v2/requests.json"): "api_key or bearer (TICKET_CREATE): tests/open311",
    ("POST", "/open311/v2/requests.xml"): "api_key or bearer (TICKET_CREATE): tests/open311",
}
# Operations no REST route checks, each with the reason. Add one here only with a reason.
EXEMPT: dict[Operation, str] = {
    Operation.SYNONYM_WRITE: "GraphQL only (setSynonym, removeSynonym)",
}
ALLOWED_WHEN_GRANTED = {200, 201, 204, 404, 409, 422}


MATRIX_TRANSFER = {
    "url": "http://127.0.0.1:9/transfer",
    "tokenUrl": "http://127.0.0.1:9/token",
    "clientId": "matrix",
    "clientSecret": "matrix",
    "intervalMinutes": 10080,
    "enabled": False,
}


def matrix_xzufi(target: Target) -> str:
    return (
        '<x:transfer.schreibe xmlns:x="http://xoev.de/schemata/xzufi/2_2_0" xzufiVersion="2.2.0">'
        f"<x:loesche><x:leistungID>matrix-{target.unique()}</x:leistungID></x:loesche></x:transfer.schreibe>"
    )


def principal_routes(app: Litestar) -> set[tuple[str, str]]:
    """(method, path) of every HTTP handler that resolves a `principal` (or lives under /v1)."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "principal" in handler.resolve_dependencies() or route.path_format.startswith("/v1/"):
                found |= {(method, route.path_format) for method in handler.http_methods if method != "OPTIONS"}
    return found


def test_every_georeport_route_is_listed_with_its_reason(app: Litestar) -> None:
    live = {
        (method, route.path_format)
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path_format.startswith("/open311/")
        for handler in route.route_handlers
        for method in handler.http_methods
        if method != "OPTIONS"
    }
    assert live == set(GEOREPORT_ROUTES)


def test_every_operation_and_every_route_is_mapped(app: Litestar) -> None:
    keys = [route.key for route in ROUTES]
    assert len(keys) == len(set(keys)), "a route is mapped twice"
    mapped_operations = {op for route in ROUTES for op in route.operations}
    unmapped = set(Operation) - mapped_operations - set(EXEMPT)
    assert not unmapped, (
        "operations that no ROUTES entry exercises and that have no EXEMPT reason "
        f"(add a Route for the REST route that checks it, or an EXEMPT reason): {sorted(unmapped)}"
    )
    assert not (set(EXEMPT) & mapped_operations), "an exempt operation is mapped after all: drop the exemption"
    live = principal_routes(app)
    assert live - set(keys) == set(), f"routes with a principal but no entry in ROUTES: {sorted(live - set(keys))}"
    assert set(keys) - live == set(), f"ROUTES entries for routes that no longer exist: {sorted(set(keys) - live)}"


@pytest.fixture(scope="module")
def tokens(world: World) -> dict[tuple[str, str], str]:
    """One real provider token per (town, role or machine kind), fetched once."""
    return {(town, kind): world.token(town, kind) for town in (KREIS, GESEKE) for kind in KINDS}


async def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
async def target(client: Client, world: World) -> Target:
    """Objects in the operator's own tenant (and two fresh clients) for the routes to act on."""
    admin = world.headers(KREIS, "platform-admin")
    home = f"/v1/tenants/{world.slug(KREIS)}"
    department = await _created(
        await client.post(f"{home}/departments", json={"name": f"Matrix {world.suffix}"}, headers=admin)
    )
    issuer = await _created(
        await client.post(
            f"{home}/identity-issuers",
            json={"issuer": f"https://idp.invalid/matrix-{world.suffix}", "audience": "m"},
            headers=admin,
        )
    )
    clients = []
    for _ in range(2):
        clients.append(
            await _created(
                await client.post(
                    "/v1/tenants",
                    json={"slug": f"matrix-client-{uuid.uuid4().hex[:8]}", "name": "Matrix", "kind": "town"},
                    headers=admin,
                )
            )
        )
    # Starts far in the future: never active today, so no operator acts for it in other tests.
    agreement = await _created(
        await client.post(
            "/v1/agreements", json={"clientTenantId": clients[0]["id"], "startsOn": "2190-01-01"}, headers=admin
        )
    )
    ticket = await _created(
        await client.post(
            "/v1/tickets",
            json={
                "tenantSlug": world.slug(KREIS),
                "subject": "Matrix",
                "concern": "Matrix",
                "citizen": {"consent": False, "preferredChannel": "none"},
                "departmentId": department["id"],
            },
            headers=world.headers(KREIS, "agent"),
        )
    )
    endpoint = await _created(
        await client.post(f"{home}/webhooks", json={"url": "http://127.0.0.1:9/matrix"}, headers=admin)
    )
    number = Target.unique_number()
    service_number = await _created(
        await client.post(
            "/v1/service-numbers",
            json={"tenantId": str(world.tenant_ids[KREIS]), "number": number, "validFrom": "2016-01-01"},
            headers=admin,
        )
    )
    absence = await _created(
        await client.post(
            f"{home}/operator-absences/dated",
            json={"startsAt": "2099-07-01T08:00:00+02:00", "endsAt": "2099-07-01T09:00:00+02:00", "note": "Matrix"},
            headers=admin,
        )
    )
    # A Saxon area code no telephony test calls from; its AGS is made up (no municipality has it).
    put = await client.put(
        f"{home}/area-codes",
        json={"areaCode": "035722", "ags": f"99{uuid.uuid4().int % 10**6:06d}", "municipality": "Matrixdorf"},
        headers=admin,
    )
    assert put.status_code == 200, put.text
    area_code = put.json()
    offered = await client.post(
        "/v1/calls",
        json={"externalId": f"matrix-{world.suffix}", "dialled": number, "offeredAt": "2026-03-02T10:00:00+01:00"},
        headers=world.headers(KREIS, "telephony"),
    )
    assert offered.status_code == 200, offered.text
    # 115 from Soest's area code (02921: Soest and Bad Sassendorf): stored under the operator.
    await load_demo_telephony(
        world.state, system_principal(world.tenant_ids[KREIS], set(world.tenant_ids.values())), world.tenant_ids
    )
    offered_115 = await client.post(
        "/v1/calls",
        json={
            "externalId": f"matrix-115-{world.suffix}",
            "dialled": "115",
            "caller": "02921 4711",
            "offeredAt": "2026-03-02T10:00:00+01:00",
        },
        headers=world.headers(KREIS, "telephony"),
    )
    assert offered_115.status_code == 200, offered_115.text
    assert offered_115.json()["resolvedBy"] == "ambiguous_area_code", offered_115.text
    # The operator's LeiKa catalogue, as the knowledge tests load it (a re-import changes nothing).
    catalogue = catalogue_path().read_text(encoding="utf-8")
    loaded = await client.post(
        "/v1/leika-catalogue", content=catalogue.encode(), headers={**admin, "Content-Type": "text/csv"}
    )
    assert loaded.status_code == 200, loaded.text
    imported = await client.post(
        "/v1/articles/import", params={"publish": "true"}, json=[matrix_article(world.suffix)], headers=admin
    )
    assert imported.status_code == 200 and imported.json()["created"] == 1, imported.text
    kreis_id = world.tenant_ids[KREIS]
    async with unit_of_work(world.state, system_principal(kreis_id, {kreis_id}), readonly=True) as uow:
        article = await knowledge_repository.find_article_by_external_id(uow.conn, kreis_id, f"matrix-{world.suffix}")
    assert article is not None
    open311_key = await _created(
        await client.post(f"{home}/open311-keys", json={"description": "Matrix"}, headers=admin)
    )
    return Target(
        open311_key_id=UUID(open311_key["apiKey"]["id"]),
        directory=await matrix_directory(client, world),
        slug=world.slug(KREIS),
        department_id=UUID(department["id"]),
        issuer_id=UUID(issuer["id"]),
        agreement_id=UUID(agreement["agreement"]["id"]),
        trusted_issuer_id=next(
            UUID(i["id"])
            for i in (await client.get(f"{home}/identity-issuers", headers=admin)).json()
            if i["issuer"] == world.oidc.issuer_url(KREIS)
        ),
        free_client_id=UUID(clients[1]["id"]),
        ticket_id=UUID(ticket["id"]),
        endpoint_id=UUID(endpoint["endpoint"]["id"]),
        tenant_id=world.tenant_ids[KREIS],
        number=service_number["number"],
        number_id=UUID(service_number["id"]),
        absence_id=UUID(absence["id"]),
        call_id=UUID(offered.json()["id"]),
        call_115_id=UUID(offered_115.json()["id"]),
        soest_id=world.tenant_ids[SOEST],
        area_code=area_code["areaCode"],
        ags=area_code["ags"],
        article_id=article.id,
        leika_key=catalogue.splitlines()[1].split(",")[0],
        client_slug=world.slug(SOEST),
        billing=await prepare_world_billing(client, world),
        client_issuer_id=next(
            UUID(i["id"])
            for i in (await client.get(f"/v1/tenants/{world.slug(SOEST)}/identity-issuers", headers=admin)).json()
            if i["issuer"] == world.oidc.issuer_url(SOEST)
        ),
        web=await matrix_web_page(world),
    )


async def matrix_web_page(world: World) -> dict[str, str]:
    """A site of the operator's own tenant and one page of it, as the worker would have stored it."""
    kreis_id = world.tenant_ids[KREIS]
    site_id, page_id = uuid.uuid4(), uuid.uuid4()
    async with all_tenants_transaction(world.state.pool) as conn:
        await web_repository.insert_site(
            conn,
            kreis_id,
            site_id,
            f"https://matrix-{site_id.hex[:8]}.invalid/",
            None,
            ["https://matrix.invalid/"],
            ["matrix.invalid"],
            24,
            datetime.now(UTC) + timedelta(days=3650),
        )
        text = "Matrix Seite"
        await web_repository.save_page(
            conn,
            kreis_id,
            site_id,
            page_id,
            web_repository.PageContent(
                "https://matrix.invalid/seite", "Matrix", text, content_hash("Matrix", text), None, None
            ),
            datetime.now(UTC),
        )
    return {"site_id": str(site_id), "page_id": str(page_id)}


async def matrix_directory(client: Client, world: World) -> dict[str, str]:
    """A person of the operator's directory (signing in as its agent) with an absence and a
    responsibility, one to remove, and a person of Stadt Soest for reads across tenants."""
    admin = world.headers(KREIS, "platform-admin")
    people = f"/v1/tenants/{world.slug(KREIS)}/directory/people"
    phone = Target.unique_number()
    person = await _created(
        await client.post(
            people, json={"familyName": "Matrix", "phone": phone, "subject": f"{KREIS}-agent"}, headers=admin
        )
    )
    disposable = await _created(await client.post(people, json={"familyName": "Matrix weg"}, headers=admin))
    absences = await client.post(
        f"{people}/{person['id']}/absences/weekly",
        json={"weekday": 7, "starts": "03:00", "ends": "04:00"},
        headers=admin,
    )
    assert absences.status_code == 201, absences.text
    responsibility = await _created(
        await client.post(
            f"/v1/tenants/{world.slug(KREIS)}/directory/responsibilities",
            json={"personId": person["id"], "leikaKey": "99"},
            headers=admin,
        )
    )
    client_person = await _created(
        await client.post(
            f"/v1/tenants/{world.slug(SOEST)}/directory/people",
            json={"familyName": "Matrix"},
            headers=world.headers(SOEST, "town-admin"),
        )
    )
    scim_user_name = f"matrix-scim-{world.suffix}"
    scim_person = await _created(
        await client.post(people, json={"familyName": "Matrix", "userName": scim_user_name}, headers=admin)
    )
    scim_disposable = await _created(await client.post(people, json={"familyName": "Matrix SCIM"}, headers=admin))
    groups = {}
    for name in (f"Matrix SCIM {world.suffix}", f"Matrix SCIM weg {world.suffix}"):
        groups[name] = await _created(
            await client.post(f"/v1/tenants/{world.slug(KREIS)}/departments", json={"name": name}, headers=admin)
        )
    scim_group_name, disposable_group_name = groups
    return {
        "scim_person_id": scim_person["id"],
        "scim_user_name": scim_user_name,
        "scim_disposable_id": scim_disposable["id"],
        "scim_group_id": groups[scim_group_name]["id"],
        "scim_group_name": scim_group_name,
        "scim_disposable_group_id": groups[disposable_group_name]["id"],
        "person_id": person["id"],
        "phone": phone,
        "disposable_person_id": disposable["id"],
        "absence_id": absences.json()["weekly"][0]["id"],
        "responsibility_id": responsibility["id"],
        "client_person_id": client_person["id"],
    }


async def call(client: Client, route: Route, target: Target, token: str) -> httpx.Response:
    return await client.request(
        route.method,
        route.url(target),
        params=route.query(target),
        json=route.body(target) if route.body else None,
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_forbidden(response: httpx.Response, context: object) -> None:
    assert response.status_code == 403, (context, response.status_code, response.text)
    if response.url.path.startswith("/scim/"):  # SCIM's own error message (RFC 7644 §3.12)
        assert response.headers["content-type"].startswith("application/scim+json")
        assert response.json()["status"] == "403"
        return
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "FORBIDDEN"


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
async def test_route_is_forbidden_exactly_without_a_grant(
    client: Client, world: World, tokens: dict[tuple[str, str], str], target: Target, route: Route
) -> None:
    succeeded = []
    for kind in KINDS:
        response = await call(client, route, target, tokens[KREIS, kind])
        granted = all(table_reaches(op, grants_of(kind)) for op in route.operations)
        if not granted:
            assert_forbidden(response, kind)
            continue
        assert response.status_code in ALLOWED_WHEN_GRANTED, (kind, response.status_code, response.text)
        if response.is_success:
            succeeded.append(kind)
    # The table entry is not vacuous: some principal with a grant really got through.
    assert succeeded, f"no principal succeeded on {route.method} {route.path}"


READS = [r for r in ROUTES if r.method == "GET" and "{slug}" in r.path]


@pytest.mark.parametrize("route", READS, ids=[r.path for r in READS])
@pytest.mark.parametrize("town", [KREIS, GESEKE])
async def test_reads_of_a_client_tenant_follow_the_reach(
    client: Client, world: World, tokens: dict[tuple[str, str], str], target: Target, route: Route, town: str
) -> None:
    """Stadt Soest read by the operator's and by Geseke's principals: 403 without a grant, 404
    when no grant reaches Soest (OWN, or ACTING without an agreement), 200 otherwise."""
    soest_id = world.tenant_ids[SOEST]
    soest = Target(**{**target.__dict__, "slug": world.slug(SOEST)})
    for kind in KINDS:
        if town != KREIS and kind in OPERATOR_ONLY_ROLES:
            # Only the operator's issuers grant it; Geseke's token carries no role we accept.
            response = await call(client, route, soest, tokens[town, kind])
            assert response.status_code == 401, (town, kind, response.status_code, response.text)
            continue
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens[town, kind]}"})
        acting = frozenset(UUID(i) for i in me.json()["actingTenantIds"])
        expected = 200
        for operation in route.operations:  # the handler checks them in this order
            if not table_reaches(operation, grants_of(kind)):
                expected = 403
                break
            if soest_id not in expected_reach(operation, grants_of(kind), world.tenant_ids[town], acting):
                expected = 404
                break
        response = await call(client, route, soest, tokens[town, kind])
        assert response.status_code == expected, (town, kind, response.status_code, response.text)
