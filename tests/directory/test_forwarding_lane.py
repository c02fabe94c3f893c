"""The forwarding decision's own lane (decision 040, seventh round): `GET /v1/forwarding` with a
plain query string is answered without litestar's parameter and response machinery. Every
request here is sent twice at one frozen moment, once as the lane takes it and once with a
parameter the route ignores (`x=1`), which sends it through litestar's handler as before; the
two answers must be the same — status, headers (but the request id and the rate limit's
remaining count), body byte for byte — for answers and for every refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import time_machine

from backend.directory import lane
from tests.directory.conftest import GESEKE, KREIS, PREFIX, SERVICE, SOEST, Directory
from tests.support.world import World

Client = httpx.AsyncClient
VARYING = {"x-request-id", "ratelimit-remaining"}  # values: a new id per request; one more counted


@pytest.fixture
def lane_answers(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The query strings the lane answered itself (it still answers them)."""
    answered: list[bytes] = []
    answer = lane._ANSWER

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        answered.append(scope["query_string"])
        await answer(scope, receive, send)

    monkeypatch.setattr(lane, "_ANSWER", counted)
    return answered


def _seen(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, "…" if k in VARYING else v) for k, v in response.headers.multi_items()]
    return response.status_code, headers, response.content


async def both_ways(client: Client, query: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """The lane's answer and the handler's at the same moment, which must be the same."""
    # Frozen at this moment (the tokens' `iat` is now): both requests decide for the same one.
    with time_machine.travel(datetime.now(UTC), tick=False):
        fast = await client.get(f"/v1/forwarding?{query}", headers=headers)
        slow = await client.get(f"/v1/forwarding?{query}&x=1", headers=headers)
    assert _seen(fast) == _seen(slow), query
    return fast.status_code, fast.content


async def test_the_lane_answers_as_the_handler_does(
    client: Client, world: World, directory: Directory, lane_answers: list[bytes]
) -> None:
    agent, soest = world.headers(KREIS, "agent"), world.slug(SOEST)
    asked = {
        f"tenant={soest}&leikaKey={SERVICE}&surname=Albers": 200,  # A–K
        f"tenant={soest}&leikaKey={SERVICE}&surname=Zander": 200,  # L–Z
        f"surname=Zander&leikaKey={SERVICE}&tenant={soest}": 200,  # any order
        f"tenant={soest}&leikaKey={PREFIX}1234567": 200,
        f"tenant={soest}&leikaKey={SERVICE}&area=Nord-Ost": 200,
        f"tenant={soest}": 200,  # no key: the department-less answer
        f"tenant={soest}&leikaKey=abc": 422,  # the decision's own check
        f"tenant={soest}&surname=O.Neil_~": 200,
        f"tenant={soest}&leikaKey={SERVICE}&surname=M%C3%BCller": 200,  # percent-encoded: L–Z
        f"tenant={soest}&leikaKey={SERVICE}&surname=%C3%84rzte": 200,  # Ä, folded to A: A–K
        f"tenant={soest}&leikaKey={SERVICE}&surname=van+Dyk": 200,  # a `+` is a space
        f"tenant={soest}&leikaKey={SERVICE}&surname=%FF": 422,  # not UTF-8: replaced, as litestar does, then refused
        f"tenant={soest}&leikaKey=%39{SERVICE[1:]}": 200,  # an escaped digit
        f"tenant=nowhere-{world.suffix}&leikaKey={SERVICE}": 404,
    }
    for query, status in asked.items():
        answered, body = await both_ways(client, query, agent)
        assert answered == status, (query, body)
    assert len(lane_answers) == len(asked)  # each first request, none with `x=1`
    decision = (await both_ways(client, f"tenant={soest}&leikaKey={SERVICE}&surname=Zander", agent))[1]
    assert b'"personId":"' + directory.schmidt["id"].encode() in decision


async def test_the_lane_refuses_as_the_handler_does(
    client: Client, world: World, directory: Directory, lane_answers: list[bytes]
) -> None:
    del directory
    query = f"tenant={world.slug(SOEST)}&leikaKey={SERVICE}"
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Authorization": "Basic YTpi"}, 401),
        (world.headers(SOEST, "finance"), 403),  # no grant to read forwarding decisions
        (world.headers(GESEKE, "agent"), 404),  # a town out of reach answers like a missing one
    ):
        answered, body = await both_ways(client, query, headers)
        assert answered == status, (headers, body)
    assert len(lane_answers) == 5


async def test_what_the_lane_does_not_read_goes_to_the_handler(
    client: Client, world: World, directory: Directory, lane_answers: list[bytes]
) -> None:
    del directory
    agent, soest = world.headers(KREIS, "agent"), world.slug(SOEST)
    for query in (
        f"tenant={soest}&leikaKey={SERVICE}&at=2026-03-10T11:00:00%2B01:00",  # `at` is the handler's
        f"tenant={soest}&leika%4Bey={SERVICE}",  # a name written encoded
        f"tenant={soest}&surname={'%C3%BC' * 101}",  # too long once decoded: 400
        f"tenant={soest}&leikaKey={SERVICE}&leikaKey={SERVICE}",  # twice
        f"tenant={soest}&leikaKey=",  # empty
        f"tenant={soest}&leikaKey={SERVICE}0",  # longer than the route allows: 400
        f"tenant={soest}&surname={'A' * 101}",
        f"leikaKey={SERVICE}",  # no tenant: 400
        "",
    ):
        response = await client.get(f"/v1/forwarding?{query}", headers=agent)
        assert response.status_code in (200, 400, 422), (query, response.text)
    assert lane_answers == []
    head = await client.head(f"/v1/forwarding?tenant={soest}", headers=agent)
    assert head.status_code != 200 or head.content == b""
    assert lane_answers == []


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (b"tenant=t", {"tenant": "t"}),
        (
            b"area=Nord&surname=Schulte-Rahe&leikaKey=99108012000000&tenant=stadt-soest",
            {"tenant": "stadt-soest", "leika_key": "99108012000000", "surname": "Schulte-Rahe", "area": "Nord"},
        ),
        (b"tenant=t&surname=" + b"A" * 100, {"tenant": "t", "surname": "A" * 100}),
        (b"tenant=t&leikaKey=12345678901234", {"tenant": "t", "leika_key": "12345678901234"}),
        (b"tenant=t&leikaKey=123456789012345", None),
        (b"tenant=t&area=" + b"A" * 101, None),
        (b"", None),
        (b"tenant=t&", None),
        (b"tenant", None),
        (b"tenant=", None),
        (b"tenant=t&tenant=u", None),
        (b"surname=x", None),
        (b"tenant=t&at=2026", None),
        (b"tenant=t&Tenant=u", None),
        (b"tenant=t%20u", {"tenant": "t u"}),
        (b"tenant=t+u", {"tenant": "t u"}),
        (b"tenant=t&surname=M%C3%BCller", {"tenant": "t", "surname": "M\u00fcller"}),
        (b"tenant=t&surname=" + b"%C3%BC" * 100, {"tenant": "t", "surname": "\u00fc" * 100}),
        (b"tenant=t&surname=" + b"%C3%BC" * 101, None),
        (b"tenant=t&leika%4Bey=1", None),
        (b"tenant=%74", {"tenant": "t"}),
        (b"tenant=t&surname=a=b", None),
        (b"tenant=t;surname=a", None),
        (b"tenant=\xc3\xbc", None),
    ],
)
def test_which_query_strings_the_lane_reads(query: bytes, fields: dict[str, str] | None) -> None:
    assert lane.plain_query(query) == fields
