"""`eval report`: quality per cost from a recorded run, without touching a model.

Reads an ``eval run`` directory (or the AutoMix paper's released JSONL), and computes per-tier
quality, each signal's AUROC and calibration, and every meta-verifier fitted on a random train part
and scored on the rest over several seeds (mean ± std), under a fixed cost ratio and under the
measured seconds. Writes ``report.md``, ``results.json`` and ``cost_quality.png``.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .evaluation import ITEMS_FILE, RUN_FILE
from .gain import RATES, heldout_shares, oracle_quality, random_quality
from .grounding import GROUNDING_FEATURES, grounding_features
from .jsonl import read_jsonl
from .metrics import delta_ibc
from .routers import (
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
from .signals import (
    AGREEMENT_FEATURES,
    FEATURES,
    FREE_FEATURES,
    TOKEN_FEATURES,
    VERIFIER_FEATURES,
    Signal,
    fit_logistic,
)

CORRECT_F1 = 0.5  # an answer "is correct" (for AUROC and calibration) when its F1 reaches this
BOOTSTRAP = 1000  # item resamples behind each ΔIBC interval
BOOTSTRAP_SEED = 12345
MIN_GAP = 0.02  # ΔIBC is left undefined on a test part where the tiers' qualities differ by less


class ReportError(Exception):
    """A run that cannot be reported. str() is the one line shown to the user."""


# --------------------------------------------------------------------------- loading


@dataclass
class EvalItem:
    id: str
    dataset: str | None
    scores: tuple[float, ...]
    ems: tuple[float, ...]
    abstained: tuple[bool, ...]
    unanswerable: bool
    answer_seconds: tuple[float | None, ...]
    verify_seconds: dict[str, tuple[float | None, ...]]  # strategy → per non-last tier
    features: list[dict[str, float]]  # per non-last tier: free features and verifier_<strategy>
    p_abstain: tuple[float | None, ...] = ()  # per tier: P(the answer starts "unanswerable") at the first token


@dataclass
class Run:
    tiers: list[str]
    items: list[EvalItem]
    meta: dict[str, Any]
    source: str  # "automix-local" | "automix-paper"
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)

    @property
    def signals(self) -> list[str]:
        """Features every item has, for the first tier."""
        if not self.items:
            return []
        common = set(self.items[0].features[0])
        for it in self.items:
            common &= set(it.features[0])
        return [f for f in FEATURES if f in common]

    @property
    def has_seconds(self) -> bool:
        return all(s is not None for it in self.items for s in it.answer_seconds)


PAPER_KEYS = ("llama13b_pred_ans", "llama70b_pred_ans", "p_ver_13b", "llama13b_f1", "llama70b_f1")


def load_run(path: Path) -> Run:
    path = Path(path)
    if path.is_dir():
        return _load_ours(path)
    if path.is_file():
        return _load_paper(path)
    raise ReportError(f"no run at {path}: give an `eval run` directory or a paper-format .jsonl file")


def _load_ours(d: Path) -> Run:
    try:
        meta = json.loads((d / RUN_FILE).read_text())
    except FileNotFoundError:
        raise ReportError(f"{d} is not an eval run directory (no {RUN_FILE})") from None
    tiers = [t["name"] for t in meta["tiers"]]
    items: list[EvalItem] = []
    errors: list[str] = []
    path = d / ITEMS_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line of an interrupted run
        if "error" in rec:
            errors.append(f"{rec['id']}: {rec['error']}")
            continue
        ts = [rec["tiers"][t] for t in tiers]
        strategies = sorted(ts[0].get("verification", {})) if len(ts) > 1 else []
        feats = []
        for t in ts[:-1]:
            f = dict(t["features"])
            for s, v in t["verification"].items():
                f[f"verifier_{s}"] = v["confidence"]
            feats.append(f)
        items.append(
            EvalItem(
                id=rec["id"],
                dataset=rec.get("dataset"),
                scores=tuple(t["f1"] for t in ts),
                ems=tuple(t["em"] for t in ts),
                abstained=tuple(bool(t["abstained"]) for t in ts),
                unanswerable=bool(rec.get("unanswerable")),
                answer_seconds=tuple(t["seconds"] for t in ts),
                verify_seconds={s: tuple(t["verification"][s]["seconds"] for t in ts[:-1]) for s in strategies},
                features=feats,
                p_abstain=tuple(t.get("features", {}).get("p_abstain") for t in ts),
            )
        )
    if not items:
        raise ReportError(f"{d}: no recorded items yet (run `automix-local eval run` first)")
    run = Run(tiers, items, meta, "automix-local", len(errors), errors[:5])
    _backfill_grounding(run, d)
    return run


def _backfill_grounding(run: Run, d: Path) -> None:
    """Runs recorded before the grounding features existed get them from the same function the cascade
    calls, over each item's context from the run's data file — only when that file is there and its
    sha256 is the one recorded (else the run is reported without them)."""
    if len(run.tiers) < 2 or all(f in run.items[0].features[0] for f in GROUNDING_FEATURES):
        return
    import hashlib

    # a run concatenated from runs on several files lists them all in "data_files"
    sources = run.meta.get("data_files") or [{"path": run.meta.get("data", ""), "sha256": run.meta.get("data_sha256")}]
    contexts: dict[str, str] = {}
    for src in sources:
        data = Path(str(src.get("path", "")))
        if not data.is_file() or hashlib.sha256(data.read_bytes()).hexdigest() != src.get("sha256"):
            return
        contexts |= {r["id"]: r.get("context", "") for _, r in read_jsonl(data, ReportError) if isinstance(r, dict)}
    names = ", ".join(Path(str(src.get("path", ""))).name for src in sources)
    recs = {}
    for line in (d / ITEMS_FILE).read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        recs[rec.get("id")] = rec
    if any(it.id not in recs or it.id not in contexts for it in run.items):
        return  # not the data this run was recorded on: leave every item as recorded
    for it in run.items:
        rec = recs[it.id]
        for i, name in enumerate(run.tiers[:-1]):
            t = rec["tiers"][name]
            it.features[i] |= grounding_features(contexts[it.id], rec["question"], t["answer"], bool(t["abstained"]))
    run.meta["grounding"] = f"computed from {names} (this run was recorded before the grounding features)"


def _load_paper(path: Path) -> Run:
    items = []
    for n, rec in read_jsonl(path, ReportError, "paper-format file"):
        missing = [k for k in PAPER_KEYS if k not in rec]
        if missing:
            raise ReportError(f"{path}:{n}: not the AutoMix paper format (missing {', '.join(missing)})")
        small, large = rec["llama13b_pred_ans"], rec["llama70b_pred_ans"]
        items.append(
            EvalItem(
                id=str(rec.get("id", n)),
                dataset=rec.get("dataset"),
                scores=(float(rec["llama13b_f1"]), float(rec["llama70b_f1"])),
                ems=(math.nan, math.nan),
                abstained=(_abstains(small), _abstains(large)),
                unanswerable=False,
                answer_seconds=(None, None),
                verify_seconds={},
                features=[{"verifier_sampled": float(rec["p_ver_13b"])}],
            )
        )
    if not items:
        raise ReportError(f"{path}: no items")
    return Run(["llama13b", "llama70b"], items, {"data": str(path)}, "automix-paper")


def _abstains(answer: Any) -> bool:
    from .prompts import is_abstention

    return isinstance(answer, str) and is_abstention(answer)


def write_paper_format(run: Run, path: Path) -> None:
    """Write a two-tier run in the AutoMix paper's released format (sampled verifier as p_ver_13b)."""
    if len(run.tiers) != 2 or "verifier_sampled" not in run.signals:
        raise ReportError("the paper format needs a two-tier run with the sampled verifier recorded")
    with path.open("w", encoding="utf-8") as f:
        for i, it in enumerate(run.items):
            row = {
                "id": it.id,
                "dataset": it.dataset or "unknown",
                "split": "train" if i % 2 == 0 else "val",
                "llama13b_pred_ans": "unanswerable" if it.abstained[0] else "",
                "llama70b_pred_ans": "unanswerable" if it.abstained[1] else "",
                "p_ver_13b": it.features[0]["verifier_sampled"],
                "llama13b_f1": it.scores[0],
                "llama70b_f1": it.scores[1],
            }
            f.write(json.dumps(row) + "\n")


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


def reliability(conf: Sequence[float], labels: Sequence[bool], bins: int = 10) -> dict[str, Any]:
    """Reliability-diagram data (equal-width bins) and the expected calibration error."""
    c = np.clip(np.asarray(conf, dtype=float), 0, 1)
    y = np.asarray(labels, dtype=float)
    idx = np.minimum((c * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append(
                {
                    "bin": [b / bins, (b + 1) / bins],
                    "count": int(m.sum()),
                    "confidence": float(c[m].mean()),
                    "accuracy": float(y[m].mean()),
                }
            )
            ece += m.sum() / len(c) * abs(c[m].mean() - y[m].mean())
    return {"bins": rows, "ece": float(ece)}


def _ms(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


# --------------------------------------------------------------------------- signals and costs


@dataclass(frozen=True)
class SignalSpec:
    name: str
    features: tuple[str, ...]
    raw: bool  # a verifier's confidence used as is (the paper's signal)
    # what the logistic model learns: "correct" (the small answer is right) or "gain" (the large tier does not
    # beat the small one: escalating buys nothing); either way a higher confidence means "keep"
    target: str = "correct"

    @property
    def needs_verifier(self) -> str | None:
        for f in self.features:
            if f in VERIFIER_FEATURES:
                return VERIFIER_FEATURES[f]
        return None

    @property
    def needs_samples(self) -> bool:
        """Whether it reads answers sampled beside the greedy one ([cascade] agreement_samples)."""
        return any(f in AGREEMENT_FEATURES for f in self.features)

    def seconds(self, item: EvalItem) -> float:
        """What computing it took beyond the answer, on one recorded item."""
        strategy = self.needs_verifier
        extra = item.verify_seconds[strategy][0] if strategy else 0.0
        if self.needs_samples:
            extra = (extra or 0.0) + item.features[0].get("agreement_seconds", math.nan)
        return math.nan if extra is None else float(extra)

    def fit(self, items: Sequence[EvalItem]) -> Signal:
        if self.raw:
            return Signal.verifier(VERIFIER_FEATURES[self.features[0]])
        X = np.array([[it.features[0][f] for f in self.features] for it in items])
        if self.target == "gain":
            y = np.array([it.scores[-1] <= it.scores[0] + 1e-9 for it in items])
        else:
            y = np.array([it.scores[0] >= CORRECT_F1 for it in items])
        return fit_logistic(self.features, X, y)


def signal_specs(available: Sequence[str]) -> list[SignalSpec]:
    """The signals a run can be scored with: each feature alone, and their combinations (a logistic model
    of the small answer being right; "→ gain": of the large tier not beating it)."""
    specs = [SignalSpec(f, (f,), True) for f in available if f in VERIFIER_FEATURES]
    free = [f for f in FREE_FEATURES if f in available]
    token = [f for f in TOKEN_FEATURES if f in available]
    grounding = [f for f in GROUNDING_FEATURES if f in available]
    agreement = [f for f in AGREEMENT_FEATURES if f in available]
    specs += [SignalSpec(f, (f,), False) for f in (*free, *token, *grounding, *agreement)]
    if len(free) > 1:
        specs.append(SignalSpec("free combined", tuple(free), False))
    if free and token:
        specs.append(SignalSpec("free + token", (*free, *token), False))
    if grounding:
        specs.append(SignalSpec("grounding combined", tuple(grounding), False))
        if free:
            specs.append(SignalSpec("free + grounding", (*free, *grounding), False))
            every, name = (*free, *grounding), "free + grounding"
            if token:
                every, name = (*free, *token, *grounding), "free + token + grounding"
                specs.append(SignalSpec(name, every, False))
            specs.append(SignalSpec(f"{name} → gain", every, False, "gain"))
            if agreement:
                specs.append(SignalSpec(f"{name} + agreement", (*every, *agreement), False))
    for v in (f for f in available if f in VERIFIER_FEATURES):
        if free:
            specs.append(SignalSpec(f"free + {v}", (*free, v), False))
            if grounding:
                specs.append(SignalSpec(f"free + grounding + {v}", (*free, *grounding, v), False))
    return specs


def router_specs(specs: Sequence[SignalSpec]) -> list[SignalSpec]:
    """The signals the router tables are built for: the paper's and the shipped free features alone, and the
    combinations (every single feature is still scored in the signal tables). Not those reading sampled
    answers: the router tables' costs do not charge for the samples (their seconds are in the signal
    tables' cost column)."""
    return [
        s for s in specs if not s.needs_samples and (s.raw or len(s.features) > 1 or s.features[0] in FREE_FEATURES)
    ]


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


def _split(n: int, train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:train], perm[train:]


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
) -> dict[str, dict[str, Any]]:
    """Every (signal, router) and the baselines, fitted on ``train_size`` items, scored on the rest.

    With ``bootstrap`` > 0, each also gets ``delta_ibc_ci``: a percentile interval over that many
    item resamples (see :func:`bootstrap_delta_ibc`).
    """
    items = run.items
    rows: dict[str, dict[str, list[float]]] = {}
    held_out: dict[str, list[tuple[np.ndarray, Outcome]]] = {}  # name → per seed (test indices, outcome)

    def add(name: str, out: Outcome, te: np.ndarray, test: Sequence[EvalItem]) -> None:
        row = rows.setdefault(name, {})
        for k, v in _score(out, test, costs).items():
            row.setdefault(k, []).append(v)
        held_out.setdefault(name, []).append((te, out))

    for seed in range(seeds):
        tr, te = _split(len(items), train_size, seed)
        train, test = [items[i] for i in tr], [items[i] for i in te]
        base_recs = [Record(it.scores, (*([None] * (len(it.scores) - 1)), None)) for it in test]
        add("always_small", simulate(AlwaysSmall(), base_recs, costs.tier_costs), te, test)
        add("always_large", simulate(AlwaysLarge(), base_recs, costs.tier_costs), te, test)
        add("random p=0.5", simulate(RandomRouter(0.5, seed), base_recs, costs.tier_costs), te, test)
        for spec in specs:
            signal = spec.fit(train)
            rcosts = costs.router_costs(spec)
            train_recs, test_recs = _records(train, signal), _records(test, signal)
            kinds = ROUTER_KINDS if spec.raw else ROUTER_KINDS[:2]
            for kind in kinds:
                router = _make_router(kind).fit(train_recs, rcosts)
                add(f"{kind} · {spec.name}", simulate(router, test_recs, rcosts), te, test)
    out = {name: {k: _ms(v) for k, v in row.items()} for name, row in rows.items()}
    if bootstrap:
        small = np.array([it.scores[0] for it in items])
        large = np.array([it.scores[-1] for it in items])
        n = len(items)
        weights = np.random.default_rng(BOOTSTRAP_SEED).multinomial(n, [1 / n] * n, bootstrap)
        for name, parts in held_out.items():
            out[name]["delta_ibc_ci"] = bootstrap_delta_ibc(parts, small, large, costs.tier_costs, weights)
    return out


def bootstrap_delta_ibc(
    parts: Sequence[tuple[np.ndarray, Outcome]],
    small: np.ndarray,
    large: np.ndarray,
    tier_costs: Sequence[float],
    weights: np.ndarray,
) -> dict[str, float]:
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
    arr = np.array(reps)  # seeds × replicates
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(arr, axis=0)
    means = means[~np.isnan(means)]
    if len(means) == 0:
        return {"low": math.nan, "high": math.nan, "p_positive": math.nan, "replicates": 0}
    low, high = np.percentile(means, [2.5, 97.5])
    return {"low": float(low), "high": float(high), "p_positive": float(np.mean(means > 0)), "replicates": len(means)}


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


# --------------------------------------------------------------------------- the whole report


def _train_sizes(n: int, requested: Sequence[int]) -> list[int]:
    sizes = [m for m in requested if 10 <= m <= n - 10]
    if not sizes:
        sizes = [max(2, n // 2)]
    return sizes


def build_results(
    run: Run, fixed_costs: Sequence[float], seeds: int, train_sizes: Sequence[int], verify_cost: float = 1.0
) -> dict[str, Any]:
    n = len(run.items)
    sizes = _train_sizes(n, train_sizes)
    primary = max([m for m in sizes if m <= n // 2] or [min(sizes)])
    labels = [it.scores[0] >= CORRECT_F1 for it in run.items]
    res: dict[str, Any] = {
        "run": {
            "source": run.source,
            "tiers": run.tiers,
            "items": n,
            "errors": run.errors,
            "meta": {k: v for k, v in run.meta.items() if k != "ids"},
        },
        "correct_f1": CORRECT_F1,
        "train_size": primary,
        "train_sizes": sizes,
        "seeds": seeds,
    }
    tiers = {}
    for i, name in enumerate(run.tiers):
        t: dict[str, Any] = {
            "f1": float(np.mean([it.scores[i] for it in run.items])),
            "em": float(np.mean([it.ems[i] for it in run.items])),
            "abstention_rate": float(np.mean([it.abstained[i] for it in run.items])),
        }
        if run.has_seconds:
            t["answer_seconds"] = float(np.mean([it.answer_seconds[i] for it in run.items]))
        answerable = [it for it in run.items if not it.unanswerable]
        if len(answerable) < n:
            t["f1_answerable"] = float(np.mean([it.scores[i] for it in answerable])) if answerable else math.nan
            unans = [it for it in run.items if it.unanswerable]
            t["f1_unanswerable"] = float(np.mean([it.scores[i] for it in unans]))
        tiers[name] = t
    res["tiers"] = tiers
    res["small_correct_rate"] = float(np.mean(labels))

    specs = signal_specs(run.signals)
    res["signals"] = signal_table(run, specs, primary, seeds)
    res["abstain"] = abstain_table(run, primary, seeds)
    res["oracle_share"] = oracle_shares(run, specs, primary, seeds)

    settings = []
    for cs in cost_settings(run, fixed_costs, verify_cost):
        curve_specs = router_specs(specs)
        routers = evaluate_routers(run, cs, primary, seeds, curve_specs, bootstrap=BOOTSTRAP)
        curves = {s.name: threshold_curve(run, cs, primary, seeds, s) for s in curve_specs}
        c_large, c_small = cs.tier_costs[-1], cs.tier_costs[0]
        p_large = tiers[run.tiers[-1]]["f1"]
        p_small = tiers[run.tiers[0]]["f1"]
        half = c_large / 2
        retained = {name: value_at_cost(c, half) / p_large if p_large else math.nan for name, c in curves.items()}
        mix_at_half = (
            p_small + (p_large - p_small) * (half - c_small) / (c_large - c_small) if half >= c_small else math.nan
        )
        fitted = {k: v for k, v in routers.items() if "·" in k}
        best = _best(fitted)
        learning: dict[str, Any] = {}
        if best:
            spec_name = best.split("·")[1].strip()
            spec = next(s for s in specs if s.name == spec_name)
            for m in sizes:
                learning[str(m)] = evaluate_routers(run, cs, m, seeds, [spec])[best]["delta_ibc"]
        settings.append(
            {
                "name": cs.name,
                "tier_costs": dict(zip(run.tiers, cs.tier_costs, strict=True)),
                "verify_costs": {s: list(v) for s, v in cs.verify_costs.items()},
                "routers": routers,
                "best": best,
                "curves": curves,
                "retained_at_half_large_cost": retained,
                "random_mixing_retained_at_half_large_cost": mix_at_half / p_large if p_large else math.nan,
                "learning_curve": {"router": best, "delta_ibc": learning},
                "regime": _regime(cs, run),
                "warnings": _warnings(routers, cs),
            }
        )
    res["cost_settings"] = settings
    return res


def signal_table(run: Run, specs: Sequence[SignalSpec], train_size: int, seeds: int) -> dict[str, Any]:
    """Per signal: AUROC of its raw value against "the small answer is right", held-out AUROC and
    calibration of the fitted model, and the verification's seconds when it needs one."""
    n = len(run.items)
    labels = [it.scores[0] >= CORRECT_F1 for it in run.items]
    sig: dict[str, Any] = {}
    for spec in specs:
        entry: dict[str, Any] = {"features": list(spec.features), "needs_verifier": spec.needs_verifier}
        if spec.raw or len(spec.features) == 1:
            vals = [it.features[0][spec.features[0]] for it in run.items]
            entry["auroc_raw"] = auroc(vals, labels)
        if spec.raw:
            entry["reliability"] = reliability(vals, labels)
        else:  # held-out AUROC and calibration of the fitted logistic model
            aucs, confs, labs = [], [], []
            for seed in range(seeds):
                tr, te = _split(n, train_size, seed)
                s = spec.fit([run.items[i] for i in tr])
                c = [s.confidence(run.items[i].features[0]) for i in te]
                lab = [labels[i] for i in te]
                aucs.append(auroc(c, lab))
                confs += c
                labs += lab
            entry["auroc_heldout"] = _ms(aucs)
            entry["reliability"] = reliability(confs, labs)
        if (spec.needs_verifier or spec.needs_samples) and run.has_seconds:
            entry["verify_seconds"] = float(np.mean([spec.seconds(it) for it in run.items]))
        sig[spec.name] = entry
    return sig


def fit_abstain(p: Sequence[float], scores: Sequence[float], unanswerable: Sequence[bool]) -> float | None:
    """The threshold τ on P(abstain) at the first token that maximises mean F1 when every item with
    p ≥ τ abstains (an abstention scores 1 on an unanswerable item, 0 otherwise); None when no τ beats
    abstaining only where the model chose to. τ sits halfway between the last item abstaining and the
    next (a margin for items not seen)."""
    pv = np.asarray(p, dtype=float)
    gain = np.asarray(unanswerable, dtype=float) - np.asarray(scores, dtype=float)
    order = np.argsort(-pv, kind="stable")
    best, tau, cum = 0.0, None, 0.0
    for rank, i in enumerate(order):
        cum += gain[i]
        nxt = pv[order[rank + 1]] if rank + 1 < len(order) else None
        if nxt is not None and nxt == pv[i]:
            continue  # the whole tied group abstains or none of it
        if cum > best + 1e-9:
            best, tau = cum, float(pv[i] if nxt is None else (pv[i] + nxt) / 2)
    return tau


def _with_abstain(p: np.ndarray, scores: np.ndarray, unanswerable: np.ndarray, tau: float | None) -> np.ndarray:
    if tau is None:
        return scores
    return np.where(p >= tau, unanswerable.astype(float), scores)


def _abstain_data(run: Run) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per tier with a recorded P(abstain): (P(abstain), F1) per item; empty without unanswerable items."""
    items = run.items
    if not any(it.unanswerable for it in items) or not items[0].p_abstain:
        return {}
    out = {}
    for i, name in enumerate(run.tiers):
        if all(it.p_abstain[i] is not None for it in items):
            p = np.array([it.p_abstain[i] for it in items], dtype=float)
            out[name] = (p, np.array([it.scores[i] for it in items]))
    return out


def abstain_thresholds(run: Run) -> dict[str, float]:
    """Per tier, the abstention threshold fitted on every item (what `calibrate` writes), where one helps."""
    una = np.array([it.unanswerable for it in run.items])
    fitted = {name: fit_abstain(p, f1, una) for name, (p, f1) in _abstain_data(run).items()}
    return {name: tau for name, tau in fitted.items() if tau is not None}


def abstain_table(run: Run, train_size: int, seeds: int) -> dict[str, Any] | None:
    """Per local tier: F1 as recorded, and with an abstention threshold fitted on the train part and applied
    to the held-out part (mean over the splits); the threshold fitted on every item (what `calibrate` writes)
    and how many items it turns into abstentions. None when the run has no P(abstain) or no unanswerable item."""
    items = run.items
    una = np.array([it.unanswerable for it in items])
    out: dict[str, Any] = {}
    for name, (p, f1) in _abstain_data(run).items():
        before, after = [], []
        for seed in range(seeds):
            tr, te = _split(len(items), train_size, seed)
            tau = fit_abstain(p[tr], f1[tr], una[tr])
            before.append(float(f1[te].mean()))
            after.append(float(_with_abstain(p[te], f1[te], una[te], tau).mean()))
        tau_all = fit_abstain(p, f1, una)
        out[name] = {
            "f1": _ms(before),
            "f1_heldout_with_threshold": _ms(after),
            "threshold": tau_all,
            "abstains": float(np.mean(p >= tau_all)) if tau_all is not None else 0.0,
        }
    return out or None


def oracle_shares(run: Run, specs: Sequence[SignalSpec], train_size: int, seeds: int) -> dict[str, Any]:
    """Per signal, held out: the share of the oracle's gain over random mixing when it escalates 25 % and
    50 % of the items (see gain.py); beside it, on all items, what random mixing and the oracle keep of
    the large tier's F1 at those rates, and each signal's cost as a share of the small tier's answer."""
    items = run.items
    small = np.array([it.scores[0] for it in items])
    large = np.array([it.scores[-1] for it in items])
    splits = [_split(len(items), train_size, seed) for seed in range(seeds)]
    answer_s = float(np.mean([it.answer_seconds[0] for it in items])) if run.has_seconds else math.nan
    signals: dict[str, Any] = {}
    for spec in specs:

        def confidences(tr: np.ndarray, te: np.ndarray, spec: SignalSpec = spec) -> np.ndarray:
            fitted = spec.fit([items[i] for i in tr])
            return np.array([fitted.confidence(items[i].features[0]) for i in te])

        entry: dict[str, Any] = {"rates": heldout_shares(small, large, confidences, splits, RATES)}
        if not (spec.needs_verifier or spec.needs_samples):
            entry["cost_ratio"] = 0.0
        elif run.has_seconds and answer_s > 0:
            entry["cost_ratio"] = float(np.mean([spec.seconds(it) for it in items])) / answer_s
        signals[spec.name] = entry
    p_large = float(large.mean()) or math.nan
    return {
        "rates": list(RATES),
        "random_vs_large": {f"{r:g}": random_quality(small, large, r) / p_large for r in RATES},
        "oracle_vs_large": {f"{r:g}": oracle_quality(small, large, r) / p_large for r in RATES},
        "signals": signals,
    }


MIXING = (0.1, 0.9)  # a router counts as a real operating point when it escalates 10–90 % of items


def _best(fitted: dict[str, dict[str, Any]]) -> str | None:
    """The router most reliably ahead on held-out items: the highest mean − std of ΔIBC over the seeds,
    among routers that really mix the tiers.

    ΔIBC divides by the extra cost over always-small, so a router that escalates 2 % of the items
    gets a huge, noisy ratio from a handful of questions; such points are only chosen when no
    router escalates between 10 % and 90 % of the items. Ranking by mean − std rather than the mean
    keeps a router whose gain comes from a few lucky splits from being shipped.
    """
    if not fitted:
        return None
    mixing = {k: v for k, v in fitted.items() if MIXING[0] <= v["escalation"]["mean"] <= MIXING[1]}
    pool = mixing or fitted
    return max(pool, key=lambda k: _lower(pool[k]["delta_ibc"]))


def _lower(d: dict[str, float]) -> float:
    """mean − std, a one-sigma lower bound over seeds (−inf when undefined)."""
    m, sd = d.get("mean", math.nan), d.get("std", 0.0)
    return _nan_low(m - (0.0 if math.isnan(sd) else sd))


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


def _warnings(routers: dict[str, dict[str, Any]], cs: CostSetting) -> list[str]:
    fitted = {k: v for k, v in routers.items() if "·" in k}
    out = []
    for base in ("always_large", "always_small"):
        b = routers[base]
        beaten = all(
            b["performance"]["mean"] >= r["performance"]["mean"] - 1e-12
            and b["cost"]["mean"] <= r["cost"]["mean"] + 1e-12
            for r in fitted.values()
        )
        if fitted and beaten:
            out.append(f"with {cs.name} costs, {base} is at least as good and no dearer than every router")
    if fitted and all(_nan_low(r["delta_ibc"]["mean"]) <= 0 for r in fitted.values()):
        out.append(f"with {cs.name} costs, no router beats random mixing of always-small and always-large (ΔIBC ≤ 0)")
    return out


# --------------------------------------------------------------------------- rendering


def _f(x: float, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _pm(ms: dict[str, float], nd: int = 3) -> str:
    if math.isnan(ms["mean"]):
        return "–"
    return f"{ms['mean']:.{nd}f} ± {ms['std']:.{nd}f}"


def _ci(ci: dict[str, float] | None) -> str:
    if not ci or math.isnan(ci["low"]):
        return "–"
    return f"{ci['low']:+.1f} to {ci['high']:+.1f}"


def render_markdown(res: dict[str, Any], command: str | None = None) -> str:
    run = res["run"]
    meta = run["meta"]
    lines = ["# automix_local evaluation report", ""]
    data = meta.get("data", "?")
    lines.append(
        f"- Data: `{data}` — {run['items']} items scored"
        + (f", {run['errors']} skipped (errors)" if run["errors"] else "")
        + (f"; selection: limit {meta.get('limit')}, seed {meta.get('seed')}" if "limit" in meta else "")
    )
    lines.append(
        f"- Tiers: {' → '.join(run['tiers'])}"
        + (" (" + "; ".join(f"{t['name']}: {t['source']}" for t in meta["tiers"]) + ")" if "tiers" in meta else "")
    )
    if "machine" in meta:
        m = meta["machine"]
        lines.append(
            f"- Machine: {m.get('processor')}, {m.get('cpus')} CPUs, {m.get('platform')}, "
            f"llama-cpp-python {m.get('llama_cpp_python')}"
        )
    if command:
        lines.append(f"- Reproduce: `{command}`")
    if meta.get("grounding"):
        lines.append(f"- Grounding features: {meta['grounding']}.")
    lines.append(
        f"- Routers are fitted on {res['train_size']} random items and scored on the rest, "
        f"repeated over {res['seeds']} seeds (mean ± std). An answer counts as correct for AUROC and "
        f"calibration when its F1 ≥ {res['correct_f1']}."
    )
    lines += [
        "",
        "## Per-tier quality",
        "",
        "| tier | F1 | EM | abstains | answer s |"
        + (" F1 answerable | F1 unanswerable |" if any("f1_answerable" in t for t in res["tiers"].values()) else ""),
        "| --- | --- | --- | --- | --- |"
        + (" --- | --- |" if any("f1_answerable" in t for t in res["tiers"].values()) else ""),
    ]
    for name, t in res["tiers"].items():
        secs = _f(t.get("answer_seconds", math.nan), 2)
        row = f"| {name} | {_f(t['f1'])} | {_f(t['em'])} | {_f(t['abstention_rate'], 2)} | {secs} |"
        if "f1_answerable" in t:
            row += f" {_f(t['f1_answerable'])} | {_f(t['f1_unanswerable'])} |"
        lines.append(row)
    lines += [
        "",
        f"The small tier is correct on {res['small_correct_rate']:.1%} of the items.",
        "",
        "## Signals: does the confidence separate right from wrong small answers?",
        "",
        "| signal | AUROC (raw value) | AUROC held-out (fitted) | ECE | needs verifier | verify s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in res["signals"].items():
        held = _pm(s["auroc_heldout"]) if "auroc_heldout" in s else "–"
        lines.append(
            f"| {name} | {_f(s.get('auroc_raw', math.nan))} | {held} | {_f(s['reliability']['ece'])} | "
            f"{s['needs_verifier'] or 'no (free)'} | {_f(s.get('verify_seconds', math.nan), 2)} |"
        )
    verifiers = [n for n, s in res["signals"].items() if n.startswith("verifier_")]
    weak = [n for n in verifiers if abs(res["signals"][n].get("auroc_raw", 0.5) - 0.5) < 0.05]
    if weak:
        lines += [
            "",
            f"**The verifier cannot separate right from wrong answers here**: {', '.join(weak)} "
            "has an AUROC within 0.05 of chance (0.5) on these items and models.",
        ]
    lines += [
        "",
        "AUROC of a raw value below 0.5 means the signal is informative in the other direction "
        "(the fitted variants learn the direction).",
        "",
    ]
    if "oracle_share" in res:
        lines += _render_oracle_share(res["oracle_share"])
    if res.get("abstain"):
        lines += [
            "## Abstaining at the first token",
            "",
            'A tier abstains at once when P(its answer starts "unanswerable") reaches a threshold τ '
            "(`abstain_threshold`; `calibrate` writes the one fitted on all items into the router file). "
            "Held out: τ fitted on the train part, F1 on the rest (mean ± std over the splits).",
            "",
            "| tier | F1 (recorded) | F1 held out, with τ | τ (all items) | items abstaining at τ |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, a in res["abstain"].items():
            tau = "none (never better)" if a["threshold"] is None else f"{a['threshold']:.3f}"
            lines.append(
                f"| {name} | {_pm(a['f1'])} | {_pm(a['f1_heldout_with_threshold'])} | {tau} | {a['abstains']:.0%} |"
            )
        lines.append("")
    for cs in res["cost_settings"]:
        lines += [
            f"## Routers — {cs['name']} costs",
            "",
            cs["regime"],
            "",
            "Tier costs: "
            + ", ".join(f"{k} {v:.3g}" for k, v in cs["tier_costs"].items())
            + (
                "; verification: " + ", ".join(f"{s} {v[0]:.3g}" for s, v in cs["verify_costs"].items())
                if cs["verify_costs"]
                else ""
            ),
            "",
        ]
        undefined = 1 - cs["routers"]["always_small"]["ibc_defined"]["mean"]
        if undefined > 0:
            lines.append(
                f"> ΔIBC is undefined on {undefined:.0%} of the test parts (small and large F1 within "
                f"{MIN_GAP} there); its mean and std are over the other parts."
            )
        for w in cs["warnings"]:
            lines.append(f"> **Warning:** {w}.")
        if cs["warnings"]:
            lines.append("")
        lines += [
            "| router · signal | F1 | cost | escalated | ΔIBC % | ΔIBC 95 % CI | P(ΔIBC > 0) | F1 / large |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        ordered = sorted(cs["routers"].items(), key=lambda kv: ("·" in kv[0], -_nan_low(kv[1]["delta_ibc"]["mean"])))
        for name, r in ordered:
            lines.append(
                f"| {name} | {_pm(r['performance'])} | {_pm(r['cost'], 2)} | {_f(r['escalation']['mean'], 2)} | "
                f"{_pm(r['delta_ibc'], 1)} | {_ci(r.get('delta_ibc_ci'))} | "
                f"{_f((r.get('delta_ibc_ci') or {}).get('p_positive', math.nan), 2)} | {_f(r['retained']['mean'], 2)} |"
            )
        lines += [
            "",
            "ΔIBC ± is the std over the seeds' splits; the 95 % CI and P(ΔIBC > 0) come from "
            f"{BOOTSTRAP} resamples of the items with the fitted routers held fixed (how much the figure "
            "depends on which questions were asked).",
            "",
            f"Best router on held-out items (highest mean − std of ΔIBC over seeds, among routers escalating "
            f"{MIXING[0]:.0%}–{MIXING[1]:.0%} of items): **{cs['best']}**.",
            "",
        ]
        lc = cs["learning_curve"]
        if lc["delta_ibc"]:
            lines.append(
                f"ΔIBC of {lc['router']} by train size: "
                + ", ".join(f"{m}: {_pm(v, 1)}" for m, v in lc["delta_ibc"].items())
            )
            lines.append("")
        mix = cs["random_mixing_retained_at_half_large_cost"]
        lines.append(
            f"Quality retained at half the large tier's cost (threshold curves, vs the large tier's F1; "
            f"random mixing: {_f(mix, 2)}): "
            + ", ".join(
                f"{k} {_f(v, 2)}"
                for k, v in sorted(cs["retained_at_half_large_cost"].items(), key=lambda kv: -_nan_low(kv[1]))
            )
        )
        lines.append("")
    lines += ["![cost-quality](cost_quality.png)", ""]
    return "\n".join(lines)


def _render_oracle_share(osh: dict[str, Any]) -> list[str]:
    rates = [f"{r:g}" for r in osh["rates"]]
    pct = [f"{float(r):.0%}" for r in rates]
    lines = [
        "## Signals at a fixed escalation rate: the share of the oracle's gain",
        "",
        "Each signal, fitted on the train part, escalates its least confident "
        + " or ".join(pct)
        + " of the held-out items; the share is (F1 − random mixing) / (oracle − random mixing) at the same "
        "rate (0: a coin, 1: perfect; mean over the splits, 95 % interval over resamples of the test items). "
        "On all items, random mixing keeps "
        + ", ".join(f"{_f(osh['random_vs_large'][r], 3)} ({p})" for r, p in zip(rates, pct, strict=True))
        + " of the large tier's F1 and the oracle "
        + ", ".join(f"{_f(osh['oracle_vs_large'][r], 3)} ({p})" for r, p in zip(rates, pct, strict=True))
        + ". Cost: the signal's seconds as a share of the small tier's answer (0: read from the answer itself).",
        "",
        "| signal | " + " | ".join(f"share at {p} (95 % CI)" for p in pct) + " | cost × answer |",
        "| --- | " + " | ".join("---" for _ in pct) + " | --- |",
    ]
    for name, e in osh["signals"].items():
        cells = [
            f"{_f(e['rates'][r]['share'], 2)} ({_f(e['rates'][r]['lo'], 2)} to {_f(e['rates'][r]['hi'], 2)})"
            for r in rates
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_f(e.get('cost_ratio', math.nan), 2)} |")
    return [*lines, ""]


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = res["cost_settings"]
    fig, axes = plt.subplots(1, len(settings), figsize=(7 * len(settings), 5.2), squeeze=False)
    for ax, cs in zip(axes[0], settings, strict=True):
        r = cs["routers"]
        s, large = r["always_small"], r["always_large"]
        xs = [s["cost"]["mean"], large["cost"]["mean"]]
        ys = [s["performance"]["mean"], large["performance"]["mean"]]
        ax.plot(xs, ys, "k--", lw=1, label="random mixing (IBC baseline)")
        ax.scatter(xs[:1], ys[:1], c="k", marker="s", s=60, zorder=5, label="always-small")
        ax.scatter(xs[1:], ys[1:], c="k", marker="^", s=70, zorder=5, label="always-large")
        cmap = plt.get_cmap("tab10")
        for i, (name, curve) in enumerate(cs["curves"].items()):
            ax.plot(
                [p["cost"] for p in curve],
                [p["performance"] for p in curve],
                "-",
                lw=1.2,
                alpha=0.8,
                color=cmap(i % 10),
                label=f"threshold sweep · {name}",
            )
        markers = {"threshold": "o", "pomdp": "*", "self_consistency": "D"}
        for i, name in enumerate(cs["curves"]):
            for kind, mk in markers.items():
                key = f"{kind} · {name}"
                if key in r:
                    ax.scatter(
                        [r[key]["cost"]["mean"]],
                        [r[key]["performance"]["mean"]],
                        marker=mk,
                        s=80,
                        color=cmap(i % 10),
                        edgecolors="k",
                        zorder=6,
                    )
        ax.set_title(f"{cs['name']} costs  (★ POMDP, ● threshold, ◆ self-consistency)", fontsize=10)
        ax.set_xlabel("mean cost per question")
        ax.set_ylabel("F1")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"{' → '.join(res['run']['tiers'])} on {res['run']['items']} items (held-out means over {res['seeds']} seeds)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(res: dict[str, Any]) -> str:
    lines = [f"{res['run']['items']} items · " + " · ".join(f"{n} F1 {t['f1']:.3f}" for n, t in res["tiers"].items())]
    aucs = [
        f"{n} {s.get('auroc_raw', s.get('auroc_heldout', {}).get('mean', math.nan)):.2f}"
        for n, s in res["signals"].items()
    ]
    lines.append("AUROC: " + ", ".join(aucs))
    for cs in res["cost_settings"]:
        b = cs["best"]
        r = cs["routers"].get(b) if b else None
        best = (
            f"best {b}: ΔIBC {_pm(r['delta_ibc'], 1)}% (95% CI {_ci(r.get('delta_ibc_ci'))}), "
            f"F1 {r['performance']['mean']:.3f}"
            if r
            else "no router"
        )
        lines.append(f"[{cs['name']}] {best}")
        lines += [f"  warning: {w}" for w in cs["warnings"]]
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_report(
    run_path: Path,
    out_dir: Path,
    fixed_costs: Sequence[float] = (1.0, 50.0),
    seeds: int = 10,
    train_sizes: Sequence[int] = (50, 100, 200, 500),
    command: str | None = None,
    verify_cost: float = 1.0,
) -> dict[str, Any]:
    run = load_run(run_path)
    res = build_results(run, fixed_costs, seeds, train_sizes, verify_cost)
    res["command"] = command
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(_jsonable(res), indent=1, ensure_ascii=False) + "\n")
    (out_dir / "report.md").write_text(render_markdown(res, command), encoding="utf-8")
    plot(res, out_dir / "cost_quality.png")
    return res


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
) -> tuple[Router, SignalSpec, CostSetting]:
    """Fit one router (and its signal) on the whole run (a path, or a run already loaded), for models.toml's
    ``[cascade] calibration``."""
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
            (_lower(rows[f"{router_kind} · {s.name}"]["delta_ibc"]), s)
            for s in specs
            if f"{router_kind} · {s.name}" in rows
        ]
        spec = max(scored, key=lambda t: _nan_low(t[0]))[1]
    signal = spec.fit(run.items)
    router = _make_router(router_kind)
    if isinstance(router, (ThresholdRouter, POMDPRouter)) and not isinstance(router, SelfConsistency):
        router.lambda_, router.target_escalation = lambda_, target_escalation
    router.fit(_records(run.items, signal), cs.router_costs(spec))
    router.signal = signal
    router.abstain = abstain_thresholds(run)
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

    from .routers import load

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
        return np.array([default.confidence(run.items[i].features[0]) for i in te])  # type: ignore[union-attr]

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
