"""Fit the "not in your documents" rule (automix_local/documents/answerable.py) on recorded library answers and
score it on questions it was not fitted on.

    .venv/bin/python bench/answerable_fit.py docs/results/documents_e2e.json docs/results/documents_e2e_seed5.json \
        docs/results/documents_e2e_fairytale.json --data ../shared/data/squad_v2_dev_public.jsonl \
        --data ../shared/data/fairytaleqa_val.jsonl --out docs/results/answerable.md

Input: the per-question records ``bench/documents_e2e.py`` writes (its ``.json``), each library answer with the
candidate features of ``answerable.FEATURES`` and its outcome (the question is unanswerable or not); a question
in two files counts once. A question is in the **fitting part** when the SHA-256 of its id is even
(``fitting_part``), else **held out**: the split does not depend on the order questions were sampled in.

The rule comes after the cascade: questions already turned away (the retrieval floor, the model's abstention,
the router's "not sure") are not its business. Every candidate turns a question away when its score reaches a
threshold, chosen on the fitting part as the one that turns away the most unanswerable questions while the rule
itself loses at most ``--fit-loss`` of each dataset's answerable questions. Candidates:

* one feature, a threshold (each feature and direction);
* two features, a threshold each, turned away when both are beyond them;
* logistic regressions (L2, standardised; a missing value is the fitting part's mean) on named feature sets.

Which candidate ships is chosen by 5-fold cross-validation inside the fitting part, never on the held-out part:
the simplest (fewest features) of those within one standard error of the best. The held-out part is scored
once, with the chosen candidate refitted on the whole fitting part; 20 random half splits (mean ± std) show how
much the result moves with the split.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.documents.answerable import FEATURES  # noqa: E402
from automix_local.signals import fit_logistic  # noqa: E402

# features every library answer has, whether it escalated or not (the large tier's answer exists only when the
# question escalated: ``agreement`` and ``disagreement`` are not among them; ``confidence`` needs a router that
# judges the shown answer, as the default trust router does)
EVERY_MODE = (
    "supported",
    "cited",
    "best_cosine",
    "question_overlap",
    "evidence_overlap",
    "context_overlap",
    "answer_support",
    "echo",
    "type_match",
    "log_p_abstain",
    "mean_logprob",
    "min_logprob",
    "length",
    "confidence",
)
LOGISTIC_SETS = {
    "logistic: every-mode features": EVERY_MODE,
    "logistic: every-mode + tiers' disagreement": (*EVERY_MODE, "disagreement", "log_p_abstain_last"),
    "logistic: support, overlaps, P(abstain)": (
        "supported",
        "question_overlap",
        "evidence_overlap",
        "context_overlap",
        "log_p_abstain",
    ),
    "logistic: best cosine, P(abstain), log-probabilities, confidence": (
        "best_cosine",
        "log_p_abstain",
        "mean_logprob",
        "min_logprob",
        "confidence",
    ),
}


def fitting_part(qid: str) -> bool:
    """The fixed split: the fitting part holds the questions whose id's SHA-256 is even."""
    return int(hashlib.sha256(qid.encode()).hexdigest(), 16) % 2 == 0


@dataclass
class Item:
    qid: str
    dataset: str
    unanswerable: bool
    already: bool  # turned away before the rule (retrieval floor, or the model abstained)
    feats: dict = field(default_factory=dict)  # empty when already turned away by retrieval
    right: bool = False  # the answer shown before the rule scores F1 ≥ 0.5 (an abstention on an unanswerable)
    answer: str = ""
    question: str = ""


def load(paths: Sequence[Path], setting: str, rows: dict[str, dict] | None = None) -> list[Item]:
    """The records' library answers; ``rows`` (the QA files' rows by id) name each question's dataset and text."""
    rows = rows or {}
    items = []
    seen: set[str] = set()
    for path in paths:
        for rec in json.loads(path.read_text(encoding="utf-8")):
            if rec["id"] in seen:  # two samples of one file may share a question: count it once
                continue
            seen.add(rec["id"])
            r = rec[setting]
            row = rows.get(rec["id"], {})
            items.append(
                Item(
                    rec["id"],
                    row.get("dataset", path.stem),
                    bool(rec["unanswerable"]),
                    bool(r["not_found"]),
                    r.get("features") or {},
                    r["f1"] >= 0.5,
                    r["answer"],
                    row.get("question", ""),
                )
            )
    return items


# --------------------------------------------------------------------------- candidate rules


class Rule:
    """A scorer fitted on items; ``turned(items)`` applies its threshold; ``constants()`` is the module's RULE."""

    name = ""
    threshold = math.inf

    def constants(self) -> dict:
        raise NotImplementedError

    def fit(self, items: Sequence[Item], loss: float) -> Rule:
        raise NotImplementedError

    def scores(self, items: Sequence[Item]) -> np.ndarray:
        raise NotImplementedError

    def turned(self, items: Sequence[Item]) -> np.ndarray:
        s = self.scores(items)
        already = np.array([it.already for it in items])
        return already | (s >= self.threshold)


def choose_threshold(scores: np.ndarray, items: Sequence[Item], loss: float) -> float:
    """The lowest threshold (most turned away) at which the rule itself loses at most ``loss`` of each dataset's
    answerable items (those already turned away before it — retrieval, abstained, not sure — are not its loss)."""
    already = np.array([it.already for it in items])
    datasets = sorted({it.dataset for it in items})
    masks = [np.array([it.dataset == d and not it.unanswerable for it in items]) for d in datasets]
    masks = [m for m in masks if m.any()]
    best = math.inf
    candidates = np.unique(scores[~already])
    candidates = candidates[np.isfinite(candidates)]
    for t in candidates[::-1]:  # from the highest: turning away more as it falls
        added = ~already & (scores >= t)
        if any(added[m].mean() > loss + 1e-12 for m in masks):
            break
        best = float(t)
    return best


def column(items: Sequence[Item], name: str, fill: float | None = None) -> np.ndarray:
    vals = [it.feats.get(name) for it in items]
    known = [float(v) for v in vals if v is not None]
    default = fill if fill is not None else (statistics.fmean(known) if known else 0.0)
    return np.array([float(v) if v is not None else default for v in vals])


def signed(items: Sequence[Item], name: str, sign: float) -> np.ndarray:
    """``sign`` × the feature, -inf where it is missing (a threshold rule never turns such a question away)."""
    return np.array([sign * float(v) if (v := it.feats.get(name)) is not None else -np.inf for it in items])


def condition(name: str, sign: float, threshold: float) -> list:
    """sign × x ≥ threshold, as the module writes it: [name, ">=", threshold] or [name, "<=", -threshold]."""
    return [name, ">=", round(threshold, 6)] if sign > 0 else [name, "<=", round(-threshold, 6)]


class OneFeature(Rule):
    def __init__(self, feature: str, sign: float) -> None:
        self.feature, self.sign = feature, sign
        self.name = f"{feature} {'≥' if sign > 0 else '≤'} t"

    def fit(self, items: Sequence[Item], loss: float) -> Rule:
        self.threshold = choose_threshold(self.scores(items), items, loss)
        return self

    def scores(self, items: Sequence[Item]) -> np.ndarray:
        return signed(items, self.feature, self.sign)

    def constants(self) -> dict:
        return {"kind": "all", "conditions": [condition(self.feature, self.sign, self.threshold)]}


class TwoFeatures(Rule):
    """Turned away when both features are beyond their thresholds; the second threshold is searched over the
    fitting part's deciles, the first chosen by ``choose_threshold`` for each."""

    def __init__(self, a: str, sa: float, b: str, sb: float) -> None:
        self.a, self.sa, self.b, self.sb = a, sa, b, sb
        self.name = f"{a} {'≥' if sa > 0 else '≤'} t₁ and {b} {'≥' if sb > 0 else '≤'} t₂"
        self.tb = math.inf

    def fit(self, items: Sequence[Item], loss: float) -> Rule:
        xb = signed(items, self.b, self.sb)
        una = np.array([it.unanswerable for it in items])
        best = (-1.0, math.inf, math.inf)
        for tb in np.unique(np.quantile(xb[np.isfinite(xb)], np.linspace(0, 1, 11))):
            self.tb = float(tb)
            ta = choose_threshold(self.scores_a(items), items, loss)
            self.threshold = ta
            caught = self.turned(items)[una].mean() if una.any() else 0.0
            if caught > best[0]:
                best = (caught, ta, float(tb))
        _, self.threshold, self.tb = best
        return self

    def scores_a(self, items: Sequence[Item]) -> np.ndarray:
        return np.where(signed(items, self.b, self.sb) >= self.tb, signed(items, self.a, self.sa), -np.inf)

    def scores(self, items: Sequence[Item]) -> np.ndarray:
        return self.scores_a(items)

    def constants(self) -> dict:
        return {
            "kind": "all",
            "conditions": [condition(self.a, self.sa, self.threshold), condition(self.b, self.sb, self.tb)],
        }


class Logistic(Rule):
    def __init__(self, name: str, features: Sequence[str], l2: float = 1.0) -> None:
        self.name, self.features, self.l2 = name, tuple(features), l2

    def fit(self, items: Sequence[Item], loss: float) -> Rule:
        rows = [it for it in items if not it.already]
        self.fill = [float(column(rows, f).mean()) for f in self.features]
        X = self.matrix(rows)
        y = np.array([it.unanswerable for it in rows], dtype=float)
        self.signal = fit_logistic(self.features, X, y, self.l2)
        self.threshold = choose_threshold(self.scores(items), items, loss)
        return self

    def matrix(self, items: Sequence[Item]) -> np.ndarray:
        return np.column_stack([column(items, f, fill) for f, fill in zip(self.features, self.fill, strict=True)])

    def scores(self, items: Sequence[Item]) -> np.ndarray:
        s = self.signal
        Z = (self.matrix(items) - np.array(s.mean)) / np.array(s.scale)
        z = s.bias + Z @ np.array(s.weights)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def constants(self) -> dict:
        s = self.signal
        return {
            "kind": "logistic",
            "features": list(self.features),
            "weights": [round(w, 6) for w in s.weights],
            "bias": round(s.bias, 6),
            "mean": [round(m, 6) for m in s.mean],
            "std": [round(x, 6) for x in s.scale],
            "fill": [round(f, 6) for f in self.fill],
            "threshold": round(float(self.threshold), 6),
        }


def candidates(items: Sequence[Item]) -> dict[str, Callable[[], Rule]]:
    out: dict[str, Callable[[], Rule]] = {}
    feats = [f for f in FEATURES if f not in ("agreement",) and any(f in it.feats for it in items)]
    singles = [(f, s) for f in feats for s in (1.0, -1.0)]
    for f, s in singles:
        out[f"one: {f} {'≥' if s > 0 else '≤'} t"] = lambda f=f, s=s: OneFeature(f, s)
    for (a, sa), (b, sb) in itertools.combinations(singles, 2):
        if a != b and a in EVERY_MODE and b in EVERY_MODE:
            out[f"two: {a}{'+' if sa > 0 else '-'} & {b}{'+' if sb > 0 else '-'}"] = lambda a=a, sa=sa, b=b, sb=sb: (
                TwoFeatures(a, sa, b, sb)
            )
    for name, fs in LOGISTIC_SETS.items():
        out[name] = lambda name=name, fs=fs: Logistic(name, fs)
    return out


# --------------------------------------------------------------------------- scoring


def rates(
    turned: np.ndarray, items: Sequence[Item], dataset: str | None = None, added: bool = False
) -> tuple[float, float, int, int]:
    """(share of unanswerable turned away, share of answerable lost, n unanswerable, n answerable); ``added``:
    only what the rule turns away beyond what was turned away before it."""
    sel = np.array([dataset is None or it.dataset == dataset for it in items])
    if added:
        turned = turned & ~np.array([it.already for it in items])
    una = np.array([it.unanswerable for it in items]) & sel
    ans = ~np.array([it.unanswerable for it in items]) & sel
    caught = float(turned[una].mean()) if una.any() else float("nan")
    lost = float(turned[ans].mean()) if ans.any() else float("nan")
    return caught, lost, int(una.sum()), int(ans.sum())


def folds(items: Sequence[Item], k: int, seed: int) -> list[list[int]]:
    """k folds stratified by dataset and outcome."""
    rng = random.Random(seed)
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault((it.dataset, it.unanswerable), []).append(i)
    out: list[list[int]] = [[] for _ in range(k)]
    for key in sorted(groups):
        idx = groups[key]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            out[j % k].append(i)
    return out


def cross_validate(make: Callable[[], Rule], items: Sequence[Item], loss: float, k: int = 5, seed: int = 0) -> dict:
    """What the rule adds, per dataset, over the k held-out folds (each scored by a rule fitted on the rest): the
    share of unanswerable questions it turns away and of answerable ones it loses."""
    turned = np.zeros(len(items), dtype=bool)
    for fold in folds(items, k, seed):
        inside = set(fold)
        train = [it for i, it in enumerate(items) if i not in inside]
        rule = make().fit(train, loss)
        test = [items[i] for i in fold]
        turned[fold] = rule.turned(test)
    return {d: rates(turned, items, d, added=True) for d in sorted({it.dataset for it in items})}


def objective(res: dict, target_loss: float) -> float:
    """Mean share of unanswerable questions the rule turns away over the datasets that have them, when it loses
    at most ``target_loss`` of every dataset's answerable ones; else minus the excess loss."""
    worst = max(r[1] for r in res.values())
    if worst > target_loss:
        return -(worst - target_loss)
    caught = [r[0] for r in res.values() if not math.isnan(r[0])]
    return statistics.fmean(caught) if caught else 0.0


def separation(items: Sequence[Item]) -> list[str]:
    """Each feature alone: how well it tells an unanswerable question from an answerable one (AUROC, oriented so
    that 0.5 is none and 1 perfect; the sign says which way), over the answers the rule would judge (not already
    turned away), all questions of the datasets that have both kinds."""
    from automix_local.report import auroc

    rows = [it for it in items if not it.already]
    with_both = {it.dataset for it in rows if it.unanswerable}
    rows = [it for it in rows if it.dataset in with_both]
    lines = [
        f"## Each feature alone ({', '.join(sorted(with_both))}: {len(rows)} answers not already turned away)",
        "",
        "| feature | AUROC for “unanswerable” | higher means | answers with it |",
        "| --- | --- | --- | --- |",
    ]
    out = []
    for f in FEATURES:
        known = [(float(v), it.unanswerable) for it in rows if (v := it.feats.get(f)) is not None]
        if len({u for _, u in known}) < 2:
            continue
        a = auroc([v for v, _ in known], [u for _, u in known])
        out.append((max(a, 1 - a), "unanswerable" if a >= 0.5 else "answerable", f, len(known)))
    for a, way, f, n in sorted(out, reverse=True):
        lines.append(f"| {f} | {a:.3f} | {way} | {n} |")
    return lines


def complexity(name: str) -> int:
    """How many features a candidate reads (its constants' count grows with it)."""
    if name.startswith("one:"):
        return 1
    if name.startswith("two:"):
        return 2
    return len(LOGISTIC_SETS[name]) + 1


def simplest_near_best(ranked: Sequence[str], cv: dict, goal: float, items: Sequence[Item]) -> str:
    """The one-standard-error rule: among the candidates whose cross-validated objective is within one standard
    error of the best (a share of the unanswerable questions of the fitting part), the one with the fewest
    features; ties by rank. With some 60 unanswerable questions a few points separate no candidates."""
    best = objective(cv[ranked[0]], goal)
    n = sum(1 for it in items if it.unanswerable) or 1
    se = math.sqrt(max(best, 0.0) * (1 - max(best, 0.0)) / n)
    near = [c for c in ranked if objective(cv[c], goal) >= best - se]
    return min(near, key=lambda c: (complexity(c), ranked.index(c)))


def wilson(p: float, n: int) -> tuple[float, float]:
    if n == 0 or math.isnan(p):
        return float("nan"), float("nan")
    z = 1.96
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def fmt(p: float, n: int) -> str:
    if math.isnan(p):
        return "–"
    lo, hi = wilson(p, n)
    return f"{p:.0%} ({lo:.0%}–{hi:.0%}, n = {n})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("records", type=Path, nargs="+")
    ap.add_argument("--setting", default="library@512")
    ap.add_argument(
        "--fit-loss", type=float, default=0.05, help="the most the rule may lose of each dataset's answerable questions"
    )
    ap.add_argument("--goal-loss", type=float, default=0.07, help="the most a candidate may lose, cross-validated")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--data", type=Path, action="append", default=[], help="QA files, for the questions' text")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = {}
    for d in args.data:
        for line in d.open(encoding="utf-8"):
            row = json.loads(line)
            rows[row["id"]] = row
    items = load(args.records, args.setting, rows)
    fit = [it for it in items if fitting_part(it.qid)]
    held = [it for it in items if not fitting_part(it.qid)]
    makers = candidates(items)
    print(f"{len(items)} items: fitting {len(fit)}, held out {len(held)}; {len(makers)} candidates", file=sys.stderr)
    cv = {name: cross_validate(make, fit, args.fit_loss) for name, make in makers.items()}
    ranked = sorted(cv, key=lambda n: -objective(cv[n], args.goal_loss))
    chosen = simplest_near_best(ranked, cv, args.goal_loss, fit)
    rule = makers[chosen]().fit(fit, args.fit_loss)
    datasets = sorted({it.dataset for it in items})
    before = np.array([it.already for it in held])
    after = rule.turned(held)
    # the split's sensitivity: the chosen candidate refitted on random halves
    moves: dict[str, list[tuple[float, float]]] = {d: [] for d in datasets}
    for seed in range(args.splits):
        rng = random.Random(seed)
        order = list(range(len(items)))
        rng.shuffle(order)
        half = set(order[: len(items) // 2])
        a = [it for i, it in enumerate(items) if i in half]
        b = [it for i, it in enumerate(items) if i not in half]
        r = makers[chosen]().fit(a, args.fit_loss)
        t = r.turned(b)
        for d in datasets:
            moves[d].append(rates(t, b, d)[:2])
    lines = [
        "# Not in your documents: the rule for on-topic questions the passages do not answer",
        "",
        f"`python bench/answerable_fit.py {' '.join(sys.argv[1:])}`",
        "",
        f"{len(items)} library answers ({args.setting}) of {', '.join(p.name for p in args.records)}; fitting part "
        f"(SHA-256 of the question id even): {len(fit)}, held out: {len(held)}. Threshold chosen on the fitting "
        f"part: the most unanswerable questions turned away while the rule itself loses at most {args.fit_loss:.0%} "
        "of each dataset's answerable questions (those the retrieval floor, an abstention or the router's 'not "
        "sure' already turn away are not its loss). Candidates ranked by 5-fold cross-validation inside the "
        f"fitting part: the mean share of unanswerable questions the rule adds, when it loses at most "
        f"{args.goal_loss:.0%} of any dataset's answerable ones; the chosen one is the simplest (fewest features) "
        "within one standard error of the best.",
        "",
        "## Candidates, cross-validated on the fitting part (the best 12)",
        "",
        "| candidate | " + " | ".join(f"{d}: the rule adds, turned away · lost" for d in datasets) + " |",
        "| --- | " + " | ".join("---" for _ in datasets) + " |",
    ]
    shown = ranked[:12]
    for name in [n for n in makers if n.startswith("logistic")] + ["one: log_p_abstain ≥ t", "one: supported ≤ t"]:
        if name in cv and name not in shown:
            shown.append(name)
    for name in shown:
        cells = []
        for d in datasets:
            c, lo, _, _ = cv[name][d]
            cells.append(f"{'–' if math.isnan(c) else f'{c:.0%}'} · {lo:.0%}")
        lines.append(f"| {name}{' (**chosen**)' if name == chosen else ''} | " + " | ".join(cells) + " |")
    lines += ["", *separation(items)]
    lines += [
        "",
        f"## Held out: {chosen}",
        "",
        "| dataset | unanswerable turned away: before → with the rule | answerable lost: before → with the rule | "
        "the rule alone: turned away · lost | right answers the rule loses | random half splits, with the rule: "
        "turned away · lost (mean ± std) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for d in datasets:
        c0, l0, nu, na = rates(before, held, d)
        c1, l1, _, _ = rates(after, held, d)
        ca, la, _, _ = rates(after, held, d, added=True)
        right = [after[i] for i, it in enumerate(held) if it.dataset == d and not it.unanswerable and it.right]
        mv = moves[d]
        cs = [m[0] for m in mv if not math.isnan(m[0])]
        mvs = (
            f"{statistics.fmean(cs):.0%} ± {statistics.pstdev(cs):.0%}" if cs else "–"
        ) + f" · {statistics.fmean(m[1] for m in mv):.0%} ± {statistics.pstdev([m[1] for m in mv]):.0%}"
        lines.append(
            f"| {d} | {'–' if math.isnan(c0) else f'{c0:.0%}'} → {fmt(c1, nu)} | {l0:.0%} → {fmt(l1, na)} | "
            f"{'–' if math.isnan(ca) else f'{ca:.0%}'} · {la:.0%} | {sum(right)} of {len(right)} | {mvs} |"
        )
    consts = rule.constants()
    lines += ["", "The rule (`answerable.RULE`), fitted on the whole fitting part:", "", "```json", json.dumps(consts)]
    lines += ["```"]
    if isinstance(rule, Logistic):
        lines += ["", "| feature | weight (standardised) |", "| --- | --- |"]
        for f, w in sorted(zip(consts["features"], consts["weights"], strict=True), key=lambda t: -abs(t[1])):
            lines.append(f"| {f} | {w:+.3f} |")
    lines += ["", "Held-out errors, a few of each kind:", ""]
    for kind, pick in (
        ("unanswerable, still answered", lambda it, t: it.unanswerable and not t),
        ("answerable, turned away by the rule", lambda it, t: not it.unanswerable and t and not it.already),
    ):
        errs = [it for it, t in zip(held, after, strict=True) if pick(it, t)]
        lines.append(f"* {kind} ({len(errs)}):")
        for it in errs[:6]:
            lines.append(f"  * [{it.dataset}] {it.question or it.qid} → “{it.answer}”")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
