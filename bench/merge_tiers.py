"""Join single-tier `eval run` directories (same questions, same prompt) into one multi-tier run.

    .venv/bin/python bench/merge_tiers.py --out runs/squad100-examples-2tier \
        docs/results/variants/squad100-examples docs/results/variants/squad100-examples-large

Each tier answers a question independently in `eval run`, so a tier recorded on its own is the
same record it would be in a joint run; this lets a variant be recorded tier by tier. The runs must
hold the same data file, selection, layout and answer_examples; tiers are taken in argument order
(cheapest first). Only questions every run answered are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SAME = ("data_sha256", "limit", "seed", "layout", "answer_examples")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    metas = [json.loads((d / "run.json").read_text()) for d in args.runs]
    for key in SAME:
        values = {json.dumps(m.get(key)) for m in metas}
        if len(values) > 1:
            sys.exit(f"merge_tiers: the runs differ in {key}: {', '.join(sorted(values))}")
    rows = []
    for d in args.runs:
        recs = [json.loads(x) for x in (d / "items.jsonl").read_text().splitlines() if x.strip()]
        rows.append({r["id"]: r for r in recs if "error" not in r})
    ids = [i for i in rows[0] if all(i in r for r in rows[1:])]
    meta = dict(metas[0])
    meta["tiers"] = [t for m in metas for t in m["tiers"]]
    meta["merged_from"] = [str(d) for d in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    with (args.out / "items.jsonl").open("w", encoding="utf-8") as f:
        for i in ids:
            rec = dict(rows[0][i])
            rec["tiers"] = {name: t for r in rows for name, t in r[i]["tiers"].items()}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{len(ids)} questions, tiers {', '.join(t['name'] for t in meta['tiers'])} → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
