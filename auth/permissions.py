"""The role × operation matrix, as data. One table, read top to bottom; a test walks it.

Reach says which tenants a grant covers:
- OWN: only the principal's home tenant (a town admin edits its own identity settings);
- ACTING: every tenant the principal acts for (home + active clients for operator staff;
  all tenants for platform admins);
- SETTLED: ACTING plus the former clients the operator's finance still settles with (the last
  month's invoice, credit notes, the yearly rate come after an agreement ended).
A principal without any grant for the operation gets 403; a grant whose reach does not cover
the target tenant is answered like a missing object (404), so tenants cannot probe each other.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from uuid import UUID

from auth.errors import Forbidden
from auth.principal import Principal
from auth.roles import Role, Scope


class Reach(Enum):
    OWN = "own"
    ACTING = "acting"
    SETTLED = "settled"


class Operation(StrEnum):
    ME_READ = "me:read"
    TENANT_READ = "tenant:read"
    TENANT_CREATE = "tenant:create"
    TENANT_UPDATE = "tenant:update"
    IDENTITY_READ = "identity:read"
    IDENTITY_WRITE = "identity:write"
    DEPARTMENT_READ = "department:read"
    DEPARTMENT_WRITE = "department:write"
    AGREEMENT_READ = "agreement:read"
    AGREEMENT_WRITE = "agreement:write"
    AGREEMENT_NOTICE = "agreement:notice"
    ROUTING_READ = "routing:read"
    SERVICE_NUMBER_READ = "service-number:read"
    SERVICE_NUMBER_WRITE = "service-number:write"
    ABSENCE_WRITE = "absence:write"
    AREA_CODE_WRITE = "area-code:write"
    CALL_WRITE = "call:write"
    CALL_READ = "call:read"
    CALL_OUTCOME_WRITE = "call:outcome-write"
    CALL_TENANT_ASSIGN = "call:tenant-assign"
    TELEPHONY_SETTINGS = "telephony:settings"
    TICKET_CREATE = "ticket:create"
    TICKET_READ = "ticket:read"
    TICKET_PERSONAL_READ = "ticket:personal-read"
    TICKET_WORK = "ticket:work"
    TICKET_CONFIGURE = "ticket:configure"
    TICKET_AUDIT_READ = "ticket:audit-read"
    TICKET_WEBHOOKS = "ticket:webhooks"
    ARTICLE_READ = "article:read"
    ARTICLE_DRAFT_READ = "article:draft-read"
    ARTICLE_WRITE = "article:write"
    ARTICLE_PUBLISH = "article:publish"
    ARTICLE_IMPORT = "article:import"
    SYNONYM_WRITE = "synonym:write"
    CATALOGUE_IMPORT = "catalogue:import"
    WEB_SITE_MANAGE = "web-site:manage"
    XZUFI_IMPORT = "xzufi:import"
    TARIFF_READ = "tariff:read"
    TARIFF_WRITE = "tariff:write"
    INVOICE_READ = "invoice:read"
    INVOICE_WRITE = "invoice:write"
    BILLING_PROFILE_READ = "billing-profile:read"
    BILLING_PROFILE_WRITE = "billing-profile:write"
    COST_BASE_READ = "cost-base:read"
    COST_BASE_WRITE = "cost-base:write"
    RATE_CONSULTATION_READ = "rate-consultation:read"
    RATE_DECIDE = "rate:decide"
    FIGURES_READ = "figures:read"
    FIGURES_CONFIGURE = "figures:configure"
    DIRECTORY_READ = "directory:read"
    DIRECTORY_WRITE = "directory:write"
    PRESENCE_SELF_WRITE = "presence:self-write"
    PRESENCE_EVENT_WRITE = "presence:event-write"
    FORWARDING_READ = "forwarding:read"
    CENTRE_READ = "centre:read"
    AGENT_STATUS_WRITE = "agent-status:write"
    OPEN311_CONFIGURE = "open311:configure"
    DIRECTORY_PROVISION = "directory:provision"
    DIRECTORY_AUDIT_READ = "directory:audit-read"


Grant = Role | Scope
OWN, ACTING, SETTLED = Reach.OWN, Reach.ACTING, Reach.SETTLED
_EVERY_ROLE: dict[Grant, Reach] = dict.fromkeys(Role, ACTING)

PERMISSIONS: dict[Operation, dict[Grant, Reach]] = {
    Operation.ME_READ: {**_EVERY_ROLE, **dict.fromkeys(Scope, OWN)},
    Operation.TENANT_READ: {**_EVERY_ROLE, Scope.TENANTS_READ: ACTING},
    Operation.TENANT_CREATE: {Role.PLATFORM_ADMIN: ACTING},
    Operation.TENANT_UPDATE: {Role.PLATFORM_ADMIN: ACTING},
    Operation.IDENTITY_READ: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    Operation.IDENTITY_WRITE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    Operation.DEPARTMENT_READ: {**_EVERY_ROLE, Scope.TENANTS_READ: ACTING},
    Operation.DEPARTMENT_WRITE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    Operation.AGREEMENT_READ: {
        Role.PLATFORM_ADMIN: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.FINANCE: ACTING,
        Role.TOWN_ADMIN: OWN,
    },
    Operation.AGREEMENT_WRITE: {Role.PLATFORM_ADMIN: ACTING},
    # Either party gives notice: the operator's platform admin, or the town's own admin.
    Operation.AGREEMENT_NOTICE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    # Telephony: telephony systems by scope, the centre's agents for client towns; numbers and
    # 115 area codes are the operator's platform admins' business, absences also the town's.
    Operation.ROUTING_READ: {
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.PLATFORM_ADMIN: ACTING,
        Role.TOWN_ADMIN: OWN,
        Scope.ROUTING_READ: ACTING,
    },
    Operation.SERVICE_NUMBER_READ: {**_EVERY_ROLE, Scope.ROUTING_READ: ACTING},
    Operation.SERVICE_NUMBER_WRITE: {Role.PLATFORM_ADMIN: ACTING},
    Operation.ABSENCE_WRITE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    Operation.AREA_CODE_WRITE: {Role.PLATFORM_ADMIN: ACTING},
    Operation.CALL_WRITE: {Scope.CALLS_WRITE: ACTING},
    Operation.CALL_READ: {
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.PLATFORM_ADMIN: ACTING,
        Role.FINANCE: ACTING,
        Role.TOWN_ADMIN: OWN,
        Scope.CALLS_WRITE: ACTING,
    },
    Operation.CALL_OUTCOME_WRITE: {Role.AGENT: ACTING, Role.SUPERVISOR: ACTING},
    # 115 with an ambiguous caller area: the agent picks the town (one the agent acts for).
    Operation.CALL_TENANT_ASSIGN: {Role.AGENT: ACTING, Role.SUPERVISOR: ACTING},
    # How long caller numbers are kept (read and set): the town's admin, the platform admins.
    Operation.TELEPHONY_SETTINGS: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    # Tickets: the centre's agents for client towns, the town's department staff for their town,
    # the town's partner system by scope. Reading the citizen's data is audited (tickets domain).
    Operation.TICKET_CREATE: {
        Role.PLATFORM_ADMIN: ACTING,
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.DEPARTMENT: ACTING,
        Scope.TICKETS_WRITE: ACTING,
    },
    Operation.TICKET_READ: {
        Role.PLATFORM_ADMIN: ACTING,
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.DEPARTMENT: ACTING,
        Scope.TICKETS_READ: ACTING,
    },
    Operation.TICKET_PERSONAL_READ: {
        Role.PLATFORM_ADMIN: ACTING,
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.DEPARTMENT: ACTING,
        Scope.TICKETS_READ: ACTING,
    },
    Operation.TICKET_WORK: {
        Role.PLATFORM_ADMIN: ACTING,
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.DEPARTMENT: ACTING,
        Scope.TICKETS_WRITE: ACTING,
    },
    Operation.TICKET_CONFIGURE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    Operation.TICKET_AUDIT_READ: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    Operation.TICKET_WEBHOOKS: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    # Knowledge: everyone who talks to citizens reads published articles, partner systems by
    # scope; editors write, review and publish their own tenant's articles (an operator's
    # editors: the shared ones); the LeiKa catalogue is the operator's platform admins' business.
    Operation.ARTICLE_READ: {
        Role.PLATFORM_ADMIN: ACTING,
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.EDITOR: ACTING,
        Role.DEPARTMENT: ACTING,
        Role.TOWN_ADMIN: OWN,
        Scope.ARTICLES_READ: ACTING,
    },
    Operation.ARTICLE_DRAFT_READ: {Role.PLATFORM_ADMIN: ACTING, Role.EDITOR: OWN},
    Operation.ARTICLE_WRITE: {Role.PLATFORM_ADMIN: ACTING, Role.EDITOR: OWN},
    Operation.ARTICLE_PUBLISH: {Role.PLATFORM_ADMIN: ACTING, Role.EDITOR: OWN},
    Operation.ARTICLE_IMPORT: {Role.PLATFORM_ADMIN: ACTING, Role.EDITOR: OWN},
    Operation.SYNONYM_WRITE: {Role.PLATFORM_ADMIN: ACTING, Role.EDITOR: OWN},
    Operation.CATALOGUE_IMPORT: {Role.PLATFORM_ADMIN: ACTING},
    # The town's web sites the worker fetches (decision 025): its admin registers them, the
    # operator's platform admins for the towns they act for; the pages are read like articles.
    Operation.WEB_SITE_MANAGE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    # XZuFi service descriptions, offices and responsibilities from the 115 network, and the
    # transfer that fetches them: the operator's platform admins, for the towns it serves.
    Operation.XZUFI_IMPORT: {Role.PLATFORM_ADMIN: ACTING},
    # Billing: finance sees its tenants' tariffs and invoices (a town: its own; the operator's: its
    # clients'); only the operator's finance runs, issues and cancels invoices and records costs
    # (the service checks the principal's home tenant is the agreement's operator). Platform
    # admins set tariffs up with agreements. Figures: supervisors and finance, a town admin its own.
    Operation.TARIFF_READ: {Role.FINANCE: SETTLED, Role.PLATFORM_ADMIN: ACTING},
    Operation.TARIFF_WRITE: {Role.FINANCE: SETTLED, Role.PLATFORM_ADMIN: ACTING},
    Operation.INVOICE_READ: {Role.FINANCE: SETTLED},
    Operation.INVOICE_WRITE: {Role.FINANCE: SETTLED},
    Operation.BILLING_PROFILE_READ: {Role.FINANCE: ACTING, Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    # The operator's finance keeps its clients' invoice addresses too (issue 17); a town's finance
    # acts for its own town only, so ACTING is its own profile.
    Operation.BILLING_PROFILE_WRITE: {Role.PLATFORM_ADMIN: ACTING, Role.FINANCE: ACTING},
    Operation.COST_BASE_READ: {Role.FINANCE: OWN},
    Operation.COST_BASE_WRITE: {Role.FINANCE: OWN},
    # The yearly rate is agreed with the towns ("einvernehmlich"): each town's finance or town admin
    # answers the operator's proposal; platform admins record an answer a town sent in writing (the
    # event names who recorded it). Every step is readable by the towns it concerns.
    Operation.RATE_CONSULTATION_READ: {Role.FINANCE: SETTLED, Role.TOWN_ADMIN: OWN, Role.PLATFORM_ADMIN: ACTING},
    Operation.RATE_DECIDE: {Role.FINANCE: OWN, Role.TOWN_ADMIN: OWN, Role.PLATFORM_ADMIN: ACTING},
    Operation.FIGURES_READ: {
        Role.SUPERVISOR: ACTING,
        Role.FINANCE: ACTING,
        Role.PLATFORM_ADMIN: ACTING,
        Role.TOWN_ADMIN: OWN,
    },
    Operation.FIGURES_CONFIGURE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
    # The centre live (issue 17 §5): supervisors and the operator's wallboard (a platform admin's
    # or supervisor's sign-in) watch it; each agent's client sets the agent's status at home.
    Operation.CENTRE_READ: {Role.SUPERVISOR: ACTING, Role.PLATFORM_ADMIN: ACTING},
    Operation.AGENT_STATUS_WRITE: {Role.AGENT: OWN, Role.SUPERVISOR: OWN},
    # Directory (decision 023): staff data is employees' personal data. The operator's agents and
    # supervisors see the towns they act for, the town's own people their own town; never partner
    # systems, never another town. The town's admin keeps it; each person sets their own
    # presence; the telephone system posts presence events.
    Operation.DIRECTORY_READ: {
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.PLATFORM_ADMIN: OWN,
        Role.EDITOR: OWN,
        Role.DEPARTMENT: OWN,
        Role.TOWN_ADMIN: OWN,
        Role.FINANCE: OWN,
    },
    Operation.DIRECTORY_WRITE: {Role.PLATFORM_ADMIN: OWN, Role.TOWN_ADMIN: OWN},
    # Who read which private number (decision 037): the town's admin, like the ticket audit.
    Operation.DIRECTORY_AUDIT_READ: {Role.PLATFORM_ADMIN: OWN, Role.TOWN_ADMIN: OWN},
    # SCIM (decision 027): only the town's own identity provider, by its machine client's scope.
    Operation.DIRECTORY_PROVISION: {Scope.DIRECTORY_PROVISION: OWN},
    Operation.PRESENCE_SELF_WRITE: dict.fromkeys(Role, OWN),
    Operation.PRESENCE_EVENT_WRITE: {Scope.CALLS_WRITE: ACTING},
    Operation.FORWARDING_READ: {
        Role.AGENT: ACTING,
        Role.SUPERVISOR: ACTING,
        Role.DEPARTMENT: OWN,
        Role.TOWN_ADMIN: OWN,
        Scope.ROUTING_READ: ACTING,
    },
    # Open311 (decision 030): the services a town offers its partners' clients and the api keys
    # it issues them are the town admin's business (and the platform admins').
    Operation.OPEN311_CONFIGURE: {Role.PLATFORM_ADMIN: ACTING, Role.TOWN_ADMIN: OWN},
}


def _grants(principal: Principal) -> set[Grant]:
    return {*principal.roles, *principal.scopes}


def may(principal: Principal, operation: Operation) -> bool:
    """Whether any grant allows the operation at all (for some tenant)."""
    return bool(_grants(principal) & PERMISSIONS[operation].keys())


def reachable_tenants(principal: Principal, operation: Operation) -> frozenset[UUID]:
    """The tenants the operation may touch for this principal (empty when none)."""
    reaches = {PERMISSIONS[operation][g] for g in _grants(principal) if g in PERMISSIONS[operation]}
    if SETTLED in reaches:
        return principal.row_tenant_ids
    if ACTING in reaches:
        return principal.acting_tenant_ids
    if OWN in reaches:
        return frozenset({principal.tenant_id})
    return frozenset()


# Each operation's grants ranked by how far they reach (SETTLED > ACTING > OWN), for `require`.
_RANK = {OWN: 1, ACTING: 2, SETTLED: 3}
_RANKS: dict[Operation, dict[Grant, int]] = {
    operation: {grant: _RANK[reach] for grant, reach in grants.items()} for operation, grants in PERMISSIONS.items()
}


def require(principal: Principal, operation: Operation) -> frozenset[UUID]:
    """Raise Forbidden when no grant allows the operation; return the reachable tenants.
    `may` and `reachable_tenants` in one pass over the grants without sets of enum members
    (their hash is Python's): ~0.25 µs instead of ~1, on every forwarding decision's door
    (decision 040, 2026-12-07)."""
    ranks = _RANKS[operation]
    best = 0
    for role in principal.roles:
        best = max(best, ranks.get(role, 0))
    for scope in principal.scopes:
        best = max(best, ranks.get(scope, 0))
    if best == 3:
        return principal.row_tenant_ids
    if best == 2:
        return principal.acting_tenant_ids
    if best == 1:
        return frozenset({principal.tenant_id})
    raise Forbidden()


def can_reach(principal: Principal, operation: Operation, tenant_id: UUID) -> bool:
    return tenant_id in reachable_tenants(principal, operation)
