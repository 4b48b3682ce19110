"""Meta-verifiers: turn the verifier's noisy confidence into keep / route, for N tiers.

All share one interface: ``fit(records, costs)``, ``decide(observation)``, ``to_json()`` /
``from_json()`` (and ``save`` / ``load`` for files), so the evaluation harness and the app use the
same code. ``start`` says which tier the cascade runs first (``always_large`` skips the rest).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from .config import Config
from .errors import AutomixError
from .metrics import delta_ibc
from .signals import Signal, SignalError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Record:
    """One labelled item: each tier's answer quality, and each tier's verifier confidence."""

    scores: tuple[float, ...]
    confidences: tuple[float | None, ...]


@dataclass(frozen=True)
class Observation:
    """What the cascade knows when it must decide: the tier holding the answer, confidences so far."""

    tier: int
    confidences: tuple[float | None, ...]
    n_tiers: int


@dataclass(frozen=True)
class Decision:
    """What a router decided. ``reason`` is its internals (for the trace pane); ``why`` a short code that
    ``explain.plain_reason`` turns into words for the user; ``confidence`` the value the router read.

    Codes — kept: ``confident`` (the answer looks right), ``above_threshold:T`` (a threshold router kept an
    answer under 50 % because its threshold T is lower), ``no_better`` (POMDP: no tier is likely to do well,
    HOPELESS is the likeliest state), ``not_worth`` (POMDP: a larger tier likely does better, but not by
    enough for its cost); routed: ``unsure`` (confidence under 50 %), ``below_threshold:T`` (a threshold
    router routed an answer of 50 % or more because its threshold T is higher), ``likely_better`` (POMDP
    routed an answer of 50 % or more: the larger tier is expected to gain), ``unchecked`` (no confidence);
    either: ``random`` (a random draw), ``fixed`` (always_small / always_large). The trust router (abstain.py)
    keeps with ``likely_right``, routes with ``unsure`` and ends in "not sure" (action ``abstain``) with ``no_tier``
    (no tier is likely right: it does not escalate) or ``not_sure`` (the last tier's answer is likely wrong).
    """

    action: Literal["keep", "route", "abstain"]
    target: int | None
    reason: str
    why: str = ""
    confidence: float | None = None


class RouterError(AutomixError):
    """A router file or fit that cannot be used. str() is the one line shown to the user."""

    http_status = 400


class Router(ABC):
    kind: ClassVar[str]
    needs_confidence: ClassVar[bool] = True
    judges_last: ClassVar[bool] = False  # the last tier's answer is judged too (and may end in "not sure")

    def __init__(self) -> None:
        self.costs: tuple[float, ...] | None = None
        # What the router reads as confidence; None = the configured verifier's raw confidence.
        self.signal: Signal | None = None
        # The answer prompt of the run it was fitted on ({"layout": ..., "answer_examples": ...}):
        # its signals' distributions belong to that prompt. None when unknown.
        self.prompt: dict[str, Any] | None = None
        # Per tier name: abstain at the first token when P(abstain) reaches this (fitted by `calibrate`).
        self.abstain: dict[str, float] = {}

    # -- the interface ------------------------------------------------------------------
    def start(self, n_tiers: int) -> int:
        return 0

    def fit(self, records: Sequence[Record], costs: Sequence[float]) -> Router:
        self.costs = tuple(float(c) for c in costs)
        return self

    def signal_for(self, index: int, n_tiers: int) -> Signal | None:
        """The signal that judges tier ``index``'s answer (None: the configured verifier's confidence)."""
        return self.signal

    @abstractmethod
    def decide(self, obs: Observation) -> Decision: ...

    def params(self) -> dict[str, Any]:
        return {}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "automix-local-router",
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "costs": list(self.costs) if self.costs else None,
            "signal": self.signal.to_json() if self.signal else None,
            "prompt": self.prompt,
            "abstain": self.abstain,
            "params": self.params(),
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Router:
        return cls(**params)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(_dumps(self.to_json()) + "\n", encoding="utf-8")
        tmp.replace(path)


def _dumps(data: dict[str, Any]) -> str:
    """Indented JSON with its lists of numbers (a signal's weights, a table) written compactly, on one line."""
    text = json.dumps(data, indent=2)
    return re.sub(r"\[[-+0-9.eE,\s\[\]]*\]", lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)


class AlwaysSmall(Router):
    kind = "always_small"
    needs_confidence = False

    def decide(self, obs: Observation) -> Decision:
        return Decision("keep", None, "always_small: the first tier's answer is kept", "fixed")


class AlwaysLarge(Router):
    kind = "always_large"
    needs_confidence = False

    def start(self, n_tiers: int) -> int:
        return n_tiers - 1

    def decide(self, obs: Observation) -> Decision:
        if obs.tier < obs.n_tiers - 1:
            return Decision("route", obs.n_tiers - 1, "always_large", "fixed")
        return Decision("keep", None, "always_large: last tier", "fixed")


class RandomRouter(Router):
    kind = "random"
    needs_confidence = False

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        self.p, self.seed = float(p), int(seed)
        self._rng = random.Random(seed)

    def decide(self, obs: Observation) -> Decision:
        draw = self._rng.random()
        if draw < self.p:
            return Decision("route", obs.tier + 1, f"random: draw {draw:.2f} < p={self.p:.2f}", "random")
        return Decision("keep", None, f"random: draw {draw:.2f} >= p={self.p:.2f}", "random")

    def params(self) -> dict[str, Any]:
        return {"p": self.p, "seed": self.seed}


class ThresholdRouter(Router):
    """Route to the next tier when confidence < t. ``fit`` searches t on training records."""

    kind = "threshold"

    def __init__(
        self, threshold: float = 0.5, lambda_: float | None = None, target_escalation: float | None = None
    ) -> None:
        super().__init__()
        self.threshold = float(threshold)
        self.lambda_ = lambda_
        self.target_escalation = target_escalation

    def decide(self, obs: Observation) -> Decision:
        conf = obs.confidences[obs.tier]
        if conf is None:
            return Decision("route", obs.tier + 1, "threshold: no confidence available", "unchecked")
        if conf < self.threshold:
            why = "unsure" if conf < 0.5 else f"below_threshold:{self.threshold:.6g}"
            reason = f"confidence {conf:.2f} < threshold {self.threshold:.2f}"
            return Decision("route", obs.tier + 1, reason, why, conf)
        why = "confident" if conf >= 0.5 else f"above_threshold:{self.threshold:.6g}"
        return Decision("keep", None, f"confidence {conf:.2f} >= threshold {self.threshold:.2f}", why, conf)

    def fit(self, records: Sequence[Record], costs: Sequence[float]) -> Router:
        super().fit(records, costs)
        values = sorted({c for r in records for c in r.confidences[:-1] if c is not None})
        candidates = [0.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [v + 1e-9 for v in values[-1:]]

        def make(t: float) -> Router:
            return ThresholdRouter(t)

        assert self.costs is not None  # set by Router.fit
        self.threshold = _choose(candidates, make, records, self.costs, self.lambda_, self.target_escalation)
        return self

    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "lambda_": self.lambda_, "target_escalation": self.target_escalation}


class SelfConsistency(ThresholdRouter):
    """The paper's self-consistency baseline: a fixed threshold of 0.5."""

    kind = "self_consistency"

    def __init__(self, threshold: float = 0.5, **_: Any) -> None:
        super().__init__(0.5)

    def fit(self, records: Sequence[Record], costs: Sequence[float]) -> Router:
        Router.fit(self, records, costs)
        return self

    def params(self) -> dict[str, Any]:
        return {}


def confidence_bin(conf: float, bins: int) -> int:
    """Discretise a confidence in [0, 1] into ``bins`` bins centred on 0, 1/(bins-1), …, 1.

    With bins = 9 this maps the sampled verifier's k = 8 values exactly onto one bin each.
    """
    c = min(1.0, max(0.0, float(conf)))
    return round(c * (bins - 1))


class POMDPRouter(Router):
    """The AutoMix POMDP, for N tiers.

    Hidden state: which tier is the cheapest to reach the best answer (GOOD = the first tier,
    NEEDY→j = tier j is needed), or HOPELESS when no tier scores above ``hopeless_below``. Each state
    carries the mean performance vector of its training records. Observations are the discretised
    verifier confidences of the tiers run so far, with an observation model P(bin | state) per tier
    estimated from training records with additive and kernel smoothing. The belief is updated by
    Bayes' rule and the action (keep, or route to any later tier) maximises expected P − λ·C by an
    exhaustive search over the remaining finite horizon.
    """

    kind = "pomdp"

    def __init__(
        self,
        bins: int = 9,
        lambda_: float | None = None,
        target_escalation: float | None = None,
        hopeless_below: float = 0.1,
        alpha: float = 1.0,
        bandwidth: float = 0.75,
        prior: list[float] | None = None,
        rewards: list[list[float]] | None = None,
        observation: list[list[list[float]]] | None = None,
        n_tiers: int | None = None,
    ) -> None:
        super().__init__()
        self.bins = int(bins)
        self.lambda_ = lambda_
        self.target_escalation = target_escalation
        self.hopeless_below = float(hopeless_below)
        self.alpha = float(alpha)
        self.bandwidth = float(bandwidth)
        self.prior = np.asarray(prior, dtype=float) if prior is not None else None
        self.rewards = np.asarray(rewards, dtype=float) if rewards is not None else None
        self.observation = np.asarray(observation, dtype=float) if observation is not None else None
        self.n_tiers = n_tiers
        self._memo: dict[tuple, Decision] = {}

    # states: 0..N-1 = cheapest tier reaching the best score; N = HOPELESS
    def state_names(self) -> list[str]:
        n = self.n_tiers or 2
        return ["GOOD"] + [f"NEEDY→{j}" if n > 2 else "NEEDY" for j in range(1, n)] + ["HOPELESS"]

    def _state_of(self, r: Record) -> int:
        best = max(r.scores)
        if best < self.hopeless_below:
            return len(r.scores)
        return next(j for j, s in enumerate(r.scores) if s >= best - 1e-9)

    def fit(self, records: Sequence[Record], costs: Sequence[float]) -> Router:
        super().fit(records, costs)
        if not records:
            raise RouterError("cannot fit the POMDP router on zero records")
        n = len(records[0].scores)
        self.n_tiers = n
        n_states = n + 1
        states = np.array([self._state_of(r) for r in records])
        scores = np.array([r.scores for r in records], dtype=float)
        counts = np.bincount(states, minlength=n_states).astype(float)
        self.prior = (counts + self.alpha) / (counts.sum() + self.alpha * n_states)
        overall = scores.mean(axis=0)
        self.rewards = np.array([scores[states == s].mean(axis=0) if counts[s] else overall for s in range(n_states)])
        kernel = _gaussian_kernel(self.bins, self.bandwidth)
        obs = np.full((n, n_states, self.bins), 1.0 / self.bins)
        for i in range(n - 1):
            for s in range(n_states):
                hist = np.zeros(self.bins)
                for r, st in zip(records, states, strict=True):
                    c = r.confidences[i]
                    if st == s and c is not None:
                        hist[confidence_bin(c, self.bins)] += 1
                smooth = kernel @ hist + self.alpha
                obs[i, s] = smooth / smooth.sum()
        self.observation = obs
        if self.lambda_ is None or self.target_escalation is not None:
            target = self.target_escalation
            grid = [0.0, *np.geomspace(1e-5, 10.0, 60).tolist()]
            fitted = dict(self.params())
            fitted.pop("target_escalation")

            def make(lam: float) -> Router:
                router = POMDPRouter(**{**fitted, "lambda_": lam})
                router.costs = self.costs
                return router

            assert self.costs is not None  # set by Router.fit
            self.lambda_ = _choose(grid, make, records, self.costs, None, target)
        self._memo = {}
        return self

    def _belief(self, obs: Observation) -> np.ndarray:
        assert self.prior is not None and self.observation is not None
        b = self.prior.copy()
        for i, conf in enumerate(obs.confidences[: obs.tier + 1]):
            if conf is not None and i < obs.n_tiers - 1:
                b = b * self.observation[i, :, confidence_bin(conf, self.bins)]
        total = b.sum()
        return b / total if total > 0 else self.prior.copy()

    def _value(self, tier: int, belief: np.ndarray) -> tuple[float, int | None]:
        """Best expected P − λ·(future cost) from holding ``tier``'s answer: (value, route target)."""
        assert self.rewards is not None and self.observation is not None and self.costs is not None
        n = self.n_tiers or 2
        lam = self.lambda_ or 0.0
        best, target = float(belief @ self.rewards[:, tier]), None
        for j in range(tier + 1, n):
            v = -lam * self.costs[j]
            if j == n - 1:
                v += float(belief @ self.rewards[:, j])
            else:
                for o in range(self.bins):
                    joint = belief * self.observation[j, :, o]
                    p_o = joint.sum()
                    if p_o > 1e-15:
                        v += p_o * self._value(j, joint / p_o)[0]
            if v > best + 1e-12:
                best, target = v, j
        return best, target

    def set_lambda(self, value: float) -> None:
        """A new trade-off λ (reward P − λ·C); the decisions remembered for the old one are dropped."""
        self.lambda_ = max(0.0, float(value))
        self._memo = {}

    def decide(self, obs: Observation) -> Decision:
        key = (
            obs.tier,
            obs.n_tiers,
            tuple(None if c is None else confidence_bin(c, self.bins) for c in obs.confidences[: obs.tier + 1]),
        )
        if key not in self._memo:  # the decision depends only on the binned observations (and λ: set_lambda)
            self._memo[key] = self._decide(obs)
        d = self._memo[key]
        conf = obs.confidences[obs.tier]
        why = d.why
        if d.action == "route":  # the memo is per confidence bin, and a bin may straddle 50 %
            why = "unchecked" if conf is None else "unsure" if conf < 0.5 else "likely_better"
        reason = f"confidence {conf:.2f}; {d.reason}" if conf is not None else d.reason
        return Decision(d.action, d.target, reason, why, conf)

    def _decide(self, obs: Observation) -> Decision:
        if self.prior is None:
            raise RouterError("the POMDP router is not fitted: load a calibration file or call fit()")
        if self.n_tiers is not None and obs.n_tiers != self.n_tiers:
            raise RouterError(f"the POMDP router was fitted for {self.n_tiers} tiers, the cascade has {obs.n_tiers}")
        belief = self._belief(obs)
        value, target = self._value(obs.tier, belief)
        assert self.rewards is not None  # fitted: checked above
        keep = float(belief @ self.rewards[:, obs.tier])
        names = self.state_names()
        shown = ", ".join(f"{names[s]} {belief[s]:.2f}" for s in np.argsort(-belief)[:3])
        if target is None:
            likeliest = int(np.argmax(belief))
            why = "confident" if likeliest == 0 else "no_better" if likeliest == len(names) - 1 else "not_worth"
            return Decision("keep", None, f"belief {shown}; keeping is best (E[P] {keep:.2f})", why)
        gain = value - keep
        reason = f"belief {shown}; routing to tier {target} gains {gain:+.3f} in P − λ·C"
        return Decision("route", target, reason, "unsure")  # refined by decide() from the exact confidence

    def params(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "lambda_": self.lambda_,
            "target_escalation": self.target_escalation,
            "hopeless_below": self.hopeless_below,
            "alpha": self.alpha,
            "bandwidth": self.bandwidth,
            "prior": None if self.prior is None else self.prior.tolist(),
            "rewards": None if self.rewards is None else self.rewards.tolist(),
            "observation": None if self.observation is None else self.observation.tolist(),
            "n_tiers": self.n_tiers,
        }


def _gaussian_kernel(bins: int, bandwidth: float) -> np.ndarray:
    if bandwidth <= 0:
        return np.eye(bins)
    idx = np.arange(bins)
    k = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / bandwidth) ** 2)
    return k / k.sum(axis=0, keepdims=True)


# --------------------------------------------------------------------------- simulation


@dataclass
class Outcome:
    """What a router does over records: mean quality, mean cost, share of items escalated.

    ``item_scores`` and ``item_costs`` keep each record's own quality and cost (for bootstrap intervals).
    """

    performance: float
    cost: float
    escalation: float
    final_tiers: list[int] = field(default_factory=list)
    item_scores: list[float] = field(default_factory=list)
    item_costs: list[float] = field(default_factory=list)


def simulate(router: Router, records: Sequence[Record], costs: Sequence[float]) -> Outcome:
    """Replay the cascade over labelled records without any model."""
    if not records:
        return Outcome(math.nan, math.nan, math.nan)
    n = len(records[0].scores)
    escalated = 0
    finals: list[int] = []
    item_scores: list[float] = []
    item_costs: list[float] = []
    for r in records:
        tier = router.start(n)
        spent = costs[tier]
        while tier < n - 1:
            d = router.decide(
                Observation(tier, tuple(c if i <= tier else None for i, c in enumerate(r.confidences)), n)
            )
            if d.action == "keep":
                break
            tier = d.target if d.target is not None else tier + 1
            spent += costs[tier]
        item_scores.append(r.scores[tier])
        item_costs.append(spent)
        escalated += tier > 0
        finals.append(tier)
    k = len(records)
    return Outcome(sum(item_scores) / k, sum(item_costs) / k, escalated / k, finals, item_scores, item_costs)


def _choose(
    candidates: Sequence[float],
    make: Any,
    records: Sequence[Record],
    costs: Sequence[float],
    lambda_: float | None,
    target_escalation: float | None,
) -> float:
    """Pick the candidate parameter: nearest a target escalation rate, else best P − λC, else best ΔIBC."""
    n = len(records[0].scores)
    small = simulate(AlwaysSmall(), records, costs)
    large_cost = costs[n - 1]
    large_perf = sum(r.scores[-1] for r in records) / len(records)
    best_key: tuple[float, ...] | None = None
    best = candidates[0]
    for cand in candidates:
        out = simulate(make(cand), records, costs)
        if target_escalation is not None:
            key: tuple[float, ...] = (-abs(out.escalation - target_escalation), out.performance)
        elif lambda_ is not None:
            key = (out.performance - lambda_ * out.cost,)
        else:
            d = delta_ibc(out.performance, out.cost, small.performance, small.cost, large_perf, large_cost)
            key = (round(d, 6) if not math.isnan(d) else -math.inf, out.performance)
        if best_key is None or key > best_key:
            best_key, best = key, cand
    return best


# --------------------------------------------------------------------------- construction and files

ROUTER_CLASSES: dict[str, type[Router]] = {
    cls.kind: cls for cls in (AlwaysSmall, AlwaysLarge, RandomRouter, ThresholdRouter, SelfConsistency, POMDPRouter)
}


def router_classes() -> dict[str, type[Router]]:
    """Every router kind, the trust router (abstain.py, which builds on this module) included."""
    from .abstain import TrustRouter

    return ROUTER_CLASSES | {TrustRouter.kind: TrustRouter}


def from_json(data: dict[str, Any]) -> Router:
    if not isinstance(data, dict) or data.get("format") != "automix-local-router":
        raise RouterError('not an automix-local router file (missing "format": "automix-local-router")')
    if data.get("version") != FORMAT_VERSION:
        raise RouterError(f"router file version {data.get('version')!r} is not supported (expected {FORMAT_VERSION})")
    cls = router_classes().get(data.get("kind", ""))
    if cls is None:
        raise RouterError(f"unknown router kind {data.get('kind')!r}; expected one of {', '.join(router_classes())}")
    try:
        router = cls.from_params(data.get("params") or {})
    except (TypeError, ValueError) as exc:
        raise RouterError(f"bad parameters for router {cls.kind}: {exc}") from None
    if data.get("costs") is not None:
        router.costs = tuple(float(c) for c in data["costs"])
    if isinstance(data.get("prompt"), dict):
        router.prompt = dict(data["prompt"])
    abstain = data.get("abstain") or {}
    if not isinstance(abstain, dict) or not all(
        isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in abstain.values()
    ):
        raise RouterError('"abstain" must map tier names to probabilities between 0 and 1')
    router.abstain = {str(k): float(v) for k, v in abstain.items()}
    if data.get("signal"):
        try:
            router.signal = Signal.from_json(data["signal"])
        except SignalError as exc:
            raise RouterError(str(exc)) from None
    return router


def load(path: Path) -> Router:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RouterError(f"{path}: router file not found") from None
    except (OSError, ValueError) as exc:
        raise RouterError(f"{path}: cannot read router file: {exc}") from None
    try:
        return from_json(data)
    except RouterError as exc:
        raise RouterError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- from models.toml


def make_router(config: Config) -> Router:
    cfg = config.cascade
    router: Router
    if cfg.calibration is not None:
        router = load(cfg.calibration)
        if router.kind != cfg.router:
            raise RouterError(
                f"{cfg.calibration}: holds a {router.kind!r} router but cascade.router is {cfg.router!r}; "
                "make them agree"
            )
        fitted = getattr(router, "n_tiers", None)
        if fitted is not None and fitted != len(config.tiers):
            names = ", ".join(t.name for t in config.tiers)
            raise RouterError(
                f"{cfg.calibration}: this router was fitted for {fitted} tiers, but models.toml has "
                f"{len(config.tiers)} ({names}). Calibrate one for these tiers (`automix-local eval run` + "
                '`calibrate`), or use router = "threshold" without a calibration file'
            )
        fitted_prompt = router.prompt or {}
        ours = {"layout": cfg.layout, "answer_examples": cfg.answer_examples}
        differ = [k for k in ours if k in fitted_prompt and fitted_prompt[k] != ours[k]]
        if differ and router.signal is not None:
            was = ", ".join(f"{k} = {json.dumps(fitted_prompt[k])}" for k in differ)
            now = ", ".join(f"{k} = {json.dumps(ours[k])}" for k in differ)
            raise RouterError(
                f"{cfg.calibration}: this router was fitted on answers to another prompt ({was}; models.toml "
                f"has {now}), and its confidence signal belongs to that prompt. Set {was} in [cascade], or "
                "calibrate one on a run recorded with this prompt (`automix-local eval run` + `calibrate`)"
            )
        if cfg.lambda_ is not None and isinstance(router, POMDPRouter):
            router.set_lambda(cfg.lambda_)  # the config's trade-off overrides the fitted one
        from .abstain import TrustRouter

        if isinstance(router, TrustRouter):  # the config's target and not_sure choose its operating point
            router.set_target(cfg.target, cfg.not_sure)
        return router
    if cfg.router == "random":
        router = RandomRouter(p=cfg.random_p, seed=cfg.seed)
    elif cfg.router == "threshold":
        router = ThresholdRouter(threshold=cfg.threshold)
    else:
        router = ROUTER_CLASSES[cfg.router]()
    router.costs = tuple(t.cost for t in config.tiers)
    return router
