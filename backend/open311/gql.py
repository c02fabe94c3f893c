"""GraphQL for the town admin's Open311 api keys (issue, list, revoke). Thin; the key itself is
shown once, in the payload of `issueOpen311ApiKey`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from backend.api.context import Info
from backend.api.mapping import mirrors, shown_all
from backend.api.payloads import UserError, mutate, to_input
from backend.open311 import schemas, service


@mirrors(schemas.ApiKey)
@strawberry.type(name="Open311ApiKey", description="A partner system's Open311 api key (the key itself is not kept)")
class ApiKeyGQL:
    tenant_id: UUID
    id: UUID
    key_prefix: str
    description: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@mirrors(schemas.ApiKeyIssued)
@strawberry.type(name="Open311ApiKeyIssued", description="A new api key: `key` is shown this once")
class ApiKeyIssuedGQL:
    api_key: ApiKeyGQL
    key: str


@strawberry.input(name="Open311ApiKeyInput")
class ApiKeyInputGQL:
    description: str


@strawberry.type(name="Open311ApiKeyIssuedPayload")
class ApiKeyIssuedPayload:
    issued: ApiKeyIssuedGQL | None
    errors: list[UserError]


@strawberry.type(name="Open311ApiKeyPayload")
class ApiKeyPayload:
    api_key: ApiKeyGQL | None
    errors: list[UserError]


@strawberry.type
class Open311Query:
    @strawberry.field(description="The Open311 api keys issued to the town's partner systems (town admin)")
    async def open311_api_keys(self, info: Info, tenant: str) -> list[ApiKeyGQL]:
        async with info.context.uow() as uow:
            return shown_all(ApiKeyGQL, await service.api_keys(uow, tenant))


@strawberry.type
class Open311Mutation:
    @strawberry.mutation(description="Issue an Open311 api key to a partner system; the key is shown once")
    async def issue_open311_api_key(self, info: Info, tenant: str, input: ApiKeyInputGQL) -> ApiKeyIssuedPayload:
        return await mutate(
            info,
            ApiKeyIssuedPayload,
            "issued",
            lambda uow: service.issue_api_key(uow, tenant, to_input(schemas.ApiKeyInput, input)),
        )

    @strawberry.mutation(description="Revoke an Open311 api key: the partner system can no longer submit with it")
    async def revoke_open311_api_key(self, info: Info, tenant: str, id: UUID) -> ApiKeyPayload:
        return await mutate(info, ApiKeyPayload, "api_key", lambda uow: service.revoke_api_key(uow, tenant, id))
