"""Dense vectors for the library's passages: filled in after indexing, used by retrieval when present.

Asking never waits for them: BM25 works the moment a file is indexed, and ``fill`` adds vectors batch
by batch, each batch in a transaction of its own, so an interrupted fill keeps what it did and the next
one continues. Vectors are keyed by the embedding model (its sha256, else its file name): changing the
model fills the library again rather than mixing two vector spaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .library import Library

if TYPE_CHECKING:
    from ..backends.embed import LlamaEmbedder
    from ..config import Config, EmbeddingConfig

BATCH = 32


def model_key(cfg: EmbeddingConfig) -> str:
    from ..config import source_filename

    return cfg.sha256 or source_filename(cfg.source)


def open_embedder(config: Config) -> LlamaEmbedder | None:
    """The configured embedding model when its file is present and verified, else None (BM25 alone)."""
    if config.embedding is None:
        return None
    from ..backends.embed import LlamaEmbedder
    from ..sources import ModelError, ensure_verified

    try:
        path = ensure_verified(config.embedding, config.paths, config.source_file)
    except ModelError:
        return None
    return LlamaEmbedder(config.embedding, path)


def state_line(lib: Library, config: Config) -> str:
    """The library's vectors in a few words, without loading or hashing the model: "vectors 42/42",
    or why retrieval is BM25 alone (no model configured, or not downloaded: the command that fixes it)."""
    if config.embedding is None:
        return "no [embedding] model configured: BM25 only"
    from ..sources import local_path

    path = local_path(config.embedding, config.paths)
    if path is None or not path.is_file():
        return "embedding model not downloaded: BM25 only (automix-local models pull embedding)"
    done, total = counts(lib, model_key(config.embedding))
    return f"vectors {done}/{total}"


def counts(lib: Library, key: str) -> tuple[int, int]:
    """(passages with a vector of this model, passages)."""
    total = lib.db.execute("SELECT count(*) FROM passages").fetchone()[0]
    done = lib.db.execute("SELECT count(*) FROM embeddings WHERE model = ?", (key,)).fetchone()[0]
    return int(done), int(total)


def fill(lib: Library, embedder: LlamaEmbedder, key: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Embed every passage that has no vector of this model yet; returns how many were embedded."""
    done, total = counts(lib, key)
    added = 0
    while True:
        batch = lib.missing_embeddings(key, limit=BATCH)
        if not batch:
            return added
        vectors = embedder.embed_documents([p.text for p in batch])
        dim = int(vectors.shape[1])
        lib.store_embeddings(
            key, [(p.id, np.asarray(v, dtype=np.float32).tobytes(), dim) for p, v in zip(batch, vectors, strict=True)]
        )
        added += len(batch)
        if progress is not None:
            progress(done + added, total)
