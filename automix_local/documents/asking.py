"""Asking the library: the documents a question covers, retrieved and packed for the cascade's window.

Shared by `ask --doc/--all` and the app, so both put exactly the same passages before the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .library import Document, Library, LibraryError
from .retrieval import Packed, context_text, pack, search

# "Not in your documents" when the question's best passage is less similar than this (cosine, nomic-embed-
# text-v1.5): fitted to keep 99 % of on-topic questions on the SQuAD library and scored on the fairy-tale
# library it never saw, where it kept 100 % of on-topic questions and turned away 89 % of off-topic ones
# (docs/results/not_found.md, bench/not_found.py). The floor belongs to that model (keyed by its sha256):
# another embedding model has none until it is measured. Without vectors: no BM25 match.
NOT_FOUND_COSINE = {"f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb": 0.611}


@dataclass
class Retrieved:
    documents: list[Document]
    packed: Packed
    paths: dict[int, str]  # document id → file path (for the privacy policy's private rules)
    dense: bool = False  # vectors took part in the ranking
    best_cosine: float | None = None  # the most similar passage's similarity to the question
    model: str | None = None  # the vectors' model key

    @property
    def not_found(self) -> bool:
        """Nothing relevant was retrieved: no model is asked. With vectors, the best passage must be similar
        enough (``NOT_FOUND_COSINE``); without, BM25 must match."""
        floor = NOT_FOUND_COSINE.get(self.model or "")
        if floor is not None and self.best_cosine is not None and self.best_cosine < floor:
            return True
        return not self.packed.passages

    @property
    def context(self) -> str:
        return context_text(self.packed.passages)

    @property
    def sources(self) -> list[tuple[str | None, str]]:
        return [(self.paths.get(p.document_id), p.text) for p in self.packed.passages]

    def names(self, limit: int = 5) -> str:
        shown = ", ".join(d.name for d in self.documents[:limit])
        return shown + (" …" if len(self.documents) > limit else "")


class QueryStore(Protocol):
    """What ``retrieve`` needs of the embedder to keep question vectors in the library (``LlamaEmbedder``)."""

    def known_query(self, text: str) -> np.ndarray | None: ...

    def query_digest(self, text: str) -> str: ...

    def remember_query(self, text: str, vec: np.ndarray) -> None: ...


def query_vector(
    lib: Library, question: str, embed_query: Callable[[str], np.ndarray], store: QueryStore | None
) -> np.ndarray:
    """The question's vector: from the embedder's memory, else from the library's store of asked questions
    (then kept in memory too), else from ``embed_query``, then stored."""
    if store is None:
        return embed_query(question)
    known = store.known_query(question)
    if known is not None:
        return known
    digest = store.query_digest(question)
    blob = lib.query_vector(digest)
    if blob is not None:
        vec = np.frombuffer(blob, dtype=np.float32).copy()
        store.remember_query(question, vec)
        return vec
    vec = embed_query(question)
    lib.store_query_vector(digest, np.asarray(vec, dtype=np.float32).tobytes())
    return vec


def retrieve(
    library: Path,
    names: Sequence[str] | None,
    question: str,
    budget: Callable[[str], tuple[int, Callable[[str], int]]],
    k: int = 30,
    embed_query: Callable[[str], np.ndarray] | None = None,
    model: str | None = None,
    cap: int = 0,
    query_store: QueryStore | None = None,
) -> Retrieved:
    """``names`` None or empty: the whole library. ``budget(question)`` → (tokens for the document, counter)
    (``Cascade.document_budget``). With ``embed_query`` and ``model`` (the vectors' key), passages that have
    vectors also rank by cosine similarity, fused with BM25. Documents that fit ``budget`` whole go in whole;
    retrieved passages take at most ``cap`` tokens when it is set. With ``query_store`` (the embedder), a question
    asked before takes its vector from the library's store instead of the model (no model load, no decode).
    Raises ``LibraryError`` with one line."""
    with Library(library) as lib:
        docs = [lib.find(n) for n in names] if names else lib.documents()
        if not docs:
            raise LibraryError("the document library is empty: automix-local docs add PATH…  (files, folders, globs)")
        tokens, count = budget(question)
        vector = None
        if embed_query is not None and model and any(d.embedded for d in docs):
            vector = query_vector(lib, question, embed_query, query_store)
        hits = search(lib, question, docs, k=k, query_vector=vector, model=model)
        packed = pack(lib, docs, hits, tokens, count, cap)
    cosines = [h.cosine for h in hits if h.cosine is not None]
    best = max(cosines) if cosines else None
    return Retrieved(
        docs, packed, {d.id: d.path for d in docs}, dense=vector is not None, best_cosine=best, model=model
    )
