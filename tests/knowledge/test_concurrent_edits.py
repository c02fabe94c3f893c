"""Two editors saving the same version of an article at once (and a town admin saving the same
version of a directory entry): one change is taken, the other is told the object changed
(VERSION_CONFLICT), never a 500 and never a silently lost change."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.knowledge.conftest import LOCAL_VERSION, gql, nonsense_word, published_article
from tests.support.world import World

Client = httpx.AsyncClient
KREIS, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
AT_ONCE = 4
FIELDS = "article { id latestVersion status } errors { code }"
CREATE = f"mutation($i: ArticleInput!, $t: String) {{ createArticle(input: $i, tenant: $t) {{ {FIELDS} }} }}"
UPDATE = (
    f"mutation($id: UUID!, $i: ArticleInput!, $v: Int!) {{ updateArticle(id: $id, input: $i, expectedVersion: $v) "
    f"{{ {FIELDS} }} }}"
)
SUBMIT = f"mutation($id: UUID!, $v: Int!) {{ submitArticleForReview(id: $id, expectedVersion: $v) {{ {FIELDS} }} }}"


async def _gql(client: Client, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body  # nothing masked as INTERNAL
    return body["data"]


async def test_an_article_saved_by_several_editors_at_once_takes_one_change(client: Client, world: World) -> None:
    editor = world.headers(GESEKE, "editor")
    for _ in range(2):
        made = await _gql(
            client,
            editor,
            CREATE,
            i={"title": f"Burst {uuid.uuid4().hex[:6]}", "summary": "Eins"},
            t=world.slug(GESEKE),
        )
        article = made["createArticle"]["article"]
        answers = await asyncio.gather(
            *(
                _gql(client, editor, UPDATE, id=article["id"], i={"title": f"Burst {n}", "summary": "Zwei"}, v=1)
                for n in range(AT_ONCE)
            )
        )
        codes = sorted(e["code"] for a in answers for e in a["updateArticle"]["errors"])
        assert codes == ["VERSION_CONFLICT"] * (AT_ONCE - 1), answers
        submitted = await asyncio.gather(*(_gql(client, editor, SUBMIT, id=article["id"], v=2) for _ in range(AT_ONCE)))
        codes = sorted(e["code"] for a in submitted for e in a["submitArticleForReview"]["errors"])
        assert len(codes) == AT_ONCE - 1 and set(codes) <= {"VERSION_CONFLICT", "INVALID_TRANSITION"}, submitted


async def test_a_person_saved_by_several_admins_from_one_version_takes_one_change(client: Client, world: World) -> None:
    admin = world.headers(GESEKE, "town-admin")
    base = f"/v1/tenants/{world.slug(GESEKE)}/directory/people"
    person = (await client.post(base, json={"familyName": "Burst"}, headers=admin)).json()
    responses = await asyncio.gather(
        *(
            client.put(
                f"{base}/{person['id']}",
                json={"familyName": f"Burst {n}", "version": person["version"]},
                headers=admin,
            )
            for n in range(AT_ONCE)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (AT_ONCE - 1), [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"VERSION_CONFLICT"}
    kept = (await client.get(f"{base}/{person['id']}", headers=admin)).json()
    assert kept["familyName"] == next(r.json()["familyName"] for r in responses if r.status_code == 200)


async def test_a_towns_local_version_asked_for_four_times_at_once_is_made_once(client: Client, world: World) -> None:
    shared = await published_article(client, world, KREIS, f"Burst geteilt {nonsense_word()}", shared=True)
    editor = world.headers(SOEST, "editor")
    answers = await asyncio.gather(
        *(gql(client, editor, LOCAL_VERSION, id=shared["id"], input={"overrides": {"fees": "keine"}}) for _ in range(4))
    )
    assert [a["errors"] for a in answers if "errors" in a] == [], answers  # nothing masked as INTERNAL
    made = [a["data"]["createLocalVersion"] for a in answers]
    assert sum(m["article"] is not None for m in made) == 1, made
    assert sorted(e["code"] for m in made for e in m["errors"]) == ["DUPLICATE"] * 3, made


PUBLISH = f"mutation($id: UUID!, $v: Int!) {{ publishArticle(id: $id, expectedVersion: $v) {{ {FIELDS} }} }}"
ARCHIVE = f"mutation($id: UUID!, $v: Int!) {{ archiveArticle(id: $id, expectedVersion: $v) {{ {FIELDS} }} }}"
SYNONYM = 'mutation($t: String!, $g: String) { setSearchSynonym(input: {term: $t, synonyms: ["Hundesteuer"]}, '
SYNONYM += "tenant: $g) { synonym { id } errors { code } } }"
UNSYNONYM = "mutation($id: UUID!, $g: String) { removeSearchSynonym(id: $id, tenant: $g) { removed errors { code } } }"


async def test_one_article_published_and_archived_and_one_synonym_set_and_removed_at_once(
    client: Client, world: World
) -> None:
    """The second sweep's GraphQL-only writes: one of each burst takes, the rest are told why."""
    editor, town = world.headers(GESEKE, "editor"), world.slug(GESEKE)
    made = await _gql(client, editor, CREATE, i={"title": f"Burst {uuid.uuid4().hex[:6]}", "summary": "Eins"}, t=town)
    article = made["createArticle"]["article"]
    await _gql(client, editor, SUBMIT, id=article["id"], v=1)
    for query, name, version in ((PUBLISH, "publishArticle", 2), (ARCHIVE, "archiveArticle", 3)):
        answers = await asyncio.gather(
            *(_gql(client, editor, query, id=article["id"], v=version) for _ in range(AT_ONCE))
        )
        codes = sorted(e["code"] for a in answers for e in a[name]["errors"])
        assert len(codes) == AT_ONCE - 1 and set(codes) <= {"VERSION_CONFLICT", "INVALID_TRANSITION"}, answers
    term = f"burst{uuid.uuid4().hex[:6]}"
    set_ = await asyncio.gather(*(_gql(client, editor, SYNONYM, t=term, g=town) for _ in range(AT_ONCE)))
    assert all(a["setSearchSynonym"]["errors"] == [] for a in set_), set_
    ids = {a["setSearchSynonym"]["synonym"]["id"] for a in set_}
    assert len(ids) == 1, set_  # one synonym of the term, replaced, not several
    synonym = ids.pop()
    removed = await asyncio.gather(*(_gql(client, editor, UNSYNONYM, id=synonym, g=town) for _ in range(AT_ONCE)))
    assert sum(a["removeSearchSynonym"]["removed"] for a in removed) == 1, removed


UPDATE_LOCAL = (
    "mutation($id: UUID!, $i: LocalVersionInput!, $v: Int!) { updateLocalVersion(id: $id, input: $i, "
    "expectedVersion: $v) { article { id latestVersion status latest { overrides { fees } } } errors { code } } }"
)
RETURN = f"mutation($id: UUID!, $v: Int!) {{ returnArticleToDraft(id: $id, expectedVersion: $v) {{ {FIELDS} }} }}"
STATE = "query($id: UUID!) { editorArticle(id: $id) { latestVersion status latest { overrides { fees } } } }"


async def test_a_local_version_changed_by_several_editors_and_returned_while_published(
    client: Client, world: World
) -> None:
    """The third sweep's GraphQL-only writes: editors changing one local version at once (one
    change taken, the others VERSION_CONFLICT, the stored overrides the taken one's), and a
    version in review returned to draft, published and changed at once (one takes)."""
    shared = await published_article(client, world, KREIS, f"Burst geteilt {nonsense_word()}", shared=True)
    editor = world.headers(SOEST, "editor")
    made = await gql(client, editor, LOCAL_VERSION, id=shared["id"], input={"overrides": {"fees": "keine"}})
    local = made["data"]["createLocalVersion"]["article"]
    version = local["latestVersion"]
    for round_ in range(2):
        answers = await asyncio.gather(
            *(
                _gql(client, editor, UPDATE_LOCAL, id=local["id"], i={"overrides": {"fees": f"{n} Euro"}}, v=version)
                for n in range(AT_ONCE)
            )
        )
        taken = [a["updateLocalVersion"]["article"] for a in answers if not a["updateLocalVersion"]["errors"]]
        codes = sorted(e["code"] for a in answers for e in a["updateLocalVersion"]["errors"])
        assert len(taken) == 1 and codes == ["VERSION_CONFLICT"] * (AT_ONCE - 1), answers
        stored = (await _gql(client, editor, STATE, id=local["id"]))["editorArticle"]
        assert stored["latest"]["overrides"] == taken[0]["latest"]["overrides"] and stored["status"] == "DRAFT"
        submitted = await _gql(client, editor, SUBMIT, id=local["id"], v=stored["latestVersion"])
        version = submitted["submitArticleForReview"]["article"]["latestVersion"]
        mixed = (
            _gql(client, editor, RETURN, id=local["id"], v=version),
            _gql(client, editor, PUBLISH, id=local["id"], v=version),
            _gql(client, editor, UPDATE_LOCAL, id=local["id"], i={"overrides": {"fees": "spät"}}, v=version),
            _gql(client, editor, RETURN, id=local["id"], v=version),
            _gql(client, editor, PUBLISH, id=local["id"], v=version),
        )
        answers = await asyncio.gather(*(mixed if round_ == 0 else reversed(mixed)))
        names = [next(iter(a)) for a in answers]
        ok = [(n, a[n]["article"]) for n, a in zip(names, answers, strict=True) if not a[n]["errors"]]
        codes = {e["code"] for n, a in zip(names, answers, strict=True) for e in a[n]["errors"]}
        assert len(ok) == 1 and ok[0][0] != "updateLocalVersion", answers  # a version in review is not changed
        assert codes <= {"VERSION_CONFLICT", "INVALID_TRANSITION"}, answers
        stored = (await _gql(client, editor, STATE, id=local["id"]))["editorArticle"]
        assert stored["status"] == ok[0][1]["status"] and stored["latestVersion"] == version + 1, (stored, ok)
        if stored["status"] == "PUBLISHED":  # back to a draft for the next round
            stored = (await _gql(client, editor, UPDATE_LOCAL, id=local["id"], i={"overrides": {}}, v=version + 1))[
                "updateLocalVersion"
            ]["article"]
        version = stored["latestVersion"]
