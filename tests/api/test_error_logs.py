"""Caller numbers are personal data and never reach the logs, also when a request fails.

Checked on a real app process's log (JSON on stderr): GraphQL with an expired or forged token,
a value the schema refuses, and a wrongly typed variable (GraphQL libraries like to log the query
line or the value); REST with the number in the query string and in a bad body."""

from __future__ import annotations

import httpx

from backend.settings import Settings
from tests.support.servers import app_process
from tests.support.world import World

CALLER = "+4917155509999"
DIGITS = "17155509999"  # however it is written, these digits must not appear


async def test_failed_requests_leave_no_caller_number_in_the_logs(settings: Settings, world: World) -> None:
    agent = world.headers("kreis-soest", "agent")
    forged = {"Authorization": "Bearer not-a-token"}
    literal = f'query {{ routingDecision(dialled: "02921 30-0", caller: "{CALLER}") {{ ours }} }}'
    bad_dialled = f'query {{ routingDecision(dialled: "{CALLER}x", caller: "{CALLER}") {{ ours }} }}'
    typed = 'query($c: String) { routingDecision(dialled: "02921 30-0", caller: $c) { ours } }'
    with app_process(settings) as app:
        async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
            for headers, body in (
                (forged, {"query": literal}),
                (agent, {"query": bad_dialled}),
                (agent, {"query": typed, "variables": {"c": int(DIGITS)}}),
                (agent, {"query": literal.replace("ours", "nonsense")}),
            ):
                response = await http.post("/graphql", json=body, headers=headers)
                assert response.status_code in (200, 400, 401), response.text
                assert response.json().get("errors"), response.text  # each one failed
            rest = await http.get("/v1/routing", params={"dialled": "0", "caller": CALLER}, headers=forged)
            assert rest.status_code == 401
            bad = await http.post("/v1/calls", json={"callerNumber": CALLER, "offeredAt": "x"}, headers=agent)
            assert bad.status_code in (403, 422)
    log = app.log()
    assert '"event": "request"' in log  # the requests were logged …
    assert DIGITS not in log, "a caller number reached the logs"  # … without the number
