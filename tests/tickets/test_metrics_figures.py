"""Per-town figures on `/metrics`: webhook deliveries waiting, paused endpoints and overdue
callbacks, read from PostgreSQL at most every `figures_seconds` however often anyone scrapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.support.metrics import scrape, value
from tests.support.world import World
from tests.tickets.conftest import GESEKE, SOEST, Client, create_ticket, ticket_at

pytestmark = pytest.mark.clock  # overdue figures are counted as of now


async def test_each_towns_webhook_backlog_and_overdue_callbacks(
    client: Client,
    world: World,
    departments: dict[str, UUID],
    endpoint: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(world.state.metrics, "figures_seconds", 0.0)
    soest, geseke = world.slug(SOEST), world.slug(GESEKE)
    before = await scrape(client)

    ticket = await create_ticket(client, world, departments, SOEST)  # no worker runs: its deliveries wait
    await ticket_at(world, departments, GESEKE, datetime.now(UTC) - timedelta(days=5))  # long past its callback
    after = await scrape(client)

    log = await client.get(
        f"/v1/tenants/{soest}/webhook-deliveries",
        params={"endpointId": endpoint["endpoint"]["id"], "status": "pending"},
        headers=world.headers(SOEST, "town-admin"),
    )
    waiting = [entry for entry in log.json() if entry["delivery"]["ticketId"] == ticket["id"]]
    assert waiting  # created, and forwarded to the department
    gained = value(after, "bs_webhook_deliveries_waiting", tenant=soest) - value(
        before, "bs_webhook_deliveries_waiting", tenant=soest
    )
    assert gained == len(waiting)
    assert value(after, "bs_webhook_oldest_waiting_seconds", tenant=soest) >= 0
    assert value(after, "bs_tickets_overdue", tenant=geseke) - value(before, "bs_tickets_overdue", tenant=geseke) == 1
    assert value(after, "bs_tickets_overdue", tenant=soest) == value(before, "bs_tickets_overdue", tenant=soest)
    assert value(after, "bs_webhook_endpoints_paused", tenant=soest) == 0


async def test_figures_are_read_at_most_every_few_seconds(
    client: Client, world: World, departments: dict[str, UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    geseke = world.slug(GESEKE)
    monkeypatch.setattr(world.state.metrics, "figures_seconds", 0.0)
    first = await scrape(client)  # read now
    monkeypatch.setattr(world.state.metrics, "figures_seconds", 3600.0)
    await ticket_at(world, departments, GESEKE, datetime.now(UTC) - timedelta(days=5))
    again = await scrape(client)  # a scrape storm does not reach PostgreSQL …
    assert value(again, "bs_tickets_overdue", tenant=geseke) == value(first, "bs_tickets_overdue", tenant=geseke)
    monkeypatch.setattr(world.state.metrics, "figures_seconds", 0.0)
    later = await scrape(client)  # … the next read after the interval does
    assert value(later, "bs_tickets_overdue", tenant=geseke) == value(first, "bs_tickets_overdue", tenant=geseke) + 1
