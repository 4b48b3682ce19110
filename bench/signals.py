"""Routing signals on recorded runs, held out: AUROC and the share of the oracle's gain at 25 % / 50 %.

    .venv/bin/python bench/signals.py docs/results/squad300-shared/run docs/results/fairytale200-shared/run \
        --seeds 20 --out docs/results/signals.md

Runs recorded before the grounding features existed get them when loaded (`report.load_run`), from the
same function the cascade calls on every answer, over each item's context read from the run's data
file (when its sha256 matches the recorded one) and the small tier's recorded answer. The token
quantile features need each token's log-probability, which older runs did not keep: they appear only
for runs recorded since. Every signal is fitted on half the items and scored on the other half, over
--seeds random splits (mean; 95 % interval over resamples of the test items), then a learning curve
for the best combination: the same on 25 / 50 / 100 / 200 training items.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.gain import RATES, oracle_share  # noqa: E402
from automix_local.report import (  # noqa: E402
    CORRECT_F1,
    Run,
    _split,
    auroc,
    load_run,
    oracle_shares,
    signal_specs,
    signal_table,
)
from automix_local.report.model import to_json  # noqa: E402

NEAR_FREE = 0.15  # a signal may be the default when it costs at most this share of the answer (issue 13)
MARGIN = 0.05  # and replaces the shipped signal only when ahead by more than this worst-dataset share
# the signal shipped when the rule was run (issue 13); the rule chose "free + token + grounding → gain" over it, which
# router-default.json now holds. Kept fixed so that signals.md, the record of that decision, rebuilds as it was.
BASELINE = "mean_logprob"


def held_out_by_dataset(
    runs: dict[str, Run], spec: Any, seeds: int
) -> Iterator[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per split: the signal fitted on half of all the runs' items together, and for each dataset its held-out
    items (indices into all the items, in run order) with the signal's confidence on them."""
    items = [it for r in runs.values() for it in r.items]
    origin = np.array([k for k, r in runs.items() for _ in r.items])
    for seed in range(seeds):
        tr, te = _split(len(items), len(items) // 2, seed)
        fitted = spec.fit([items[i] for i in tr])
        conf = np.array([fitted.confidence(items[i].features[0]) for i in te])
        yield {d: (te[origin[te] == d], conf[origin[te] == d]) for d in runs}


def default_rule(runs: dict[str, Run], costs: dict[str, float], seeds: int) -> list[str]:
    """The rule that chooses the shipped signal: fitted on half of all the runs' items together (as the
    shipped router is fitted on a mix of datasets), scored on each dataset's held-out items separately;
    a signal's score is its worst dataset's mean share at 25 % and 50 %. Among near-free signals the
    highest score wins; it replaces the shipped signal only when ahead of it by more than MARGIN."""
    names = list(runs)
    items = [it for r in runs.values() for it in r.items]
    small = np.array([it.scores[0] for it in items])
    large = np.array([it.scores[-1] for it in items])
    labels = small >= CORRECT_F1
    common = [f for f in next(iter(runs.values())).signals if all(f in r.signals for r in runs.values())]
    shipped_name = BASELINE
    rows = []
    for spec in signal_specs(common):
        shares = {d: {r: [] for r in RATES} for d in names}
        aucs = {d: [] for d in names}
        for split in held_out_by_dataset(runs, spec, seeds):
            for d, (idx, c) in split.items():
                aucs[d].append(auroc(c, labels[idx]))
                for r in RATES:
                    shares[d][r].append(oracle_share(small[idx], large[idx], c, r))
        per = {d: float(np.mean([np.nanmean(shares[d][r]) for r in RATES])) for d in names}
        rows.append((spec.name, per, {d: float(np.mean(aucs[d])) for d in names}, costs.get(spec.name, np.nan)))
    eligible = [r for r in rows if r[3] <= NEAR_FREE]
    best = max(eligible, key=lambda r: min(r[1].values()))
    current = next((r for r in rows if r[0] == shipped_name), None)
    lines = [
        "## The default, re-chosen by rule",
        "",
        f"Fitted on half of all {len(items)} items together (the shipped router is fitted on a mix of datasets), "
        f"scored on each dataset's held-out items, {seeds} splits. Score: the worst dataset's mean share of the "
        f"oracle's gain at 25 % and 50 %. **Rule**: among signals costing at most {NEAR_FREE:.2f}× the answer, "
        f"the highest score wins, and replaces the shipped signal (`{shipped_name}`) only when ahead of it by "
        f"more than {MARGIN:.2f}.",
        "",
        "| signal | " + " | ".join(f"{d}: share (AUROC)" for d in names) + " | score (worst) | cost × answer |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- | --- |",
    ]
    for name, per, auc, cost in sorted(rows, key=lambda r: -min(r[1].values())):
        cells = " | ".join(f"{per[d]:.2f} ({auc[d]:.3f})" for d in names)
        mark = " ← shipped" if name == shipped_name else ""
        lines.append(f"| {name}{mark} | {cells} | {min(per.values()):.2f} | {cost:.2f} |")
    lines_anatomy = anatomy(runs, next(sp for sp in signal_specs(common) if sp.name == best[0]), seeds)
    lead = min(best[1].values()) - (min(current[1].values()) if current else -np.inf)
    verdict = f"**{best[0]}** wins (score {min(best[1].values()):.2f}); " + (
        f"ahead of the shipped `{shipped_name}` by {lead:.2f} > {MARGIN:.2f}: it becomes the default."
        if lead > MARGIN
        else f"ahead of the shipped `{shipped_name}` by only {lead:.2f} ≤ {MARGIN:.2f}: the default stays."
    )
    return [*lines, "", verdict, "", *lines_anatomy]


def anatomy(runs: dict[str, Run], spec: Any, seeds: int, rate: float = 0.25) -> list[str]:
    """What the remaining errors look like: the items a signal escalates at ``rate`` (held out, fitted on
    half of all items), and those the oracle would have escalated instead, by what escalating them does."""
    items = [it for r in runs.values() for it in r.items]
    small = np.array([it.scores[0] for it in items])
    large = np.array([it.scores[-1] for it in items])
    unans = np.array([it.unanswerable for it in items])

    def kind(i: int) -> str:
        if large[i] > small[i] + 1e-9:
            return "the large tier is better"
        if large[i] < small[i] - 1e-9:
            return "the large tier is worse"
        if small[i] >= CORRECT_F1:
            return "both right (equal)"
        return "both wrong, unanswerable" if unans[i] else "both wrong, answerable"

    kinds = ["the large tier is better", "the large tier is worse", "both right (equal)",
             "both wrong, unanswerable", "both wrong, answerable"]  # fmt: skip
    picked = {d: {k: 0 for k in kinds} for d in runs}
    missed = {d: {k: 0 for k in ("confident (kept)",)} for d in runs}
    wanted = {d: 0 for d in runs}
    for split in held_out_by_dataset(runs, spec, seeds):
        for d, (idx, c) in split.items():
            k = round(rate * len(idx))
            esc = set(idx[np.argsort(c, kind="stable")[:k]].tolist())
            for i in esc:
                picked[d][kind(i)] += 1
            gain = large[idx] - small[idx]
            oracle = [int(i) for i in idx[np.argsort(-gain, kind="stable")[:k]] if large[i] > small[i] + 1e-9]
            wanted[d] += len(oracle)
            missed[d]["confident (kept)"] += sum(1 for i in oracle if i not in esc)
    lines = [
        f"### What the remaining errors look like ({spec.name}, {rate:.0%} escalated, held out)",
        "",
        "Of the items it escalates, what escalating them does (share of escalations, over the splits):",
        "",
        "| dataset | " + " | ".join(kinds) + " | oracle's escalations it keeps small |",
        "| --- | " + " | ".join("---" for _ in kinds) + " | --- |",
    ]
    for d in runs:
        total = sum(picked[d].values()) or 1
        cells = " | ".join(f"{picked[d][k] / total:.0%}" for k in kinds)
        lines.append(f"| {d} | {cells} | {missed[d]['confident (kept)'] / max(1, wanted[d]):.0%} |")
    return [*lines, ""]


def cross(run_dirs: list[Path], bootstrap: int = 500) -> list[str]:
    """Each combination fitted on all of one run and scored on all of another (another dataset, the same
    tiers and answer prompt): what a calibration carried to other kinds of questions keeps."""
    runs = {(d.parent.name if d.name == "run" else d.name): load_run(d) for d in run_dirs}
    lines = [
        "## Across datasets: fitted on one run, scored on another",
        "",
        "| fitted on → scored on | signal | AUROC | share at 25 % (95 % CI) | share at 50 % (95 % CI) |",
        "| --- | --- | --- | --- | --- |",
    ]
    rng = np.random.default_rng(0)
    for a, ra in runs.items():
        for b, rb in runs.items():
            if a == b or ra.tiers != rb.tiers or ra.meta.get("layout", "paper") != rb.meta.get("layout", "paper"):
                continue  # the same tiers and answer prompt: only the questions differ
            common = [f for f in ra.signals if f in rb.signals]
            small = np.array([it.scores[0] for it in rb.items])
            large = np.array([it.scores[-1] for it in rb.items])
            labels = small >= CORRECT_F1
            draws = rng.integers(0, len(small), size=(bootstrap, len(small)))
            for spec in signal_specs(common):
                if spec.raw or (len(spec.features) == 1 and spec.features[0] != "mean_logprob"):
                    continue
                fitted = spec.fit(ra.items)
                conf = np.array([fitted.confidence(it.features[0]) for it in rb.items])
                cells = []
                for rate in RATES:
                    reps = [oracle_share(small[d], large[d], conf[d], rate) for d in draws]
                    lo, hi = np.nanpercentile(reps, [2.5, 97.5])
                    cells.append(f"{oracle_share(small, large, conf, rate):.2f} ({lo:.2f} to {hi:.2f})")
                lines.append(f"| {a} → {b} | {spec.name} | {auroc(conf, labels):.3f} | {cells[0]} | {cells[1]} |")
    return [*lines, ""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = [
        "# Routing signals, held out",
        "",
        f"`python bench/signals.py {' '.join(sys.argv[1:])}`",
        "",
        "Each signal is fitted on half the items and scored on the other half over "
        f"{args.seeds} random splits. AUROC: does it tell a right small answer (F1 ≥ 0.5) from a wrong one. "
        "Share: of the oracle's gain over random mixing, escalating the least confident 25 % / 50 % of the "
        "held-out items (0: a coin, 1: perfect; 95 % interval over resamples of the test items). Cost: the "
        "signal's seconds as a share of the small tier's answer (0.00: read from the answer and its text).",
        "",
    ]
    out: dict = {}
    loaded: dict[str, Run] = {}
    costs: dict[str, float] = {}
    for run_dir in args.runs:
        run = load_run(run_dir)  # grounding computed from the data file for runs recorded before it
        n = len(run.items)
        train = n // 2
        specs = signal_specs(run.signals)
        table = signal_table(run, specs, train, args.seeds)
        osh = oracle_shares(run, specs, train, args.seeds)
        name = run_dir.parent.name if run_dir.name == "run" else run_dir.name
        out[name] = {"signals": table, "oracle_share": osh}
        loaded[name] = run
        for k, e in osh.signals.items():
            costs[k] = max(costs.get(k, 0.0), np.nan if e.cost_ratio is None else e.cost_ratio)
        lines += [
            f"## {name} ({n} items, {Path(run.meta['data']).name})",
            "",
            f"Random mixing keeps {osh.random_vs_large['0.25']:.3f} / {osh.random_vs_large['0.5']:.3f} of the "
            f"large tier's F1 at 25 % / 50 % escalated; the oracle {osh.oracle_vs_large['0.25']:.3f} / "
            f"{osh.oracle_vs_large['0.5']:.3f}.",
            "",
            "| signal | AUROC held out | share at 25 % (95 % CI) | share at 50 % (95 % CI) | cost × answer |",
            "| --- | --- | --- | --- | --- |",
        ]
        for sname, e in osh.signals.items():
            auc = table[sname].auroc()
            cells = [
                f"{e.rates[r]['share']:.2f} ({e.rates[r]['lo']:.2f} to {e.rates[r]['hi']:.2f})" for r in ("0.25", "0.5")
            ]
            cost = float("nan") if e.cost_ratio is None else e.cost_ratio
            lines.append(f"| {sname} | {auc:.3f} | {cells[0]} | {cells[1]} | {cost:.2f} |")
        best = max(
            (k for k in osh.signals if "+" in k or "combined" in k),
            key=lambda k: osh.signals[k].rates["0.25"]["share"] + osh.signals[k].rates["0.5"]["share"],
        )
        spec = next(s for s in specs if s.name == best)
        curve = []
        for m in (25, 50, 100, 200):
            if m >= n - 20:
                continue
            o = oracle_shares(run, [spec], m, args.seeds).signals[best].rates
            curve.append(f"{m}: {o['0.25']['share']:.2f} / {o['0.5']['share']:.2f}")
        lines += ["", f"Learning curve of **{best}** (train items: share at 25 % / 50 %): " + ", ".join(curve), ""]
        print("\n".join(lines[-12:]), flush=True)
    if len(args.runs) > 1:
        lines += cross(args.runs)
        same = [r for r in loaded.values() if r.tiers == run.tiers and r.meta.get("layout") == run.meta.get("layout")]
        if len(same) == len(loaded):
            lines += default_rule(loaded, costs, args.seeds)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(
            json.dumps(to_json(out, nan_as_null=False), indent=1, default=float) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
