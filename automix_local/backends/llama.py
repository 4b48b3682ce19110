"""The local tier: a GGUF model run by llama-cpp-python.

* Lazy: the model loads on first use (``load()`` to do it eagerly, e.g. in a worker thread).
* Quiet without touching the terminal: llama.cpp's log lines go to Python logging (debug), and the
  model is constructed with ``verbose=True`` so llama-cpp-python does not redirect the process's
  file descriptors 1 and 2 to /dev/null while it loads (see ``_construct``).
* One lock per model: a ``Llama`` is not thread-safe, so a stream holds the lock until it ends.
* Prefix reuse: ``Llama.generate`` keeps the longest common token prefix in the KV cache; the
  scoring path does the same, so prompts that share a prefix pay only for their new tokens.
* Next-token log-probabilities come from the last position's logits, without ``logits_all``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import math
import os
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TierConfig
from .base import Abilities, BackendError, Generation, Sampled, Scored

# llama.cpp's OpenMP threads busy-wait between calls and starve a second model in the same process;
# the variable must be set before the OpenMP runtime starts (see automix_local/__init__.py too).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


log = logging.getLogger("automix_local.llama_cpp")

# Why not ``Llama(verbose=False)``: llama-cpp-python then wraps the model load in
# ``suppress_stdout_stderr``, which dup2()s /dev/null onto file descriptors 1 and 2 of the whole
# process for the seconds the load takes. The terminal app draws on stderr from its own thread, so
# every frame drawn meanwhile was lost, and the screen stayed stale (an answer computed while the
# large tier loaded never appeared until a key press repainted it: issue 11). So the model is built
# with ``verbose=True`` (no redirection), llama.cpp's own log lines are routed to Python logging by
# our callback, and llama-cpp-python's few ``print(..., file=sys.stderr)`` calls during construction
# are captured at the Python level only (``sys.stderr``, never the file descriptor).
_CONSTRUCT_LOCK = threading.Lock()  # the sys.stdout/sys.stderr swap is process-wide: one load at a time
_errors: collections.deque[str] = collections.deque(maxlen=8)  # llama.cpp's last error lines, for messages
_callback: Any = None  # the ctypes callback must outlive every call llama.cpp makes to it


def _route_llama_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's log lines (model loading, warnings, errors) to Python logging, not to the terminal."""
    global _callback
    if _callback is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: Any) -> None:
        line = text.decode("utf-8", errors="replace").rstrip()
        if line:
            log.debug("%s", line)
            if level == 3:  # GGML_LOG_LEVEL_ERROR
                _errors.append(line)

    _callback = callback
    llama_cpp.llama_log_set(callback, None)


def load_llama(
    who: str, model_path: Path, n_threads: int | None, parallel: int = 1, **kwargs: Any
) -> tuple[Any, float]:
    """A ``llama_cpp.Llama`` for ``model_path`` built quietly (see ``_construct``), all cores unless
    ``n_threads``, and the seconds it took; a load failure is a ``BackendError`` naming ``who`` and the
    file, with llama.cpp's own last message."""
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - a dependency
        raise BackendError(f"llama-cpp-python is not installed ({exc}); run `make install` (see README)") from None
    threads = n_threads or os.cpu_count() or 1
    t0 = time.perf_counter()
    _errors.clear()
    try:
        with _CONSTRUCT_LOCK, _parallel_sequences(parallel):
            llm = _construct(
                llama_cpp, model_path=str(model_path), n_threads=threads, n_threads_batch=threads, **kwargs
            )
    except (ValueError, RuntimeError, OSError) as exc:
        why = f" ({_errors[-1]})" if _errors else ""
        raise BackendError(f"{who}: llama.cpp could not load {model_path}: {exc}{why}".replace("\n", " ")) from None
    return llm, time.perf_counter() - t0


def _construct(llama_cpp: Any, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)`` without writing to, or redirecting, the terminal."""
    _route_llama_logs(llama_cpp)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        llm = llama_cpp.Llama(**kwargs, verbose=True)
    llm.verbose = False  # later calls (generate, embed) print nothing either
    if printed.getvalue().strip():
        log.debug("llama-cpp-python while loading:\n%s", printed.getvalue().rstrip())
    return llm


def _logsumexp(x: np.ndarray) -> float:
    m = float(x.max())
    return m + float(np.log(np.exp(x - m).sum()))


def _spread(logits: np.ndarray, lse: float) -> tuple[float, float]:
    """The entropy (nats) of softmax(logits) and the log-probability margin of its top two tokens (~1 ms for a
    150k vocabulary, against ~50 ms for the decode step that made the logits)."""
    z = logits.astype(np.float64) - lse
    entropy = float(-(np.exp(z) * z).sum())
    top2 = np.partition(logits, -2)[-2:]
    return max(0.0, entropy), float(abs(top2[1] - top2[0]))


@contextlib.contextmanager
def _parallel_sequences(n: int) -> Iterator[None]:
    """While a ``Llama`` is built inside: its context holds up to ``n`` sequences in one unified KV cache.

    llama-cpp-python's ``Llama`` takes no ``n_seq_max`` (it raises it only for embedding models), so the
    defaults it starts from are raised for the construction, under ``_CONSTRUCT_LOCK``. A unified cache
    lets the k samples share the prompt's cells (``llama_memory_seq_cp`` copies no tensor data) and keeps
    the whole window for sequence 0: one sequence decodes exactly as in a context built for one.
    """
    if n <= 1:
        yield
        return
    import llama_cpp.llama_cpp as low

    original = low.llama_context_default_params

    def raised() -> Any:
        params = original()
        params.n_seq_max = n
        params.kv_unified = True
        return params

    low.llama_context_default_params = raised
    try:
        yield
    finally:
        low.llama_context_default_params = original


class LlamaBackend:
    # sample_batch needs a backend built with ``parallel >= k`` (the default factory does so when
    # ``[cascade] agreement_samples`` = k > 0)
    abilities = Abilities(
        loads=True,
        warm_prefix=True,
        hidden_state=True,
        batched_sampling=True,
        token_distribution=True,
        token_logprobs=True,
    )

    def __init__(self, tier: TierConfig, model_path: Path, parallel: int = 1) -> None:
        self.tier = tier
        self.parallel = parallel  # sequences one decode may carry (sample_batch's k); 1: answers only
        self.name = tier.name
        self.model_path = model_path
        self.n_ctx = tier.n_ctx
        self.lock = threading.Lock()
        self._llm: Any = None
        self._template: Any = None
        self._chat: bool | None = None
        self.load_seconds: float | None = None
        self._batch_valid = 0  # leading cached tokens whose KV entries were computed in a batch

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
            f"tier '{self.name}'",
            self.model_path,
            self.tier.n_threads,
            self.parallel,
            n_ctx=self.tier.n_ctx,
            n_batch=min(self.tier.n_batch, self.tier.n_ctx),
            n_gpu_layers=self.tier.n_gpu_layers,
            seed=self.tier.seed,
            logits_all=False,
        )
        self._llm = llm
        self._setup_template(llm)
        return llm

    def _setup_template(self, llm: Any) -> None:
        fmt = self.tier.chat_format
        if fmt == "raw":
            self._chat = False
            return
        from llama_cpp import llama_chat_format

        template = llm.metadata.get("tokenizer.chat_template") if fmt == "auto" else None
        if template:
            eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() >= 0 else ""
            bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
            self._template = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True
            )
            self._chat = True
            return
        if fmt == "auto":
            self._chat = False  # no template in the GGUF: plain completion
            return
        name = "chatml" if fmt == "chatml" else fmt
        formatter = getattr(llama_chat_format, f"format_{name.replace('-', '_')}", None)
        if formatter is None:
            raise BackendError(
                f'tier \'{self.name}\': unknown chat_format {fmt!r}; use "auto", "raw", "chatml" '
                'or a llama-cpp-python format name such as "llama-2"'
            )
        self._template = formatter
        self._chat = True

    def close(self) -> None:
        with self.lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
                self._batch_valid = 0

    # ------------------------------------------------------------------ prompts
    @property
    def uses_chat_template(self) -> bool:
        if self._chat is None:
            self.load()
        return bool(self._chat)

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        if self._chat is None:
            self.load()
        if not self._chat:
            return "\n\n".join(m["content"] for m in messages)
        return self._template(messages=list(messages)).prompt

    def _tokenize(self, llm: Any, text: str) -> list[int]:
        bos_text = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
        add_bos = llm._model.add_bos_token() and not (bos_text and text.startswith(bos_text))
        return llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        with self.lock:
            llm = self._ensure_loaded()
            return len(self._tokenize(llm, text))

    def _check_fits(self, n_prompt: int, max_tokens: int) -> None:
        if n_prompt + max_tokens > self.n_ctx:
            raise BackendError(
                f"tier '{self.name}': the prompt is {n_prompt} tokens and needs {max_tokens} more for the answer, "
                f"but n_ctx is {self.n_ctx}; shorten the context or raise n_ctx in models.toml"
            )

    def _last_logits(self, llm: Any) -> np.ndarray:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))

    def _prefill(self, llm: Any, tokens: list[int]) -> int:
        """Make the KV cache hold ``tokens`` and the live logits be the last token's.

        The longest common prefix with what is cached is kept, the rest of the prompt but its last
        token is evaluated in batches, and the last token is always evaluated alone. llama.cpp
        computes a position differently in a single-token decode than inside a batch (logits
        differ by up to ~0.5 here), while batched KV entries do not depend on how a prompt was
        split into batches. So only batch-computed cache entries are reused (not a prompt's last
        token, nor generated tokens), and the last token is decoded alone: a prompt's logits are
        then bit-identical whether its prefix came from the cache or not. Returns how many tokens
        were evaluated.
        """
        limit = min(llm.n_tokens, len(tokens) - 1, self._batch_valid)
        prefix = 0
        if limit > 0:
            same = np.asarray(llm.input_ids[:limit]) == np.asarray(tokens[:limit])
            prefix = limit if same.all() else int(np.argmin(same))
        llm.n_tokens = prefix  # eval() drops the KV cache beyond n_tokens
        if prefix < len(tokens) - 1:
            llm.eval(tokens[prefix:-1])
        llm.eval(tokens[-1:])
        self._batch_valid = len(tokens) - 1
        return len(tokens) - prefix

    # ------------------------------------------------------------------ static prefix on disk
    def _identity(self) -> str:
        import llama_cpp

        if self.tier.sha256:
            model = self.tier.sha256
        else:
            st = self.model_path.stat()
            model = f"{self.model_path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
        return f"{model}|llama-cpp-python {llama_cpp.__version__}|n_ctx {self.n_ctx}|n_batch {self.tier.n_batch}"

    def warm_prefix(self, text: str, cache_dir: Path | None = None) -> str:
        """Have the KV cache hold a static prompt prefix: from memory, from disk, or computed once.

        With ``cache_dir`` the evaluated state is saved, keyed by the model's sha256, the llama.cpp
        build and the prefix text, so the next start skips it; a changed prompt or model gets a new
        key. Returns "memory", "disk" or "computed".
        """
        import hashlib

        import llama_cpp

        with self.lock:
            llm = self._ensure_loaded()
            tokens = self._tokenize(llm, text)
            if len(tokens) < 2:
                return "memory"
            n = len(tokens) - 1  # the batch-computed part (a prompt's last token is always decoded again)
            if self._batch_valid >= n and list(llm.input_ids[:n]) == tokens[:n]:
                return "memory"
            path = None
            if cache_dir is not None:
                key = hashlib.sha256(f"{self._identity()}\n{text}".encode()).hexdigest()[:40]
                path = cache_dir / f"{key}.kvstate"
                if self._load_state(llm, path, tokens[:n]):
                    return "disk"
            self._prefill(llm, tokens)
            if path is not None:
                self._save_state(llm, path, n, llama_cpp)
            return "computed"

    def _save_state(self, llm: Any, path: Path, n: int, llama_cpp: Any) -> None:
        import ctypes
        import json
        import os

        llm.n_tokens = n  # drop the last token: only batch-computed entries are saved
        llm._ctx.kv_cache_seq_rm(-1, n, -1)
        size = llama_cpp.llama_state_get_size(llm.ctx)
        buf = (ctypes.c_uint8 * size)()
        used = llama_cpp.llama_state_get_data(llm.ctx, buf, size)
        header = json.dumps({"n_tokens": n, "tokens": [int(t) for t in llm.input_ids[:n]]}).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(b"AUTOMIX-KV1\n" + len(header).to_bytes(8, "little") + header)
            f.write(bytes(buf)[:used])
        os.replace(tmp, path)
        self._batch_valid = n

    def _load_state(self, llm: Any, path: Path, expect: list[int]) -> bool:
        import ctypes
        import json

        import llama_cpp

        try:
            raw = path.read_bytes()
            magic = b"AUTOMIX-KV1\n"
            if not raw.startswith(magic):
                return False
            hlen = int.from_bytes(raw[len(magic) : len(magic) + 8], "little")
            header = json.loads(raw[len(magic) + 8 : len(magic) + 8 + hlen])
            if header["tokens"] != expect:
                return False
            data = raw[len(magic) + 8 + hlen :]
            buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            ok = llama_cpp.llama_state_set_data(llm.ctx, buf, len(data)) == len(data)
        except (OSError, ValueError, KeyError):
            return False
        if not ok:  # a stale or foreign file: forget whatever the cache holds now
            llm.n_tokens = 0
            self._batch_valid = 0
            return False
        n = header["n_tokens"]
        llm.input_ids[:n] = header["tokens"]
        llm.n_tokens = n
        self._batch_valid = n
        return True

    # ------------------------------------------------------------------ generation
    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        watch_first: Sequence[str] = (),
        abstain_at: float | None = None,
        hidden: bool = False,
    ) -> Generator[str, None, Generation]:
        """Yield text deltas; return the Generation. Greedy at temperature 0, else seeded sampling.

        ``watch_first``: strings whose first token's log-probability at the first generated position
        is returned in ``Generation.first_logprobs`` (e.g. the chance the model starts to abstain).
        ``abstain_at``: when the watched strings' first tokens together are at least this likely at the
        first position, the answer is ``watch_first[0]`` at once (finish reason "abstain"): nothing else
        is decoded, and no other text is shown first.
        ``hidden``: also return the final hidden state at the last decoded position (``Generation.hidden``):
        llama.cpp outputs it beside the logits of the same decode, so it costs no extra pass.
        """
        import llama_cpp

        with self.lock:
            llm = self._ensure_loaded()
            tokens = self._tokenize(llm, prompt)
            self._check_fits(len(tokens), max_tokens)
            stops = [s for s in (*stop, *self.tier.stop) if s]
            rng = np.random.default_rng(self.tier.seed if seed is None else seed) if temperature > 0 else None
            if hidden:
                llama_cpp.llama_set_embeddings(llm._ctx.ctx, True)
            try:
                loop = self._generate(llm, tokens, max_tokens, stops, rng, temperature, watch_first, abstain_at)
                generation = yield from loop
                if hidden and generation.finish_reason != "abstain":
                    ptr = llama_cpp.llama_get_embeddings_ith(llm._ctx.ctx, -1)
                    if ptr:
                        n = int(llama_cpp.llama_model_n_embd(llm._model.model))
                        generation.hidden = np.ctypeslib.as_array(ptr, shape=(n,)).astype(float).tolist()
                return generation
            finally:
                if hidden:
                    llama_cpp.llama_set_embeddings(llm._ctx.ctx, False)

    def _generate(
        self,
        llm: Any,
        tokens: list[int],
        max_tokens: int,
        stops: list[str],
        rng: np.random.Generator | None,
        temperature: float,
        watch_first: Sequence[str],
        abstain_at: float | None,
    ) -> Generator[str, None, Generation]:
        """The decode loop of ``stream`` (the caller holds the lock)."""
        import llama_cpp

        holdback = max((len(s) for s in stops), default=1) - 1
        vocab = llm._model.vocab
        t0 = time.perf_counter()
        evaluated = self._prefill(llm, tokens)
        t_first = time.perf_counter()
        out: list[int] = []
        logprobs: list[float] = []
        entropies: list[float] = []
        margins: list[float] = []
        raw = b""
        text = ""
        emitted = 0
        finish = "length"
        stopped_by = None
        first: dict[str, float] = {}
        while True:
            logits = self._last_logits(llm)
            lse = _logsumexp(logits)
            if not out and watch_first:
                heads: set[int] = set()
                for w in watch_first:
                    wt = llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)
                    first[w] = float(logits[wt[0]]) - lse if wt else float("-inf")
                    heads.update(wt[:1])
                p_abstain = sum(math.exp(float(logits[t]) - lse) for t in heads)
                if abstain_at is not None and p_abstain >= abstain_at:
                    text = watch_first[0]
                    logprobs.append(math.log(p_abstain))
                    finish = "abstain"
                    break
            if rng is None:
                tok = int(np.argmax(logits))
            else:
                z = logits.astype(np.float64) / temperature
                gumbel = -np.log(-np.log(rng.random(z.shape[0])))
                tok = int(np.argmax(z + gumbel))  # a draw from softmax(logits / T)
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                finish = "eos"
                break
            logprobs.append(float(logits[tok]) - lse)
            entropy, margin = _spread(logits, lse)
            entropies.append(entropy)
            margins.append(margin)
            out.append(tok)
            raw += llm.detokenize([tok], prev_tokens=tokens + out[:-1])
            text = raw.decode("utf-8", errors="ignore")
            hits = [(text.find(s), s) for s in stops if s in text]
            if hits:
                cut, stopped_by = min(hits)
                text = text[:cut]
                finish = "stop"
                break
            safe = len(text) - holdback if stops else len(text)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
            if len(out) >= max_tokens or llm.n_tokens >= self.n_ctx:
                break
            llm.eval([tok])
        if len(text) > emitted:
            yield text[emitted:]
        t_end = time.perf_counter()
        return Generation(
            text=text,
            tokens_in=len(tokens),
            tokens_out=len(out),
            tokens_evaluated=evaluated,
            prompt_seconds=t_first - t0,
            gen_seconds=t_end - t_first,
            finish_reason=finish,
            token_logprobs=logprobs,
            stopped_by=stopped_by,
            first_logprobs=first,
            token_entropies=entropies,
            token_margins=margins,
        )

    def score(self, prompt: str, continuations: Sequence[str]) -> Scored:
        """log P(continuation | prompt) for each continuation, from last-position logits only."""
        with self.lock:
            llm = self._ensure_loaded()
            t0 = time.perf_counter()
            tokens = self._tokenize(llm, prompt)
            self._check_fits(len(tokens), 8)
            evaluated = self._prefill(llm, tokens)
            base_logits = self._last_logits(llm).copy()
            base_lse = _logsumexp(base_logits)
            base_n = llm.n_tokens
            result: dict[str, float] = {}
            for cont in continuations:
                ctoks = llm.tokenize(cont.encode("utf-8"), add_bos=False, special=False)
                total = float(base_logits[ctoks[0]]) - base_lse
                for k in range(1, len(ctoks)):
                    llm.n_tokens = base_n + k - 1
                    llm.eval([ctoks[k - 1]])
                    evaluated += 1
                    logits = self._last_logits(llm)
                    total += float(logits[ctoks[k]]) - _logsumexp(logits)
                result[cont] = total
            llm.n_tokens = base_n  # later calls reuse the prompt; the extra tokens are dropped
            return Scored(result, len(tokens), evaluated, time.perf_counter() - t0)

    def sample_batch(
        self,
        prompt: str,
        k: int,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> Sampled:
        """``k`` answers drawn at ``temperature`` in one batch: the prompt is evaluated once (or reused from
        the cache), its KV cells are shared by ``k`` sequences, and every step decodes one token of each
        live sequence in a single ``llama_decode``. The cache is left holding the prompt alone, as after
        ``stream``. Needs a backend built with ``parallel >= k``."""
        import llama_cpp

        if not 1 <= k <= self.parallel:
            raise ValueError(f"sample_batch: k={k}, but the context holds {self.parallel} sequences")
        with self.lock:
            llm = self._ensure_loaded()
            t0 = time.perf_counter()
            tokens = self._tokenize(llm, prompt)
            self._check_fits(len(tokens), max_tokens)
            stops = [s for s in (*stop, *self.tier.stop) if s]
            evaluated = self._prefill(llm, tokens)
            n0 = llm.n_tokens
            vocab = llm._model.vocab
            rng = np.random.default_rng(self.tier.seed if seed is None else seed)

            def draw(logits: np.ndarray) -> int:
                z = logits.astype(np.float64) / max(temperature, 1e-6)
                return int(np.argmax(z - np.log(-np.log(rng.random(z.shape[0])))))

            first = self._last_logits(llm).copy()
            out: list[list[int]] = [[] for _ in range(k)]
            texts = [""] * k
            live = list(range(k))
            nxt = {j: draw(first) for j in live}
            mem = llama_cpp.llama_get_memory(llm.ctx)
            for j in range(1, k):
                llama_cpp.llama_memory_seq_cp(mem, 0, j, -1, -1)
            batch = llama_cpp.llama_batch_init(k, 0, 1)
            try:
                step = 0
                while True:
                    for j in list(live):
                        tok = nxt[j]
                        done = bool(llama_cpp.llama_vocab_is_eog(vocab, tok))
                        if not done:
                            out[j].append(tok)
                            texts[j] = llm.detokenize(out[j], prev_tokens=tokens).decode("utf-8", errors="ignore")
                            hits = [texts[j].find(s) for s in stops if s in texts[j]]
                            if hits:
                                texts[j], done = texts[j][: min(hits)], True
                        if done or len(out[j]) >= max_tokens or n0 + step + 1 >= self.n_ctx:
                            live.remove(j)
                    if not live:
                        break
                    batch.n_tokens = len(live)
                    for i, j in enumerate(live):
                        batch.token[i] = out[j][-1]
                        batch.pos[i] = n0 + step
                        batch.n_seq_id[i] = 1
                        batch.seq_id[i][0] = j
                        batch.logits[i] = True
                    if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                        raise BackendError(f"tier '{self.name}': llama.cpp could not decode {len(live)} samples")
                    evaluated += len(live)
                    for i, j in enumerate(live):
                        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, i)
                        nxt[j] = draw(np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)))
                    step += 1
            finally:
                llama_cpp.llama_batch_free(batch)
                for j in range(1, k):
                    llama_cpp.llama_memory_seq_rm(mem, j, -1, -1)
                llama_cpp.llama_memory_seq_rm(mem, 0, n0, -1)
            return Sampled(texts, len(tokens), evaluated, time.perf_counter() - t0)
