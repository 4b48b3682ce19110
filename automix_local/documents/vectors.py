"""Dense vectors for the library's passages: filled in after indexing, used by retrieval when present.

Asking never waits for them: BM25 works the moment a file is indexed, and ``fill`` adds vectors batch
by batch, each batch in a transaction of its own, so an interrupted fill keeps what it did and the next
one continues. Vectors are keyed by the embedding model (its sha256, else its file name): changing the
model fills the library again rather than mixing two vector spaces.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
    """The configured embedding model when its file is present and verified, else None (BM25 alone).
    ``open_embedder_checked`` also says why a model that is there cannot be used."""
    return open_embedder_checked(config)[0]


def open_embedder_checked(config: Config) -> tuple[LlamaEmbedder | None, str | None]:
    """(the embedding model or None, a one-line warning or None), without loading the model.

    None and no warning when no model is configured or its file is not there (not downloaded yet): BM25
    alone, quietly, as ``state_line`` says. A file that is there but cannot be used (not a GGUF, or not the
    configured sha256: truncated, corrupt, another model) gives None and a warning naming the file and the
    command that fixes it, to show wherever asking falls back to BM25 alone (and so to no not-found floor).
    Checks the sha256 once per file version (cached by path, size and mtime, as ``models verify`` does)."""
    path, problem = _verified(config)
    if path is None or config.embedding is None:
        return None, problem
    from ..backends.embed import LlamaEmbedder

    return LlamaEmbedder(config.embedding, path), None


def embedding_warning(config: Config) -> str | None:
    """The warning of ``open_embedder_checked`` alone (no embedder made): None unless the configured model's
    file is there and cannot be used."""
    return _verified(config)[1]


def _present(config: Config) -> bool:
    from ..sources import local_path

    path = local_path(config.embedding, config.paths) if config.embedding is not None else None
    return path is not None and path.is_file()


def _verified(config: Config) -> tuple[Path | None, str | None]:
    """(the verified file, None); (None, why the file that is there cannot be used, in one line); or (None,
    None) when no model is configured or its file is not there."""
    if config.embedding is None or not _present(config):
        return None, None
    from ..sources import ModelError, ensure_verified

    try:
        return ensure_verified(config.embedding, config.paths, config.source_file), None
    except ModelError as exc:
        return None, f"vectors off, BM25 only: {exc}"


def state_line(lib: Library, config: Config) -> str:
    """The library's vectors in a few words, without loading the model: "vectors 42/42", or why retrieval
    is BM25 alone (no model configured; not downloaded; there but unusable: the file, and the command that
    fixes it). Checks the file's sha256 once per version of the file (then cached)."""
    if config.embedding is None:
        return "no [embedding] model configured: BM25 only"
    if not _present(config):
        return "embedding model not downloaded: BM25 only (automix-local models pull embedding)"
    problem = embedding_warning(config)
    if problem is not None:
        return problem
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
