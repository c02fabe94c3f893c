"""The tenant argument of GraphQL: one name, `tenant` (the tenant's slug, as REST's `?tenant=`).

The older names (`tenantSlug`, `slug`) stay as deprecated arguments until the clients moved;
a field whose tenant is required needs one of the two. The resolver only passes the slug on:
which operation it needs, and whether the caller reaches the tenant, the service asks the door.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from backend.errors import ValidationFailed
from backend.i18n import _l

USE_TENANT = "Use tenant."

TenantArgument = Annotated[str | None, strawberry.argument(description="The tenant, by its slug")]
DeprecatedTenantArgument = Annotated[str | None, strawberry.argument(deprecation_reason=USE_TENANT)]


def optional_tenant(tenant: str | None, old: str | None) -> str | None:
    """The slug given as `tenant` or under its old name (None: neither, the field spans tenants)."""
    if tenant is not None and old is not None and tenant != old:
        raise ValidationFailed(_l("give the tenant once, as tenant"), field="tenant")
    return tenant if tenant is not None else old


def required_tenant(tenant: str | None, old: str | None) -> str:
    """The slug given as `tenant` or under its old name; one of them is required."""
    slug = optional_tenant(tenant, old)
    if slug is None:
        raise ValidationFailed(_l("give the tenant's slug as tenant"), field="tenant")
    return slug
