"""The cascade over the document library, end to end, against the paragraph-given setting.

    .venv/bin/python bench/documents_e2e.py --data ../shared/data/squad_v2_dev_public.jsonl --n 40 --seed 3 \
        --out docs/results/documents_e2e.md

The library is built from the file as in bench/documents.py (one Markdown document per article) and
filled with vectors. For each sampled question (half answerable, half unanswerable, seed given) the
default cascade (the packaged models.toml) answers twice: over the question's own paragraph (what
`ask --context` does), and over the whole library through `ask --all`'s own retrieval, packing and
not-found rule. Reported: SQuAD F1 (an unanswerable question scores 1 only for an abstention or
"not in your documents"), the share of unanswerable questions answered "not in your documents" or
abstained, the escalation rate, and seconds per question. Small N: read the interval, not the digits.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from documents import build_documents  # noqa: E402

from automix_local.cascade import Cascade  # noqa: E402
from automix_local.config import find_config, load_config  # noqa: E402
from automix_local.documents.asking import retrieve  # noqa: E402
from automix_local.documents.library import Library  # noqa: E402
from automix_local.documents.vectors import fill, model_key, open_embedder  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402
from automix_local.prompts import is_abstention  # noqa: E402
from automix_local.scoring import score_free_form  # noqa: E402


def bootstrap(values: list[float], seed: int = 0, reps: int = 1000) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(reps))
    return means[int(0.025 * reps)], means[int(0.975 * reps)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    config = load_config(find_config(), default_paths())
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8")]
    rows = [r for r in rows if r["context_id"].partition("#")[2].isdigit()]
    rng = random.Random(args.seed)
    answerable = [r for r in rows if r.get("answers") and not r.get("unanswerable")]
    unanswerable = [r for r in rows if r.get("unanswerable")]
    sample = rng.sample(answerable, args.n // 2) + rng.sample(unanswerable, args.n - args.n // 2)
    embedder = open_embedder(config)
    key = model_key(config.embedding) if config.embedding is not None else None
    cascade = Cascade(config)
    out: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        build_documents(rows, Path(tmp) / "docs")
        db = Path(tmp) / "library.sqlite"
        with Library(db) as lib:
            lib.add([Path(tmp) / "docs"])
            if embedder is not None and key is not None:
                fill(lib, embedder, key)
        for i, r in enumerate(sample, 1):
            rec: dict = {"id": r["id"], "unanswerable": bool(r.get("unanswerable"))}
            t0 = time.perf_counter()
            given = cascade.ask(r["context"], r["question"])
            rec["given"] = {
                "answer": given.answer,
                "f1": score_free_form(given.answer, r["answers"], bool(r.get("unanswerable")))[1],
                "tier": given.tier,
                "seconds": time.perf_counter() - t0,
            }
            t0 = time.perf_counter()
            got = retrieve(
                db,
                None,
                r["question"],
                cascade.document_budget,
                embed_query=embedder.embed_query if embedder is not None else None,
                model=key,
            )
            if got.not_found:
                answer, tier = "unanswerable", None  # "not in your documents": scored as an abstention
            else:
                trace = cascade.ask(got.context, r["question"])
                answer, tier = trace.answer, trace.tier
            rec["library"] = {
                "answer": answer,
                "not_found": got.not_found or is_abstention(answer),
                "f1": score_free_form(answer, r["answers"], bool(r.get("unanswerable")))[1],
                "tier": tier,
                "mode": got.packed.mode,
                "passages": len(got.packed.passages),
                "tokens": got.packed.tokens,
                "seconds": time.perf_counter() - t0,
            }
            out.append(rec)
            print(i, json.dumps(rec), flush=True)
    cascade.close()
    if embedder is not None:
        embedder.close()
    large = config.tiers[-1].name
    lines = [
        "# The cascade over the document library, end to end",
        "",
        f"`python bench/documents_e2e.py {' '.join(sys.argv[1:])}`",
        "",
        f"{len(out)} SQuAD 2.0 questions ({args.n // 2} answerable, {args.n - args.n // 2} unanswerable, seed "
        f"{args.seed}); the packaged models.toml (default models, router and layout); the library: every "
        "article of the file as one document, BM25 + vectors; 95 % bootstrap intervals over the questions.",
        "",
        "| setting | F1 (95 % CI) | answerable F1 | unanswerable: abstained or not in your documents | "
        "escalated | s / question |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for setting in ("given", "library"):
        f1 = [r[setting]["f1"] for r in out]
        lo, hi = bootstrap(f1)
        ans = [r[setting]["f1"] for r in out if not r["unanswerable"]]
        una = [r for r in out if r["unanswerable"]]
        nf = sum(1 for r in una if (r[setting].get("not_found") or is_abstention(r[setting]["answer"]))) / max(
            1, len(una)
        )
        esc = sum(1 for r in out if r[setting]["tier"] == large) / len(out)
        secs = statistics.fmean(r[setting]["seconds"] for r in out)
        name = "paragraph given (`ask --context`)" if setting == "given" else "whole library (`ask --all`)"
        lines.append(
            f"| {name} | {statistics.fmean(f1):.3f} ({lo:.3f}–{hi:.3f}) | {statistics.fmean(ans):.3f} | "
            f"{nf:.0%} | {esc:.0%} | {secs:.1f} |"
        )
    packed = [r["library"]["passages"] for r in out if r["library"]["mode"] == "retrieved"]
    if packed:
        lines += ["", f"Library mode packed a median of {statistics.median(packed):.0f} passages per question."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
