"""Sign-in reads the Authorization header straight from the ASGI scope (decision 040, fourth
amendment), with the meaning litestar's headers gave it: the name in any case, the first of
several. Sent as raw ASGI requests, so the header names and their order are exactly these."""

from __future__ import annotations

from tests.support.asgi import raw_get
from tests.support.world import World


async def _status(world: World, target: str, headers: list[tuple[bytes, bytes]]) -> int:
    status, _ = await raw_get(world.app, target, [(b"host", b"test"), *headers])
    return status


async def test_the_header_name_in_any_case_signs_in(world: World) -> None:
    token = world.token("stadt-soest", "agent").encode()
    for name in (b"authorization", b"Authorization", b"AUTHORIZATION"):
        assert await _status(world, "/v1/me", [(name, b"Bearer " + token)]) == 200, name
        assert await _status(world, "/v1/me", [(name, b"bearer " + token)]) == 200, name


async def test_the_first_of_several_authorization_headers_counts(world: World) -> None:
    token = world.token("stadt-soest", "agent").encode()
    good, bad = (b"authorization", b"Bearer " + token), (b"authorization", b"Bearer not.a.token")
    assert await _status(world, "/v1/me", [good, bad]) == 200
    assert await _status(world, "/v1/me", [bad, good]) == 401


async def test_without_a_bearer_token_every_signed_in_route_answers_401(world: World) -> None:
    token = world.token("stadt-soest", "agent").encode()
    forwarding = "/v1/forwarding?tenant=stadt-soest"  # signs in itself (decision 040)
    for path in ("/v1/me", forwarding):
        assert await _status(world, path, []) == 401
        assert await _status(world, path, [(b"authorization", b"Basic " + token)]) == 401
        assert await _status(world, path, [(b"x-authorization", b"Bearer " + token)]) == 401
