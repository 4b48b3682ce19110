"""Candidate 6 of issue 13: agreement among k answers sampled in one batch, added to a recorded run.

    .venv/bin/python bench/agreement.py runs/squad300-tok --out runs/squad300-agree --k 8

For each item of the run, the small tier answers again through ``Cascade.answer_stream`` — the code path
of `ask`, the app and `eval run` — with ``[cascade] agreement_samples = k``, so the k answers are drawn in
one batched decode right after the greedy one, with its prompt in the KV cache, as a user's cascade
would. The run is copied to --out with the small tier's features extended by ``agreement``,
``agreement_exact`` and ``agreement_seconds``; every other field stays as recorded. A re-answer that
differs from the recorded answer is counted and printed (its agreement is the re-answer's).
Resumable: items already in --out are skipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.backends.base import run_to_end  # noqa: E402
from automix_local.cascade import Cascade  # noqa: E402
from automix_local.config import load_config  # noqa: E402
from automix_local.evaluation import ITEMS_FILE, RUN_FILE, load_items  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args()
    meta = json.loads((args.run / RUN_FILE).read_text())
    config = load_config(meta["config"])
    cascade_cfg = replace(config.cascade, agreement_samples=args.k, temperature=args.temperature)
    config = replace(config, cascade=cascade_cfg)
    if meta.get("layout", "paper") != config.cascade.layout:
        raise SystemExit(f"{meta['config']}: layout {config.cascade.layout}, the run's is {meta['layout']}")
    data = {it["id"]: it for it in load_items(Path(meta["data"]))}
    args.out.mkdir(parents=True, exist_ok=True)
    meta["agreement"] = {"k": args.k, "temperature": args.temperature, "command": " ".join(sys.argv)}
    (args.out / RUN_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    done = set()
    out_items = args.out / ITEMS_FILE
    if out_items.exists():
        done = {json.loads(line)["id"] for line in out_items.read_text().splitlines() if line.strip()}
    small = meta["tiers"][0]["name"]
    cascade = Cascade(config)
    differs = 0
    t0 = time.perf_counter()
    lines = [json.loads(line) for line in (args.run / ITEMS_FILE).read_text().splitlines() if line.strip()]
    with out_items.open("a", encoding="utf-8") as fh:
        for n, rec in enumerate(lines, 1):
            if rec["id"] in done or "error" in rec:
                continue
            item = data[rec["id"]]
            tier = rec["tiers"][small]
            answer, _, feats = run_to_end(cascade.answer_stream(0, item["context"], item["question"]))
            if answer != tier["answer"]:
                differs += 1
                print(f"  re-answer differs: {tier['answer']!r} → {answer!r}", flush=True)
            for key in ("agreement", "agreement_exact", "agreement_seconds"):
                if key in feats:
                    tier["features"][key] = feats[key]
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            if n % 20 == 0:
                rate = n / (time.perf_counter() - t0)
                print(f"{n}/{len(lines)} items, {rate:.2f}/s, re-answers differing: {differs}", flush=True)
    cascade.close()
    print(f"done: {len(lines)} items, re-answers differing from the recording: {differs}")
    shutil.copy(args.run / RUN_FILE, args.out / "recorded_run.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
