"""Roles of people and scopes of machine clients, in the domain's words."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a signed-in person may do; mapped from the issuer's role/group claim values."""

    PLATFORM_ADMIN = "platform-admin"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    EDITOR = "editor"
    DEPARTMENT = "department"
    TOWN_ADMIN = "town-admin"
    FINANCE = "finance"


class Scope(StrEnum):
    """What a machine client (client-credentials token) may do."""

    TENANTS_READ = "tenants:read"
    ROUTING_READ = "routing:read"
    CALLS_WRITE = "calls:write"
    ARTICLES_READ = "articles:read"
    TICKETS_READ = "tickets:read"
    TICKETS_WRITE = "tickets:write"
    # A town's identity provider keeps the town's directory current (SCIM 2.0, decision 027).
    DIRECTORY_PROVISION = "directory:provision"


# Roles of the operator's staff that act for every client tenant with an active agreement.
OPERATOR_WIDE_ROLES: frozenset[Role] = frozenset({Role.AGENT, Role.SUPERVISOR, Role.EDITOR, Role.FINANCE})
# Roles only an operator's issuers grant. A town's admin maps its own issuer's claims; a mapping
# to one of these must not make a town's sign-in an administrator of every tenant.
OPERATOR_ONLY_ROLES: frozenset[Role] = frozenset({Role.PLATFORM_ADMIN})
# Scopes that let an operator's machine client (its telephone system) act for client tenants.
OPERATOR_WIDE_SCOPES: frozenset[Scope] = frozenset({Scope.ROUTING_READ, Scope.CALLS_WRITE})

# Machine client kinds of the demo set-up and the scopes they get (used by the dev sign-in).
MACHINE_CLIENT_SCOPES: dict[str, frozenset[Scope]] = {
    "partner": frozenset({Scope.TENANTS_READ, Scope.ARTICLES_READ, Scope.TICKETS_READ, Scope.TICKETS_WRITE}),
    "telephony": frozenset({Scope.TENANTS_READ, Scope.ROUTING_READ, Scope.CALLS_WRITE}),
    "provisioning": frozenset({Scope.DIRECTORY_PROVISION}),
}


def parse_scopes(value: object) -> frozenset[Scope]:
    """The OAuth `scope` claim is space separated; scopes we do not know are dropped."""
    if not isinstance(value, str):
        return frozenset()
    known = {scope.value for scope in Scope}
    return frozenset(Scope(item) for item in value.split() if item in known)
