"""Signals scored on a run: which features, fitted how, their AUROC held out, their share of the oracle's
gain at fixed escalation rates, and abstaining at the first token."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..gain import RATES, heldout_shares, oracle_quality, random_quality
from ..grounding import GROUNDING_FEATURES
from ..signals import (
    AGREEMENT_FEATURES,
    FREE_FEATURES,
    TOKEN_FEATURES,
    VERIFIER_FEATURES,
    Signal,
    fit_logistic,
)
from .model import AbstainQuality, OracleShare, SignalQuality, SignalShare
from .runs import EvalItem, Run
from .stats import CORRECT_F1, _ms, _split, auroc, reliability

# --------------------------------------------------------------------------- signals and costs


@dataclass(frozen=True)
class SignalSpec:
    name: str
    features: tuple[str, ...]
    raw: bool  # a verifier's confidence used as is (the paper's signal)
    # what the logistic model learns: "correct" (the small answer is right) or "gain" (the large tier does not
    # beat the small one: escalating buys nothing); either way a higher confidence means "keep"
    target: str = "correct"

    @property
    def needs_verifier(self) -> str | None:
        for f in self.features:
            if f in VERIFIER_FEATURES:
                return VERIFIER_FEATURES[f]
        return None

    @property
    def needs_samples(self) -> bool:
        """Whether it reads answers sampled beside the greedy one ([cascade] agreement_samples)."""
        return any(f in AGREEMENT_FEATURES for f in self.features)

    def seconds(self, item: EvalItem) -> float:
        """What computing it took beyond the answer, on one recorded item."""
        strategy = self.needs_verifier
        extra = item.verify_seconds[strategy][0] if strategy else 0.0
        if self.needs_samples:
            extra = (extra or 0.0) + item.features[0].get("agreement_seconds", math.nan)
        return math.nan if extra is None else float(extra)

    def fit(self, items: Sequence[EvalItem]) -> Signal:
        if self.raw:
            return Signal.verifier(VERIFIER_FEATURES[self.features[0]])
        X = np.array([[it.features[0][f] for f in self.features] for it in items])
        if self.target == "gain":
            y = np.array([it.scores[-1] <= it.scores[0] + 1e-9 for it in items])
        else:
            y = np.array([it.scores[0] >= CORRECT_F1 for it in items])
        return fit_logistic(self.features, X, y)


def signal_specs(available: Sequence[str]) -> list[SignalSpec]:
    """The signals a run can be scored with: each feature alone, and their combinations (a logistic model
    of the small answer being right; "→ gain": of the large tier not beating it)."""
    specs = [SignalSpec(f, (f,), True) for f in available if f in VERIFIER_FEATURES]
    free = [f for f in FREE_FEATURES if f in available]
    token = [f for f in TOKEN_FEATURES if f in available]
    grounding = [f for f in GROUNDING_FEATURES if f in available]
    agreement = [f for f in AGREEMENT_FEATURES if f in available]
    specs += [SignalSpec(f, (f,), False) for f in (*free, *token, *grounding, *agreement)]
    if len(free) > 1:
        specs.append(SignalSpec("free combined", tuple(free), False))
    if free and token:
        specs.append(SignalSpec("free + token", (*free, *token), False))
    if grounding:
        specs.append(SignalSpec("grounding combined", tuple(grounding), False))
        if free:
            specs.append(SignalSpec("free + grounding", (*free, *grounding), False))
            every, name = (*free, *grounding), "free + grounding"
            if token:
                every, name = (*free, *token, *grounding), "free + token + grounding"
                specs.append(SignalSpec(name, every, False))
            specs.append(SignalSpec(f"{name} → gain", every, False, "gain"))
            if agreement:
                specs.append(SignalSpec(f"{name} + agreement", (*every, *agreement), False))
    for v in (f for f in available if f in VERIFIER_FEATURES):
        if free:
            specs.append(SignalSpec(f"free + {v}", (*free, v), False))
            if grounding:
                specs.append(SignalSpec(f"free + grounding + {v}", (*free, *grounding, v), False))
    return specs


def router_specs(specs: Sequence[SignalSpec]) -> list[SignalSpec]:
    """The signals the router tables are built for: the paper's and the shipped free features alone, and the
    combinations (every single feature is still scored in the signal tables). Not those reading sampled
    answers: the router tables' costs do not charge for the samples (their seconds are in the signal
    tables' cost column)."""
    return [
        s for s in specs if not s.needs_samples and (s.raw or len(s.features) > 1 or s.features[0] in FREE_FEATURES)
    ]


def signal_table(run: Run, specs: Sequence[SignalSpec], train_size: int, seeds: int) -> dict[str, SignalQuality]:
    """Per signal: AUROC of its raw value against "the small answer is right", held-out AUROC and
    calibration of the fitted model, and the verification's seconds when it needs one."""
    n = len(run.items)
    labels = [it.scores[0] >= CORRECT_F1 for it in run.items]
    sig: dict[str, SignalQuality] = {}
    for spec in specs:
        raw = held = None
        if spec.raw or len(spec.features) == 1:
            vals = [it.features[0][spec.features[0]] for it in run.items]
            raw = auroc(vals, labels)
        if spec.raw:
            calibration = reliability(vals, labels)
        else:  # held-out AUROC and calibration of the fitted logistic model
            aucs, confs, labs = [], [], []
            for seed in range(seeds):
                tr, te = _split(n, train_size, seed)
                s = spec.fit([run.items[i] for i in tr])
                c = [s.confidence(run.items[i].features[0]) for i in te]
                lab = [labels[i] for i in te]
                aucs.append(auroc(c, lab))
                confs += c
                labs += lab
            held, calibration = _ms(aucs), reliability(confs, labs)
        seconds = None
        if (spec.needs_verifier or spec.needs_samples) and run.has_seconds:
            seconds = float(np.mean([spec.seconds(it) for it in run.items]))
        sig[spec.name] = SignalQuality(
            features=list(spec.features),
            needs_verifier=spec.needs_verifier,
            auroc_raw=raw,
            auroc_heldout=held,
            reliability=calibration,
            verify_seconds=seconds,
        )
    return sig


def fit_abstain(
    p: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, unanswerable: Sequence[bool] | np.ndarray
) -> float | None:
    """The threshold τ on P(abstain) at the first token that maximises mean F1 when every item with
    p ≥ τ abstains (an abstention scores 1 on an unanswerable item, 0 otherwise); None when no τ beats
    abstaining only where the model chose to. τ sits halfway between the last item abstaining and the
    next (a margin for items not seen)."""
    pv = np.asarray(p, dtype=float)
    gain = np.asarray(unanswerable, dtype=float) - np.asarray(scores, dtype=float)
    order = np.argsort(-pv, kind="stable")
    best, tau, cum = 0.0, None, 0.0
    for rank, i in enumerate(order):
        cum += gain[i]
        nxt = pv[order[rank + 1]] if rank + 1 < len(order) else None
        if nxt is not None and nxt == pv[i]:
            continue  # the whole tied group abstains or none of it
        if cum > best + 1e-9:
            best, tau = cum, float(pv[i] if nxt is None else (pv[i] + nxt) / 2)
    return tau


def _with_abstain(p: np.ndarray, scores: np.ndarray, unanswerable: np.ndarray, tau: float | None) -> np.ndarray:
    if tau is None:
        return scores
    return np.where(p >= tau, unanswerable.astype(float), scores)


def _abstain_data(run: Run) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per tier with a recorded P(abstain): (P(abstain), F1) per item; empty without unanswerable items."""
    items = run.items
    if not any(it.unanswerable for it in items) or not items[0].p_abstain:
        return {}
    out = {}
    for i, name in enumerate(run.tiers):
        if all(it.p_abstain[i] is not None for it in items):
            p = np.array([it.p_abstain[i] for it in items], dtype=float)
            out[name] = (p, np.array([it.scores[i] for it in items]))
    return out


def abstain_thresholds(run: Run) -> dict[str, float]:
    """Per tier, the abstention threshold fitted on every item (what `calibrate` writes), where one helps."""
    una = np.array([it.unanswerable for it in run.items])
    fitted = {name: fit_abstain(p, f1, una) for name, (p, f1) in _abstain_data(run).items()}
    return {name: tau for name, tau in fitted.items() if tau is not None}


def abstain_table(run: Run, train_size: int, seeds: int) -> dict[str, AbstainQuality] | None:
    """Per local tier: F1 as recorded, and with an abstention threshold fitted on the train part and applied
    to the held-out part (mean over the splits); the threshold fitted on every item (what `calibrate` writes)
    and how many items it turns into abstentions. None when the run has no P(abstain) or no unanswerable item."""
    items = run.items
    una = np.array([it.unanswerable for it in items])
    out: dict[str, AbstainQuality] = {}
    for name, (p, f1) in _abstain_data(run).items():
        before, after = [], []
        for seed in range(seeds):
            tr, te = _split(len(items), train_size, seed)
            tau = fit_abstain(p[tr], f1[tr], una[tr])
            before.append(float(f1[te].mean()))
            after.append(float(_with_abstain(p[te], f1[te], una[te], tau).mean()))
        tau_all = fit_abstain(p, f1, una)
        abstains = float(np.mean(p >= tau_all)) if tau_all is not None else 0.0
        out[name] = AbstainQuality(_ms(before), _ms(after), tau_all, abstains)
    return out or None


def oracle_shares(run: Run, specs: Sequence[SignalSpec], train_size: int, seeds: int) -> OracleShare:
    """Per signal, held out: the share of the oracle's gain over random mixing when it escalates 25 % and
    50 % of the items (see gain.py); beside it, on all items, what random mixing and the oracle keep of
    the large tier's F1 at those rates, and each signal's cost as a share of the small tier's answer."""
    items = run.items
    small = np.array([it.scores[0] for it in items])
    large = np.array([it.scores[-1] for it in items])
    splits = [_split(len(items), train_size, seed) for seed in range(seeds)]
    answer_s = float(np.mean([it.answer_seconds[0] for it in items])) if run.has_seconds else math.nan
    signals: dict[str, SignalShare] = {}
    for spec in specs:

        def confidences(tr: np.ndarray, te: np.ndarray, spec: SignalSpec = spec) -> np.ndarray:
            fitted = spec.fit([items[i] for i in tr])
            return np.array([fitted.confidence(items[i].features[0]) for i in te])

        cost = None
        if not (spec.needs_verifier or spec.needs_samples):
            cost = 0.0
        elif run.has_seconds and answer_s > 0:
            cost = float(np.mean([spec.seconds(it) for it in items])) / answer_s
        signals[spec.name] = SignalShare(heldout_shares(small, large, confidences, splits, RATES), cost)
    p_large = float(large.mean()) or math.nan
    return OracleShare(
        list(RATES),
        {f"{r:g}": random_quality(small, large, r) / p_large for r in RATES},
        {f"{r:g}": oracle_quality(small, large, r) / p_large for r in RATES},
        signals,
    )
