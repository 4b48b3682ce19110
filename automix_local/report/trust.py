"""The trust score: +1 a right answer, 0 an abstention, −1 a wrong answer (``scoring.trust_value``, the CRAG
benchmark's scheme), for every tier and the oracles on all items, and for every router held out, as recorded and
with the tiers' first-token abstentions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..scoring import trust_value
from .model import CostSettingResult, CostSettingTrust, RouterKey, RouterTrust, Trust, TrustScore
from .routing import MIXING, _nan_low
from .runs import Run
from .signals import _abstain_data, fit_abstain
from .stats import _split, bootstrap_mean, bootstrap_weights

ORACLES = (
    "oracle: the better tier",
    "oracle: the better tier, or abstain",
    "oracle: the better tier, or abstain scored 0",
)


def trust_matrix(run: Run) -> np.ndarray:
    """Items × tiers: each recorded answer's trust value."""
    return np.array(
        [
            [trust_value(it.scores[i], it.abstained[i], it.unanswerable) for i in range(len(run.tiers))]
            for it in run.items
        ],
        dtype=float,
    )


def abstention_values(run: Run) -> np.ndarray:
    """Per item, what an abstention scores: +1 on an unanswerable question, 0 on an answerable one."""
    return np.array([1.0 if it.unanswerable else 0.0 for it in run.items])


def oracle_values(t: np.ndarray, abstain: np.ndarray) -> dict[str, np.ndarray]:
    """Per item, on recorded answers (``t``: items × tiers): the escalation oracle (the better tier's answer), the
    oracle that may also abstain (an abstention where it beats every tier), and the same with its abstentions
    scored 0 even where right (a lower bound: an abstention the oracle chose on an unanswerable question)."""
    best = t.max(axis=1)
    return dict(zip(ORACLES, (best, np.maximum(best, abstain), np.maximum(best, 0.0)), strict=True))


def score(parts: Sequence[tuple[np.ndarray, np.ndarray]], weights: np.ndarray, held_out: bool) -> TrustScore:
    """The mean trust over parts (per seed's test part, or one part of every item), its interval, the shares."""
    means = [float(np.mean(v)) for _, v in parts]
    std = None
    if held_out:
        std = float(np.std(means, ddof=1)) if len(means) > 1 else 0.0
    return TrustScore(
        mean=float(np.mean(means)),
        ci=bootstrap_mean(parts, weights),
        right=float(np.mean([np.mean(v > 0) for _, v in parts])),
        abstained=float(np.mean([np.mean(v == 0) for _, v in parts])),
        wrong=float(np.mean([np.mean(v < 0) for _, v in parts])),
        std=std,
    )


def abstaining(run: Run, t: np.ndarray, abstain: np.ndarray, train_size: int, seeds: int) -> list[np.ndarray] | None:
    """Per seed: ``t`` with each tier's answers turned into abstentions where its P(abstain) at the first token
    reaches the threshold fitted on that seed's train part (``fit_abstain``, what `calibrate` writes); None when
    the run has no P(abstain) or no unanswerable item (no threshold is fitted)."""
    data = _abstain_data(run)
    if not data:
        return None
    una = np.array([it.unanswerable for it in run.items])
    out = []
    for seed in range(seeds):
        tr, _ = _split(len(run.items), train_size, seed)
        ts = t.copy()
        for i, name in enumerate(run.tiers):
            if name in data:
                p, f1 = data[name]
                tau = fit_abstain(p[tr], f1[tr], una[tr])
                if tau is not None:
                    ts[:, i] = np.where(p >= tau, abstain, t[:, i])
        out.append(ts)
    return out


def trust_results(run: Run, settings: Sequence[CostSettingResult], train_size: int, seeds: int) -> Trust:
    """The trust score of the tiers and oracles (all items, as recorded), of the tiers with their first-token
    abstentions and of every router of each cost setting (held out: the routers' own splits and outcomes)."""
    n = len(run.items)
    t = trust_matrix(run)
    abstain = abstention_values(run)
    weights = bootstrap_weights(n)
    every = np.arange(n)
    tiers = {name: score([(every, t[:, i])], weights, False) for i, name in enumerate(run.tiers)}
    oracles = {name: score([(every, v)], weights, False) for name, v in oracle_values(t, abstain).items()}
    per_seed = abstaining(run, t, abstain, train_size, seeds)
    with_tau = None
    if per_seed is not None:
        tests = [_split(n, train_size, seed)[1] for seed in range(seeds)]
        with_tau = {
            name: score([(te, ts[te, i]) for te, ts in zip(tests, per_seed, strict=True)], weights, True)
            for i, name in enumerate(run.tiers)
        }
    out = []
    for cs in settings:
        routers: dict[RouterKey, RouterTrust] = {}
        for key, r in cs.routers.items():
            finals = [(te, np.asarray(o.final_tiers)) for te, o in r.held_out]
            recorded = score([(te, t[te, f]) for te, f in finals], weights, True)
            abst = None
            if per_seed is not None:
                abst = score([(te, ts[te, f]) for (te, f), ts in zip(finals, per_seed, strict=True)], weights, True)
            routers[key] = RouterTrust(recorded, abst)
        fitted = [k for k in routers if k.fitted]
        mixing = [k for k in fitted if MIXING[0] <= cs.routers[k].escalation.mean <= MIXING[1]]
        pool = mixing or fitted  # as for ΔIBC: a router escalating (nearly) all or none is only a tier
        best = max(pool, key=lambda k: _nan_low(routers[k].recorded.mean)) if pool else None
        out.append(CostSettingTrust(cs.name, routers, best))
    from ..abstain import NOT_SURE
    from .outcomes import three_outcomes

    return Trust(tiers, oracles, with_tau, out, three_outcomes(run, train_size, seeds, NOT_SURE))
