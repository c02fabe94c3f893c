"""Who is calling: built once per request from a verified token."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from auth.roles import Role, Scope


@dataclass(frozen=True, slots=True)
class Principal:
    issuer: str
    subject: str
    tenant_id: UUID
    tenant_slug: str
    roles: frozenset[Role] = frozenset()
    scopes: frozenset[Scope] = frozenset()
    # The home tenant plus, for operator staff and systems, every client tenant with an
    # agreement active today (all tenants for platform admins).
    acting_tenant_ids: frozenset[UUID] = field(default_factory=frozenset)
    client_id: str | None = None
    # For the operator's finance: former clients too (ended agreements). Only grants with
    # Reach.SETTLED (invoices, tariffs) reach them; row-level security admits both sets.
    settled_tenant_ids: frozenset[UUID] = field(default_factory=frozenset)
    # The values of the home town's group claim (decision 037), when the town names one: the
    # backend maps them to the town's departments. Never roles: those come from the role claim.
    groups: frozenset[str] = frozenset()

    @property
    def row_tenant_ids(self) -> frozenset[UUID]:
        """Every tenant whose rows some operation of this principal may touch (for RLS)."""
        return self.acting_tenant_ids | self.settled_tenant_ids

    @property
    def is_machine(self) -> bool:
        """Client-credentials tokens carry no person: the subject is the client itself."""
        return self.client_id is not None and self.client_id == self.subject and not self.roles

    def acts_for(self, tenant_id: UUID) -> bool:
        return tenant_id in self.acting_tenant_ids

    @property
    def log_id(self) -> str:
        """Identifier safe for logs: issuer-local subject ids are pseudonymous, never names."""
        return f"{self.tenant_slug}:{self.subject}"
