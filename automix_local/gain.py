"""The share of the oracle's gain: how much of what perfect routing could add a signal captures.

At a fixed escalation rate r, a signal escalates the r·n items it is least confident in. Its quality
(mean F1 of the answers kept) is compared with two references at the same rate and so the same cost:

* random mixing: escalate r·n items at random — in expectation mean(small) + r·mean(large − small);
* the oracle: escalate the r·n items where the large tier gains most.

share = (quality − random) / (oracle − random): 0 is a coin, 1 is perfect, negative is worse than a
coin. Unlike ΔIBC it does not depend on where a router's threshold happened to land (ΔIBC swings by
hundreds of points when a router escalates 5–15 % of 100 items), so signals compare at equal cost.

Ties: items with equal confidence straddling the cut are escalated fractionally (each with the
share of the tied group that fits), so a discrete signal is not credited with an arbitrary order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

RATES = (0.25, 0.5)


def escalated_quality(small: np.ndarray, large: np.ndarray, confidence: np.ndarray, rate: float) -> float:
    """Mean score when the rate·n least confident items take the large tier's answer (fractional at the cut)."""
    n = len(small)
    k = rate * n
    gain = large - small
    order = np.argsort(confidence, kind="stable")
    conf_sorted = confidence[order]
    gain_sorted = gain[order]
    total = float(small.sum())
    taken = 0.0
    i = 0
    while i < n and taken < k - 1e-12:
        j = i
        while j + 1 < n and conf_sorted[j + 1] == conf_sorted[i]:
            j += 1
        size = j - i + 1
        part = min(1.0, (k - taken) / size)  # a tied group at the cut is escalated in part
        total += part * float(gain_sorted[i : j + 1].sum())
        taken += part * size
        i = j + 1
    return total / n


def random_quality(small: np.ndarray, large: np.ndarray, rate: float) -> float:
    return float(small.mean() + rate * (large - small).mean())


def oracle_quality(small: np.ndarray, large: np.ndarray, rate: float) -> float:
    """Escalating the rate·n items where the large tier gains most."""
    return escalated_quality(small, large, -(large - small), rate)


def oracle_share(small: np.ndarray, large: np.ndarray, confidence: np.ndarray, rate: float) -> float:
    """(signal − random) / (oracle − random) at one escalation rate; nan when the oracle gains nothing."""
    rnd = random_quality(small, large, rate)
    best = oracle_quality(small, large, rate) - rnd
    if best <= 1e-12:
        return math.nan
    return (escalated_quality(small, large, confidence, rate) - rnd) / best


def heldout_shares(
    small: Sequence[float] | np.ndarray,
    large: Sequence[float] | np.ndarray,
    confidences: Callable[[np.ndarray, np.ndarray], np.ndarray],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    rates: Sequence[float] = RATES,
    bootstrap: int = 500,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per rate: the share on each split's test part (``confidences(train, test)`` gives the signal's
    confidence on the test items, fitted on the train items), averaged over the splits, with a 95 %
    percentile interval over resamples of each test part (the same resamples for every signal when
    ``seed`` is the same)."""
    s, lg = np.asarray(small, dtype=float), np.asarray(large, dtype=float)
    per_split = [(te, np.asarray(confidences(tr, te), dtype=float)) for tr, te in splits]
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(te), size=(bootstrap, len(te))) for te, _ in per_split]
    out: dict[str, dict[str, float]] = {}
    for rate in rates:
        values = [oracle_share(s[te], lg[te], c, rate) for te, c in per_split]
        reps = []
        for b in range(bootstrap):
            vals = []
            for (te, c), d in zip(per_split, draws, strict=True):
                idx = d[b]
                vals.append(oracle_share(s[te][idx], lg[te][idx], c[idx], rate))
            vals = [v for v in vals if not math.isnan(v)]
            if vals:
                reps.append(float(np.mean(vals)))
        finite = [v for v in values if not math.isnan(v)]
        out[f"{rate:g}"] = {
            "share": float(np.mean(finite)) if finite else math.nan,
            "sd": float(np.std(finite)) if finite else math.nan,
            "lo": float(np.percentile(reps, 2.5)) if reps else math.nan,
            "hi": float(np.percentile(reps, 97.5)) if reps else math.nan,
        }
    return out
