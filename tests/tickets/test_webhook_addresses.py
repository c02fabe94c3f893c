"""Webhook delivery goes through the outbound policy: an endpoint whose name resolves inside our
network gets nothing, and the delivery log says the address is not allowed (issue 12, SSRF).
Literal addresses are refused when the endpoint is added (tests/auth/test_outbound_issuers.py)."""

from __future__ import annotations

import dataclasses

from backend.settings import Settings
from backend.tickets import webhooks
from backend.tickets.worker import webhook_client
from tests.tickets.receiver import Receiver


async def test_a_webhook_to_a_name_inside_our_network_is_not_delivered(settings: Settings, receiver: Receiver) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")
    secret = webhooks.new_secret()
    body = webhooks.body_of("ticket.created", "2026-12-06T10:00:00Z", {})
    production_rule = dataclasses.replace(settings, outbound_loopback=False)
    async with webhook_client(production_rule) as http:
        outcome = await webhooks.send(http, url, "msg_1", body, [secret], 5)
    assert not outcome.ok and outcome.error == "address not allowed for outbound requests"
    assert receiver.received == []
    async with webhook_client(settings) as http:  # development and tests: loopback allowed
        assert (await webhooks.send(http, url, "msg_2", body, [secret], 5)).ok
    assert [r.message_id for r in receiver.received] == ["msg_2"]
