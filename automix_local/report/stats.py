"""The statistics the report reads: AUROC, calibration bins, mean ± std, train/test splits, item resamples."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from ..scoring import RIGHT_F1
from .model import Interval, MeanStd, Reliability, ReliabilityBin

CORRECT_F1 = RIGHT_F1  # an answer "is correct" (for AUROC, calibration and the trust score) when its F1 reaches this
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


def bootstrap_weights(n: int, replicates: int = BOOTSTRAP) -> np.ndarray:
    """Multinomial counts (replicates × items): one resample of the whole item set per row (the ΔIBC intervals'
    resamples: the same seed, so the same draws)."""
    return np.random.default_rng(BOOTSTRAP_SEED).multinomial(n, [1 / n] * n, replicates)


def bootstrap_mean(parts: Sequence[tuple[np.ndarray, np.ndarray]], weights: np.ndarray) -> Interval:
    """A 95 % percentile interval for the mean over parts of each part's mean value, resampling the items.

    ``parts`` holds, per seed, the test items' indices and a value per test item (a router held out), or one part
    of every item; each row of ``weights`` reweighs the items of every part alike, as in the ΔIBC intervals. Also
    returns the share of replicates above zero."""
    reps = []
    for idx, values in parts:
        w = weights[:, idx].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):  # a replicate may draw none of a part's items
            reps.append(w @ np.asarray(values, dtype=float) / w.sum(axis=1))
    return replicate_interval(reps)


def replicate_interval(reps: Sequence[Sequence[float]]) -> Interval:
    """The 95 % percentile interval of the replicates' means over parts (rows: parts, columns: replicates);
    a replicate that drew no item of any part is dropped. Also the share of replicates above zero."""
    arr = np.array(reps, dtype=float)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(arr, axis=0)
    means = means[~np.isnan(means)]
    if len(means) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(low), float(high), float(np.mean(means > 0)), len(means))
