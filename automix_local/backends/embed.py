"""The embedding model: passages and questions to unit vectors, by llama-cpp-python in embedding mode.

* Quiet without touching the terminal: built by ``llama._construct`` (``verbose=True``, llama.cpp's
  log lines to Python logging, no redirection of file descriptors 1 and 2; see the comment there).
* One lock: a ``Llama`` is not thread-safe, so every call holds ``self.lock``.
* One text per decode: llama.cpp computes a sequence slightly differently when other sequences share
  its batch, so each text is decoded alone and its vector never depends on its neighbours (a passage
  embedded again, in another batch, gets exactly the same vector). Packing passages into one decode
  (``pack_tokens``) was measured (issue 24 §4, docs/results/library_speed.md): its vectors stay within a
  cosine of 0.99999 of these, but on a CPU it saves no time for the library's ~190-token passages, so it
  is off. ``cfg.batch`` is the number of texts handled per lock hold, so a question's embedding waits for
  at most that many passages.
* Questions: the last ``QUERIES_KEPT`` questions' vectors are kept in memory, and ``query_digest`` names a
  question's vector for the library's store (``documents.asking.query_vector``): a question asked again
  costs no decode, in a new process no model load.
* Prefixes: nomic-embed-text was trained with ``search_document: `` before passages and
  ``search_query: `` before questions (``[embedding] document_prefix`` / ``query_prefix``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EmbeddingConfig
from .base import BackendError
from .llama import _errors, load_llama

# Passages packed into one decode up to this many tokens (0: one text per decode). Measured on 2 cores
# (docs/results/library_speed.md): packing saves no CPU time for ~190-token passages, whose decode alone
# already keeps the matrix kernels busy, and costs more above 512 tokens (the batch's attention spans every
# packed token); so one text per decode, which keeps each vector independent of its neighbours.
PACK_TOKENS = 0
QUERIES_KEPT = 1024  # questions whose vectors stay in memory (3 KB each at 768 dimensions)


class LlamaEmbedder:
    """Embeds texts with the ``[embedding]`` GGUF. Lazy: the model loads on first use (or ``load()``).

    A text longer than ``cfg.n_ctx`` tokens (prefix included) is **truncated**: its embedding is that
    of its longest prefix (by characters) that fits, and ``truncated`` counts how many texts were cut.
    Callers that must not lose text should split passages well below ``n_ctx`` tokens beforehand.
    """

    def __init__(self, cfg: EmbeddingConfig, path: Path) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.model_path = path
        self.lock = threading.Lock()
        self._llm: Any = None
        self._dim: int | None = None
        self.truncated = 0  # texts cut to fit n_ctx tokens
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # question → vector, least recent first
        self.query_hits = 0  # questions answered from _queries
        self.pack_tokens = PACK_TOKENS  # passages packed per decode up to this many tokens; 0: one per decode
        self.load_seconds: float | None = None

    # ------------------------------------------------------------------ loading
    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        with self.lock:
            self._ensure_loaded()

    def _ensure_loaded(self) -> Any:
        if self._llm is not None:
            return self._llm
        llm, self.load_seconds = load_llama(
            "embedding model",
            self.model_path,
            self.cfg.n_threads,
            embedding=True,
            n_ctx=self.cfg.n_ctx,
            n_batch=self.cfg.n_ctx,  # a whole text in one batch: the model attends both ways
            n_ubatch=self.cfg.n_ctx,
            n_gpu_layers=self.cfg.n_gpu_layers,
        )
        self._dim = int(llm.n_embd())
        self._llm = llm
        return llm

    @property
    def dim(self) -> int:
        """The vectors' dimension (loads the model if needed)."""
        if self._dim is None:
            self.load()
        assert self._dim is not None
        return self._dim

    # ------------------------------------------------------------------ embedding
    def embed_documents(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Unit vectors of passages (``document_prefix`` added): float32, shape (len(texts), dim).

        ``progress(done, total)`` is called after every ``cfg.batch`` texts.
        """
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        prefix = self.cfg.document_prefix
        out: list[np.ndarray] = []
        for start in range(0, len(texts), self.cfg.batch):
            chunk = texts[start : start + self.cfg.batch]
            with self.lock:
                if self.pack_tokens:
                    out.extend(self._embed_packed([prefix + text for text in chunk]))
                else:
                    out.extend(self._embed_one(prefix + text) for text in chunk)
            if progress:
                progress(start + len(chunk), len(texts))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(out)

    def embed_query(self, text: str) -> np.ndarray:
        """The unit vector of a question (``query_prefix`` added): float32, shape (dim,). The last
        ``QUERIES_KEPT`` questions' vectors are kept: a question asked again costs a dictionary lookup."""
        with self.lock:
            vec = self._known(text)
            if vec is None:
                vec = self._embed_one(self.cfg.query_prefix + text)
                self._queries[text] = vec
                while len(self._queries) > QUERIES_KEPT:
                    self._queries.popitem(last=False)
            return vec.copy()

    def known_query(self, text: str) -> np.ndarray | None:
        """The vector of a question embedded (or remembered) before in this process, else None: no model call."""
        with self.lock:
            vec = self._known(text)
            return None if vec is None else vec.copy()

    def _known(self, text: str) -> np.ndarray | None:
        vec = self._queries.get(text)
        if vec is not None:
            self._queries.move_to_end(text)
            self.query_hits += 1
        return vec

    def remember_query(self, text: str, vec: np.ndarray) -> None:
        """Keep a question's vector found elsewhere (the library's store of them), as ``embed_query`` would."""
        with self.lock:
            self._queries[text] = np.asarray(vec, dtype=np.float32).copy()
            while len(self._queries) > QUERIES_KEPT:
                self._queries.popitem(last=False)

    def query_digest(self, text: str) -> str:
        """What a question's vector is stored under: a SHA-256 of the model (its sha256, else its file), the query
        prefix and the question, so another model or prefix never finds it, and the question's text is not kept."""
        who = self.cfg.sha256 or self.model_path.name
        return hashlib.sha256(f"{who}\0{self.cfg.query_prefix}\0{text}".encode()).hexdigest()

    def _embed_packed(self, texts: list[str]) -> list[np.ndarray]:
        """Texts' unit vectors, as many texts per decode as fit ``pack_tokens`` (a longer text alone); the caller
        holds the lock. Each text is its own sequence: llama.cpp masks attention between them."""
        llm = self._ensure_loaded()
        fitted = [self._fit(llm, text) for text in texts]
        sizes = [len(llm.tokenize(t.encode("utf-8"), add_bos=True, special=False)) for t in fitted]
        groups: list[list[str]] = []
        used = 0
        for text, n in zip(fitted, sizes, strict=True):
            if not groups or used + n > self.pack_tokens:
                groups.append([])
                used = 0
            groups[-1].append(text)
            used += n
        out: list[np.ndarray] = []
        for group in groups:
            try:
                raws = llm.embed(group, normalize=False, truncate=False)
            except (ValueError, RuntimeError) as exc:
                why = f" ({_errors[-1]})" if _errors else ""
                raise BackendError(f"embedding model: llama.cpp failed to embed a text: {exc}{why}") from None
            out.extend(_unit(raw) for raw in raws)
        return out

    def _embed_one(self, text: str) -> np.ndarray:
        """One text's unit vector; the caller holds the lock."""
        llm = self._ensure_loaded()
        text = self._fit(llm, text)
        try:
            raw = llm.embed(text, normalize=False, truncate=False)
        except (ValueError, RuntimeError) as exc:
            why = f" ({_errors[-1]})" if _errors else ""
            raise BackendError(f"embedding model: llama.cpp failed to embed a text: {exc}{why}") from None
        return _unit(raw)

    def _fit(self, llm: Any, text: str) -> str:
        """``text``, or its longest character prefix that fits ``n_ctx`` tokens (counted in ``truncated``)."""
        limit = self.cfg.n_ctx
        n = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
        if n <= limit:
            return text
        self.truncated += 1
        while n > limit:
            text = text[: max(1, int(len(text) * limit / n * 0.98))]
            n = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
        return text

    def close(self) -> None:
        with self.lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None


def _unit(raw: Any) -> np.ndarray:
    """llama.cpp's embedding of one text as a float32 unit vector (a model without pooling returns one vector per
    token: they are averaged)."""
    vec = np.asarray(raw, dtype=np.float32)
    if vec.ndim != 1:
        vec = vec.mean(axis=0)
    norm = float(np.linalg.norm(vec))
    if not np.isfinite(norm) or norm == 0.0:
        raise BackendError("embedding model: llama.cpp returned a zero or non-finite vector")
    return vec / norm
