"""Department membership from a group claim of the town's identity provider (decision 037).

The town names the claim that lists a person's groups (`groups`, Keycloak's
`realm_access.groups`, a JSON Pointer) and which group means which of its departments. Sign-in
puts that claim's values on the principal (`Principal.groups`); the tickets domain reads this
mapping when it narrows department staff's ticket list to their departments. A group name that
starts with `/` is a Keycloak group path and counts for its subgroups too, as in role mappings.
"""

from __future__ import annotations

from auth.claims import ClaimPathError, check_group_path, parse_claim_path
from auth.permissions import Operation
from backend.directory import audit_repository
from backend.directory.schemas import GroupMembership, GroupMembershipInput
from backend.errors import ValidationFailed
from backend.i18n import Message, _l
from backend.state import UnitOfWork
from backend.tenants import signin
from backend.tenants.reach import reach


async def group_membership(uow: UnitOfWork, tenant_slug: str) -> GroupMembership:
    tenant = await reach(uow, tenant_slug, Operation.IDENTITY_READ)
    claim = await audit_repository.group_claim(uow.conn, tenant.id)
    groups = await audit_repository.department_groups(uow.conn, tenant.id) if claim else []
    return GroupMembership(claim=claim, groups=groups)


async def set_group_membership(uow: UnitOfWork, tenant_slug: str, data: GroupMembershipInput) -> GroupMembership:
    """Replace the town's group claim and its groups whole; without a claim, membership comes
    from the directory only. Every instance signs in anew after commit (the claim travels with
    the issuer bindings, which sign-in remembers)."""
    tenant = await reach(uow, tenant_slug, Operation.IDENTITY_WRITE)
    if data.claim is None and data.groups:
        raise ValidationFailed(_l("name the claim that carries the groups"), field="claim")
    if data.claim is not None:
        try:
            parse_claim_path(data.claim)
        except ClaimPathError as error:
            raise ValidationFailed(Message(error.msgid, error.params), field="claim") from None
    seen: set[str] = set()
    for group in data.groups:
        if group.group_name in seen:
            raise ValidationFailed(_l("a group is named twice: {group}", group=group.group_name), field="groups")
        seen.add(group.group_name)
        try:
            check_group_path(group.group_name)
        except ClaimPathError as error:
            raise ValidationFailed(Message(error.msgid, error.params), field="groups") from None
    wanted = {g.department_id for g in data.groups}
    if wanted - await audit_repository.active_departments(uow.conn, tenant.id, list(wanted)):
        raise ValidationFailed(_l("no open department with this id in the town"), field="groups")
    await audit_repository.replace_group_membership(
        uow.conn, tenant.id, data.claim, [(g.group_name, g.department_id) for g in data.groups]
    )
    uow.after_commit(lambda: signin.signin_changed(uow.app))
    return await group_membership(uow, tenant_slug)
