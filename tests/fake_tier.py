"""A scripted local tier: the test says what each model answers, how sure it is and what its check says.

The cascade's logic (routing, escalation, egress, event order) and everything built on it (the server,
the app) can then be tested in milliseconds, without loading a model. What the real backend computes
(log-probabilities, the KV cache, the verifier's numbers) is tested against the real SmolLM2 model in
test_backend_llama.py, test_verification.py and a thin end-to-end layer (test_cascade.py).

Build a cascade on scripted tiers::

    from .fake_tier import Script, scripted_config, scripted_factory

    config = scripted_config(tmp_path, ["small", "large"], router="threshold", cascade={"threshold": 0.5})
    factory = scripted_factory(small=Script("Rollo", verdict=0.2), large=Script("Rollo the Walker"))
    cascade = Cascade(config, backend_factory=factory)
    trace = cascade.ask("…context…", "Who led the raiders?")   # small is unsure (0.2 < 0.5): large answers
    factory["small"].calls                                       # every prompt the small tier saw

Code that builds its own ``Cascade`` from a config (the server, the app) gets the scripted tiers with
``use_scripted(monkeypatch, factory)``. Remote tiers stay the real ``OpenAIBackend``: point them at
``tests/remote_server.py``'s ``RecordingServer`` (``scripted_config(..., remote=server.base_url)``).

What a scripted backend does, as the real one would:

* tokens are whitespace-separated words (``count_tokens``), and a prompt that does not fit
  ``n_ctx`` with ``max_tokens`` is a ``BackendError`` worded as the real backend's;
* an answer streams word by word (each with its leading space), cut at the stop strings (``"\\n"``) and at
  ``max_tokens``; each word has the log-probability the script gives (``logprobs``), so ``mean_logprob``,
  ``min_logprob`` and the other free signals come out as the test wants;
* ``p_abstain`` is the first token's probability of starting "unanswerable" (``first_logprobs``); at or
  above the tier's ``abstain_at`` the answer is "unanswerable" at once (finish reason "abstain");
* ``verdict`` is P(correct) as the verifier sees it: ``score()`` returns log-probabilities of " Correct" and
  " Incorrect" whose logprob-verifier confidence is exactly ``verdict``; the sampled verifier's samples
  say "Correct" with that probability (seeded, so a run repeats);
* ``token_delay`` / ``load_delay`` / ``hold`` slow a tier down for cancellation, loading and queue tests;
  ``fail`` makes every call raise.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automix_local import prompts
from automix_local.backends.base import Abilities, Backend, BackendError, Generation, Sampled, Scored
from automix_local.config import Config, TierConfig, load_config
from automix_local.paths import default_paths
from automix_local.verification import CORRECT, INCORRECT


@dataclass(frozen=True)
class Reply:
    """One scripted answer; fields left None take the tier's ``Script`` defaults."""

    text: str
    logprobs: float | Sequence[float] | None = None
    p_abstain: float | None = None
    verdict: float | None = None
    entropy: float | Sequence[float] | None = None
    margin: float | Sequence[float] | None = None


Answer = str | Reply


@dataclass
class Script:
    """What one scripted tier does.

    ``answers``: one answer for every question (a str or a :class:`Reply`); a sequence, the i-th answer this
    tier gives (the last one repeats); or a mapping from question to answer (the question asked last in the
    prompt is looked up; ``"*"`` is the default). ``verdict`` likewise: a float, a sequence by answer, or a
    mapping by question; a ``Reply``'s own verdict comes first.
    """

    answers: Answer | Sequence[Answer] | Mapping[str, Answer] = "Rollo"
    verdict: float | Sequence[float] | Mapping[str, float] = 0.9
    logprobs: float | Sequence[float] = -0.1  # per answer token: one value for all, or token by token
    p_abstain: float = 0.0
    entropy: float | Sequence[float] | None = None  # per token; None: no distribution (as a remote API)
    margin: float | Sequence[float] | None = None
    samples: Sequence[str] | None = None  # sample_batch's answers, cycled to k (None: no batched sampling)
    hidden: Sequence[float] | None = None  # Generation.hidden when asked for (None: no hidden state)
    token_delay: float = 0.0  # seconds before each streamed word
    load_delay: float = 0.0  # seconds load() takes (once)
    hold: threading.Event | None = None  # a stream waits until this is set before its first word
    fail: BaseException | None = None  # raised by every stream / score call
    chat: bool = False  # uses_chat_template (render joins the messages as "<role>: content")
    warm: bool = True  # declares warm_prefix (the shared layout's static prefix)


class ScriptError(AssertionError):
    """The script has no answer for what the cascade asked (the test's setup, not the code under test)."""


@dataclass
class Call:
    kind: str  # "stream" | "score" | "sample" | "load" | "warm"
    prompt: str
    question: str | None = None  # the key of a mapping of answers this prompt matched


def _asked(prompt: str, keys: Sequence[str]) -> str | None:
    """Of ``keys``, the one written last in ``prompt`` (the current question comes after earlier turns)."""
    found = [(prompt.rfind(k), k) for k in keys if k != "*" and k in prompt]
    return max(found)[1] if found else None


def _per_token(value: float | Sequence[float] | None, n: int) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return [float(value)] * n
    seq = [float(v) for v in value]
    return [seq[min(i, len(seq) - 1)] for i in range(n)] if seq else [0.0] * n


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


class ScriptedBackend:
    """A local tier that answers as its :class:`Script` says; satisfies the ``Backend`` protocol."""

    def __init__(self, tier: TierConfig, script: Script | None = None) -> None:
        self.tier = tier
        self.script = script or Script()
        self.name = tier.name
        self.n_ctx = tier.n_ctx
        s = self.script
        self.abilities = Abilities(
            loads=True,
            warm_prefix=s.warm,
            hidden_state=s.hidden is not None,
            batched_sampling=s.samples is not None,
            token_distribution=s.entropy is not None,
        )
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.loaded = False
        self.load_seconds: float | None = None
        self.closed = 0  # close() calls
        self._answered = 0  # answers given (the index into sequences)
        self._last: Reply | None = None
        self._cached: list[str] = []  # the "KV cache": the words of the last prompt
        self._warm: set[str] = set()

    # ------------------------------------------------------------------ what the test reads
    @property
    def prompts(self) -> list[str]:
        return [c.prompt for c in self.calls if c.kind == "stream"]

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.calls)

    # ------------------------------------------------------------------ the Backend protocol
    @property
    def uses_chat_template(self) -> bool:
        return self.script.chat

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        if not self.script.chat:
            return "\n\n".join(m["content"] for m in messages)
        return "\n".join(f"<{m['role']}>: {m['content']}" for m in messages) + "\n<assistant>:"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def load(self) -> None:
        with self.lock:
            self._load()

    def _load(self) -> None:
        if self.loaded:
            return
        t0 = time.perf_counter()
        self.calls.append(Call("load", ""))
        if self.script.load_delay:
            time.sleep(self.script.load_delay)
        self.loaded = True
        self.load_seconds = time.perf_counter() - t0

    def warm_prefix(self, text: str, cache_dir: Path | None = None) -> str:
        with self.lock:
            self._load()
            self.calls.append(Call("warm", text))
            if text in self._warm:
                return "memory"
            self._warm.add(text)
            return "computed"

    def close(self) -> None:
        with self.lock:
            self.closed += 1
            self.loaded = False

    def _check_fits(self, n_prompt: int, max_tokens: int) -> None:
        if n_prompt + max_tokens > self.n_ctx:
            raise BackendError(
                f"tier '{self.name}': the prompt is {n_prompt} tokens and needs {max_tokens} more for the answer, "
                f"but n_ctx is {self.n_ctx}; shorten the context or raise n_ctx in models.toml"
            )

    def _evaluate(self, prompt: str) -> tuple[int, int]:
        """(prompt tokens, tokens evaluated): words shared with the last prompt count as cached."""
        words = prompt.split()
        same = 0
        for a, b in zip(self._cached, words[:-1], strict=False):
            if a != b:
                break
            same += 1
        self._cached = words
        return len(words), len(words) - same

    def _pick(self, table: Any, prompt: str, what: str) -> Any:
        """The entry of a scripted value for this call: itself, by answer index, or by question."""
        if isinstance(table, Mapping):
            key = _asked(prompt, list(table))
            if key is None:
                if "*" in table:
                    return table["*"]
                raise ScriptError(f"tier '{self.name}': no scripted {what} for a prompt ending {prompt[-120:]!r}")
            return table[key]
        if isinstance(table, str | Reply | int | float):
            return table
        seq = list(table)
        if not seq:
            raise ScriptError(f"tier '{self.name}': the scripted {what}s are empty")
        return seq[min(max(self._answered - 1, 0), len(seq) - 1)]

    def _verdict(self, prompt: str) -> float:
        if self._last is not None and self._last.verdict is not None:
            return self._last.verdict
        return float(self._pick(self.script.verdict, prompt, "verdict"))

    def _question(self, prompt: str) -> str | None:
        answers = self.script.answers
        return _asked(prompt, list(answers)) if isinstance(answers, Mapping) else None

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
        with self.lock:
            self._load()
            n_in, evaluated = self._evaluate(prompt)
            self._check_fits(n_in, max_tokens)
            self.calls.append(Call("stream", prompt, self._question(prompt)))
            if self.script.fail is not None:
                raise self.script.fail
            if self.script.hold is not None:
                self.script.hold.wait(60)
            t0 = time.perf_counter()
            if prompt.endswith(prompts.SHARED_VERDICT) or prompt.endswith("Evaluation:"):
                reply = Reply(self._sampled_verdict(prompt, seed), logprobs=-0.1)
            else:
                self._answered += 1
                picked = self._pick(self.script.answers, prompt, "answer")
                reply = picked if isinstance(picked, Reply) else Reply(str(picked))
                self._last = reply
            p_abstain = reply.p_abstain if reply.p_abstain is not None else self.script.p_abstain
            first: dict[str, float] = {}
            if watch_first:
                first = {w: -math.inf for w in watch_first} | {watch_first[0]: _log(p_abstain)}
                if abstain_at is not None and p_abstain >= abstain_at:
                    text = watch_first[0]
                    yield text
                    return self._generation(
                        text, n_in, 0, evaluated, t0, "abstain", [_log(max(p_abstain, 1e-300))], None, first, [], []
                    )
            generation = yield from self._words(reply, n_in, evaluated, t0, max_tokens, stop, first)
            if hidden and self.script.hidden is not None:
                generation.hidden = [float(v) for v in self.script.hidden]
            return generation

    def _sampled_verdict(self, prompt: str, seed: int | None) -> str:
        """One sampled verification: "Correct" with probability ``verdict`` (seeded)."""
        correct = random.Random(seed if seed is not None else self.tier.seed).random() < self._verdict(prompt)
        word = "Correct" if correct else "Incorrect"
        if prompt.endswith(prompts.SHARED_VERDICT):
            return f"{word}."
        return (
            f"The answer is checked against the context.\n\nVerification Decision: The AI generated answer is {word}."
        )

    def _words(
        self,
        reply: Reply,
        n_in: int,
        evaluated: int,
        t0: float,
        max_tokens: int,
        stop: Sequence[str],
        first: dict[str, float],
    ) -> Generator[str, None, Generation]:
        """The answer word by word, as ``LlamaBackend._generate`` streams it (stops held back, then cut)."""
        pieces = re.findall(r"\s*\S+", " " + reply.text.lstrip(" "))
        lps = _per_token(reply.logprobs if reply.logprobs is not None else self.script.logprobs, len(pieces)) or []
        ents = _per_token(reply.entropy if reply.entropy is not None else self.script.entropy, len(pieces))
        mars = _per_token(reply.margin if reply.margin is not None else self.script.margin, len(pieces))
        stops = [s for s in (*stop, *self.tier.stop) if s]
        holdback = max((len(s) for s in stops), default=1) - 1
        t_first = time.perf_counter()
        text, emitted, n_out, finish, stopped_by = "", 0, 0, "eos", None
        for piece in pieces:
            if self.script.token_delay:
                time.sleep(self.script.token_delay)
            n_out += 1
            text += piece
            hits = [(text.find(s), s) for s in stops if s in text]
            if hits:
                cut, stopped_by = min(hits)
                text, finish = text[:cut], "stop"
                break
            safe = len(text) - holdback if stops else len(text)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
            if n_out >= max_tokens:
                finish = "length"
                break
        if len(text) > emitted:
            yield text[emitted:]
        return self._generation(
            text,
            n_in,
            n_out,
            evaluated,
            t0,
            finish,
            lps[:n_out],
            stopped_by,
            first,
            ents[:n_out] if ents is not None else None,
            mars[:n_out] if mars is not None else None,
            t_first,
        )

    def _generation(
        self,
        text: str,
        n_in: int,
        n_out: int,
        evaluated: int,
        t0: float,
        finish: str,
        logprobs: list[float],
        stopped_by: str | None,
        first: dict[str, float],
        entropies: list[float] | None,
        margins: list[float] | None,
        t_first: float | None = None,
    ) -> Generation:
        t_end = time.perf_counter()
        t_first = t_end if t_first is None else t_first
        return Generation(
            text=text,
            tokens_in=n_in,
            tokens_out=n_out,
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
        """ " Correct" and " Incorrect" get log-probabilities whose share is ``verdict``; any other
        continuation log(1e-3)."""
        with self.lock:
            self._load()
            t0 = time.perf_counter()
            n_in, evaluated = self._evaluate(prompt)
            self._check_fits(n_in, 8)
            self.calls.append(Call("score", prompt))
            if self.script.fail is not None:
                raise self.script.fail
            p = self._verdict(prompt)
            known = {CORRECT: _log(p), INCORRECT: _log(1.0 - p)}
            logprobs = {c: known.get(c, math.log(1e-3)) for c in continuations}
            return Scored(logprobs, n_in, evaluated + len(continuations), time.perf_counter() - t0)

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
        assert self.script.samples is not None, "sample_batch on a tier that declares no batched sampling"
        with self.lock:
            self._load()
            t0 = time.perf_counter()
            n_in, evaluated = self._evaluate(prompt)
            self._check_fits(n_in, max_tokens)
            self.calls.append(Call("sample", prompt))
            texts = [self.script.samples[i % len(self.script.samples)] for i in range(k)]
            return Sampled([f" {t}" for t in texts], n_in, evaluated + k, time.perf_counter() - t0)


# --------------------------------------------------------------------------- the factory


class ScriptedFactory:
    """A ``BackendFactory``: scripted backends for local tiers, the real ``OpenAIBackend`` for remote ones.
    ``factory["small"]`` is the backend made for tier "small" (after the cascade asked for it)."""

    def __init__(self, scripts: Mapping[str, Script]) -> None:
        self.scripts = dict(scripts)
        self.made: dict[str, Backend] = {}

    def __call__(self, tier: TierConfig) -> Backend:
        backend: Backend
        if tier.is_remote:
            from automix_local.backends.openai import OpenAIBackend

            backend = OpenAIBackend(tier)
        else:
            backend = ScriptedBackend(tier, self.scripts.get(tier.name))
        self.made[tier.name] = backend
        return backend

    def __getitem__(self, name: str) -> ScriptedBackend:
        backend = self.made[name]
        assert isinstance(backend, ScriptedBackend)
        return backend

    def __contains__(self, name: str) -> bool:
        return name in self.made


def scripted_factory(scripts: Mapping[str, Script] | None = None, /, **by_tier: Script) -> ScriptedFactory:
    """The factory to pass as ``Cascade(config, backend_factory=...)``; tiers not named get ``Script()``."""
    return ScriptedFactory({**(scripts or {}), **by_tier})


def use_scripted(monkeypatch: pytest.MonkeyPatch, factory: ScriptedFactory) -> ScriptedFactory:
    """Make every ``Cascade`` built without a factory (the server's, the app's) use ``factory``."""
    monkeypatch.setattr("automix_local.cascade.default_backend_factory", lambda config: factory)
    return factory


# --------------------------------------------------------------------------- configs without model files


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _table(values: Mapping[str, object]) -> str:
    return "".join(f"{k} = {_toml(v)}\n" for k, v in values.items())


def model_file(directory: Path, name: str) -> Path:
    """A stand-in model file (GGUF magic bytes only): a tier's source must name a file, which the scripted
    factory never opens."""
    path = directory / "scripted-models" / f"{name}.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"GGUF" + bytes(28))
    return path


def local_tier(directory: Path, name: str, *, cost: float = 1.0, max_tokens: int = 24, **extra: object) -> str:
    """A ``[[tiers]]`` table for a scripted local tier (n_ctx 2048 unless given)."""
    values: dict[str, object] = {"name": name, "path": model_file(directory, name), "n_ctx": 2048}
    return "[[tiers]]\n" + _table(values | {"cost": cost, "max_tokens": max_tokens} | extra)


def remote_tier(
    name: str,
    base_url: str,
    *,
    model: str = "m",
    cost: float = 50.0,
    timeout: float = 5.0,
    retries: int = 0,
    **extra: object,
) -> str:
    """A ``[[tiers]]`` table for a real remote tier (``OpenAIBackend``), e.g. at a ``RecordingServer``."""
    values: dict[str, object] = {"name": name, "backend": "openai", "base_url": base_url, "model": model}
    return "[[tiers]]\n" + _table(values | {"cost": cost, "timeout": timeout, "retries": retries} | extra)


def scripted_config(
    directory: Path,
    tiers: Sequence[str] = ("small", "large"),
    *,
    remote: str | None = None,
    router: str = "threshold",
    cascade: Mapping[str, object] | None = None,
    policy: Mapping[str, object] | None = None,
    extra: str = "",
) -> Config:
    """A real models.toml (written under ``directory``) loaded as a ``Config``, for scripted tiers.

    ``tiers``: tier names (local, costs 1, 10, 100, … by position) or whole ``[[tiers]]`` tables from
    :func:`local_tier` / :func:`remote_tier`; ``remote``: a base URL adds a last tier "remote" there (cost
    50… as remote_tier). ``cascade`` / ``policy``: their tables' keys (``router`` goes into [cascade]);
    ``extra``: more TOML appended as is.
    """
    blocks = [
        t if t.lstrip().startswith("[[tiers]]") else local_tier(directory, t, cost=10.0**i) for i, t in enumerate(tiers)
    ]
    if remote is not None:
        blocks.append(remote_tier("remote", remote))
    text = "\n".join(blocks)
    text += "\n[cascade]\n" + _table({"router": router, **(cascade or {})})
    if policy:
        text += "\n[policy]\n" + _table(policy)
    text += extra
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(directory.glob("scripted-*.toml"))
    path = directory / f"scripted-{len(existing)}.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, default_paths())


def run_events(cascade: Any, context: str, question: str, **kw: Any) -> tuple[list[Any], Any]:
    """Every event ``cascade.run`` yields, and the Trace it returns."""
    events: list[Any] = []
    it: Iterator[Any] = cascade.run(context, question, **kw)
    while True:
        try:
            events.append(next(it))
        except StopIteration as done:
            return events, done.value


def kinds(events: Sequence[object]) -> list[str]:
    """The events' type names, in order (what an event-order test compares)."""
    return [type(e).__name__ for e in events]
