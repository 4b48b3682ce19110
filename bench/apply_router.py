"""Replay a saved router (e.g. the shipped default) on a recorded `eval run`, without a model.

    .venv/bin/python bench/apply_router.py docs/results/fairytale200-logprob/run \
        automix_local/data/router-default.json --costs 1,50
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from automix_local.metrics import delta_ibc  # noqa: E402
from automix_local.report import _records, load_run  # noqa: E402
from automix_local.routers import load, simulate  # noqa: E402
from automix_local.signals import Signal  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("router")
    ap.add_argument("--costs", default="1,50")
    args = ap.parse_args()
    costs = [float(c) for c in args.costs.split(",")]
    router = load(Path(args.router))
    run = load_run(Path(args.run))
    out = simulate(router, _records(run.items, router.signal or Signal.verifier("logprob")), costs)
    p_small = float(np.mean([i.scores[0] for i in run.items]))
    p_large = float(np.mean([i.scores[-1] for i in run.items]))
    d = delta_ibc(out.performance, out.cost, p_small, costs[0], p_large, costs[-1])
    print(
        f"{len(run.items)} items: escalated {out.escalation:.3f}, F1 {out.performance:.3f} "
        f"(small {p_small:.3f}, large {p_large:.3f}), cost {out.cost:.2f}, ΔIBC {d:.1f} %, "
        f"F1 / large {out.performance / p_large:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
