"""The whole report of a run: per-tier quality, the signals, the routers under each cost setting."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .model import CostSettingResult, LearningCurve, Results, RunSummary, TierQuality
from .routing import _best, _regime, _warnings, cost_settings, evaluate_routers, threshold_curve, value_at_cost
from .runs import Run
from .signals import abstain_table, oracle_shares, router_specs, signal_specs, signal_table
from .stats import BOOTSTRAP, CORRECT_F1
from .trust import trust_results

# --------------------------------------------------------------------------- the whole report


def _train_sizes(n: int, requested: Sequence[int]) -> list[int]:
    sizes = [m for m in requested if 10 <= m <= n - 10]
    if not sizes:
        sizes = [max(2, n // 2)]
    return sizes


def build_results(
    run: Run, fixed_costs: Sequence[float], seeds: int, train_sizes: Sequence[int], verify_cost: float = 1.0
) -> Results:
    n = len(run.items)
    sizes = _train_sizes(n, train_sizes)
    primary = max([m for m in sizes if m <= n // 2] or [min(sizes)])
    labels = [it.scores[0] >= CORRECT_F1 for it in run.items]
    tiers = {}
    answerable = [it for it in run.items if not it.unanswerable]
    unanswerable = [it for it in run.items if it.unanswerable]
    for i, name in enumerate(run.tiers):
        tiers[name] = TierQuality(
            f1=float(np.mean([it.scores[i] for it in run.items])),
            em=float(np.mean([it.ems[i] for it in run.items])),
            abstention_rate=float(np.mean([it.abstained[i] for it in run.items])),
            answer_seconds=float(np.mean([it.answer_seconds[i] for it in run.items])) if run.has_seconds else None,
            f1_answerable=(float(np.mean([it.scores[i] for it in answerable])) if answerable else math.nan)
            if unanswerable
            else None,
            f1_unanswerable=float(np.mean([it.scores[i] for it in unanswerable])) if unanswerable else None,
        )
    specs = signal_specs(run.signals)
    signals = signal_table(run, specs, primary, seeds)
    abstain = abstain_table(run, primary, seeds)
    oracle_share = oracle_shares(run, specs, primary, seeds)
    settings = []
    for cs in cost_settings(run, fixed_costs, verify_cost):
        curve_specs = router_specs(specs)
        routers = evaluate_routers(run, cs, primary, seeds, curve_specs, bootstrap=BOOTSTRAP)
        curves = {s.name: threshold_curve(run, cs, primary, seeds, s) for s in curve_specs}
        c_large, c_small = cs.tier_costs[-1], cs.tier_costs[0]
        p_large = tiers[run.tiers[-1]].f1
        p_small = tiers[run.tiers[0]].f1
        half = c_large / 2
        retained = {name: value_at_cost(c, half) / p_large if p_large else math.nan for name, c in curves.items()}
        mix_at_half = (
            p_small + (p_large - p_small) * (half - c_small) / (c_large - c_small) if half >= c_small else math.nan
        )
        fitted = {k: v for k, v in routers.items() if k.fitted}
        best = _best(fitted)
        learning = {}
        if best:
            spec = next(s for s in specs if s.name == best.signal)
            for m in sizes:
                learning[str(m)] = evaluate_routers(run, cs, m, seeds, [spec])[best].delta_ibc
        settings.append(
            CostSettingResult(
                name=cs.name,
                tier_costs=dict(zip(run.tiers, cs.tier_costs, strict=True)),
                verify_costs={s: list(v) for s, v in cs.verify_costs.items()},
                routers=routers,
                best=best,
                curves=curves,
                retained_at_half_large_cost=retained,
                random_mixing_retained_at_half_large_cost=mix_at_half / p_large if p_large else math.nan,
                learning_curve=LearningCurve(best, learning),
                regime=_regime(cs, run),
                warnings=_warnings(routers, cs),
            )
        )
    return Results(
        run=RunSummary(run.source, run.tiers, n, run.errors, {k: v for k, v in run.meta.items() if k != "ids"}),
        correct_f1=CORRECT_F1,
        train_size=primary,
        train_sizes=sizes,
        seeds=seeds,
        tiers=tiers,
        small_correct_rate=float(np.mean(labels)),
        signals=signals,
        abstain=abstain,
        oracle_share=oracle_share,
        cost_settings=settings,
        trust=trust_results(run, settings, primary, seeds),
    )
