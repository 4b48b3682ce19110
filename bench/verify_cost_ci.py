"""Uncertainty for bench/verify_cost.py: answer F1 per layout and paired-bootstrap CIs of AUROC differences.

    .venv/bin/python bench/verify_cost_ci.py docs/results/verify_cost.json [--boot 2000]

Each (layout, strategy) pass of the benchmark verified its own answers (the shared layout's answer
prompt differs), so each AUROC uses that pass's labels; the bootstrap resamples items (the same ids in
every pass) and recomputes every AUROC on the resample, which keeps the comparison paired by item.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.report import CORRECT_F1, auroc  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", default="paper/sampled", help="the pass the others are compared with")
    args = ap.parse_args()
    data = json.loads(args.json.read_text())
    passes: dict[str, dict[str, dict]] = {}
    for res in data["per_item"]:
        passes[f"{res['layout']}/{res['strategy']}"] = {r["id"]: r for r in res["rows"]}
    ids = sorted(set.intersection(*(set(p) for p in passes.values())))
    rng = np.random.default_rng(args.seed)

    def score(name: str, sample: list[str]) -> float:
        strategy = name.split("/")[1]
        rows = [passes[name][i] for i in sample]
        return auroc([r[strategy]["conf"] for r in rows], [r["f1"] >= CORRECT_F1 for r in rows])

    print(f"{len(ids)} items in every pass; {args.boot} paired bootstrap resamples (seed {args.seed})\n")
    print("| pass | answer F1 | AUROC | 95 % CI | AUROC − " + args.reference + " | 95 % CI of the difference |")
    print("| --- | --- | --- | --- | --- | --- |")
    samples = [list(rng.choice(ids, size=len(ids), replace=True)) for _ in range(args.boot)]
    ref_boot = np.array([score(args.reference, s) for s in samples])
    ref = score(args.reference, ids)
    for name in passes:
        f1 = float(np.mean([passes[name][i]["f1"] for i in ids]))
        point = score(name, ids)
        boot = np.array([score(name, s) for s in samples])
        lo, hi = np.nanpercentile(boot, [2.5, 97.5])
        diff = boot - ref_boot
        dlo, dhi = np.nanpercentile(diff, [2.5, 97.5])
        same = name == args.reference
        print(
            f"| {name} | {f1:.3f} | {point:.3f} | {lo:.3f}–{hi:.3f} | "
            f"{'–' if same else f'{point - ref:+.3f}'} | {'–' if same else f'{dlo:+.3f} to {dhi:+.3f}'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
