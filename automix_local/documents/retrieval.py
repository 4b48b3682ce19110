"""Retrieval over the library: BM25 (FTS5) and dense vectors fused by reciprocal rank, packed into a window.

* ``search`` ranks passages of the chosen documents by BM25 and, where vectors exist, by cosine
  similarity to the query's embedding, and fuses the two rankings by reciprocal rank fusion
  (score = Σ 1 / (60 + rank), Cormack et al. 2009; GPT4All LocalDocs does the same). Passages without
  a vector yet still rank by BM25: asking never waits for embeddings.
* ``pack`` fills one token budget across all documents in rank order, whole passages only (never a
  per-document top-k that overflows, nothing cut); when every chosen document fits whole, they go in
  whole and nothing is retrieved ("pin").
* ``context_text`` numbers what went in ([1], [2], …) so the answer can be traced back; ``cite`` finds
  the passages that contain an extractive answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..text import WORD, content_words
from .library import Document, Library, StoredPassage

RRF_K = 60


@dataclass(frozen=True)
class Hit:
    passage: StoredPassage
    score: float  # fused reciprocal-rank score
    bm25_rank: int | None  # 1-based, None when BM25 did not find it
    dense_rank: int | None
    cosine: float | None = None  # similarity to the question's vector, when it has one


@dataclass
class Packed:
    """What goes into the prompt: numbered passages (or whole documents), and what it took."""

    passages: list[StoredPassage] = field(default_factory=list)
    mode: str = "retrieved"  # "retrieved" | "whole" (every chosen document fits: no retrieval)
    tokens: int = 0
    budget: int = 0
    candidates: int = 0  # passages retrieval offered
    left_out: int = 0  # offered but over the budget

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "passages": len(self.passages),
            "tokens": self.tokens,
            "budget": self.budget,
            "candidates": self.candidates,
            "left_out": self.left_out,
        }


def fts_query(question: str) -> str:
    """An FTS5 MATCH expression for a question: its content words OR-ed, each quoted (no FTS syntax leaks)."""
    words = [w for w in content_words(question) if len(w) > 1]
    seen: list[str] = []
    for w in words:
        if w not in seen:
            seen.append(w)
    return " OR ".join(f'"{w}"' for w in seen)


def bm25(lib: Library, question: str, document_ids: Sequence[int] | None, k: int) -> list[int]:
    """Passage ids by BM25 (best first), within the documents (None: the whole library, with no filter to
    evaluate: at 10,000 passages the filter over every document id cost more than the search)."""
    q = fts_query(question)
    if not q or (document_ids is not None and not document_ids):
        return []
    if document_ids is None:
        rows = lib.db.execute(
            "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ? ORDER BY bm25(passages_fts) LIMIT ?", (q, k)
        ).fetchall()
        return [r[0] for r in rows]
    marks = ",".join("?" * len(document_ids))
    rows = lib.db.execute(
        "SELECT p.id FROM passages_fts f JOIN passages p ON p.id = f.rowid"
        f" WHERE passages_fts MATCH ? AND p.document_id IN ({marks}) ORDER BY bm25(passages_fts) LIMIT ?",
        (q, *document_ids, k),
    ).fetchall()
    return [r[0] for r in rows]


def dense(lib: Library, query_vector: np.ndarray, model: str, document_ids: Sequence[int] | None, k: int) -> list[int]:
    """Passage ids by cosine similarity to the (L2-normalised) query vector, over passages that have vectors."""
    return [pid for pid, _ in dense_scored(lib, query_vector, model, document_ids, k)]


def dense_scored(
    lib: Library, query_vector: np.ndarray, model: str, document_ids: Sequence[int] | None, k: int
) -> list[tuple[int, float]]:
    """(passage id, cosine similarity), best first (ties in passage order); ``document_ids`` None: the whole
    library. The vectors come from ``vector_matrix`` (kept in memory until the library's vectors change)."""
    vectors = vector_matrix(lib, model)
    if vectors is None or k <= 0:
        return []
    rows: np.ndarray | None = None
    if document_ids is not None:
        rows = np.flatnonzero(np.isin(vectors.documents, np.fromiter(document_ids, dtype=np.int64)))
        if not len(rows):
            return []
    matrix = vectors.matrix if rows is None else vectors.matrix[rows]
    sims = matrix @ query_vector.astype(np.float32)
    top = _top(sims, k)
    ids = vectors.ids if rows is None else vectors.ids[rows]
    return [(int(ids[i]), float(sims[i])) for i in top]


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` largest values, largest first, ties in index order (what a stable sort of all of
    them gives, without sorting them all)."""
    if k >= len(values):
        return np.argsort(-values, kind="stable")
    kth = np.partition(values, len(values) - k)[len(values) - k]  # the k-th largest value
    candidates = np.flatnonzero(values >= kth)  # every value that ties with it too, in index order
    return candidates[np.argsort(-values[candidates], kind="stable")][:k]


@dataclass(frozen=True)
class VectorMatrix:
    """A library's vectors of one model, as one matrix: row i is passage ``ids[i]`` of document ``documents[i]``."""

    version: int  # Library.embeddings_version when read
    ids: np.ndarray  # int64, ascending
    documents: np.ndarray  # int64
    matrix: np.ndarray  # float32, (len(ids), dim), read-only


_MATRICES: dict[tuple[str, str], VectorMatrix] = {}
_MATRICES_KEPT = 2  # libraries × models held in memory (10,000 passages at 768 dimensions: 30 MB each)
_MATRICES_LOCK = threading.Lock()


def vector_matrix(lib: Library, model: str) -> VectorMatrix | None:
    """The library's vectors of ``model`` (None when it has none), read from SQLite once and kept in memory for
    as long as no vector of the library changes: reading 10,000 vectors (30 MB) cost 29 ms a question, a
    counter bumped by triggers costs a lookup. Shared by every ``Library`` opened on the same file."""
    where = (str(Path(lib.path).resolve()), model)
    version = lib.embeddings_version()
    with _MATRICES_LOCK:
        held = _MATRICES.get(where)
    if held is None or held.version != version:
        version, ids, documents, blob = lib.embedding_matrix(model)
        if not ids:
            held = None
        else:
            matrix = np.frombuffer(blob, dtype=np.float32).reshape(len(ids), -1)  # read-only: bytes are immutable
            held = VectorMatrix(version, np.asarray(ids, np.int64), np.asarray(documents, np.int64), matrix)
        with _MATRICES_LOCK:
            _MATRICES.pop(where, None)
            if held is not None:
                _MATRICES[where] = held
                while len(_MATRICES) > _MATRICES_KEPT:
                    del _MATRICES[next(iter(_MATRICES))]
    else:
        with _MATRICES_LOCK:  # most recently used last
            _MATRICES[where] = _MATRICES.pop(where, held)
    return held


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: (passage id, score), best first; ties keep the first ranking's order."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, 1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda t: -t[1])


def search(
    lib: Library,
    question: str,
    documents: Sequence[Document],
    k: int = 20,
    query_vector: np.ndarray | None = None,
    model: str | None = None,
) -> list[Hit]:
    ids: list[int] | None = [d.id for d in documents]
    if len(documents) == lib.db.execute("SELECT count(*) FROM documents").fetchone()[0]:
        ids = None  # the whole library: no document filter
    lexical = bm25(lib, question, ids, k)
    scored = dense_scored(lib, query_vector, model, ids, k) if query_vector is not None and model else []
    semantic = [pid for pid, _ in scored]
    cosine = dict(scored)
    b_rank = {pid: i for i, pid in enumerate(lexical, 1)}
    d_rank = {pid: i for i, pid in enumerate(semantic, 1)}
    return [
        Hit(lib.passage(pid), score, b_rank.get(pid), d_rank.get(pid), cosine.get(pid))
        for pid, score in fuse([lexical, semantic])[:k]
    ]


def label(p: StoredPassage) -> str:
    where = p.where
    return f"{p.document}, {where}" if where else p.document


def context_text(passages: Sequence[StoredPassage]) -> str:
    """The prompt's document: each passage numbered, with where it comes from."""
    return "\n\n".join(f"[{n}] ({label(p)})\n{p.text.strip()}" for n, p in enumerate(passages, 1))


def pack(
    lib: Library,
    documents: Sequence[Document],
    hits: Sequence[Hit],
    budget: int,
    count: Callable[[str], int],
    cap: int = 0,
) -> Packed:
    """The passages that go into the prompt under ``budget`` tokens (as ``count`` measures the numbered text).

    Whole documents when all of them fit the budget (every passage, in order); else retrieved passages in
    rank order, skipping any that would overflow, shown in document order — under ``cap`` tokens when it
    is set (``[documents] context_tokens``: fewer passages, a faster answer).
    """
    everything = lib.passages([d.id for d in documents])
    if everything:
        n = count(context_text(everything))
        if n <= budget:
            return Packed(everything, "whole", n, budget, len(everything), 0)
    budget = min(budget, cap) if cap else budget
    chosen: list[StoredPassage] = []
    used = 0
    left_out = 0
    for h in hits:
        trial = [*chosen, h.passage]
        n = count(context_text(trial))
        if n > budget:
            left_out += 1
            continue
        chosen, used = trial, n
    chosen.sort(key=lambda p: (p.document_id, p.seq))  # read in document order, numbered that way
    return Packed(chosen, "retrieved", used, budget, len(hits), left_out)


def _norm(s: str) -> str:
    return " ".join(WORD.findall(s.lower()))


@dataclass(frozen=True)
class Citation:
    n: int
    passage: StoredPassage
    supported: bool  # the answer's words are in the passage (an extractive answer's span)

    def to_json(self) -> dict[str, Any]:
        p = self.passage
        return {
            "n": self.n,
            "document": p.document,
            "page": p.page,
            "heading": list(p.heading) if p.heading else None,
            "start": p.start,
            "end": p.end,
            "text": p.text,
            "supported": self.supported,
        }


def cite(answer: str, passages: Sequence[StoredPassage]) -> list[Citation]:
    """The passages an answer came from: those that contain it (normalised). If none does (a paraphrase),
    the passage sharing most of the answer's words, marked unsupported: the caller says so."""
    a = _norm(answer)
    if not a or not passages:
        return []
    found = [Citation(n, p, True) for n, p in enumerate(passages, 1) if f" {a} " in f" {_norm(p.text)} "]
    if found:
        return found
    words = set(a.split())
    best = max(range(len(passages)), key=lambda i: (len(words & set(_norm(passages[i].text).split())), -i))
    if not words & set(_norm(passages[best].text).split()):
        return []
    return [Citation(best + 1, passages[best], False)]
