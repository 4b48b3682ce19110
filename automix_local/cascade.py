"""The AutoMix cascade: answer → self-verify → decide → escalate, tier by tier.

Pure orchestration: no printing, no UI. ``Cascade.run`` is a generator of typed events that a CLI
or a TUI renders; it returns the ``Trace`` (also carried by the final ``Finished`` event).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import prompts
from .backends.base import Backend, BackendError, Generation
from .config import Config, TierConfig
from .routers import ROUTER_CLASSES as _ROUTERS
from .routers import Decision, Observation, POMDPRouter, Router, RouterError, load
from .signals import Signal, answer_features
from .sources import ensure_verified
from .verification import Verification, Verifier, make_verifier


class CascadeError(Exception):
    """A question the cascade cannot run as asked. str() is the one line shown to the user."""


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TierStarted:
    tier: str
    index: int
    model: str


@dataclass(frozen=True)
class Token:
    tier: str
    text: str


@dataclass(frozen=True)
class Answered:
    tier: str
    answer: str
    generation: Generation


@dataclass(frozen=True)
class VerifyStarted:
    tier: str
    strategy: str


@dataclass(frozen=True)
class Verified:
    tier: str
    verification: Verification


@dataclass(frozen=True)
class Decided:
    tier: str
    decision: Decision


@dataclass(frozen=True)
class Escalated:
    from_tier: str
    to_tier: str
    reason: str


@dataclass(frozen=True)
class Finished:
    trace: Trace


Event = TierStarted | Token | Answered | VerifyStarted | Verified | Decided | Escalated | Finished


# --------------------------------------------------------------------------- trace


@dataclass
class Step:
    tier: str
    model: str
    answer: str
    confidence: float | None
    tokens_in: int
    tokens_out: int
    seconds: float
    cost: float
    answer_seconds: float
    verify_seconds: float
    abstained: bool
    decision: str | None = None
    reason: str | None = None
    verifier: str | None = None
    tokens_evaluated: int = 0
    mean_logprob: float | None = None
    min_logprob: float | None = None
    p_abstain: float | None = None
    signal: str | None = None


@dataclass
class Trace:
    question: str
    answer: str
    tier: str
    model: str
    decision: str
    confidence: float | None
    seconds: float
    cost: float
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        parts = []
        for s in self.steps:
            conf = f" conf {s.confidence:.2f}" if s.confidence is not None else ""
            dec = f" → {s.decision}" if s.decision else ""
            parts.append(f"{s.tier}{conf}{dec} ({s.seconds:.1f}s)")
        return f"answered by {self.tier} · " + " · ".join(parts) + f" · total {self.seconds:.1f}s, cost {self.cost:.2f}"


# --------------------------------------------------------------------------- construction


def make_router(config: Config) -> Router:
    cfg = config.cascade
    if cfg.calibration is not None:
        router = load(cfg.calibration)
        if router.kind != cfg.router:
            raise RouterError(
                f"{cfg.calibration}: holds a {router.kind!r} router but cascade.router is {cfg.router!r}; "
                "make them agree"
            )
        if cfg.lambda_ is not None and isinstance(router, POMDPRouter):
            router.lambda_ = cfg.lambda_  # the config's trade-off overrides the fitted one
        return router
    cls = _ROUTERS[cfg.router]
    if cfg.router == "random":
        router = cls(p=cfg.random_p, seed=cfg.seed)  # type: ignore[call-arg]
    elif cfg.router == "threshold":
        router = cls(threshold=cfg.threshold)  # type: ignore[call-arg]
    else:
        router = cls()
    router.costs = tuple(t.cost for t in config.tiers)
    return router


def model_name(tier: TierConfig, path: Path | None = None) -> str:
    if tier.backend == "openai":
        return tier.model or tier.name
    if path is not None:
        return path.name
    src = tier.source
    return getattr(src, "filename", None) or Path(str(getattr(src, "path", tier.name))).name


BackendFactory = Callable[[TierConfig], Backend]


def default_backend_factory(config: Config) -> BackendFactory:
    def factory(tier: TierConfig) -> Backend:
        if tier.backend == "openai":
            raise CascadeError(
                f"tier '{tier.name}': backend = \"openai\" (remote tiers) is not available in this version yet"
            )
        from .backends.llama import LlamaBackend

        path = ensure_verified(tier, config.paths, config.source_file)
        return LlamaBackend(tier, path)

    return factory


# --------------------------------------------------------------------------- the cascade


class Cascade:
    """Runs questions through the configured tiers. Backends load lazily and are kept."""

    def __init__(
        self,
        config: Config,
        router: Router | None = None,
        verifier: Verifier | None = None,
        backend_factory: BackendFactory | None = None,
    ) -> None:
        self.config = config
        self.tiers = config.tiers
        self.router = router or make_router(config)
        # The router reads a signal: a calibrated one from its file, else the configured verifier.
        self.signal: Signal = self.router.signal or Signal.verifier(config.cascade.verifier)
        strategy = self.signal.needs_verifier
        self.verifier: Verifier | None = None
        if strategy is not None:
            self.verifier = verifier or make_verifier(replace(config.cascade, verifier=strategy))
        self._factory = backend_factory or default_backend_factory(config)
        self._backends: dict[str, Backend] = {}
        self._warm: set[str] = set()
        self.prefix_sources: dict[str, str] = {}  # tier → where its static prompt prefix came from

    def backend(self, index: int) -> Backend:
        tier = self.tiers[index]
        if tier.name not in self._backends:
            self._backends[tier.name] = self._factory(tier)
        return self._backends[tier.name]

    def close(self) -> None:
        for b in self._backends.values():
            b.close()
        self._backends.clear()

    def check_fits(self, index: int, context: str, question: str) -> None:
        tier, backend = self.tiers[index], self.backend(index)
        n_answer = backend.count_tokens(self._answer_prompt(backend, context, question)) + tier.max_tokens
        need, what = n_answer, "the answer prompt"
        shared = self.config.cascade.layout == "shared"
        if index < len(self.tiers) - 1 and self.router.needs_confidence and self.verifier is not None and not shared:
            n_verify = backend.count_tokens(prompts.verification_prompt(context, question, "")) + tier.max_tokens
            if n_verify + 16 > need:
                need, what = n_verify + 16, "the verification prompt"
        if need > tier.n_ctx:
            ctx_tokens = backend.count_tokens(context)
            raise CascadeError(
                f"the context is too long for tier '{tier.name}': {ctx_tokens} tokens, and {what} needs "
                f"{need} of its n_ctx = {tier.n_ctx}. Shorten the context or raise n_ctx in models.toml "
                "(nothing was truncated)"
            )

    def _answer_prompt(self, backend: Backend, context: str, question: str) -> str:
        return prompts.answer_prompt(backend, self.config.cascade.layout, context, question)  # type: ignore[arg-type]

    def prepare(self, index: int) -> None:
        """Load tier ``index``'s model and, for the shared layout, its static prompt prefix (from disk if cached)."""
        tier, backend = self.tiers[index], self.backend(index)
        load = getattr(backend, "load", None)
        if load is not None:
            load()
        warm = getattr(backend, "warm_prefix", None)
        if self.config.cascade.layout == "shared" and warm is not None and tier.name not in self._warm:
            prefix = prompts.static_prefix(backend, "shared")  # type: ignore[arg-type]
            self.prefix_sources[tier.name] = warm(prefix, self.config.paths.cache_dir / "kv")
        self._warm.add(tier.name)

    def answer_stream(
        self, index: int, context: str, question: str
    ) -> Generator[str, None, tuple[str, Generation, dict[str, float]]]:
        """Tier ``index`` answers: yields text deltas, returns (clean answer, generation, free features)."""
        if self.tiers[index].name not in self._warm:
            self.prepare(index)
        backend = self.backend(index)
        generation = yield from backend.stream(
            self._answer_prompt(backend, context, question),
            max_tokens=self.tiers[index].max_tokens,
            stop=["\n"],
            watch_first=(prompts.ABSTAIN, prompts.ABSTAIN.capitalize()),
        )
        answer = prompts.clean_answer(generation.text)
        feats = answer_features(generation.token_logprobs, generation.first_logprobs, prompts.is_abstention(answer))
        return answer, generation, feats

    def run(self, context: str, question: str) -> Generator[Event, None, Trace]:
        question = question.strip()
        if not question:
            raise CascadeError("the question is empty")
        n = len(self.tiers)
        t_start = time.perf_counter()
        index = self.router.start(n)
        if not 0 <= index < n:
            raise RouterError(f"router {self.router.kind} chose tier {index}, but there are {n} tiers")
        self.check_fits(index, context, question)
        confidences: list[float | None] = [None] * n
        steps: list[Step] = []
        decision_label = "direct"
        while True:
            tier = self.tiers[index]
            backend = self.backend(index)
            model = model_name(tier, getattr(backend, "model_path", None))
            yield TierStarted(tier.name, index, model)
            gen_it = self.answer_stream(index, context, question)
            while True:
                try:
                    delta = next(gen_it)
                except StopIteration as done:
                    answer, generation, free = done.value
                    break
                yield Token(tier.name, delta)
            yield Answered(tier.name, answer, generation)
            cost = tier.call_cost(generation.tokens_in, generation.tokens_out)
            abstained = bool(free["abstained"])
            feats: dict[str, float | None] = dict(free)
            step = Step(
                tier=tier.name,
                model=model,
                answer=answer,
                confidence=None,
                tokens_in=generation.tokens_in,
                tokens_out=generation.tokens_out,
                seconds=generation.seconds,
                cost=cost,
                answer_seconds=generation.seconds,
                verify_seconds=0.0,
                abstained=abstained,
                tokens_evaluated=generation.tokens_evaluated,
                mean_logprob=feats["mean_logprob"] if generation.token_logprobs else None,
                min_logprob=feats["min_logprob"] if generation.token_logprobs else None,
                p_abstain=feats["p_abstain"],
            )
            steps.append(step)
            if index == n - 1:
                break
            if self.router.needs_confidence:
                if self.verifier is not None:
                    yield VerifyStarted(tier.name, self.verifier.strategy)
                    ver = self.verifier.verify(backend, context, question, answer)
                    yield Verified(tier.name, ver)
                    feats[f"verifier_{ver.strategy}"] = ver.confidence
                    step.verifier = ver.strategy
                    self._add_verification(step, tier, ver)
                step.confidence = confidences[index] = self.signal.confidence(feats)
                step.signal = self.signal.name
            decision = self.router.decide(Observation(index, tuple(confidences), n))
            yield Decided(tier.name, decision)
            step.decision, step.reason = decision.action, decision.reason
            if decision.action == "keep":
                decision_label = "keep"
                break
            target = decision.target if decision.target is not None else index + 1
            if not index < target < n:
                raise RouterError(
                    f"router {self.router.kind} routed tier {index} to {target}; expected {index + 1}..{n - 1}"
                )
            try:
                self.check_fits(target, context, question)
            except (CascadeError, BackendError) as exc:
                step.reason = f"{decision.reason}; not escalated: {exc}"
                decision_label = "keep"
                break
            yield Escalated(tier.name, self.tiers[target].name, decision.reason)
            decision_label = "route"
            index = target
        final = steps[-1]
        trace = Trace(
            question=question,
            answer=final.answer,
            tier=final.tier,
            model=final.model,
            decision=decision_label,
            confidence=final.confidence,
            seconds=time.perf_counter() - t_start,
            cost=sum(s.cost for s in steps),
            steps=steps,
        )
        yield Finished(trace)
        return trace

    def _add_verification(self, step: Step, tier: TierConfig, ver: Verification) -> None:
        step.verify_seconds = ver.seconds
        step.seconds += ver.seconds
        step.tokens_in += ver.tokens_in
        step.tokens_out += ver.tokens_out
        step.tokens_evaluated += ver.tokens_evaluated
        per_token = tier.cost_per_1k_tokens * (ver.tokens_in + ver.tokens_out) / 1000.0
        step.cost += self.config.cascade.verify_cost * tier.cost + per_token

    def ask(self, context: str, question: str, on_event: Callable[[Event], None] | None = None) -> Trace:
        it = self.run(context, question)
        while True:
            try:
                event = next(it)
            except StopIteration as done:
                return done.value
            if on_event:
                on_event(event)
