"""`eval report`: quality per cost from a recorded run, without touching a model.

Reads an ``eval run`` directory (or the AutoMix paper's released JSONL), and computes per-tier
quality, each signal's AUROC and calibration, and every meta-verifier fitted on a random train part
and scored on the rest over several seeds (mean ± std), under a fixed cost ratio and under the
measured seconds. Writes ``report.md``, ``results.json`` and ``cost_quality.png``.

The parts: ``runs`` (loading), ``stats``, ``signals`` (signals held out, abstention), ``routing``
(routers held out, costs), ``trust`` (the trust score: +1 right, 0 abstained, −1 wrong), ``model`` (the
results as dataclasses, and their JSON), ``render`` (Markdown, plot, files), ``calibration`` (`calibrate`).
"""

from __future__ import annotations

from .calibration import calibrate, versus_default
from .model import (
    AbstainQuality,
    CostSettingResult,
    Interval,
    MeanStd,
    OracleShare,
    Results,
    RouterKey,
    RouterResult,
    SignalQuality,
    SignalShare,
    TierQuality,
    Trust,
    TrustScore,
    to_json,
)
from .render import plot, render_markdown, summary, write_report
from .results import build_results
from .routing import (
    CostSetting,
    _records,
    bootstrap_delta_ibc,
    cost_settings,
    evaluate_routers,
    threshold_curve,
    value_at_cost,
)
from .runs import EvalItem, ReportError, Run, load_run, write_paper_format
from .signals import (
    SignalSpec,
    abstain_table,
    abstain_thresholds,
    fit_abstain,
    oracle_shares,
    router_specs,
    signal_specs,
    signal_table,
)
from .stats import BOOTSTRAP, CORRECT_F1, MIN_GAP, _split, auroc, reliability
from .trust import trust_results

__all__ = [
    "BOOTSTRAP",
    "CORRECT_F1",
    "MIN_GAP",
    "AbstainQuality",
    "CostSetting",
    "CostSettingResult",
    "EvalItem",
    "Interval",
    "MeanStd",
    "OracleShare",
    "ReportError",
    "Results",
    "RouterKey",
    "RouterResult",
    "Run",
    "SignalQuality",
    "SignalShare",
    "SignalSpec",
    "TierQuality",
    "Trust",
    "TrustScore",
    "_records",
    "_split",
    "abstain_table",
    "abstain_thresholds",
    "auroc",
    "bootstrap_delta_ibc",
    "build_results",
    "calibrate",
    "cost_settings",
    "evaluate_routers",
    "fit_abstain",
    "load_run",
    "oracle_shares",
    "plot",
    "reliability",
    "render_markdown",
    "router_specs",
    "signal_specs",
    "signal_table",
    "summary",
    "threshold_curve",
    "to_json",
    "trust_results",
    "value_at_cost",
    "versus_default",
    "write_paper_format",
    "write_report",
]
