"""`calibrate`: a router (and its signal) fitted on a whole run, for models.toml."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..gain import RATES, heldout_shares
from ..routers import (
    POMDPRouter,
    Router,
    SelfConsistency,
    ThresholdRouter,
)
from .routing import CostSetting, RouterKey, _lower, _make_router, _nan_low, _records, cost_settings, evaluate_routers
from .runs import ReportError, Run, load_run
from .signals import SignalSpec, abstain_thresholds, signal_specs
from .stats import _split

# --------------------------------------------------------------------------- calibrate


def calibrate(
    run_path: Path | Run,
    router_kind: str,
    signal_name: str | None,
    fixed_costs: Sequence[float] | None,
    seeds: int = 5,
    lambda_: float | None = None,
    target_escalation: float | None = None,
    verify_cost: float = 1.0,
    abstain: bool = True,
) -> tuple[Router, SignalSpec, CostSetting]:
    """Fit one router (and its signal) on the whole run (a path, or a run already loaded), for models.toml's
    ``[cascade] calibration``; with ``abstain``, also each tier's threshold for abstaining at the first
    token (it depends on how often the run's questions have no answer)."""
    run = run_path if isinstance(run_path, Run) else load_run(run_path)
    if fixed_costs is None:
        fixed_costs = [float(t.get("cost", 1.0)) for t in run.meta.get("tiers", [])] or [1.0, 50.0]
    cs = cost_settings(run, fixed_costs, verify_cost)[0]
    specs = signal_specs(run.signals)
    if router_kind == "self_consistency":
        specs = [s for s in specs if s.raw]
    if signal_name:
        chosen = [s for s in specs if s.name == signal_name]
        if not chosen:
            raise ReportError(f"no signal {signal_name!r} in this run; choose from: {', '.join(s.name for s in specs)}")
        spec = chosen[0]
    else:  # the signal whose router of this kind does best on held-out items
        n = len(run.items)
        train = max(2, min(n // 2, n - 10))
        rows = evaluate_routers(run, cs, train, seeds, specs)
        scored = [
            (_lower(rows[RouterKey(router_kind, s.name)].delta_ibc), s)
            for s in specs
            if RouterKey(router_kind, s.name) in rows
        ]
        spec = max(scored, key=lambda t: _nan_low(t[0]))[1]
    signal = spec.fit(run.items)
    router = _make_router(router_kind)
    if isinstance(router, (ThresholdRouter, POMDPRouter)) and not isinstance(router, SelfConsistency):
        router.lambda_, router.target_escalation = lambda_, target_escalation
    router.fit(_records(run.items, signal), cs.router_costs(spec))
    router.signal = signal
    router.abstain = abstain_thresholds(run) if abstain else {}
    if run.source == "automix-local":  # the prompt its signals belong to (runs before these keys: the paper layout)
        router.prompt = {
            "layout": run.meta.get("layout", "paper"),
            "answer_examples": bool(run.meta.get("answer_examples", False)),
            "turns": False,  # eval runs ask single questions: no earlier turns in the prompt
        }
    return router, spec, cs


def versus_default(run: Run, spec: SignalSpec, seeds: int = 10) -> str | None:
    """Whether a signal fitted on (half of) this run beats the shipped default router's signal on the
    other half, by the share of the oracle's gain at 25 % and 50 % escalated: one line to print when it
    does not (the run is too small, or the default is simply better here), else None."""
    from importlib import resources

    from ..routers import load

    default = load(Path(str(resources.files("automix_local") / "data" / "router-default.json"))).signal
    if default is None or any(f not in run.items[0].features[0] for f in default.features):
        return None
    n = len(run.items)
    small = np.array([it.scores[0] for it in run.items])
    large = np.array([it.scores[-1] for it in run.items])
    splits = [_split(n, n // 2, seed) for seed in range(seeds)]

    def fitted(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        s = spec.fit([run.items[i] for i in tr])
        return np.array([s.confidence(run.items[i].features[0]) for i in te])

    def shipped(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        return np.array([default.confidence(run.items[i].features[0]) for i in te])

    ours = heldout_shares(small, large, fitted, splits, RATES, bootstrap=0)
    theirs = heldout_shares(small, large, shipped, splits, RATES, bootstrap=0)
    mean = lambda d: float(np.nanmean([d[f"{r:g}"]["share"] for r in RATES]))  # noqa: E731
    if mean(ours) > mean(theirs):
        return None
    return (
        f"note: fitted on half of these {n} items, {spec.name} captures {mean(ours):.2f} of the oracle's gain "
        f"on the other half (mean of 25 % and 50 % escalated), the shipped default's signal ({default.name}) "
        f"{mean(theirs):.2f}: this run does not beat the default — keep it, or record more questions like yours"
    )
