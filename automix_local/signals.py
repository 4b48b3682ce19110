"""Confidence signals: what a router reads to judge the current tier's answer.

Beside the paper's self-verification, the small model's own answer gives signals for free: the mean
and minimum token log-probability of the answer, the probability that it starts to abstain, whether
it abstained, and its length. A ``Signal`` turns such features into one confidence in [0, 1]:

* ``verifier``: the raw confidence of a verification strategy (the paper's signal);
* ``logistic``: a logistic regression over any features, fitted on labelled records — with one
  feature it is a calibrated single signal, with several a calibrated combination.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import AutomixError
from .grounding import GROUNDING_FEATURES

VERIFIER_FEATURES = {"verifier_logprob": "logprob", "verifier_sampled": "sampled"}
FREE_FEATURES = ("mean_logprob", "min_logprob", "p_abstain", "abstained", "length")
# the answer's token log-probabilities beyond their mean (Gupta et al. 2024: quantiles beat the mean,
# which length biases) and where the least likely token sits (0: first, 1: last)
# and how spread each step's whole distribution was: its entropy and the margin of its top two tokens
# (local models only: a remote API returns a few top log-probabilities, not the distribution)
TOKEN_FEATURES = (
    "q10_logprob",
    "q25_logprob",
    "median_logprob",
    "last_logprob",
    "min_position",
    "mean_entropy",
    "max_entropy",
    "min_margin",
)
# k answers sampled in one batch beside the greedy one ([cascade] agreement_samples): the mean token F1 of
# each against it, and the share that match it exactly (normalised); not free: recorded with its seconds
AGREEMENT_FEATURES = ("agreement", "agreement_exact")
# a later tier's answer against the previous tier's (token F1): free once both answered, read by the trust
# router's judgement of the last tier (abstain.py)
CASCADE_FEATURES = ("agreement_previous",)
FEATURES = (
    *VERIFIER_FEATURES,
    *FREE_FEATURES,
    *TOKEN_FEATURES,
    *GROUNDING_FEATURES,
    *AGREEMENT_FEATURES,
    *CASCADE_FEATURES,
)
MISSING_LOGPROB = -10.0  # an empty answer has no token log-probabilities: treat it as very unsure


class SignalError(AutomixError):
    """A signal that cannot be computed or loaded. str() is the one line shown to the user."""


def answer_features(
    token_logprobs: Sequence[float],
    first_logprobs: Mapping[str, float],
    abstained: bool,
    entropies: Sequence[float] | None = None,
    margins: Sequence[float] | None = None,
) -> dict[str, float]:
    """The free features of one answer (the spread features only where the backend gave them)."""
    lps = list(token_logprobs)
    firsts = [v for v in first_logprobs.values() if v > -math.inf]
    p_abstain = float(sum(math.exp(v) for v in firsts)) if firsts else 0.0
    arr = np.asarray(lps, dtype=float)
    quantile = (lambda q: float(np.quantile(arr, q))) if lps else (lambda q: MISSING_LOGPROB)
    return {
        "mean_logprob": float(np.mean(lps)) if lps else MISSING_LOGPROB,
        "min_logprob": float(min(lps)) if lps else MISSING_LOGPROB,
        "p_abstain": min(1.0, p_abstain),
        "abstained": 1.0 if abstained else 0.0,
        "length": float(len(lps)),
        "q10_logprob": quantile(0.1),
        "q25_logprob": quantile(0.25),
        "median_logprob": quantile(0.5),
        "last_logprob": float(lps[-1]) if lps else MISSING_LOGPROB,
        "min_position": float(np.argmin(arr)) / max(1, len(lps) - 1) if lps else 0.0,
    } | _spread_features(entropies, margins)


def agreement_features(answer: str, samples: Sequence[str]) -> dict[str, float]:
    """How far sampled answers agree with ``answer``: mean SQuAD token F1 and share of exact matches, both
    after SQuAD normalisation (two abstentions agree; an abstention and an answer do not)."""
    from .scoring import exact_match, token_f1

    if not samples:
        return {}
    return {
        "agreement": float(np.mean([token_f1(s, answer) for s in samples])),
        "agreement_exact": float(np.mean([exact_match(s, answer) for s in samples])),
    }


def previous_agreement(answer: str, previous: str) -> dict[str, float]:
    """``agreement_previous``: SQuAD token F1 between a tier's answer and the previous tier's (two abstentions
    agree)."""
    from .scoring import token_f1

    return {"agreement_previous": float(token_f1(answer, previous))}


def _spread_features(entropies: Sequence[float] | None, margins: Sequence[float] | None) -> dict[str, float]:
    if entropies is None or margins is None:
        return {}
    if not entropies:  # an empty answer: as unsure as the missing log-probabilities say
        return {"mean_entropy": -MISSING_LOGPROB, "max_entropy": -MISSING_LOGPROB, "min_margin": 0.0}
    return {
        "mean_entropy": float(np.mean(entropies)),
        "max_entropy": float(max(entropies)),
        "min_margin": float(min(margins)),
    }


@dataclass
class Signal:
    kind: str  # "verifier" | "logistic"
    features: tuple[str, ...]
    weights: list[float] = field(default_factory=list)
    bias: float = 0.0
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)

    @classmethod
    def verifier(cls, strategy: str) -> Signal:
        return cls("verifier", (f"verifier_{strategy}",))

    @property
    def name(self) -> str:
        if self.kind == "verifier":
            return self.features[0]
        return "+".join(self.features) if len(self.features) > 1 else f"{self.features[0]} (calibrated)"

    @property
    def needs_verifier(self) -> str | None:
        """The verification strategy this signal needs, or None if it is free."""
        needed = [VERIFIER_FEATURES[f] for f in self.features if f in VERIFIER_FEATURES]
        if len(needed) > 1:
            raise SignalError("a signal may use one verification strategy, not " + " and ".join(needed))
        return needed[0] if needed else None

    def confidence(self, feats: Mapping[str, float | None]) -> float:
        values = []
        for f in self.features:
            v = feats.get(f)
            if v is None:
                raise SignalError(f"feature {f!r} is not available for this answer")
            values.append(float(v))
        if self.kind == "verifier":
            return min(1.0, max(0.0, values[0]))
        z = self.bias + sum(
            w * (x - m) / s for w, x, m, s in zip(self.weights, values, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": list(self.features),
            "weights": self.weights,
            "bias": self.bias,
            "mean": self.mean,
            "scale": self.scale,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Signal:
        try:
            sig = cls(
                kind=str(data["kind"]),
                features=tuple(data["features"]),
                weights=[float(w) for w in data.get("weights", [])],
                bias=float(data.get("bias", 0.0)),
                mean=[float(m) for m in data.get("mean", [])],
                scale=[float(s) for s in data.get("scale", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SignalError(f"bad signal in router file: {exc}") from None
        unknown = [f for f in sig.features if f not in FEATURES]
        if sig.kind not in ("verifier", "logistic") or unknown or not sig.features:
            raise SignalError(f"bad signal in router file: kind {sig.kind!r}, features {list(sig.features)}")
        if sig.kind == "logistic" and not (len(sig.weights) == len(sig.mean) == len(sig.scale) == len(sig.features)):
            raise SignalError("bad signal in router file: weights, mean and scale must match the features")
        return sig


def fit_logistic(features: Sequence[str], X: np.ndarray, y: np.ndarray, l2: float = 1.0) -> Signal:
    """Fit P(correct | features) by L2-regularised logistic regression (Newton's method)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = (X - mean) / scale
    A = np.hstack([np.ones((len(Z), 1)), Z])
    w = np.zeros(A.shape[1])
    reg = np.full(A.shape[1], l2)
    reg[0] = 0.0  # the bias is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -30, 30)))
        grad = A.T @ (p - y) + reg * w
        H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(H, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Signal("logistic", tuple(features), w[1:].tolist(), float(w[0]), mean.tolist(), scale.tolist())
