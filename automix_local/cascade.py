"""The AutoMix cascade: answer → self-verify → decide → escalate, tier by tier.

Pure orchestration: no printing, no UI. ``Cascade.run`` is a generator of typed events that a CLI
or a TUI renders; it returns the ``Trace`` (also carried by the final ``Finished`` event).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import prompts
from .abstain import TrustRouter
from .audit import AuditError, EgressLog, Receipt
from .backends.base import (
    Abilities,
    Backend,
    BackendError,
    EndpointBackend,
    Generation,
    RemoteBackend,
    Scored,
    batch_sampler,
    loader,
    prefix_warmer,
    run_to_end,
)
from .config import Config, PolicyConfig, TierConfig, source_filename
from .errors import AutomixError
from .grounding import grounding_features
from .names import NerModel, needs_model
from .names import load as load_ner
from .policy import EgressRequest, PolicyResult
from .policy import decide as policy_decide
from .prompts import Turn
from .routers import (
    Decision,
    Observation,
    POMDPRouter,
    Router,
    RouterError,
    SelfConsistency,
    ThresholdRouter,
    make_router,
)
from .signals import Signal, agreement_features, answer_features, previous_agreement
from .sources import ensure_verified, ner_model_path
from .speeds import TierSpeed, speed_at_load
from .streams import Returning
from .verification import Verification, Verifier, make_verifier

MAX_TURNS = 20  # earlier turns considered at most (the token budget usually stops sooner)
WATCHED = (prompts.ABSTAIN, prompts.ABSTAIN.capitalize())  # the answer's first token: P(it starts to abstain)
HISTORY_MARGIN = 16  # tokens kept free beside the answer's max_tokens (the shared layout's verdict suffix)


class CascadeError(AutomixError):
    """A question the cascade cannot run as asked. str() is the one line shown to the user."""

    http_status = 400


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TierLoading:
    """Tier ``tier``'s model is not loaded yet: the question waits for it (the app says so)."""

    tier: str
    index: int


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
class EgressPending:
    """The exact request the cascade is about to send to a remote tier (shown before approval under `ask`)."""

    tier: str
    receipt: Receipt
    needs_approval: bool


@dataclass(frozen=True)
class EgressSent:
    """The request was written to the egress log and is being sent."""

    tier: str
    entry_id: int
    receipt: Receipt


@dataclass(frozen=True)
class Blocked:
    """The router wanted a remote tier but nothing was sent: the policy, a private document, or the user said no."""

    tier: str
    reason: str


@dataclass(frozen=True)
class RemoteFailed:
    """The remote tier failed; the cascade answers with the best local answer instead."""

    tier: str
    reason: str
    fallback_tier: str


@dataclass(frozen=True)
class Finished:
    trace: Trace


Event = (
    TierLoading
    | TierStarted
    | Token
    | Answered
    | VerifyStarted
    | Verified
    | Decided
    | Escalated
    | EgressPending
    | EgressSent
    | Blocked
    | RemoteFailed
    | Finished
)

Approver = Callable[[Receipt], bool]


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
    why: str | None = None  # the router's short code for the decision (explain.plain_reason words it)
    verifier: str | None = None
    tokens_evaluated: int = 0
    mean_logprob: float | None = None
    min_logprob: float | None = None
    p_abstain: float | None = None
    signal: str | None = None
    egress_id: int | None = None  # remote steps: the egress log row of what was sent
    redactions: dict[str, int] | None = None
    sent: str | None = None  # remote steps: what the policy let out ("question" | "relevant" | "full")
    prompt_seconds: float = 0.0  # the answer's own prompt evaluation (Generation.prompt_seconds), not its check's
    gen_seconds: float = 0.0  # the answer's own generation (Generation.gen_seconds)

    @classmethod
    def answered(
        cls,
        tier: TierConfig,
        model: str,
        answer: str,
        generation: Generation,
        abstained: bool,
        checking_seconds: float = 0.0,
        **extra: Any,
    ) -> Step:
        """The step of a tier that answered: its tokens, seconds and cost (``TierConfig.call_cost``), before
        any verification is added; ``checking_seconds``: time already spent judging it (sampled answers)."""
        return cls(
            tier=tier.name,
            model=model,
            answer=answer,
            confidence=None,
            tokens_in=generation.tokens_in,
            tokens_out=generation.tokens_out,
            seconds=generation.seconds + checking_seconds,
            cost=tier.call_cost(generation.tokens_in, generation.tokens_out),
            answer_seconds=generation.seconds,
            verify_seconds=checking_seconds,
            abstained=abstained,
            tokens_evaluated=generation.tokens_evaluated,
            prompt_seconds=generation.prompt_seconds,
            gen_seconds=generation.gen_seconds,
            **extra,
        )


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
    notice: str | None = None  # something the user must see: a blocked or failed escalation
    turns: int = 0  # earlier turns of the conversation in the prompt (follow-up questions)
    turns_dropped: int = 0  # earlier turns left out, oldest first, to stay within history_tokens
    turns_note: str | None = None  # e.g. the router was calibrated on single questions
    # decision "abstain" (the router judged that no tier is likely right): ``answer`` is the abstention and this
    # the answer held back, shown to the user as a best guess (None when that answer was itself an abstention)
    best_guess: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        from .explain import plain_reason

        parts = []
        for i, s in enumerate(self.steps):
            nxt = self.steps[i + 1].tier if i + 1 < len(self.steps) else None
            if s.egress_id is not None and s.decision is None:
                what = f"remote answer (audit #{s.egress_id})"
            elif s.decision == "route" and nxt is None:  # the escalation was blocked or failed
                what = "answered locally"
                _, sep, why_not = (s.reason or "").partition("; not escalated: ")
                if sep and not self.notice:
                    what += f" (not escalated: {why_not})"
            else:
                what = plain_reason(s.decision, s.why, s.confidence, s.tier, nxt)
                if s.egress_id is not None:  # an endpoint tier, judged like a local one
                    what += f" (audit #{s.egress_id})"
            parts.append(f"{s.tier}: {what}, {s.seconds:.1f}s")
        head = f"not sure (best guess by {self.tier})" if self.decision == "abstain" else f"answered by {self.tier}"
        line = f"{head} · " + " · ".join(parts) + f" · total {self.seconds:.1f}s, cost {self.cost:.2f}"
        if self.turns:
            line += f" · {self.turns} earlier turn{'s' if self.turns != 1 else ''} in the prompt"
        return f"{line}\nnote: {self.notice}" if self.notice else line


# --------------------------------------------------------------------------- construction


def model_name(tier: TierConfig, path: Path | None = None) -> str:
    """The model a tier runs, as events and traces name it: a remote tier's model, else its file's name."""
    if tier.is_remote:
        return tier.model or tier.name
    if path is not None:
        return path.name
    return Path(source_filename(tier.source)).name if tier.source is not None else tier.name


BackendFactory = Callable[[TierConfig], Backend]


def default_backend_factory(config: Config) -> BackendFactory:
    def factory(tier: TierConfig) -> Backend:
        if tier.is_remote:
            from .backends.openai import OpenAIBackend

            return OpenAIBackend(tier)  # opens no socket until asked to send
        from .backends.llama import LlamaBackend

        path = ensure_verified(tier, config.paths, config.source_file)
        return LlamaBackend(tier, path, parallel=max(1, config.cascade.agreement_samples))

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
        policy: PolicyConfig | None = None,
        approve: Approver | None = None,
        egress_log: EgressLog | None = None,
        capture_hidden: bool = False,
        measure_speeds: bool = True,
    ) -> None:
        self.config = config
        # each local tier's speed on this machine (speeds.py): read or probed at load, handed to the router
        self.measure_speeds = measure_speeds
        self._measured: dict[str, TierSpeed] = {}
        self.capture_hidden = capture_hidden  # answers carry the model's final hidden state (eval run --hidden)
        self.policy = policy or config.policy  # the TUI swaps it per conversation
        # redact = ["names"]: the NER model must be there before anything can be asked (one line if not);
        # loaded at the first redaction
        self._ner_path = ner_model_path(config) if needs_model((*config.policy.redact, *self.policy.redact)) else None
        self._ner: NerModel | None = None
        self.approve = approve  # asked, under remote = "ask", with the exact request; None: nobody to ask
        self._egress = egress_log
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
        # The app loads models in one thread while a question asked at once runs in another: both ask for
        # the same tier's backend, and exactly one may be made (one model in memory, one lock). One lock per
        # tier, so verifying the large model's file does not hold up the small tier.
        self._making = {t.name: threading.Lock() for t in self.tiers}
        self._warm: set[str] = set()
        self.prefix_sources: dict[str, str] = {}  # tier → where its static prompt prefix came from
        refusal = self.endpoint_refusal()
        if refusal is not None:
            raise CascadeError(refusal)
        for t in self.tiers:
            if (
                t.is_endpoint
                and t.chat_format == "auto"
                and config.cascade.layout == "paper"
                and self.verifier is not None
            ):
                raise CascadeError(
                    f"tier '{t.name}' runs on an endpoint with the server's chat template (chat_format = \"auto\"), "
                    "and the paper layout verifies with a plain-text prompt that a chat cannot continue: use "
                    'layout = "shared", or set chat_format to the model\'s template name (rendered here, sent to '
                    "/v1/completions)"
                )

    # ------------------------------------------------------------------ what the app may change
    def set_verifier(self, strategy: str) -> None:
        """Judge answers with this verification strategy from the next question. A calibrated router reads
        its own signal: CascadeError."""
        if self.router.signal is not None:
            raise CascadeError("the calibrated router fixes its own signal; change [cascade] calibration instead")
        self.signal = Signal.verifier(strategy)
        self.verifier = make_verifier(replace(self.config.cascade, verifier=strategy))

    def tradeoff(self) -> tuple[str, float] | None:
        """The router's one trade-off: ("threshold", t) — escalate below t — or ("lambda", λ) for the POMDP;
        None for routers without one."""
        r = self.router
        if isinstance(r, ThresholdRouter) and not isinstance(r, SelfConsistency):
            return "threshold", r.threshold
        if isinstance(r, POMDPRouter):
            return "lambda", r.lambda_ or 0.0
        return None

    def set_tradeoff(self, value: float) -> float:
        """Set the router's trade-off from the next question (clamped: a threshold to 0–1, λ to ≥ 0); returns
        the value set."""
        kind = self.tradeoff()
        if kind is None:
            raise CascadeError(f"the {self.router.kind} router has no trade-off to set")
        if isinstance(self.router, POMDPRouter):
            self.router.set_lambda(value)
            return self.router.lambda_ or 0.0
        assert isinstance(self.router, ThresholdRouter)
        self.router.threshold = min(1.0, max(0.0, float(value)))
        return self.router.threshold

    @property
    def target(self) -> str | float | None:
        """The trust router's target ("quality", "balanced", "fast" or a share that may escalate); None for
        routers without one."""
        return self.router.target if isinstance(self.router, TrustRouter) else None

    def set_target(self, target: str | float) -> None:
        """Aim the trust router at ``target`` from the next question (its operating point is chosen again)."""
        if not isinstance(self.router, TrustRouter):
            raise CascadeError(f'the {self.router.kind} router has no target (router = "trust" has)')
        try:
            self.router.set_target(target)
        except RouterError as exc:
            raise CascadeError(str(exc)) from None

    def set_speeds(self, speeds: Mapping[str, TierSpeed]) -> None:
        """This machine's measured speeds of the local tiers (``speeds.SpeedBook``): the trust router chooses its
        operating point for them (the tiers of its table, by position, are this config's)."""
        self._measured = {**self._measured, **speeds}
        speeds = self._measured
        if not isinstance(self.router, TrustRouter) or self.router.table is None:
            return
        names = self.router.table.tiers
        if len(names) != len(self.tiers):
            return
        given = {
            names[i]: (s.prompt_token_seconds, s.gen_token_seconds)
            for i, t in enumerate(self.tiers)
            if (s := speeds.get(t.name)) is not None
        }
        if given != self.router.speeds:
            self.router.set_speeds(given)

    def backend(self, index: int) -> Backend:
        """Tier ``index``'s backend, made on first use (thread-safe: one per tier)."""
        tier = self.tiers[index]
        made = self._backends.get(tier.name)
        if made is not None:
            return made
        with self._making[tier.name]:
            if tier.name not in self._backends:
                self._backends[tier.name] = self._factory(tier)
            return self._backends[tier.name]

    def close(self) -> None:
        for b in self._backends.values():
            b.close()
        self._backends.clear()
        if self._egress is not None:
            self._egress.close()
            self._egress = None

    def interrupt(self) -> None:
        """Drop a remote call in progress (thread-safe): a cancelled question must not wait for the network."""
        for tier in self.tiers:
            made = self._backends.get(tier.name)
            if tier.is_remote and made is not None:
                made.close()

    @property
    def egress_log(self) -> EgressLog:
        if self._egress is None:
            self._egress = EgressLog(self.config.paths.egress_log)
        return self._egress

    def is_remote(self, index: int) -> bool:
        return self.tiers[index].is_remote

    def is_endpoint(self, index: int) -> bool:
        """A remote tier that answers the local prompts and is judged like a local tier (``logprobs = true``)."""
        return self.tiers[index].is_endpoint

    def endpoint_refusal(self, policy: PolicyConfig | None = None) -> str | None:
        """One line, when the first tier runs on an endpoint and the policy forbids what it needs: the question and
        the whole document, sent (approved, under "ask"). None when it may run. Checked at start and per question
        (the app changes a conversation's policy)."""
        policy = policy or self.policy
        index = self.router.start(len(self.tiers))
        if not 0 <= index < len(self.tiers) or not self.is_endpoint(index):
            return None
        tier = self.tiers[index]
        where = f"tier '{tier.name}' runs on an endpoint ({urlsplit(tier.base_url or '').netloc}) and answers first"
        fix = 'a team running its own engines sets [policy] remote = "allow" and send = "full" (docs/serve.md)'
        if policy.remote == "never":
            return f'{where}: what it reads leaves this machine, and [policy] remote = "never" sends nothing; {fix}'
        if policy.send != "full":
            part = "only the question" if policy.send == "question" else "only part of it"
            return f'{where} from the whole document, but [policy] send = "{policy.send}" gives it {part}; {fix}'
        if policy.remote == "ask" and self.approve is None:
            return f'{where}, [policy] remote = "ask", and nobody can be asked here (`ask --yes` approves); {fix}'
        return None

    def check_fits(self, index: int, context: str, question: str, history: tuple[Turn, ...] = ()) -> None:
        if self.is_remote(index):
            return  # what a remote tier receives is decided by the policy, and its window is the server's
        tier, backend = self.tiers[index], self.backend(index)
        n_answer = backend.count_tokens(self._answer_prompt(backend, context, question, history)) + tier.max_tokens
        need, what = n_answer, "the answer prompt"
        shared = self.config.cascade.layout == "shared"
        if index < len(self.tiers) - 1 and self.router.needs_confidence and self.verifier is not None and not shared:
            asked = prompts.question_with_history(question, history)
            n_verify = backend.count_tokens(prompts.verification_prompt(context, asked, "")) + tier.max_tokens
            if n_verify + 16 > need:
                need, what = n_verify + 16, "the verification prompt"
        if need > tier.n_ctx:
            ctx_tokens = backend.count_tokens(context)
            raise CascadeError(
                f"the context is too long for tier '{tier.name}': {ctx_tokens} tokens, and {what} needs "
                f"{need} of its n_ctx = {tier.n_ctx}. Shorten the context or raise n_ctx in models.toml "
                "(nothing was truncated)"
            )

    def _answer_prompt(self, backend: Backend, context: str, question: str, history: tuple[Turn, ...] = ()) -> str:
        cc = self.config.cascade
        return prompts.answer_prompt(backend, cc.layout, context, question, cc.answer_examples, history)

    def fit_history(self, index: int, context: str, question: str, history: Sequence[Turn]) -> tuple[Turn, ...]:
        """The newest earlier turns whose tokens fit ``[cascade] history_tokens`` and tier ``index``'s window
        beside the whole context (the context is never cut for them); older turns are dropped first."""
        budget = self.config.cascade.history_tokens
        turns = tuple((q, a) for q, a in history if q.strip() and a.strip())[-MAX_TURNS:]
        if not turns or budget <= 0 or (self.is_remote(index) and not self.is_endpoint(index)):
            return ()
        tier, backend = self.tiers[index], self.backend(index)
        base = backend.count_tokens(self._answer_prompt(backend, context, question))
        room = min(budget, tier.n_ctx - tier.max_tokens - base - HISTORY_MARGIN)
        kept: tuple[Turn, ...] = ()
        for k in range(1, len(turns) + 1):
            candidate = turns[-k:]
            used = backend.count_tokens(self._answer_prompt(backend, context, question, candidate)) - base
            if used > room:
                break
            kept = candidate
        return kept

    def document_budget(self, question: str) -> tuple[int, Callable[[str], int]]:
        """Tokens a document may take in the prompt of every local tier from the router's start (the answer
        prompt and, in the paper layout, the separate check, with each tier's answer room), and the start
        tier's token counter. Counted with the start tier's tokenizer, less 5 % for other tokenizers."""
        start = self.router.start(len(self.tiers))
        backend = self.backend(start)
        paper_check = self.config.cascade.layout != "shared" and self.verifier is not None
        room = []
        for i in range(start, len(self.tiers)):
            if self.is_remote(i) and not self.is_endpoint(i):
                continue  # what a remote tier receives is the policy's to decide
            tier = self.tiers[i]  # an endpoint tier's n_ctx: its server's window
            over = backend.count_tokens(self._answer_prompt(backend, "", question)) + tier.max_tokens
            if paper_check and i < len(self.tiers) - 1 and self.router.needs_confidence:
                check = backend.count_tokens(prompts.verification_prompt("", question, "")) + tier.max_tokens
                over = max(over, check)
            room.append(tier.n_ctx - over - HISTORY_MARGIN)
        return max(0, int(min(room) * 0.95)), backend.count_tokens

    def ready(self, index: int) -> bool:
        """Whether tier ``index`` answers without loading its model first."""
        return self.tiers[index].name in self._warm

    def prepare(self, index: int) -> None:
        """Load tier ``index``'s model and, for the shared layout, its static prompt prefix (from disk if cached)."""
        if self.is_remote(index):
            self._warm.add(self.tiers[index].name)
            return
        tier, backend = self.tiers[index], self.backend(index)
        load = loader(backend)
        if load is not None:
            load.load()
        if self.measure_speeds and tier.name not in self._warm:
            # the stored speed of this tier's model here, else one short probe (first load only); before the
            # prefix is warmed, since the probe replaces what the KV cache holds
            speed = speed_at_load(self.config, tier, backend)
            if speed is not None:
                self.set_speeds({**self._measured, tier.name: speed})
        warm = prefix_warmer(backend)
        if self.config.cascade.layout == "shared" and warm is not None and tier.name not in self._warm:
            prefix = prompts.static_prefix(backend, "shared")
            self.prefix_sources[tier.name] = warm.warm_prefix(prefix, self.config.paths.cache_dir / "kv")
        self._warm.add(tier.name)

    def abstain_threshold(self, index: int) -> float | None:
        """P(abstain) at the first token from which tier ``index`` abstains at once: models.toml's
        ``abstain_threshold``, else the calibration file's, else None (only when abstaining is its top choice)."""
        tier = self.tiers[index]
        if tier.abstain_threshold is not None:
            return tier.abstain_threshold
        return self.router.abstain.get(tier.name)

    def answer_stream(
        self, index: int, context: str, question: str, history: tuple[Turn, ...] = ()
    ) -> Generator[str, None, tuple[str, Generation, dict[str, float]]]:
        """Tier ``index`` answers: yields text deltas, returns (clean answer, generation, free features). A local
        tier only: what a remote one reads is cleared, shown and logged first, by ``run``."""
        if self.is_remote(index):
            raise CascadeError(f"tier '{self.tiers[index].name}' is remote: its requests leave only through run()")
        if self.tiers[index].name not in self._warm:
            self.prepare(index)
        backend = self.backend(index)
        generation = yield from backend.stream(
            self._answer_prompt(backend, context, question, history),
            max_tokens=self.tiers[index].max_tokens,
            stop=["\n"],
            watch_first=WATCHED,
            abstain_at=self.abstain_threshold(index),
            hidden=self.capture_hidden and backend.abilities.hidden_state,
        )
        answer = prompts.clean_answer(generation.text)
        abstained = prompts.is_abstention(answer)
        feats = answer_features(
            generation.token_logprobs,
            generation.first_logprobs,
            abstained,
            generation.token_entropies,
            generation.token_margins,
        )
        feats |= grounding_features(context, question, answer, abstained)
        if index < len(self.tiers) - 1:
            feats |= self.agreement(index, context, question, answer, generation, history)
        return answer, generation, feats

    def agreement(
        self,
        index: int,
        context: str,
        question: str,
        answer: str,
        generation: Generation,
        history: tuple[Turn, ...] = (),
    ) -> dict[str, float]:
        """With ``[cascade] agreement_samples`` = k > 0 and a local tier: k answers to the same prompt drawn at
        ``[cascade] temperature`` in one batched decode, and how far they agree with ``answer`` (see
        ``signals.agreement_features``), plus the seconds it took (``agreement_seconds``, not a feature).
        The samples may run to twice the answer's length and four tokens more: a longer one disagrees
        anyway, and the longest sample sets the batch's time."""
        k = self.config.cascade.agreement_samples
        backend = self.backend(index)
        sampler = batch_sampler(backend)
        if k <= 0 or sampler is None or generation.finish_reason == "abstain":
            return {}
        drawn = sampler.sample_batch(
            self._answer_prompt(backend, context, question, history),
            k,
            max_tokens=min(self.tiers[index].max_tokens, 2 * generation.tokens_out + 4),
            stop=["\n"],
            temperature=self.config.cascade.temperature,
            seed=self.config.cascade.seed,
        )
        feats = agreement_features(answer, [prompts.clean_answer(t) for t in drawn.texts])
        return feats | {"agreement_seconds": drawn.seconds}

    def run(
        self,
        context: str,
        question: str,
        *,
        document: str | None = None,
        tags: tuple[str, ...] = (),
        history: Sequence[Turn] = (),
        sources: Sequence[tuple[str | None, str]] | None = None,
    ) -> Generator[Event, None, Trace]:
        """Answer ``question`` over ``context``. ``document``/``tags`` name where the context came from, for
        the policy's ``private`` rules. ``history``: the conversation's earlier turns (question, answer
        shown), oldest first; the newest that fit go into every tier's prompt, the verification's and,
        as the policy allows, a remote tier's request. ``sources``: when the context is retrieved passages
        (the document library), each passage with the file it came from: a remote tier then receives
        passages only, never those of a private document.

        Tier by tier: a local tier answers and is judged (``_local_step``), the router keeps its answer or
        escalates (``_escalation``: the target, whether the question fits it, the policy's clearance for a
        remote one), and a remote tier is sent the cleared request (``_remote_step``)."""
        question = question.strip()
        if not question:
            raise CascadeError("the question is empty")
        refusal = self.endpoint_refusal()
        if refusal is not None:
            raise CascadeError(refusal)
        n = len(self.tiers)
        t_start = time.perf_counter()
        index = self.router.start(n)
        if not 0 <= index < n:
            raise RouterError(f"router {self.router.kind} chose tier {index}, but there are {n} tiers")
        if not self.is_remote(index) and not self.ready(index):
            yield TierLoading(self.tiers[index].name, index)
        self.check_fits(index, context, question)
        turns = self.fit_history(index, context, question, history)
        offered = len([t for t in history if t[0].strip() and t[1].strip()])
        if self.is_remote(index) and not self.is_endpoint(index):
            raise CascadeError(
                f"router {self.router.kind} starts at remote tier '{self.tiers[index].name}', but a cascade starts "
                'on a local tier (there must be a local answer to fall back on): use router = "threshold" or '
                '"pomdp", or put the remote model in a config of its own'
            )
        asked = _Question(context, question, turns, document, tags, sources)
        confidences: list[float | None] = [None] * n
        steps: list[Step] = []
        outcome = _Outcome("direct")
        cleared: tuple[PolicyResult, Receipt] | None = None  # the policy's verdict and the approved request
        while True:
            tier = self.tiers[index]
            model = model_name(tier)
            yield TierStarted(tier.name, index, model)
            if self.is_remote(index) and not self.is_endpoint(index):
                assert cleared is not None
                sent = yield from self._remote_step(index, model, *cleared)
                if isinstance(sent, Step):
                    steps.append(sent)
                else:
                    best = _best_local(steps)
                    outcome = _Outcome("fallback", sent, best)
                    yield RemoteFailed(tier.name, sent, best.tier)
                break
            last = index == n - 1
            previous = steps[-1].answer if steps else None
            try:
                step = yield from self._local_step(
                    index, model, asked, judge=not last or self.router.judges_last, previous=previous, steps=steps
                )
            except _NotAnswered as exc:  # an endpoint tier: not sent, or it failed
                if not steps:
                    raise exc.error from None  # nothing answered before it: the question fails, in one line
                best = _best_local(steps)
                if exc.sent:
                    outcome = _Outcome("fallback", f"{exc.error}; showing the best earlier answer", best)
                    yield RemoteFailed(tier.name, outcome.notice or "", best.tier)
                else:
                    steps[-1].reason = f"{steps[-1].reason}; not escalated: {exc.error}"
                    outcome = _Outcome("blocked", str(exc.error), best)
                    yield Blocked(tier.name, str(exc.error))
                break
            steps.append(step)
            confidences[index] = step.confidence
            if last:
                if self.router.judges_last:
                    outcome = yield from self._last_judgement(index, step, confidences)
                break
            escalation = yield from self._escalation(index, step, steps, confidences, asked)
            if escalation.target is None:
                outcome = escalation.outcome
                break
            outcome, cleared, index = _Outcome("route"), escalation.cleared, escalation.target
        trace = self._trace(asked, steps, outcome, t_start, offered)
        yield Finished(trace)
        return trace

    def _local_step(
        self,
        index: int,
        model: str,
        asked: _Question,
        *,
        judge: bool,
        previous: str | None = None,
        steps: Sequence[Step] = (),
    ) -> Generator[Event, None, Step]:
        """Tier ``index`` answers (Token…, Answered) and, when ``judge`` and the router reads a confidence,
        is verified (VerifyStarted, Verified) when its signal needs it, and given the signal's confidence
        (``previous``: the previous tier's answer, which a later tier's signal may compare). Returns its Step.
        A local tier, or an endpoint tier (``_endpoint_answer``: its requests cleared, shown and logged;
        ``_NotAnswered`` when one is not sent or fails)."""
        tier = self.tiers[index]
        sending: _Sending | None = None
        if self.is_endpoint(index):
            best = _best_local(list(steps)) if steps else None
            answer, generation, free, sending = yield from self._endpoint_answer(index, asked, best)
        else:
            answering = Returning(self.answer_stream(index, asked.context, asked.question, asked.turns))
            for delta in answering:
                yield Token(tier.name, delta)
            answer, generation, free = answering.value
        yield Answered(tier.name, answer, generation)
        sent: dict[str, Any] = {}
        if sending is not None:
            sent = {
                "egress_id": sending.entries[0],
                "redactions": dict(sending.result.counts),
                "sent": sending.result.send,
            }
        step = Step.answered(
            tier,
            model,
            answer,
            generation,
            bool(free["abstained"]),
            checking_seconds=free.get("agreement_seconds", 0.0),  # sampled answers judge it too
            mean_logprob=free["mean_logprob"] if generation.token_logprobs else None,
            min_logprob=free["min_logprob"] if generation.token_logprobs else None,
            p_abstain=free["p_abstain"],
            **sent,
        )
        if not judge or not self.router.needs_confidence:
            return step
        feats: dict[str, float | None] = dict(free)
        if previous is not None:
            feats |= previous_agreement(answer, previous)
        signal = self.router.signal_for(index, len(self.tiers)) or self.signal
        if self.verifier is not None and signal.needs_verifier is not None:
            yield VerifyStarted(tier.name, self.verifier.strategy)
            if sending is None:
                ver = self.verifier.verify(self.backend(index), asked.context, asked.question, answer, asked.turns)
            else:
                checked = yield from self._endpoint_verification(index, sending)
                if checked is None:  # its request was not sent, or failed: the answer goes unjudged
                    return step
                ver = checked
            yield Verified(tier.name, ver)
            feats[f"verifier_{ver.strategy}"] = ver.confidence
            step.verifier = ver.strategy
            self._add_verification(step, tier, ver)
        step.confidence = signal.confidence(feats)
        step.signal = signal.name
        return step

    # ------------------------------------------------------------------ endpoint tiers

    def endpoint(self, index: int) -> EndpointBackend:
        """Tier ``index``'s backend, which must be an endpoint tier's."""
        backend = self.backend(index)
        if not isinstance(backend, EndpointBackend):
            raise CascadeError(f"tier '{self.tiers[index].name}' is not an endpoint tier")
        return backend

    def _endpoint_answer(
        self, index: int, asked: _Question, best: Step | None
    ) -> Generator[Event, None, tuple[str, Generation, dict[str, float], _Sending]]:
        """An endpoint tier answers the local layout's prompt, under the privacy contract: the policy decides what
        it may read (``best``: the answer ``send = "relevant"`` looks for), the exact request is shown
        (EgressPending) and approved under "ask", logged (EgressSent), then sent; the answer streams back mapped
        from placeholders (Token…). Returns what ``answer_stream`` returns, and what was sent."""
        from .backends.openai import RemoteError
        from .redact import restore

        tier, backend = self.tiers[index], self.endpoint(index)
        self._warm.add(tier.name)
        result = policy_decide(self._egress_request(index, asked, best), self.policy, ner=self._ner_model())
        if not result.allowed:
            raise _NotAnswered(CascadeError(f"not sent to tier '{tier.name}': {result.reason}"))
        # under send = "question" the earlier answers stay here, and the prompt's turns need them: no turns then
        turns = tuple((q, a) for q, a in result.history if a is not None)
        turns = turns if len(turns) == len(result.history) else ()
        prompt = self._answer_prompt(backend, result.context, result.question, turns)
        body = backend.prompt_payload(prompt, max_tokens=tier.max_tokens)
        receipt = self._receipt_for(index, result, body)
        yield EgressPending(tier.name, receipt, result.needs_approval)
        entry_id = self._approve_and_log(index, result, receipt)
        yield EgressSent(tier.name, entry_id, receipt)
        sent = backend.stream_body(
            body,
            on_attempt=lambda n: self.egress_log.attempt(entry_id, n),
            stop=["\n"],
            watch_first=WATCHED,
            abstain_at=self.abstain_threshold(index),
        )
        try:
            generation = yield from self._stream_logged(tier.name, entry_id, sent, result.mapping)
        except RemoteError as exc:
            raise _NotAnswered(exc, sent=True) from None
        text = restore(generation.text, result.mapping)
        answer = prompts.clean_answer(text)
        abstained = prompts.is_abstention(answer)
        feats = answer_features(
            generation.token_logprobs,
            generation.first_logprobs,
            abstained,
            generation.token_entropies,
            generation.token_margins,
        )
        feats |= grounding_features(asked.context, asked.question, answer, abstained)  # here, on the real text
        sending = _Sending(result, turns, prompts.clean_answer(generation.text), [entry_id])
        return answer, replace(generation, text=text), feats, sending

    def _endpoint_verification(self, index: int, sending: _Sending) -> Generator[Event, None, Verification | None]:
        """The verifier judges an endpoint tier's answer through the endpoint: over what the policy let it read (the
        redacted text, the answer as it came), each request shown, approved under "ask" and logged before it is sent
        (EgressSent after the verdict). None when one was not sent or failed."""
        from .backends.openai import RemoteError

        assert self.verifier is not None
        gated = _GatedEndpoint(self, index, sending)
        result = sending.result
        verification: Verification | None = None
        try:
            verification = self.verifier.verify(gated, result.context, result.question, sending.answer, sending.turns)
        except (_NotAnswered, RemoteError):
            pass
        yield from gated.events
        return verification

    def _approve_and_log(self, index: int, result: PolicyResult, receipt: Receipt) -> int:
        """An endpoint tier's request, cleared by the policy: approved under "ask", then logged. The log row's id;
        ``_NotAnswered`` when it may not leave."""
        tier = self.tiers[index]
        if result.needs_approval:
            if self.approve is None:
                raise _NotAnswered(
                    CascadeError(f"not sent to tier '{tier.name}': policy remote = \"ask\" and nobody was asked")
                )
            if not self.approve(receipt):
                raise _NotAnswered(CascadeError(f"you declined sending the request to {receipt.host}"))
        try:
            return self.egress_log.record(receipt)
        except AuditError as exc:  # not logged → not sent
            raise _NotAnswered(exc) from None

    def _last_judgement(
        self, index: int, step: Step, confidences: list[float | None]
    ) -> Generator[Event, None, _Outcome]:
        """A router that judges the last tier (the trust router) keeps its answer or says it is not sure."""
        decision = self.router.decide(Observation(index, tuple(confidences), len(self.tiers)))
        yield Decided(step.tier, decision)
        step.decision, step.reason, step.why = decision.action, decision.reason, decision.why
        return _Outcome("abstain", shown=step) if decision.action == "abstain" else _Outcome("keep")

    def _escalation(
        self,
        index: int,
        step: Step,
        steps: list[Step],
        confidences: list[float | None],
        asked: _Question,
    ) -> Generator[Event, None, _Escalation]:
        """The router's decision on tier ``index``'s answer (Decided) and, when it routes, whether the question
        may go: the target loads (TierLoading) and fits, and a remote target's request is cleared by the
        policy and, under "ask", the user (EgressPending; Blocked when not). Escalated when it goes."""
        n = len(self.tiers)
        decision = self.router.decide(Observation(index, tuple(confidences), n))
        yield Decided(step.tier, decision)
        step.decision, step.reason, step.why = decision.action, decision.reason, decision.why
        if decision.action == "keep":
            return _Escalation(_Outcome("keep"))
        if decision.action == "abstain":
            return _Escalation(_Outcome("abstain", shown=step))
        target = decision.target if decision.target is not None else index + 1
        if not index < target < n:
            raise RouterError(
                f"router {self.router.kind} routed tier {index} to {target}; expected {index + 1}..{n - 1}"
            )
        if not self.is_remote(target) and not self.ready(target):
            yield TierLoading(self.tiers[target].name, target)
        try:
            self.check_fits(target, asked.context, asked.question, asked.turns)
        except (CascadeError, BackendError) as exc:
            step.reason = f"{decision.reason}; not escalated: {exc}"
            return _Escalation(_Outcome("keep"))
        cleared = None
        if self.is_remote(target) and not self.is_endpoint(target):  # an endpoint's requests are cleared as it sends
            best = _best_local(steps)
            result = policy_decide(self._egress_request(target, asked, best), self.policy, ner=self._ner_model())
            why_not, receipt = yield from self._clear_egress(target, result)
            if why_not is not None or receipt is None:
                why_not = why_not or "not sent"
                step.reason = f"{decision.reason}; not escalated: {why_not}"
                yield Blocked(self.tiers[target].name, why_not)
                return _Escalation(_Outcome("blocked", why_not, best))
            cleared = (result, receipt)
        yield Escalated(step.tier, self.tiers[target].name, decision.reason)
        return _Escalation(_Outcome("route"), target, cleared)

    def _ner_model(self) -> NerModel | None:
        """The NER model the policy's redaction needs (None when it needs none); NerUnavailable if it breaks."""
        if self._ner is None and self._ner_path is not None and needs_model(self.policy.redact):
            self._ner = load_ner(self._ner_path, self.config.paths.cache_dir)
        return self._ner

    def _egress_request(self, target: int, asked: _Question, best: Step | None) -> EgressRequest:
        """What the policy judges before remote tier ``target`` may receive anything (``best``: the answer
        ``send = "relevant"`` looks for; None for an endpoint tier that answers first)."""
        sources = asked.sources
        return EgressRequest(
            tier=self.tiers[target].name,
            question=asked.question,
            context=asked.context,
            document=asked.document,
            tags=asked.tags,
            local_answer=None if best is None or best.abstained else best.answer,
            history=asked.turns,
            passages=tuple(text for _, text in sources) if sources is not None else None,
            passage_documents=tuple(doc for doc, _ in sources) if sources is not None else None,
        )

    def _trace(self, asked: _Question, steps: list[Step], outcome: _Outcome, t_start: float, offered: int) -> Trace:
        final = outcome.shown or steps[-1]
        abstain = outcome.label == "abstain"
        trace = Trace(
            question=asked.question,
            answer=prompts.ABSTAIN if abstain else final.answer,
            tier=final.tier,
            model=final.model,
            decision=outcome.label,
            confidence=final.confidence,
            seconds=time.perf_counter() - t_start,
            cost=sum(s.cost for s in steps),
            steps=steps,
            notice=outcome.notice,
            turns=len(asked.turns),
            turns_dropped=offered - len(asked.turns),
            best_guess=final.answer if abstain and not final.abstained else None,
        )
        if asked.turns and self.router.prompt is not None and not self.router.prompt.get("turns"):
            trace.turns_note = (
                f"the {self.router.kind} router was calibrated on single questions: its confidence for a "
                "follow-up that reads earlier turns is less certain"
            )
        return trace

    # ------------------------------------------------------------------ remote tiers

    def remote(self, index: int) -> RemoteBackend:
        """Tier ``index``'s backend, which must be a remote one."""
        backend = self.backend(index)
        if not isinstance(backend, RemoteBackend):
            raise CascadeError(f"tier '{self.tiers[index].name}' is not a remote tier")
        return backend

    def _receipt(self, index: int, result: PolicyResult) -> Receipt:
        tier, backend = self.tiers[index], self.remote(index)
        messages = prompts.remote_messages(
            result.question, result.context, placeholders=bool(result.mapping), history=result.history
        )
        return self._receipt_for(index, result, backend.payload(messages, max_tokens=tier.max_tokens, temperature=0.0))

    def _receipt_for(self, index: int, result: PolicyResult, body: bytes) -> Receipt:
        """The receipt of ``body``, a request to remote tier ``index`` that the policy cleared as ``result``."""
        tier, backend = self.tiers[index], self.remote(index)
        ep = backend.endpoint
        return Receipt(
            tier=tier.name,
            host=f"{ep.host}:{ep.port}",
            url=ep.url,
            model=tier.model or tier.name,
            payload=body,
            send=result.send,
            redactions=dict(result.counts),
            reason=result.reason,
            replaced=dict(result.mapping),
        )

    def _clear_egress(
        self, index: int, result: PolicyResult
    ) -> Generator[Event, None, tuple[str | None, Receipt | None]]:
        """(None, receipt) if the request may leave now; else (the one-line reason it may not, …). Sends nothing."""
        if not result.allowed:
            return result.reason, None
        receipt = self._receipt(index, result)
        yield EgressPending(self.tiers[index].name, receipt, result.needs_approval)
        if result.needs_approval:
            if self.approve is None:
                why = 'policy remote = "ask" and nobody was asked (use `ask --yes`, or answer in the app): not sent'
                return why, receipt
            if not self.approve(receipt):
                return f"you declined sending the request to {receipt.host}: answered locally", receipt
        return None, receipt

    def _stream_logged(
        self, tier: str, entry_id: int, sent: Generator[str, None, Generation], mapping: Mapping[str, str]
    ) -> Generator[Event, None, Generation]:
        """Stream a logged request's answer as Tokens, mapped back from placeholders, and finish its egress log row:
        ok, error (the RemoteError is raised on) or cancelled (by the server's side or by closing this stream)."""
        from .backends.openai import RemoteError
        from .redact import Restorer

        log, restorer, t0 = self.egress_log, Restorer(mapping), time.perf_counter()
        stream: Returning[str, Generation] = Returning(sent)
        try:
            for delta in stream:
                shown = restorer.feed(delta)
                if shown:
                    yield Token(tier, shown)
            generation = stream.value
            tail = restorer.flush()
            if tail:
                yield Token(tier, tail)
        except RemoteError as exc:
            outcome = "cancelled" if exc.kind == "cancelled" else "error"
            log.finish(entry_id, outcome, str(exc), seconds=time.perf_counter() - t0)
            raise
        except GeneratorExit:
            log.finish(entry_id, "cancelled", "cancelled by the user", seconds=time.perf_counter() - t0)
            stream.close()
            raise
        log.finish(entry_id, "ok", None, answer_chars=len(generation.text), seconds=time.perf_counter() - t0)
        return generation

    def _remote_step(
        self, index: int, model: str, result: PolicyResult, receipt: Receipt
    ) -> Generator[Event, None, Step | str]:
        """Send the approved request, stream the answer mapped back from placeholders. Returns the Step, or
        the reason it failed (the caller falls back to the best local answer)."""
        from .backends.openai import RemoteError
        from .redact import restore

        tier, backend = self.tiers[index], self.remote(index)
        try:
            entry_id = self.egress_log.record(receipt)
        except AuditError as exc:
            return str(exc)  # not logged → not sent
        yield EgressSent(tier.name, entry_id, receipt)
        sent = backend.stream_body(receipt.payload, on_attempt=lambda n: self.egress_log.attempt(entry_id, n))
        try:
            generation = yield from self._stream_logged(tier.name, entry_id, sent, result.mapping)
        except RemoteError as exc:
            return f"{exc}; showing the best local answer"
        text = restore(generation.text, result.mapping)
        answer = prompts.clean_answer(text)
        yield Answered(tier.name, answer, replace(generation, text=text))
        return Step.answered(
            tier,
            model,
            answer,
            generation,
            prompts.is_abstention(answer),
            egress_id=entry_id,
            redactions=dict(result.counts),
            sent=result.send,
        )

    def _add_verification(self, step: Step, tier: TierConfig, ver: Verification) -> None:
        step.verify_seconds += ver.seconds  # beside any sampled answers (agreement)
        step.seconds += ver.seconds
        step.tokens_in += ver.tokens_in
        step.tokens_out += ver.tokens_out
        step.tokens_evaluated += ver.tokens_evaluated
        per_token = tier.cost_per_1k_tokens * (ver.tokens_in + ver.tokens_out) / 1000.0
        step.cost += self.config.cascade.verify_cost * tier.cost + per_token

    def ask(
        self,
        context: str,
        question: str,
        on_event: Callable[[Event], None] | None = None,
        *,
        document: str | None = None,
        tags: tuple[str, ...] = (),
        history: Sequence[Turn] = (),
        sources: Sequence[tuple[str | None, str]] | None = None,
    ) -> Trace:
        events = Returning(self.run(context, question, document=document, tags=tags, history=history, sources=sources))
        for event in events:
            if on_event:
                on_event(event)
        return events.value


@dataclass(frozen=True)
class _Question:
    """One question as every step of ``Cascade.run`` sees it (``turns``: the earlier turns that fit)."""

    context: str
    question: str
    turns: tuple[Turn, ...]
    document: str | None
    tags: tuple[str, ...]
    sources: Sequence[tuple[str | None, str]] | None


@dataclass(frozen=True)
class _Outcome:
    """How a run ends so far: the Trace's ``decision`` label, its notice, and the step whose answer is shown
    when it is not the last step's (a blocked or failed escalation shows the best local answer)."""

    label: str  # "direct" | "keep" | "route" | "blocked" | "fallback" | "abstain" (not sure: ``shown`` held back)
    notice: str | None = None
    shown: Step | None = None


@dataclass(frozen=True)
class _Escalation:
    """``_escalation``'s answer: go on to ``target`` (with the cleared request, for a remote tier) or stop
    (``target`` None) with ``outcome``."""

    outcome: _Outcome
    target: int | None = None
    cleared: tuple[PolicyResult, Receipt] | None = None


class _NotAnswered(Exception):
    """An endpoint tier gave no answer: its request was not sent (the policy, the user, the log) or, ``sent``, it
    failed. ``error`` is the one-line error; the cascade falls back on an earlier answer, or raises it."""

    def __init__(self, error: AutomixError, sent: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent


@dataclass
class _Sending:
    """What one question sent an endpoint tier: the policy's verdict (the redacted question, context and
    placeholders), the earlier turns in its prompt, its answer as it came (placeholders unreplaced), and the egress
    log rows of its requests, the answer's first."""

    result: PolicyResult
    turns: tuple[Turn, ...]
    answer: str
    entries: list[int]


class _GatedEndpoint:
    """An endpoint tier as the verifier sees it (the Backend protocol): every request it sends is built here,
    approved under "ask" (the approver is shown it) and logged before it leaves, like the answer's; its
    EgressSent events are kept for the cascade to yield after the verdict."""

    def __init__(self, cascade: Cascade, index: int, sending: _Sending) -> None:
        self._cascade, self._index, self._sending = cascade, index, sending
        self._inner = cascade.endpoint(index)
        self.name = self._inner.name
        self.n_ctx = self._inner.n_ctx
        self.abilities: Abilities = self._inner.abilities
        self.events: list[Event] = []

    @property
    def uses_chat_template(self) -> bool:
        return self._inner.uses_chat_template

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self._inner.render(messages)

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def close(self) -> None:
        self._inner.close()

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
        from .backends.openai import RemoteError

        cascade, tier = self._cascade, self._cascade.tiers[self._index]
        body = self._inner.prompt_payload(prompt, max_tokens=max_tokens, temperature=temperature, seed=seed)
        receipt = cascade._receipt_for(self._index, self._sending.result, body)
        entry_id = cascade._approve_and_log(self._index, self._sending.result, receipt)
        self._sending.entries.append(entry_id)
        self.events.append(EgressSent(tier.name, entry_id, receipt))
        log, t0 = cascade.egress_log, time.perf_counter()
        try:
            generation = yield from self._inner.stream_body(
                body,
                on_attempt=lambda n: log.attempt(entry_id, n),
                stop=stop,
                watch_first=watch_first,
                abstain_at=abstain_at,
            )
        except RemoteError as exc:
            log.finish(entry_id, "error", str(exc), seconds=time.perf_counter() - t0)
            raise
        log.finish(entry_id, "ok", None, answer_chars=len(generation.text), seconds=time.perf_counter() - t0)
        return generation

    def score(self, prompt: str, continuations: Sequence[str]) -> Scored:
        from .backends.openai import scored

        t0 = time.perf_counter()
        generation = run_to_end(self.stream(prompt, max_tokens=1, watch_first=continuations))
        return scored(generation, continuations, time.perf_counter() - t0)


def _best_local(steps: list[Step]) -> Step:
    """The answer to fall back on: the highest local tier's that did not abstain, else the last one."""
    for s in reversed(steps):
        if not s.abstained:
            return s
    return steps[-1]
