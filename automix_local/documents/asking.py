"""Asking the library: the documents a question covers, retrieved and packed for the cascade's window.

Shared by `ask --doc/--all` and the app, so both put exactly the same passages before the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .library import Document, Library, LibraryError
from .retrieval import Packed, context_text, pack, search


@dataclass
class Retrieved:
    documents: list[Document]
    packed: Packed
    paths: dict[int, str]  # document id → file path (for the privacy policy's private rules)
    dense: bool = False  # vectors took part in the ranking

    @property
    def not_found(self) -> bool:
        """Nothing relevant was retrieved: no model is asked."""
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


def retrieve(
    library: Path,
    names: Sequence[str] | None,
    question: str,
    budget: Callable[[str], tuple[int, Callable[[str], int]]],
    k: int = 30,
    embed_query: Callable[[str], np.ndarray] | None = None,
    model: str | None = None,
) -> Retrieved:
    """``names`` None or empty: the whole library. ``budget(question)`` → (tokens for the document, counter)
    (``Cascade.document_budget``). With ``embed_query`` and ``model`` (the vectors' key), passages that have
    vectors also rank by cosine similarity, fused with BM25. Raises ``LibraryError`` with one line."""
    with Library(library) as lib:
        docs = [lib.find(n) for n in names] if names else lib.documents()
        if not docs:
            raise LibraryError("the document library is empty: automix-local docs add PATH…  (files, folders, globs)")
        tokens, count = budget(question)
        vector = None
        if embed_query is not None and model and any(d.embedded for d in docs):
            vector = embed_query(question)
        hits = search(lib, question, docs, k=k, query_vector=vector, model=model)
        packed = pack(lib, docs, hits, tokens, count)
    return Retrieved(docs, packed, {d.id: d.path for d in docs}, dense=vector is not None)
