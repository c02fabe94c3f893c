"""The meaning scan in one pass (decision 035, second amendment): block by block, both question
vectors against the matrix, with the cosines bit for bit those of two whole products — the fused
ranking and the confidence must not move. With the process's one BLAS thread, as the encoder sets
it (`meaning._encoder`): several threads split the rows where the block boundaries do not fall."""

from __future__ import annotations

from uuid import UUID, uuid4

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from backend.knowledge import meaning


def _unit(rng: np.random.Generator, rows: int) -> meaning.Matrix:
    m = rng.standard_normal((rows, meaning.DIMENSIONS), dtype=np.float32)
    unit: meaning.Matrix = (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _scope(rng: np.random.Generator, rows: int) -> meaning.Scope:
    ids: list[UUID] = [uuid4() for _ in range(rows)]
    # Several documents per service, as a town's local articles beside the catalogue entry.
    return meaning.Scope(1, "test", ids, [f"k{i // 3}" for i in range(rows)], _unit(rng, rows))


B = meaning.BLOCK_ROWS


@pytest.mark.parametrize("rows", [1, 2, 7, B - 1, B, B + 1, B + 2, B + 3, 2 * B, 2 * B + 1, 3 * B + 77])
def test_one_pass_gives_the_two_products_cosines_bit_for_bit(rows: int) -> None:
    with threadpool_limits(limits=1, user_api="blas"):
        _one_pass_as_two_products(rows)


def _one_pass_as_two_products(rows: int) -> None:
    rng = np.random.default_rng(rows)
    scope = _scope(rng, rows)
    for said, content in zip(_unit(rng, 20), _unit(rng, 20), strict=True):
        mixed = said + content
        question = meaning.Question(said, (mixed / np.linalg.norm(mixed)).astype(np.float32))
        nearest, best = scope.compare(question, 20)
        assert nearest == scope.nearest(question.search, 20)
        assert best == scope.best(question.said)
        blocks = np.concatenate([scope.matrix[start:end] @ question.search for start, end in meaning._blocks(rows)])
        assert np.array_equal(blocks, scope.matrix @ question.search)


def test_the_blocks_cover_every_row_once_and_none_has_one_row_alone() -> None:
    for rows in [1, 2, B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1, 35_000]:
        blocks = meaning._blocks(rows)
        assert [r for start, end in blocks for r in range(start, end)] == list(range(rows))
        assert all(end - start >= min(rows, 2) for start, end in blocks)


def test_a_question_said_in_the_words_that_matter_is_compared_once() -> None:
    rng = np.random.default_rng(3)
    scope = _scope(rng, 1000)
    said = _unit(rng, 1)[0]
    nearest, best = scope.compare(meaning.Question(said, said), 5)
    assert nearest == scope.nearest(said, 5) and best == scope.best(said)


def test_an_empty_scope_compares_to_nothing() -> None:
    empty = meaning.scope_from_rows([], 1)
    said = _unit(np.random.default_rng(4), 1)[0]
    assert empty.compare(meaning.Question(said, said), 5) == ([], 0.0)


def test_the_matrix_is_one_contiguous_float32_block_nobody_writes() -> None:
    rng = np.random.default_rng(5)
    vectors = _unit(rng, 3)
    rows = [{"doc_id": uuid4(), "leika_key": None, "vector": meaning.to_bytes(v)} for v in vectors]
    scope = meaning.scope_from_rows(rows, 1)
    assert scope.matrix.dtype == np.float32 and scope.matrix.flags.c_contiguous
    assert not scope.matrix.flags.writeable
    assert np.array_equal(scope.matrix, vectors)
