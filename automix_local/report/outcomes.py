"""The trust router (keep, escalate or "not sure": abstain.py) from a recorded run: its signals and its table of
labelled questions, fitted for `calibrate`; held out for `eval report`; and the reliability of the percentage
the app shows beside an answer (a calibrated P(right))."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..abstain import TARGETS, Point, Table, Target, TrustRouter, held_out
from ..grounding import GROUNDING_FEATURES
from ..scoring import trust_value
from ..signals import CASCADE_FEATURES, FREE_FEATURES, TOKEN_FEATURES, Signal, fit_logistic
from .model import MeanStd, OutcomeRow, ReliabilityBin, ThreeOutcomes
from .runs import EvalItem, ReportError, Run
from .stats import _split

FOLDS = 5  # the table's P(right) is cross-fitted: each row's from signals fitted without it
# what each tier's P(right) reads: its own answer's free, token and grounding features; a later tier also how far
# it agrees with the previous tier's answer (measured, docs/quality.md: the small and large features together
# did no better held out than the large tier's own with the agreement)
FIRST_FEATURES = (*FREE_FEATURES, *TOKEN_FEATURES, *GROUNDING_FEATURES)
LAST_FEATURES = (*FIRST_FEATURES, *CASCADE_FEATURES)
RELIABILITY_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
Rows = Sequence[int] | np.ndarray


@dataclass(frozen=True)
class TrustSignals:
    first: Signal  # P(right) of a non-last tier's answer
    last: Signal  # P(right) of the last tier's answer


def _features(run: Run, tier: int) -> tuple[str, ...]:
    want = LAST_FEATURES if tier == len(run.tiers) - 1 else FIRST_FEATURES
    if not run.items or not run.items[0].tier_features:
        raise ReportError("the trust router needs each tier's recorded features (an `eval run` directory)")
    have = set.intersection(*(set(it.tier_features[tier]) for it in run.items))
    missing = [f for f in want if f not in have]
    if missing:
        raise ReportError(f"the trust router needs the features {', '.join(missing)} of tier {run.tiers[tier]!r}")
    return want


def _right(run: Run, rows: Rows, tier: int) -> np.ndarray:
    return np.array([_value(run.items[i], tier) > 0 for i in rows], dtype=float)


def _value(it: EvalItem, tier: int) -> float:
    return float(trust_value(it.scores[tier], it.abstained[tier], it.unanswerable))


def fit_signals(run: Run, rows: Rows) -> TrustSignals:
    """P(right) of the first and the last tier's answers, fitted on ``rows`` (a middle tier is judged by the first
    tier's signal: its features are the same)."""
    rows = list(rows)
    last = len(run.tiers) - 1
    out = []
    for tier in (0, last):
        names = _features(run, tier)
        X = np.array([[run.items[i].tier_features[tier][f] for f in names] for i in rows])
        y = _right(run, rows, tier)
        if y.min() == y.max():
            raise ReportError(f"tier {run.tiers[tier]!r} is right on all or none of these items: nothing to learn")
        out.append(fit_logistic(names, X, y))
    return TrustSignals(out[0], out[1])


def table(run: Run, rows: Rows, signals: TrustSignals | None = None) -> Table:
    """The table of ``rows``: with ``signals``, their P(right) by those signals (fitted elsewhere); else
    cross-fitted over ``FOLDS`` folds of the rows themselves."""
    rows = np.asarray(rows)
    k = len(run.tiers)
    q = np.zeros((len(rows), k))
    if signals is not None:
        q = _confidences(run, rows, signals)
    else:
        folds = np.arange(len(rows)) % FOLDS
        np.random.default_rng(0).shuffle(folds)
        for f in range(FOLDS):
            inside = folds == f
            q[inside] = _confidences(run, rows[inside], fit_signals(run, rows[~inside]))
    items = [run.items[i] for i in rows]
    seconds = np.array([[float(s or 0.0) for s in it.answer_seconds] for it in items])
    return Table(
        tuple(run.tiers),
        q,
        np.array([[_value(it, t) for t in range(k)] for it in items]),
        np.array([1.0 if it.unanswerable else 0.0 for it in items]),
        seconds,
        np.array([list(it.tokens) for it in items], dtype=float),
    )


def _confidences(run: Run, rows: np.ndarray, signals: TrustSignals) -> np.ndarray:
    k = len(run.tiers)
    return np.array(
        [
            [
                (signals.last if t == k - 1 else signals.first).confidence(run.items[i].tier_features[t])
                for t in range(k)
            ]
            for i in rows
        ]
    )


def fit_router(run: Run, target: Target = "balanced", not_sure: float | None = None) -> TrustRouter:
    """`calibrate --router trust`: the signals fitted on every item, the cross-fitted table, the point for
    ``target``."""
    if not run.has_seconds:
        raise ReportError("the trust router needs each tier's recorded seconds")
    every = range(len(run.items))
    signals = fit_signals(run, every)
    router = TrustRouter(table(run, every), signals.last, target)
    if not_sure is not None:
        router.not_sure = not_sure
    router.signal = signals.first
    router.operate()
    return router


@dataclass(frozen=True)
class HeldOut:
    """The trust router per target, held out (mean ± std over splits), and always asking the last tier on the
    same test parts."""

    target: str
    points: list[Point]
    last_trust: list[float]

    def mean(self, field: str) -> tuple[float, float]:
        v = np.array([getattr(p, field) for p in self.points], dtype=float)
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def held_out_rows(
    run: Run, train_size: int, seeds: int, not_sure: float, targets: Sequence[Target] = TARGETS
) -> list[HeldOut]:
    """Per target: signals and thresholds fitted on each seed's train part, played on its test part."""
    n = len(run.items)
    splits = [_split(n, train_size, seed) for seed in range(seeds)]
    cache: dict[int, tuple[Table, Table]] = {}

    def table_for(tr: np.ndarray, te: np.ndarray) -> tuple[Table, Table]:
        key = hash(tr.tobytes())
        if key not in cache:
            cache[key] = (table(run, tr), table(run, te, fit_signals(run, tr)))
        return cache[key]

    out = []
    for target in targets:
        pts = held_out(table_for, splits, target, not_sure)
        last = [float(np.mean(table_for(tr, te)[1].value[:, -1])) for tr, te in splits]
        out.append(HeldOut(str(target), pts, last))
    return out


@dataclass(frozen=True)
class ReliabilityRow:
    low: float
    high: float
    count: int
    shown: float  # mean P(right) shown in the bin
    right: float  # share right in the bin


def reliability(run: Run, train_size: int, seeds: int) -> dict[str, list[ReliabilityRow]]:
    """Per judged tier (first, last), held out: the percentage the app would show (P(right)) in bins against the
    share of those answers that were right — a calibrated percentage has the two close."""
    n = len(run.items)
    k = len(run.tiers)
    shown: dict[int, list[float]] = {0: [], k - 1: []}
    right: dict[int, list[float]] = {0: [], k - 1: []}
    for seed in range(seeds):
        tr, te = _split(n, train_size, seed)
        q = _confidences(run, te, fit_signals(run, tr))
        for t in shown:
            shown[t] += q[:, t].tolist()
            right[t] += _right(run, te, t).tolist()
    out = {}
    for t in shown:
        s, r = np.array(shown[t]), np.array(right[t])
        rows = []
        for lo, hi in itertools.pairwise(RELIABILITY_BINS):
            inside = (s >= lo) & ((s < hi) if hi < 1.0 else (s <= hi))
            if inside.any():
                rows.append(
                    ReliabilityRow(
                        lo, hi, round(inside.sum() / seeds), float(s[inside].mean()), float(r[inside].mean())
                    )
                )
        out[run.tiers[t]] = rows
    return out


def three_outcomes(run: Run, train_size: int, seeds: int, not_sure: float) -> ThreeOutcomes | None:
    """The report's rows: the trust router per target held out and its reliability; None when the run lacks what
    the router reads (a tier's features, the seconds) or a tier is right on all or none of the items."""
    if run.source != "automix-local" or not run.has_seconds or len(run.tiers) < 2:
        return None
    try:
        rows = held_out_rows(run, train_size, seeds, not_sure)
        rel = reliability(run, train_size, seeds)
    except ReportError:
        return None
    out = []
    for h in rows:
        trust, time = h.mean("trust"), h.mean("time")
        out.append(
            OutcomeRow(
                h.target,
                MeanStd(trust[0], trust[1], len(h.points)),
                float(np.mean(h.last_trust)),
                MeanStd(time[0], time[1], len(h.points)),
                h.mean("escalated")[0],
                h.mean("abstained")[0],
                h.mean("lost")[0],
            )
        )
    bins = {k: [ReliabilityBin((r.low, r.high), r.count, r.shown, r.right) for r in v] for k, v in rel.items()}
    return ThreeOutcomes(not_sure, "the seconds recorded", out, bins)
