"""What self-verification costs, per strategy and prompt layout, measured side by side in one run.

    .venv/bin/python bench/verify_cost.py --data ../shared/data/squad_v2_dev_public.jsonl --limit 100 \
        --out docs/results/verify_cost.md

For the configured small tier (default models.toml): per layout (paper, shared) and strategy
(logprob, sampled k=8), the answer's seconds, the verification's seconds, their ratio, the tokens
the verification evaluated, and the verifier's AUROC on these items (label: the small answer's F1 ≥ 0.5,
scored as in the evaluation harness). Also: the cascade's small-only path against a bare
llama-cpp-python completion of the same prompt, and the escalated path against always-large.
Each (layout, strategy) runs in its own pass over the items, answer then check, as the app runs it,
so no configuration profits from a cache another one warmed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local import prompts  # noqa: E402
from automix_local.backends.base import run_to_end  # noqa: E402
from automix_local.cascade import Cascade  # noqa: E402
from automix_local.config import load_config  # noqa: E402
from automix_local.evaluation import load_items, select_items  # noqa: E402
from automix_local.report import CORRECT_F1, auroc  # noqa: E402
from automix_local.routers import AlwaysLarge, AlwaysSmall, ThresholdRouter  # noqa: E402
from automix_local.scoring import score_item  # noqa: E402
from automix_local.verification import make_verifier  # noqa: E402


def measure(config, items, layout: str, strategy: str) -> dict:
    cfg = replace(config, cascade=replace(config.cascade, layout=layout))
    cascade = Cascade(cfg, router=AlwaysSmall())
    cascade.prepare(0)
    backend = cascade.backend(0)
    verifiers = {strategy: make_verifier(replace(cfg.cascade, verifier=strategy))}
    rows = []
    for it in items:
        answer, gen, _ = run_to_end(cascade.answer_stream(0, it["context"], it["question"]))
        f1, _ = score_item(answer, it)
        row = {"id": it["id"], "f1": f1, "answer_s": gen.seconds, "answer_eval": gen.tokens_evaluated}
        for s, v in verifiers.items():
            r = v.verify(backend, it["context"], it["question"], answer)
            row[s] = {"conf": r.confidence, "s": r.seconds, "eval": r.tokens_evaluated, "out": r.tokens_out}
        rows.append(row)
        print(f"  {layout}/{strategy} {len(rows)}/{len(items)}", file=sys.stderr, end="\r")
    cascade.close()
    print(file=sys.stderr)
    return {"layout": layout, "strategy": strategy, "rows": rows}


def summarize(res: dict) -> dict:
    rows, s = res["rows"], res["strategy"]
    labels = [r["f1"] >= CORRECT_F1 for r in rows]
    ans = statistics.fmean(r["answer_s"] for r in rows)
    ver = statistics.fmean(r[s]["s"] for r in rows)
    return {
        "layout": res["layout"],
        "strategy": s,
        "answer_s": ans,
        "verify_s": ver,
        "ratio": ver / ans,
        "verify_tokens_evaluated": statistics.fmean(r[s]["eval"] for r in rows),
        "auroc": auroc([r[s]["conf"] for r in rows], labels),
    }


def bare_vs_cascade(config, items) -> dict:
    """The cascade's small-only path against llama-cpp-python's own completion of the same prompt."""
    import llama_cpp

    from automix_local.sources import ensure_verified

    tier = config.tiers[0]
    path = ensure_verified(tier, config.paths)
    threads = tier.n_threads or os.cpu_count() or 1  # the same threads as the backend uses
    bare = llama_cpp.Llama(str(path), n_ctx=tier.n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    cfg = replace(config, cascade=replace(config.cascade, layout="paper"))
    cascade = Cascade(cfg, router=AlwaysSmall())
    cascade.prepare(0)
    backend = cascade.backend(0)
    ours, theirs = [], []
    for it in items:  # alternate, so both see the same machine state
        prompt = prompts.answer_prompt(backend, "paper", it["context"], it["question"])
        t0 = time.perf_counter()
        cascade.ask(it["context"], it["question"])
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare.create_completion(prompt, max_tokens=tier.max_tokens, temperature=0.0, stop=["\n"])
        theirs.append(time.perf_counter() - t0)
    cascade.close()
    bare.close()
    return {
        "cascade_small_only_s": statistics.fmean(ours),
        "bare_llama_cpp_s": statistics.fmean(theirs),
        "ratio": statistics.fmean(ours) / statistics.fmean(theirs),
    }


def escalated_vs_large(config, items) -> dict:
    cfg = replace(config, cascade=replace(config.cascade, layout="shared"))
    always_large = Cascade(cfg, router=AlwaysLarge())
    escalate = Cascade(cfg, router=ThresholdRouter(2.0))  # every answer escalates
    for c, i in ((always_large, len(cfg.tiers) - 1), (escalate, 0), (escalate, len(cfg.tiers) - 1)):
        c.prepare(i)
    large_s, esc_s, small_eval, small_in = [], [], [], []
    for it in items:
        t = always_large.ask(it["context"], it["question"])
        large_s.append(t.seconds)
        t = escalate.ask(it["context"], it["question"])
        esc_s.append(t.seconds)
        small_eval.append(t.steps[0].tokens_evaluated)
        small_in.append(t.steps[0].tokens_in)
    always_large.close()
    escalate.close()
    return {
        "always_large_s": statistics.fmean(large_s),
        "escalated_s": statistics.fmean(esc_s),
        "ratio": statistics.fmean(esc_s) / statistics.fmean(large_s),
        "small_tokens_evaluated": statistics.fmean(small_eval),
        "small_prompt_tokens_answer_plus_verify": statistics.fmean(small_in),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--config", default=None)
    ap.add_argument("--strategies", default="logprob,sampled")
    ap.add_argument("--out", default=None, help="write the markdown report here")
    args = ap.parse_args()
    config = load_config(args.config)
    items = select_items(load_items(Path(args.data)), args.limit, args.seed)
    strategies = [s for s in args.strategies.split(",") if s]
    t0 = time.time()
    runs = [measure(config, items, layout, s) for layout in ("paper", "shared") for s in strategies]
    table = [summarize(res) for res in runs]
    bare = bare_vs_cascade(config, items[: min(len(items), 30)])
    esc = escalated_vs_large(config, items[: min(len(items), 30)]) if len(config.tiers) > 1 else None
    command = "python bench/verify_cost.py " + " ".join(sys.argv[1:])
    md = [
        "# What self-verification costs",
        "",
        f"- Command: `{command}` ({time.time() - t0:.0f} s)",
        f"- Data: `{args.data}`, {len(items)} items "
        f"({'seed ' + str(args.seed) if args.seed is not None else 'first by line order'})",
        f"- Small tier: {config.tiers[0].name} "
        f"({config.tiers[0].source.describe() if config.tiers[0].source else '-'})",
        f"- Machine: {platform.processor() or platform.machine()}, {platform.platform()}",
        f"- AUROC label: small answer F1 ≥ {CORRECT_F1}",
        "",
        "| layout | strategy | answer s | verify s | verify / answer | tokens evaluated to verify | AUROC |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table:
        md.append(
            f"| {r['layout']} | {r['strategy']} | {r['answer_s']:.2f} | {r['verify_s']:.2f} | {r['ratio']:.3f} | "
            f"{r['verify_tokens_evaluated']:.0f} | {r['auroc']:.3f} |"
        )
    md += [
        "",
        f"Small-only path: cascade {bare['cascade_small_only_s']:.2f} s vs bare llama-cpp-python "
        f"{bare['bare_llama_cpp_s']:.2f} s per question → {bare['ratio']:.3f}× (first {min(len(items), 30)} items).",
    ]
    if esc:
        md += [
            "",
            f"Escalated path (shared layout): {esc['escalated_s']:.2f} s vs always-large {esc['always_large_s']:.2f} s "
            f"→ {esc['ratio']:.2f}×; the small tier evaluated {esc['small_tokens_evaluated']:.0f} tokens for "
            f"{esc['small_prompt_tokens_answer_plus_verify']:.0f} prompt tokens (answer + verification prompts).",
        ]
    text = "\n".join(md) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(
            json.dumps({"table": table, "bare": bare, "escalated": esc, "per_item": runs}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
