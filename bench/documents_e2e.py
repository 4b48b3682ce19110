"""The cascade over the document library, end to end, against the paragraph-given setting.

    .venv/bin/python bench/documents_e2e.py --data ../shared/data/squad_v2_dev_public.jsonl --n 60 --seed 4 \
        --context-tokens 1024,0 --out docs/results/documents_e2e.md

The library is built from the file as in bench/documents.py (one Markdown document per article) and
filled with vectors. For each sampled question (half answerable, half unanswerable where the file has
unanswerable questions; seed given) the default cascade (the packaged models.toml) answers over the
question's own paragraph (what `ask --context` does), and over the whole library through `ask --all`'s
own retrieval, packing and not-found rule, once per `--context-tokens` cap (`[documents]
context_tokens`; 0: as many passages as the window holds), side by side on the same questions. (The
runs of 2026-12-02 capped the window budget itself; over libraries of 20+ articles that never fit
whole, that is the same packing.)
Reported: SQuAD F1 (an unanswerable question scores 1 only for an abstention or "not in your
documents"), the share of unanswerable questions answered "not in your documents" or abstained, the
escalation rate, seconds per question; and whether the retrieval's best cosine similarity tells a right
small-tier answer from a wrong one, alone and beside the router's own confidence (AUROC). Small N: read
the intervals, not the digits.
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
from automix_local.scoring import score_item  # noqa: E402


def bootstrap(values: list[float], seed: int = 0, reps: int = 1000) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(reps))
    return means[int(0.025 * reps)], means[int(0.975 * reps)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--context-tokens", default="0", help="comma-separated caps on the passages' tokens (0: none)")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--records", type=Path, help="render the report from these recorded questions (the .json it wrote) only"
    )
    args = ap.parse_args()
    caps = [int(c) for c in args.context_tokens.split(",")]
    if args.records:
        config = load_config(find_config(), default_paths())
        out = json.loads(args.records.read_text(encoding="utf-8"))
        rows = {r["id"]: r for r in map(json.loads, args.data.open(encoding="utf-8"))}
        for rec in out:  # scored again from the recorded answers (the scoring is deterministic)
            for res in rec.values():
                if isinstance(res, dict) and "answer" in res:
                    res["f1"] = score_item(res["answer"], rows[rec["id"]])[0]
                    if "small_answer" in res:
                        res["small_f1"] = score_item(res["small_answer"], rows[rec["id"]])[0]
        args.records.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        argv = [a for a in sys.argv[1:] if a != "--records" and Path(a) != args.records]
        text = render(out, argv, args, caps, config.tiers[-1].name)
        print(text)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        return 0
    config = load_config(find_config(), default_paths())
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8")]
    rows = [r for r in rows if r["context_id"].partition("#")[2].isdigit()]
    rng = random.Random(args.seed)
    answerable = [r for r in rows if r.get("answers") and not r.get("unanswerable")]
    unanswerable = [r for r in rows if r.get("unanswerable")]
    n_una = args.n - args.n // 2 if unanswerable else 0
    sample = rng.sample(answerable, args.n - n_una) + rng.sample(unanswerable, n_una)
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
                "f1": score_item(given.answer, r)[0],
                "tier": given.tier,
                "seconds": time.perf_counter() - t0,
            }
            for cap in caps:
                t0 = time.perf_counter()
                got = retrieve(
                    db,
                    None,
                    r["question"],
                    cascade.document_budget,
                    embed_query=embedder.embed_query if embedder is not None else None,
                    model=key,
                    cap=cap,
                )
                small: dict = {}
                if got.not_found:
                    answer, tier = "unanswerable", None  # "not in your documents": scored as an abstention
                else:
                    trace = cascade.ask(got.context, r["question"])
                    answer, tier = trace.answer, trace.tier
                    first = trace.steps[0]
                    small = {
                        "small_answer": first.answer,
                        "small_f1": score_item(first.answer, r)[0],
                        "small_confidence": first.confidence,
                    }
                rec[f"library@{cap}"] = {
                    "answer": answer,
                    "not_found": got.not_found or is_abstention(answer),
                    "f1": score_item(answer, r)[0],
                    "tier": tier,
                    "mode": got.packed.mode,
                    "passages": len(got.packed.passages),
                    "tokens": got.packed.tokens,
                    "best_cosine": got.best_cosine,
                    "seconds": time.perf_counter() - t0,
                    **small,
                }
            out.append(rec)
            print(i, json.dumps(rec), flush=True)
    cascade.close()
    if embedder is not None:
        embedder.close()
    text = render(out, sys.argv[1:], args, caps, config.tiers[-1].name)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


def paired_bootstrap(a: list[float], b: list[float], seed: int = 0, reps: int = 1000) -> tuple[float, float]:
    """95 % interval of mean(a - b) over the same questions."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    return bootstrap(diffs, seed, reps)


def render(out: list[dict], argv: list[str], args: argparse.Namespace, caps: list[int], large: str) -> str:
    n_una = sum(1 for r in out if r["unanswerable"])
    data = args.data.name
    lines = [
        "# The cascade over the document library, end to end",
        "",
        f"`python bench/documents_e2e.py {' '.join(argv)}`",
        "",
        f"{len(out)} questions of {data} ({len(out) - n_una} answerable, {n_una} unanswerable, seed {args.seed}); "
        "the packaged models.toml (default models, router and layout); the library: every article or story of "
        "the file as one document, BM25 + vectors; 95 % bootstrap intervals over the questions. `library@N`: "
        "`ask --all` with `[documents] context_tokens = N` (0: as many passages as the window holds).",
        "",
        "| setting | F1 (95 % CI) | answerable F1 | unanswerable: abstained or not in your documents | "
        "escalated | passages (median) | s / question |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    settings = ["given"] + [f"library@{c}" for c in caps]
    for setting in settings:
        f1 = [r[setting]["f1"] for r in out]
        lo, hi = bootstrap(f1)
        ans = [r[setting]["f1"] for r in out if not r["unanswerable"]]
        una = [r for r in out if r["unanswerable"]]
        turned = sum(1 for r in una if r[setting].get("not_found") or is_abstention(r[setting]["answer"]))
        nf = f"{turned / len(una):.0%}" if una else "–"
        esc = sum(1 for r in out if r[setting]["tier"] == large) / len(out)
        secs = statistics.fmean(r[setting]["seconds"] for r in out)
        packed = [r[setting]["passages"] for r in out if r[setting].get("mode") == "retrieved"]
        med = f"{statistics.median(packed):.0f}" if packed else "–"
        name = "paragraph given (`ask --context`)" if setting == "given" else f"whole library, `{setting}`"
        lines.append(
            f"| {name} | {statistics.fmean(f1):.3f} ({lo:.3f}–{hi:.3f}) | {statistics.fmean(ans):.3f} | "
            f"{nf} | {esc:.0%} | {med} | {secs:.1f} |"
        )
    base = caps[-1] if 0 not in caps else 0  # each cap against the whole window (or the last cap given)
    for cap in (c for c in caps if c != base):
        a, b = f"library@{cap}", f"library@{base}"
        lo, hi = paired_bootstrap([r[a]["f1"] for r in out], [r[b]["f1"] for r in out])
        speed = statistics.fmean(r[b]["seconds"] for r in out) / statistics.fmean(r[a]["seconds"] for r in out)
        lines += [
            "",
            f"`{a}` against `{b}` on the same questions: F1 difference {lo:+.3f} to {hi:+.3f} (95 %), "
            f"{speed:.1f}× {'faster' if speed >= 1 else 'as fast'}.",
        ]
    lines += ["", *router_feature(out, caps)]
    return "\n".join(lines) + "\n"


def router_feature(out: list[dict], caps: list[int]) -> list[str]:
    """Does the retrieval's best cosine tell a right small answer (F1 ≥ 0.5) from a wrong one, beside the
    router's own confidence? AUROC of each, and of their rank average (no fitting, so no held-out split)."""
    from automix_local.report import auroc

    lines = [
        "Retrieval scores as a router signal (questions the small tier answered over the library; a small "
        "answer counts as right at F1 ≥ 0.5):",
        "",
        "| setting | answered | right | AUROC: router confidence | AUROC: best cosine | AUROC: rank average |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cap in caps:
        rows = [
            r[f"library@{cap}"]
            for r in out
            if r[f"library@{cap}"].get("small_confidence") is not None and r[f"library@{cap}"]["best_cosine"]
        ]
        labels = [x["small_f1"] >= 0.5 for x in rows]
        if len(set(labels)) < 2:
            continue
        conf = [x["small_confidence"] for x in rows]
        cos = [x["best_cosine"] for x in rows]
        avg = [a + b for a, b in zip(ranks(conf), ranks(cos), strict=True)]
        lines.append(
            f"| library@{cap} | {len(rows)} | {sum(labels)} | {auroc(conf, labels):.3f} | {auroc(cos, labels):.3f} | "
            f"{auroc(avg, labels):.3f} |"
        )
    return lines


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = rank / max(1, len(values) - 1)
    return out


if __name__ == "__main__":
    sys.exit(main())
