"""Error texts follow Accept-Language (German and English, DEFAULT_LOCALE otherwise; decision 017).

problem+json `title`, `detail` and field messages, GraphQL top-level and payload `message`s are
translated; codes, types, statuses, field names and extensions are the same in every language.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from backend.main import create_app
from backend.settings import GraphQLLimits, Settings
from tests.support.asgi import serve
from tests.support.world import World

PROBLEM = "/problems/"
GERMAN = ("de", "Nicht gefunden", "Mandant nicht gefunden")
ENGLISH = ("en", "Not found", "tenant not found")
# Header → the language of the answer (the default is German, DEFAULT_LOCALE's default).
HEADERS = {
    "de": GERMAN,
    "en": ENGLISH,
    "de-DE,de;q=0.9,en;q=0.8": GERMAN,  # a German browser
    "en-GB,en;q=0.9,de;q=0.5": ENGLISH,
    "de;q=0.2, en;q=0.9": ENGLISH,  # q-values decide, not the order
    "de-AT, en;q=0.1": GERMAN,  # a regional tag counts as its language (not the exact `en` first)
    "de;q=0, en": ENGLISH,  # q=0: not German
    "fr": GERMAN,  # nothing we have: DEFAULT_LOCALE
    "fr-CH, fr;q=0.9, en;q=0.8": ENGLISH,
    "*": GERMAN,
    ";;q=,,=de;q=abc": GERMAN,  # garbage: no 500, the default
    "en;q=2": GERMAN,  # a q-value out of range is no preference
    "x" * 5000: GERMAN,
}


def _problem(response: httpx.Response, status: int, code: str, language: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["content-language"] == language
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"] == PROBLEM + code.lower().replace("_", "-")
    return body


async def test_problem_details_follow_accept_language(client: httpx.AsyncClient, world: World) -> None:
    admin = world.headers("kreis-soest", "platform-admin")
    for header, (language, title, detail) in HEADERS.items():
        response = await client.get("/v1/tenants/no-such-town", headers={**admin, "Accept-Language": header})
        body = _problem(response, 404, "NOT_FOUND", language)
        assert (body["title"], body["detail"]) == (title, detail), header[:40]
    # Without the header: DEFAULT_LOCALE (German). The test client sends `en` unless told otherwise.
    no_header = await client.get("/v1/tenants/no-such-town", headers={**admin, "Accept-Language": ""})
    assert _problem(no_header, 404, "NOT_FOUND", "de")["detail"] == "Mandant nicht gefunden"


async def test_auth_and_framework_errors_in_german(client: httpx.AsyncClient, world: World) -> None:
    german = {"Accept-Language": "de-DE"}
    unsigned = _problem(await client.get("/v1/me", headers=german), 401, "UNAUTHENTICATED", "de")
    assert (unsigned["title"], unsigned["detail"]) == ("Nicht angemeldet", "Ein gültiges Bearer-Token ist erforderlich")

    agent = {**world.headers("stadt-soest", "agent"), **german}
    refused = await client.get("/v1/agreements", headers=agent)
    body = _problem(refused, 403, "FORBIDDEN", "de")
    assert (body["title"], body["detail"]) == ("Nicht erlaubt", "Für Ihre Rolle nicht erlaubt")

    admin = {**world.headers("stadt-soest", "town-admin"), **german}
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments/abc"  # only PUT
    wrong_method = await client.get(url, headers=admin)
    body = _problem(wrong_method, 405, "METHOD_NOT_ALLOWED", "de")
    assert body["title"] == "Methode nicht erlaubt" and "Allow-Header" in body["detail"]
    assert "PUT" in wrong_method.headers["allow"]

    unknown = _problem(await client.get("/v1/no-such-thing", headers=admin), 404, "NOT_FOUND", "de")
    assert unknown["detail"] == "Unter diesem Pfad gibt es nichts"

    limit = world.app.request_max_body_size
    assert isinstance(limit, int)
    departments = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    for extra in ({}, {"Idempotency-Key": "one"}):  # litestar's answer and the idempotency middleware's
        too_large = await client.post(departments, content=b"x" * (limit + 1), headers={**admin, **extra})
        body = _problem(too_large, 413, "VALIDATION_FAILED", "de")
        assert body["detail"] == "Der Anfrageinhalt ist zu groß"


async def test_a_validation_error_names_the_field_as_sent_in_either_language(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"/v1/tenants/{world.slug('stadt-soest')}/departments"
    admin = world.headers("stadt-soest", "town-admin")
    answers = {}
    for language in ("de", "en"):
        response = await client.post(url, json={"name": 5}, headers={**admin, "Accept-Language": language})
        answers[language] = _problem(response, 422, "VALIDATION_FAILED", language)
    german, english = answers["de"], answers["en"]
    assert [e["field"] for e in german["errors"]] == [e["field"] for e in english["errors"]] == ["name"]
    assert english["errors"][0]["message"] == "Expected `str`, got `int`"
    assert german["errors"][0]["message"] == "Erwartet: `str`, erhalten: `int`"
    assert (german["title"], german["detail"]) == ("Ungültige Eingabe", "Ungültige Eingabe: name")

    # A rule of the service: the same field, the sentence translated.
    closing = f"/v1/tenants/{world.slug('stadt-soest')}/closing-days/2031-03-17"
    for language, text in (
        ("de", "Ein Schließtag braucht einen Namen mit 1 bis 200 Zeichen"),
        ("en", "a closing day needs a name of 1 to 200 characters"),
    ):
        response = await client.put(closing, params={"name": "x" * 201}, headers={**admin, "Accept-Language": language})
        body = _problem(response, 422, "VALIDATION_FAILED", language)
        assert body["detail"] == text and body["errors"] == [{"field": "name", "message": text}], body


async def graphql(client: httpx.AsyncClient, query: str, headers: dict[str, str], **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_graphql_messages_follow_accept_language_and_codes_stay(client: httpx.AsyncClient, world: World) -> None:
    for language, text in (
        ("de", "Ein gültiges Bearer-Token ist erforderlich"),
        ("en", "a valid bearer token is required"),
    ):
        body = await graphql(client, "{ me { subject } }", {"Accept-Language": language})
        assert [(e["message"], e["extensions"]) for e in body["errors"]] == [(text, {"code": "UNAUTHENTICATED"})]

    mutation = """mutation($s: String!, $name: String!) {
      setClosingDay(tenantSlug: $s, day: "2031-03-17", name: $name) { errors { code message field } }
    }"""
    admin = world.headers("stadt-soest", "town-admin")
    slug = world.slug("stadt-soest")
    errors = {
        language: (await graphql(client, mutation, {**admin, "Accept-Language": language}, s=slug, name=""))["data"][
            "setClosingDay"
        ]["errors"]
        for language in ("de", "en")
    }
    assert [(e["code"], e["field"]) for e in errors["de"]] == [(e["code"], e["field"]) for e in errors["en"]]
    assert errors["de"][0]["code"] == "VALIDATION_FAILED" and errors["de"][0]["field"] == "name"
    assert errors["de"][0]["message"] != errors["en"][0]["message"]
    assert errors["de"][0]["message"].startswith("Erwartet"), errors


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def english_by_default(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """DEFAULT_LOCALE=en, one request a minute, a small GraphQL cost limit."""
    small = dataclasses.replace(
        settings,
        default_locale="en",
        rate_limit_per_minute=1,
        graphql=GraphQLLimits(max_depth=10, max_aliases=15, max_tokens=2000, max_cost=100),
    )
    async with serve(create_app(small), "http://english.local") as client:
        yield client


async def test_default_locale_decides_for_languages_we_lack(english_by_default: httpx.AsyncClient) -> None:
    for header, language in (("fr", "en"), ("garbage;;q=", "en"), ("de", "de"), ("", "en")):
        response = await english_by_default.get("/v1/me", headers={"Accept-Language": header})
        _problem(response, 401, "UNAUTHENTICATED", language)


async def test_rate_limit_and_cost_limit_in_german(english_by_default: httpx.AsyncClient, world: World) -> None:
    person = world.headers("stadt-geseke", "agent")
    german = {"Accept-Language": "de"}
    if (left := 60 - time.time() % 60) < 5:  # both requests in one window of the minute
        await asyncio.sleep(left + 0.1)
    answers = [await english_by_default.get("/v1/me", headers={**person, **german}) for _ in range(2)]
    refused = next(answer for answer in answers if answer.status_code == 429)
    body = _problem(refused, 429, "RATE_LIMITED", "de")
    assert body["title"] == "Zu viele Anfragen" and "erneut versuchen" in body["detail"]
    assert body["retryAfter"] == int(refused.headers["retry-after"])

    # Validation results are cached across requests: the language is still each request's own.
    query = "{ tenants(first: 100) { nodes { slug name kind } } }"
    for language, words in (
        ("en", "exceeds the limit of 100"),
        ("de", "überschreiten die Grenze von 100"),
        ("en", "exceeds"),
    ):
        body = await graphql(english_by_default, query, {"Accept-Language": language})
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "cost": 401}
        assert words in error["message"], (language, error)
