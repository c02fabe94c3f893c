"""The rules for a town's webhooks: endpoints (https in production, no credentials in the URL,
not at our own addresses), their signing secrets (shown once, rotated with a grace period,
stored sealed), pausing and resuming, and the delivery log. Delivery itself is the worker's.

Every function starts at the tenant door with `Operation.TICKET_WEBHOOKS`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

from auth.permissions import Operation
from backend import clock
from backend.errors import InvalidTransition, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tenants.reach import reach
from backend.tickets import webhook_repository, webhooks
from backend.tickets.schemas import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointInput,
    WebhookSecret,
)

MAX_PAGE_SIZE = 100
SECRET_GRACE = timedelta(hours=24)


def _check_webhook_url(uow: UnitOfWork, url: str) -> None:
    if uow.app.settings.is_production and not url.startswith("https://"):
        raise ValidationFailed(_l("webhook endpoints must use https in production"), field="url")
    if "@" in url.split("/")[2]:
        raise ValidationFailed(_l("webhook URLs must not carry credentials; verify the signature instead"), field="url")
    # Literal addresses are refused here; host names where they resolve, at delivery.
    if refused := uow.app.outbound.url_refusal(url):
        raise ValidationFailed(_l("webhook endpoint refused: {reason}", reason=refused), field="url")


async def webhook_endpoints(uow: UnitOfWork, tenant_slug: str) -> list[WebhookEndpoint]:
    tenant = await reach(uow, tenant_slug, Operation.TICKET_WEBHOOKS)
    return await webhook_repository.list_endpoints(uow.conn, tenant.id)


async def add_webhook_endpoint(
    uow: UnitOfWork, tenant_slug: str, data: WebhookEndpointInput, now: datetime | None = None
) -> WebhookEndpointCreated:
    now = now or clock.now()
    tenant = await reach(uow, tenant_slug, Operation.TICKET_WEBHOOKS)
    _check_webhook_url(uow, data.url)
    endpoint = await webhook_repository.insert_endpoint(uow.conn, tenant.id, uuid4(), data.url, data.description)
    secret = webhooks.new_secret()
    sealed = webhooks.seal_secret(uow.app.sealer, secret, tenant.id, endpoint.id)
    await webhook_repository.insert_secret(uow.conn, tenant.id, endpoint.id, sealed, now)
    return WebhookEndpointCreated(endpoint=endpoint, secret=secret)


async def rotate_webhook_secret(
    uow: UnitOfWork, tenant_slug: str, endpoint_id: UUID, now: datetime | None = None, grace: timedelta = SECRET_GRACE
) -> WebhookSecret:
    """A new secret signs from now on; the previous ones keep signing too until `grace` ends,
    so the receiver can switch without losing a delivery."""
    now = now or clock.now()
    tenant = await reach(uow, tenant_slug, Operation.TICKET_WEBHOOKS)
    endpoint = await webhook_repository.get_endpoint(uow.conn, tenant.id, endpoint_id)
    expires = await webhook_repository.retire_secrets(uow.conn, tenant.id, endpoint.id, now, grace)
    secret = webhooks.new_secret()
    sealed = webhooks.seal_secret(uow.app.sealer, secret, tenant.id, endpoint.id)
    await webhook_repository.insert_secret(uow.conn, tenant.id, endpoint.id, sealed, now)
    return WebhookSecret(endpoint_id=endpoint.id, secret=secret, previous_secret_expires_at=expires)


async def remove_webhook_endpoint(uow: UnitOfWork, tenant_slug: str, endpoint_id: UUID) -> None:
    """Deactivate (the delivery log stays readable); pending deliveries to it are cancelled."""
    tenant = await reach(uow, tenant_slug, Operation.TICKET_WEBHOOKS)
    endpoint = await webhook_repository.get_endpoint(uow.conn, tenant.id, endpoint_id)
    await webhook_repository.deactivate_endpoint(uow.conn, tenant.id, endpoint.id)


async def resume_webhook_endpoint(
    uow: UnitOfWork, tenant_slug: str, endpoint_id: UUID, now: datetime | None = None
) -> WebhookEndpoint:
    """After the receiver is fixed: the waiting deliveries go out at once, in order. Resuming
    an endpoint that is not paused changes nothing (and is not an error: a retry is harmless)."""
    tenant = await reach(uow, tenant_slug, Operation.TICKET_WEBHOOKS)
    endpoint = await webhook_repository.get_endpoint(uow.conn, tenant.id, endpoint_id)
    if not endpoint.active:
        raise InvalidTransition(_l("this endpoint was removed; add it again instead"))
    if endpoint.paused_at is None:
        return endpoint
    resumed = await webhook_repository.resume_endpoint(uow.conn, tenant.id, endpoint.id, now or clock.now())
    assert resumed is not None  # active and visible in this very transaction
    return resumed


async def webhook_deliveries(
    uow: UnitOfWork, tenant_slug: str, endpoint_id: UUID | None, status: str | None, first: int = 50
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """The delivery log: each delivery with its attempts (status code or error class)."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            _l("first must be between 1 and {max_page_size}", max_page_size=MAX_PAGE_SIZE), field="first"
        )
    if status is not None and status not in ("pending", "delivered", "cancelled"):
        raise ValidationFailed(_l("status is one of pending, delivered, cancelled"), field="status")
    tenant = await reach(uow, tenant_slug, Operation.TICKET_WEBHOOKS)
    endpoints = [e.id for e in await webhook_repository.list_endpoints(uow.conn, tenant.id)]
    if endpoint_id is not None:
        endpoints = [e for e in endpoints if e == endpoint_id]
    result: list[tuple[WebhookDelivery, list[WebhookAttempt]]] = []
    for endpoint in endpoints:
        for delivery in await webhook_repository.list_deliveries(uow.conn, tenant.id, endpoint, status, first):
            result.append((delivery, await webhook_repository.list_attempts(uow.conn, tenant.id, delivery.id)))
    result.sort(key=lambda pair: (pair[0].created_at, pair[0].change_seq), reverse=True)
    return result[:first]
