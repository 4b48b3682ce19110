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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    """(passage id, cosine similarity), best first; ``document_ids`` None: the whole library."""
    rows = list(lib.embeddings(model, document_ids))
    if not rows:
        return []
    ids = [pid for pid, _ in rows]
    # one buffer for all the vectors, read as one matrix (per-row arrays cost more than the product)
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), -1)
    sims = matrix @ query_vector.astype(np.float32)
    order = np.argsort(-sims, kind="stable")[:k]
    return [(ids[i], float(sims[i])) for i in order]


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
