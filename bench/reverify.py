"""Re-verify the small tier's recorded answers of an `eval run` with other verifier variants, for AUROC.

    .venv/bin/python bench/reverify.py docs/results/squad300-logprob/run --layout shared \
        --strategies logprob,sampled --out runs/reverify-squad300-shared.jsonl

The answers, their F1 and the label (F1 ≥ 0.5) come from the run; only the verification is redone,
with the configured small model, so each variant is judged on exactly the same answers. Resumable
(appends to --out, skips ids already there). Prints AUROC per variant beside the run's own recorded
signals, on the same items.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.cascade import Cascade  # noqa: E402
from automix_local.config import load_config  # noqa: E402
from automix_local.evaluation import ITEMS_FILE, RUN_FILE, load_items  # noqa: E402
from automix_local.report import CORRECT_F1, auroc  # noqa: E402
from automix_local.routers import AlwaysSmall  # noqa: E402
from automix_local.verification import LogprobVerifier, make_verifier  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, default=None, help="the run's data file (default: from run.json)")
    ap.add_argument("--layout", default="shared", choices=["paper", "shared"])
    ap.add_argument(
        "--template",
        default="raw",
        choices=["raw", "chat"],
        help="paper layout, logprob: the four-shot prompt as raw text (the paper's) or as chat turns",
    )
    ap.add_argument("--strategies", default="logprob,sampled")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--config", default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    meta = json.loads((args.run / RUN_FILE).read_text())
    data = args.data or Path(meta["data"])
    if not data.is_absolute() and not data.exists():
        data = ROOT / data
    contexts = {it["id"]: it for it in load_items(data)}
    records = [json.loads(x) for x in (args.run / ITEMS_FILE).read_text().splitlines() if x.strip()]
    records = [r for r in records if "error" not in r][: args.limit]
    small = meta["tiers"][0]["name"]

    config = load_config(args.config)
    cfg = replace(config, cascade=replace(config.cascade, layout=args.layout, samples=args.samples))
    cascade = Cascade(cfg, router=AlwaysSmall())
    cascade.prepare(0)
    backend = cascade.backend(0)
    strategies = [s for s in args.strategies.split(",") if s]
    verifiers = {s: make_verifier(replace(cfg.cascade, verifier=s)) for s in strategies}
    if args.template == "chat":
        if args.layout != "paper" or strategies != ["logprob"]:
            ap.error("--template chat is measured for --layout paper --strategies logprob")
        verifiers = {"logprob": LogprobVerifier(layout="paper", template="chat")}
    variant = args.layout + (" chat-template" if args.template == "chat" else "")

    done: dict[str, dict] = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["id"]] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0, fresh = time.time(), 0
    with args.out.open("a", encoding="utf-8") as f:
        for n, rec in enumerate(records, 1):
            if rec["id"] in done:
                continue
            fresh += 1
            it = contexts[rec["id"]]
            t = rec["tiers"][small]
            row = {"id": rec["id"], "f1": t["f1"], "abstained": t["abstained"], "layout": variant}
            for s, v in verifiers.items():
                r = v.verify(backend, it["context"], it["question"], t["answer"])
                row[s] = {"conf": r.confidence, "s": r.seconds, "eval": r.tokens_evaluated}
            f.write(json.dumps(row) + "\n")
            f.flush()
            done[rec["id"]] = row
            rate = (time.time() - t0) / fresh
            print(f"  {n}/{len(records)} ({rate:.1f} s/item)", file=sys.stderr, end="\r")
    cascade.close()
    print(file=sys.stderr)

    rows = [done[r["id"]] for r in records if r["id"] in done]
    recs = {r["id"]: r for r in records}
    labels = [r["f1"] >= CORRECT_F1 for r in rows]
    print(f"{len(rows)} items of {args.run} · small tier answers re-verified, layout {variant}")
    print(f"correct (F1 ≥ {CORRECT_F1}): {sum(labels)} of {len(rows)}\n")
    print("| signal | AUROC | mean seconds |")
    print("| --- | --- | --- |")
    for s in strategies:
        if all(s in r for r in rows):
            secs = statistics.fmean(r[s]["s"] for r in rows)
            score = auroc([r[s]["conf"] for r in rows], labels)
            print(f"| {variant} {s} (re-verified) | {score:.3f} | {secs:.2f} |")
    recorded = recs[rows[0]["id"]]["tiers"][small]
    for s in recorded.get("verification", {}):
        conf = [recs[r["id"]]["tiers"][small]["verification"][s]["confidence"] for r in rows]
        secs = statistics.fmean(recs[r["id"]]["tiers"][small]["verification"][s]["seconds"] for r in rows)
        print(f"| recorded {meta.get('layout', 'paper')} {s} | {auroc(conf, labels):.3f} | {secs:.2f} |")
    for feat in ("min_logprob", "mean_logprob"):
        vals = [recs[r["id"]]["tiers"][small]["features"][feat] for r in rows]
        print(f"| free: {feat} | {auroc(vals, labels):.3f} | 0 |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
