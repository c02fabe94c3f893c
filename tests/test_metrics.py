"""`/metrics`: requests by route template (never a path or a query string), sign-in rejections
by reason, the database pool, and the workers' heartbeats, as Prometheus reads them."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx

from backend.main import create_app
from backend.settings import Settings
from backend.state import AppState
from backend.telephony.worker import TelephonyWorker
from backend.tickets.worker import TicketWorker
from tests.support.asgi import serve
from tests.support.metrics import label_values, scrape, value
from tests.support.world import World

CALLER = "+492921987650"


async def test_requests_are_counted_by_route_template_and_hold_no_personal_data(
    client: httpx.AsyncClient, world: World
) -> None:
    before = await scrape(client)
    system = world.headers("kreis-soest", "telephony")
    for _ in range(3):
        response = await client.get("/v1/routing", params={"dialled": "02921 103-0", "caller": CALLER}, headers=system)
        assert response.status_code in (200, 404), response.text
    status = str(response.status_code)
    tenant = await client.get(
        f"/v1/tenants/{world.slug('stadt-soest')}", headers=world.headers("kreis-soest", "platform-admin")
    )
    assert tenant.status_code == 200
    after = await scrape(client)

    routing = {"method": "GET", "route": "/v1/routing"}
    assert (
        value(after, "bs_http_requests_total", **routing, status=status)
        - value(before, "bs_http_requests_total", **routing, status=status)
        == 3
    )
    assert (
        value(after, "bs_http_request_duration_seconds_count", **routing)
        - value(before, "bs_http_request_duration_seconds_count", **routing)
        == 3
    )
    routes = label_values(after, "bs_http_requests_total", "route")
    assert "/v1/tenants/{slug}" in routes  # the template, not Soest's path
    assert not any(world.slug("stadt-soest") in route for route in routes)
    text = (await client.get("/metrics")).text
    assert CALLER[3:] not in text and "2921 98" not in text  # the caller number appears nowhere
    assert (
        value(after, "bs_db_pool_connections", state="idle") + value(after, "bs_db_pool_connections", state="busy") >= 1
    )
    assert value(after, "bs_build_info", version="0.1.0") == 1


async def test_rejected_tokens_are_counted_by_reason(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for token in ("abc", "abc", "a.b.c"):
        response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    after = await scrape(client)
    reasons = {
        reason: value(after, "bs_token_rejections_total", reason=reason)
        - value(before, "bs_token_rejections_total", reason=reason)
        for reason in label_values(after, "bs_token_rejections_total", "reason")
    }
    assert reasons["not_a_compact_jws"] == 2
    assert sum(reasons.values()) == 3  # "a.b.c" is refused for another reason: its header is no JSON


async def test_worker_rounds_leave_a_heartbeat(client: httpx.AsyncClient, world: World) -> None:
    state = world.state
    before = await scrape(client)
    started = time.time()
    async with httpx.AsyncClient() as http:
        tickets = TicketWorker(state.pool, state.redis, http, state.sealer, poll_seconds=0.05, metrics=state.metrics)
        telephony = TelephonyWorker(state.pool, metrics=state.metrics)
        stop = asyncio.Event()
        running = [asyncio.create_task(tickets.run(stop)), asyncio.create_task(telephony.run(stop))]
        for _ in range(100):  # until both have completed rounds (the tickets worker polls every 50 ms)
            after = await scrape(client)
            rounds = value(after, "bs_worker_rounds_total", worker="tickets", outcome="ok")
            if (
                rounds - value(before, "bs_worker_rounds_total", worker="tickets", outcome="ok") >= 2
                and value(after, "bs_worker_last_success_timestamp_seconds", worker="telephony") >= started
            ):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*running)
    for worker in ("tickets", "telephony"):
        assert value(after, "bs_worker_last_success_timestamp_seconds", worker=worker) >= started
        assert value(after, "bs_worker_rounds_total", worker=worker, outcome="failed") == value(
            before, "bs_worker_rounds_total", worker=worker, outcome="failed"
        )
    assert (
        value(after, "bs_worker_rounds_total", worker="tickets", outcome="ok")
        - value(before, "bs_worker_rounds_total", worker="tickets", outcome="ok")
        >= 2
    )


async def test_an_exhausted_pool_is_shown_with_the_last_figures(settings: Settings, world: World) -> None:
    """The scrape that must show the exhausted pool (DatabasePoolExhausted) may not wait for a
    connection: it answers at once with the figures read before, and counts the failed read."""
    app = create_app(dataclasses.replace(settings, db_pool_min=2, db_pool_max=2))
    town = {"tenant": world.slug("stadt-soest")}
    async with serve(app, "http://metrics.local") as client:
        state: AppState = app.state.app_state
        before = await scrape(client)
        assert ("bs_tickets_overdue", frozenset(town.items())) in before  # figures were read
        state.metrics.figures_seconds = 0  # read them on every scrape
        held = [await state.pool.acquire() for _ in range(2)]
        try:
            # Prometheus scrapes again after its timeout; no scrape may queue behind another
            # (the old code hung here: the guard turns that into a failure).
            scrapes = await asyncio.wait_for(asyncio.gather(*(scrape(client) for _ in range(3))), timeout=8)
        finally:
            for conn in held:
                await state.pool.release(conn)
        recovered = await scrape(client)
    for during in scrapes:
        assert value(during, "bs_db_pool_connections", state="busy") == 2
        assert value(during, "bs_db_pool_max_connections") == 2
        assert value(during, "bs_tickets_overdue", **town) == value(before, "bs_tickets_overdue", **town)
        assert ("bs_webhook_deliveries_waiting", frozenset(town.items())) in during
    failed = [
        value(during, "bs_metrics_source_failures_total") - value(before, "bs_metrics_source_failures_total")
        for during in scrapes
    ]
    assert sorted(failed) == [0, 0, 1]  # one scrape tried to read, and counted it; two did not wait
    reader = scrapes[failed.index(1)]
    assert value(reader, "bs_metrics_figures_age_seconds") >= 1  # what it served is from before
    assert value(recovered, "bs_metrics_source_failures_total") == value(reader, "bs_metrics_source_failures_total")
    assert value(recovered, "bs_metrics_figures_age_seconds") < 1
