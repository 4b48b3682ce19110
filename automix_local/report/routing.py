"""Routers fitted on a train part and scored on the rest: costs, ΔIBC with bootstrap intervals, threshold
curves, and which router is the most reliably ahead."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics import delta_ibc
from ..routers import (
    AlwaysLarge,
    AlwaysSmall,
    Outcome,
    POMDPRouter,
    RandomRouter,
    Record,
    Router,
    SelfConsistency,
    ThresholdRouter,
    simulate,
)
from ..signals import (
    VERIFIER_FEATURES,
    Signal,
)
from .model import Interval, MeanStd, RouterKey, RouterResult
from .runs import EvalItem, ReportError, Run
from .signals import SignalSpec
from .stats import MIN_GAP, _ms, _split, bootstrap_weights, replicate_interval


@dataclass(frozen=True)
class CostSetting:
    name: str
    tier_costs: tuple[float, ...]
    verify_costs: dict[str, tuple[float, ...]]  # strategy → per non-last tier

    def router_costs(self, spec: SignalSpec | None) -> list[float]:
        costs = list(self.tier_costs)
        strategy = spec.needs_verifier if spec else None
        if strategy:
            for i, v in enumerate(self.verify_costs[strategy]):
                costs[i] += v
        return costs


def cost_settings(run: Run, fixed: Sequence[float], verify_cost: float = 1.0) -> list[CostSetting]:
    """The fixed per-call costs, and the measured seconds when the run has them.

    Under fixed costs the paper charges one verification (all k samples together) as one call of
    the tier that verifies; ``verify_cost`` scales that (the shared layout's check costs a fraction
    of an answer).
    """
    n = len(run.tiers)
    if len(fixed) != n:
        raise ReportError(f"--costs needs {n} values (one per tier: {', '.join(run.tiers)}), got {len(fixed)}")
    if not (verify_cost >= 0 and math.isfinite(verify_cost)):
        raise ReportError(f"--verify-cost must be a number >= 0, got {verify_cost}")
    strategies = [VERIFIER_FEATURES[f] for f in run.signals if f in VERIFIER_FEATURES]
    name = f"fixed {':'.join(f'{c:g}' for c in fixed)}" + (
        f", verification {verify_cost:g}× a call" if verify_cost != 1.0 else ""
    )
    out = [CostSetting(name, tuple(fixed), {s: tuple(c * verify_cost for c in fixed[: n - 1]) for s in strategies})]
    if run.has_seconds:
        secs = tuple(float(np.mean([it.answer_seconds[i] for it in run.items])) for i in range(n))
        ver = {
            s: tuple(float(np.mean([it.verify_seconds[s][i] for it in run.items])) for i in range(n - 1))
            for s in strategies
            if all(s in it.verify_seconds for it in run.items)
        }
        out.append(CostSetting("measured seconds", secs, ver))
    return out


# --------------------------------------------------------------------------- evaluation of routers


ROUTER_KINDS = ("threshold", "pomdp", "self_consistency")


def _records(items: Sequence[EvalItem], signal: Signal) -> list[Record]:
    return [Record(it.scores, (*(signal.confidence(f) for f in it.features), None)) for it in items]


def _make_router(kind: str) -> Router:
    return {"threshold": ThresholdRouter, "pomdp": POMDPRouter, "self_consistency": SelfConsistency}[kind]()


def _score(out: Any, test: Sequence[EvalItem], costs: CostSetting) -> dict[str, float]:
    p_small = float(np.mean([it.scores[0] for it in test]))
    p_large = float(np.mean([it.scores[-1] for it in test]))
    c_small, c_large = costs.tier_costs[0], costs.tier_costs[-1]
    defined = abs(p_large - p_small) >= MIN_GAP
    return {
        "performance": out.performance,
        "cost": out.cost,
        "escalation": out.escalation,
        "delta_ibc": _delta_ibc(out.performance, out.cost, p_small, c_small, p_large, c_large),
        "retained": out.performance / p_large if p_large > 0 else math.nan,
        "ibc_defined": 1.0 if defined else 0.0,
    }


def _delta_ibc(perf: float, cost: float, p_small: float, c_small: float, p_large: float, c_large: float) -> float:
    """ΔIBC, left undefined (nan) on a test part where the tiers' qualities differ by less than MIN_GAP:
    IBC_BASE is the slope between the two tiers, ~0 there, and ΔIBC, a ratio to it, explodes."""
    if abs(p_large - p_small) < MIN_GAP:
        return math.nan
    return delta_ibc(perf, cost, p_small, c_small, p_large, c_large)


def evaluate_routers(
    run: Run, costs: CostSetting, train_size: int, seeds: int, specs: Sequence[SignalSpec], bootstrap: int = 0
) -> dict[RouterKey, RouterResult]:
    """Every (signal, router) and the baselines, fitted on ``train_size`` items, scored on the rest.

    With ``bootstrap`` > 0, each also gets ``delta_ibc_ci``: a percentile interval over that many
    item resamples (see :func:`bootstrap_delta_ibc`). Each keeps its per-seed test parts and outcomes
    (``held_out``, for the trust score).
    """
    items = run.items
    rows: dict[RouterKey, dict[str, list[float]]] = {}
    held_out: dict[RouterKey, list[tuple[np.ndarray, Outcome]]] = {}  # key → per seed (test indices, outcome)

    def add(name: RouterKey, out: Outcome, te: np.ndarray, test: Sequence[EvalItem]) -> None:
        row = rows.setdefault(name, {})
        for k, v in _score(out, test, costs).items():
            row.setdefault(k, []).append(v)
        held_out.setdefault(name, []).append((te, out))

    for seed in range(seeds):
        tr, te = _split(len(items), train_size, seed)
        train, test = [items[i] for i in tr], [items[i] for i in te]
        base_recs = [Record(it.scores, (*([None] * (len(it.scores) - 1)), None)) for it in test]
        add(RouterKey("always_small"), simulate(AlwaysSmall(), base_recs, costs.tier_costs), te, test)
        add(RouterKey("always_large"), simulate(AlwaysLarge(), base_recs, costs.tier_costs), te, test)
        add(RouterKey("random p=0.5"), simulate(RandomRouter(0.5, seed), base_recs, costs.tier_costs), te, test)
        for spec in specs:
            signal = spec.fit(train)
            rcosts = costs.router_costs(spec)
            train_recs, test_recs = _records(train, signal), _records(test, signal)
            kinds = ROUTER_KINDS if spec.raw else ROUTER_KINDS[:2]
            for kind in kinds:
                router = _make_router(kind).fit(train_recs, rcosts)
                add(RouterKey(kind, spec.name), simulate(router, test_recs, rcosts), te, test)
    out = {
        name: RouterResult(
            performance=_ms(row["performance"]),
            cost=_ms(row["cost"]),
            escalation=_ms(row["escalation"]),
            delta_ibc=_ms(row["delta_ibc"]),
            retained=_ms(row["retained"]),
            ibc_defined=_ms(row["ibc_defined"]),
            held_out=held_out[name],
        )
        for name, row in rows.items()
    }
    if bootstrap:
        small = np.array([it.scores[0] for it in items])
        large = np.array([it.scores[-1] for it in items])
        weights = bootstrap_weights(len(items), bootstrap)
        for name, parts in held_out.items():
            out[name].delta_ibc_ci = bootstrap_delta_ibc(parts, small, large, costs.tier_costs, weights)
    return out


def bootstrap_delta_ibc(
    parts: Sequence[tuple[np.ndarray, Outcome]],
    small: np.ndarray,
    large: np.ndarray,
    tier_costs: Sequence[float],
    weights: np.ndarray,
) -> Interval:
    """A 95 % percentile interval for the mean held-out ΔIBC, resampling the items.

    ``parts`` holds, per seed, the test items' indices and the fitted router's outcome on them;
    ``weights`` (replicates × items) are multinomial counts, one resample of the whole item set
    per row, applied to every seed's test part alike (the parts overlap). The routers stay as
    fitted: the interval is the uncertainty from which questions were asked, the std over seeds
    the one from which were used for fitting. Also returns the share of replicates above zero.
    """
    c_small, c_large = tier_costs[0], tier_costs[-1]
    reps = []
    for te, out in parts:
        w = weights[:, te].astype(float)
        tot = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):  # a replicate may draw none of a part's items
            means = zip(
                w @ np.asarray(out.item_scores) / tot,
                w @ np.asarray(out.item_costs) / tot,
                w @ small[te] / tot,
                w @ large[te] / tot,
                strict=True,
            )
        reps.append([_delta_ibc(p, c, ps, c_small, pl, c_large) for p, c, ps, pl in means])
    return replicate_interval(reps)


def threshold_curve(
    run: Run, costs: CostSetting, train_size: int, seeds: int, spec: SignalSpec, points: int = 21
) -> list[dict[str, float]]:
    """Cost-quality curve of threshold policies (thresholds at train-confidence quantiles), on test parts."""
    acc = np.zeros((points, 2))
    for seed in range(seeds):
        tr, te = _split(len(run.items), train_size, seed)
        train, test = [run.items[i] for i in tr], [run.items[i] for i in te]
        signal = spec.fit(train)
        rcosts = costs.router_costs(spec)
        confs = sorted(signal.confidence(it.features[0]) for it in train)
        recs = _records(test, signal)
        for k, q in enumerate(np.linspace(0, 1, points)):
            t = -1.0 if q == 0 else (2.0 if q == 1 else float(np.quantile(confs, q)))
            out = simulate(ThresholdRouter(t), recs, rcosts)
            acc[k] += (out.cost, out.performance)
    acc /= seeds
    return [{"cost": float(c), "performance": float(p)} for c, p in acc]


def value_at_cost(curve: Sequence[dict[str, float]], cost: float) -> float:
    """Best performance reachable at ``cost`` on a curve's upper envelope (linear between points); nan if none."""
    pts = sorted((p["cost"], p["performance"]) for p in curve)
    best = math.nan
    for (c0, p0), (c1, p1) in itertools.pairwise(pts):
        if c0 <= cost <= c1:
            v = p0 if c1 == c0 else p0 + (p1 - p0) * (cost - c0) / (c1 - c0)
            best = v if math.isnan(best) else max(best, v)
    for c, p in pts:
        if c <= cost:
            best = p if math.isnan(best) else max(best, p)
    return best


MIXING = (0.1, 0.9)  # a router counts as a real operating point when it escalates 10–90 % of items


def _best(fitted: dict[RouterKey, RouterResult]) -> RouterKey | None:
    """The router most reliably ahead on held-out items: the highest mean − std of ΔIBC over the seeds,
    among routers that really mix the tiers.

    ΔIBC divides by the extra cost over always-small, so a router that escalates 2 % of the items
    gets a huge, noisy ratio from a handful of questions; such points are only chosen when no
    router escalates between 10 % and 90 % of the items. Ranking by mean − std rather than the mean
    keeps a router whose gain comes from a few lucky splits from being shipped.
    """
    if not fitted:
        return None
    mixing = {k: v for k, v in fitted.items() if MIXING[0] <= v.escalation.mean <= MIXING[1]}
    pool = mixing or fitted
    return max(pool, key=lambda k: _lower(pool[k].delta_ibc))


def _lower(d: MeanStd) -> float:
    """mean − std, a one-sigma lower bound over seeds (−inf when undefined)."""
    return _nan_low(d.mean - (0.0 if math.isnan(d.std) else d.std))


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _regime(cs: CostSetting, run: Run) -> str:
    c_small, c_large = cs.tier_costs[0], cs.tier_costs[-1]
    ratio = c_large / c_small if c_small > 0 else math.inf
    ver = {s: v[0] / c_small for s, v in cs.verify_costs.items()} if c_small > 0 else {}
    vtxt = ", ".join(f"{s} verification = {r:.2f}× a small answer" for s, r in ver.items())
    if ratio >= 10:
        kind = (
            "paper regime: the large tier is much dearer than the small one, so a cascade that keeps the "
            "easy questions on the small tier can save most of the cost"
        )
    elif ratio >= 3:
        kind = (
            "middle regime: escalating costs several small answers; a cascade pays off only if it "
            "keeps many answers and its signal is cheap"
        )
    else:
        kind = (
            "local regime: the large tier costs little more than the small one, so a cascade can beat "
            "always-large only when its confidence signal is (nearly) free"
        )
    return f"{cs.name}: large/small cost ratio {ratio:.1f}×" + (f"; {vtxt}" if vtxt else "") + f". {kind}."


def _warnings(routers: dict[RouterKey, RouterResult], cs: CostSetting) -> list[str]:
    fitted = {k: v for k, v in routers.items() if k.fitted}
    out = []
    for base in (RouterKey("always_large"), RouterKey("always_small")):
        b = routers[base]
        beaten = all(
            b.performance.mean >= r.performance.mean - 1e-12 and b.cost.mean <= r.cost.mean + 1e-12
            for r in fitted.values()
        )
        if fitted and beaten:
            out.append(f"with {cs.name} costs, {base} is at least as good and no dearer than every router")
    if fitted and all(_nan_low(r.delta_ibc.mean) <= 0 for r in fitted.values()):
        out.append(f"with {cs.name} costs, no router beats random mixing of always-small and always-large (ΔIBC ≤ 0)")
    return out
