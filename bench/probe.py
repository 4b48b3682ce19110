"""A linear probe on the small model's own hidden state, held out, beside the other signals.

    .venv/bin/python bench/probe.py runs/squad150-hidden --components 8,16,32 --seeds 20 \
        --out docs/results/probe.md

The run is recorded with `eval run --hidden`: every answer carries the model's final hidden state at
the position that chose the answer's end (no second pass). On each split the probe is fitted on the
train half only: the states are centred, reduced to their top principal components (of the train
half), and a logistic regression reads "the small answer is right" from them (cf. semantic entropy
probes, Kossen et al. 2024). Reported: held-out AUROC and the share of the oracle's gain at 25 % /
50 % escalated, for the probe alone, the free + grounding signal, and both together.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.gain import RATES, oracle_share  # noqa: E402
from automix_local.grounding import GROUNDING_FEATURES  # noqa: E402
from automix_local.report import CORRECT_F1, _split, auroc, load_run  # noqa: E402
from automix_local.signals import FREE_FEATURES, fit_logistic  # noqa: E402


def hidden_states(run_dir: Path, tier: str, ids: list[str]) -> np.ndarray:
    rows = {}
    for line in (run_dir / "items.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if "error" not in rec:
            rows[rec["id"]] = rec["tiers"][tier]["hidden"]
    return np.stack([np.frombuffer(base64.b64decode(rows[i]), dtype=np.float16).astype(float) for i in ids])


def project(train: np.ndarray, test: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Both parts on the train part's top-k principal components."""
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:k].T
    return (train - mean) @ basis, (test - mean) @ basis


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--components", default="8,16,32")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    run = load_run(args.run)
    items = run.items
    n = len(items)
    H = hidden_states(args.run, run.tiers[0], [it.id for it in items])
    small = np.array([it.scores[0] for it in items])
    large = np.array([it.scores[-1] for it in items])
    labels = small >= CORRECT_F1
    named = [f for f in (*FREE_FEATURES, *GROUNDING_FEATURES) if f in items[0].features[0]]
    F = np.array([[it.features[0][f] for f in named] for it in items])
    rows: dict[str, dict[str, list[float]]] = {}

    def record(name: str, te: np.ndarray, conf: np.ndarray) -> None:
        r = rows.setdefault(name, {"auroc": [], **{f"{x:g}": [] for x in RATES}})
        r["auroc"].append(auroc(conf, labels[te]))
        for rate in RATES:
            r[f"{rate:g}"].append(oracle_share(small[te], large[te], conf, rate))

    def fitted(X_tr: np.ndarray, X_te: np.ndarray, tr: np.ndarray, names: list[str]) -> np.ndarray:
        sig = fit_logistic(names, X_tr, labels[tr])
        return np.array([sig.confidence(dict(zip(names, x, strict=True))) for x in X_te])

    ks = [int(k) for k in args.components.split(",")]
    for seed in range(args.seeds):
        tr, te = _split(n, n // 2, seed)
        record("free + grounding", te, fitted(F[tr], F[te], tr, named))
        for k in ks:
            P_tr, P_te = project(H[tr], H[te], k)
            pnames = [f"pc{j}" for j in range(k)]
            record(f"probe ({k} components)", te, fitted(P_tr, P_te, tr, pnames))
            both_tr, both_te = np.hstack([F[tr], P_tr]), np.hstack([F[te], P_te])
            record(f"free + grounding + probe ({k})", te, fitted(both_tr, both_te, tr, named + pnames))
    lines = [
        "# A linear probe on the small model's hidden state",
        "",
        f"`python bench/probe.py {' '.join(sys.argv[1:])}`",
        "",
        f"{n} items of `{Path(str(run.meta.get('data', '?'))).name}`, tiers {' → '.join(run.tiers)}; fitted on half, "
        f"scored on the other half, over {args.seeds} splits (mean ± std). The probe costs nothing at answer time: "
        "the state comes from the decode that chose the answer's end; a dot product reads it.",
        "",
        "| signal | AUROC (small right) | share at 25 % | share at 50 % |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        cells = [f"{np.nanmean(r[k]):.3f} ± {np.nanstd(r[k]):.3f}" for k in ("auroc", "0.25", "0.5")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
