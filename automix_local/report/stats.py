"""The statistics the report reads: AUROC, calibration bins, mean ± std, train/test splits."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .model import MeanStd, Reliability, ReliabilityBin

CORRECT_F1 = 0.5  # an answer "is correct" (for AUROC and calibration) when its F1 reaches this
BOOTSTRAP = 1000  # item resamples behind each ΔIBC interval
BOOTSTRAP_SEED = 12345
MIN_GAP = 0.02  # ΔIBC is left undefined on a test part where the tiers' qualities differ by less


# --------------------------------------------------------------------------- statistics


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties); nan if one class is absent."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reliability(conf: Sequence[float], labels: Sequence[bool], bins: int = 10) -> Reliability:
    """Reliability-diagram data (equal-width bins) and the expected calibration error."""
    c = np.clip(np.asarray(conf, dtype=float), 0, 1)
    y = np.asarray(labels, dtype=float)
    idx = np.minimum((c * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append(
                ReliabilityBin((b / bins, (b + 1) / bins), int(m.sum()), float(c[m].mean()), float(y[m].mean()))
            )
            ece += m.sum() / len(c) * abs(c[m].mean() - y[m].mean())
    return Reliability(rows, float(ece))


def _ms(values: Sequence[float]) -> MeanStd:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return MeanStd(math.nan, math.nan, 0)
    return MeanStd(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v))


def _split(n: int, train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:train], perm[train:]
