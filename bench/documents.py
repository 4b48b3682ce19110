"""Retrieval over the document library, measured: recall@1/3/5 for BM25, dense and hybrid, and speed.

    .venv/bin/python bench/documents.py --data ../shared/data/squad_v2_dev_public.jsonl \
        --data ../shared/data/fairytaleqa_val.jsonl --limit 600 --seed 1 --out docs/results/documents.md

From each QA file it builds long documents the way a user's library holds them — one Markdown file per
SQuAD article (all its paragraphs in order) or per FairyTaleQA story (its sections in order) — indexes
them with the app's own code (parse → passages → SQLite FTS5; then vectors with the configured
embedding model), and asks every sampled answerable question against the whole library of that file.
A question counts as retrieved at k when one of the top-k passages contains one of its gold answers
(normalised, whole words); only questions whose gold answer is verbatim in their own paragraph are
asked (the share is reported), since a free-form answer that is not in the text cannot be found by
any retriever. Nothing here was tuned on these questions: the passage size (180 words) and RRF's k = 60
were fixed before this ran.

Speed: indexing throughput (files, passages/s for BM25 and for vectors) and query latency p50/p95,
beside a bare FTS5 MATCH on the same table and a bare query-embedding call, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gguf_quantize import quantize  # noqa: E402  (bench/, this script's folder)

from automix_local.backends.embed import PACK_TOKENS, LlamaEmbedder  # noqa: E402
from automix_local.config import find_config, load_config, source_filename  # noqa: E402
from automix_local.documents.library import Library  # noqa: E402
from automix_local.documents.retrieval import bm25, dense, fts_query, fuse  # noqa: E402
from automix_local.documents.vectors import fill, model_key, open_embedder  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402

_WORD = re.compile(r"\w+", re.UNICODE)
KS = (1, 3, 5)


def norm(s: str) -> str:
    return " " + " ".join(_WORD.findall(s.lower())) + " "


def build_documents(rows: list[dict], out: Path) -> dict[str, str]:
    """One Markdown file per article/story; returns context_id → document name."""
    groups: dict[str, dict[int, str]] = {}
    for r in rows:
        doc, _, part = r["context_id"].partition("#")
        if part.isdigit():
            groups.setdefault(doc, {})[int(part)] = r["context"]
    out.mkdir(parents=True, exist_ok=True)
    names = {}
    for doc, parts in groups.items():
        name = re.sub(r"[^\w.-]+", "_", doc)[:80] + ".md"
        title = doc.replace("_", " ").replace("-", " ")
        body = "\n\n".join(parts[i].strip() for i in sorted(parts))
        (out / name).write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
        for i in parts:
            names[f"{doc}#{i}"] = name
    return names


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else (values[0] if values else 0.0)


def run_file(
    path: Path, limit: int, seed: int, config, workdir: Path, pack_tokens: int = 0, quantized: str | None = None
) -> dict:
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    docs_dir = workdir / path.stem / "docs"
    names = build_documents(rows, docs_dir)
    lib = Library(workdir / path.stem / "library.sqlite")
    t0 = time.perf_counter()
    report = lib.add([docs_dir])
    index_s = time.perf_counter() - t0
    n_passages = report.passages
    embedder = open_embedder(config)
    key = model_key(config.embedding) if config.embedding is not None else None
    if embedder is not None and key is not None and quantized is not None:
        made = workdir / f"embedding.{quantized}.gguf"
        if not made.is_file():
            quantize(embedder.model_path, made, quantized)
        embedder = LlamaEmbedder(embedder.cfg, made)
        key += f":{quantized}"
    if embedder is not None:
        embedder.pack_tokens = pack_tokens
    embed_s = None
    if embedder is not None and key is not None:
        t0 = time.perf_counter()
        fill(lib, embedder, key)
        embed_s = time.perf_counter() - t0
    # answerable questions whose gold answer is verbatim in their own paragraph (a single-section context)
    usable, answerable = [], 0
    for r in rows:
        if r.get("unanswerable") or not r.get("answers") or r["context_id"] not in names:
            continue
        answerable += 1
        if any(norm(a) in norm(r["context"]) for a in r["answers"] if norm(a).strip()):
            usable.append(r)
    rng = random.Random(seed)
    sample = rng.sample(usable, min(limit, len(usable))) if limit else usable
    ids = [d.id for d in lib.documents()]
    texts = {p.id: norm(p.text) for p in lib.passages(ids)}
    hits = {m: dict.fromkeys(KS, 0) for m in ("bm25", "dense", "hybrid")}
    lat: dict[str, list[float]] = {"bm25": [], "hybrid": [], "bare_fts": [], "bare_embed": []}
    for r in sample:
        golds = [norm(a) for a in r["answers"] if norm(a).strip()]
        t0 = time.perf_counter()
        b = bm25(lib, r["question"], ids, 20)
        lat["bm25"].append(time.perf_counter() - t0)
        q = fts_query(r["question"])
        t0 = time.perf_counter()
        if q:
            lib.db.execute("SELECT rowid FROM passages_fts WHERE passages_fts MATCH ? LIMIT 20", (q,)).fetchall()
        lat["bare_fts"].append(time.perf_counter() - t0)
        rankings = {"bm25": b}
        if embedder is not None and key is not None:
            t0 = time.perf_counter()
            vec = embedder.embed_query(r["question"])
            t_embed = time.perf_counter() - t0
            lat["bare_embed"].append(t_embed)
            t1 = time.perf_counter()
            d = dense(lib, vec, key, ids, 20)
            h = [pid for pid, _ in fuse([b, d])]
            lat["hybrid"].append(t_embed + time.perf_counter() - t1 + lat["bm25"][-1])
            rankings |= {"dense": d, "hybrid": h}
        for method, ranking in rankings.items():
            for k in KS:
                if any(g in texts[pid] for pid in ranking[:k] for g in golds):
                    hits[method][k] += 1
    lib.close()
    if embedder is not None:
        embedder.close()
    n = len(sample)
    return {
        "file": path.name,
        "documents": len(report.indexed),
        "passages": n_passages,
        "answerable": answerable,
        "verbatim": len(usable),
        "asked": n,
        "recall": {m: {k: hits[m][k] / n for k in KS} for m in hits if n and (m == "bm25" or embedder is not None)},
        "index_seconds": index_s,
        "embed_seconds": embed_s,
        "latency_ms": {m: {"p50": 1000 * pct(v, 50), "p95": 1000 * pct(v, 95)} for m, v in lat.items() if v},
    }


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "# Retrieval over the document library",
        "",
        f"`{meta['command']}`",
        "",
        f"Machine: {meta['machine']}; embedding model: {meta['embedding']}"
        + (
            f", passages packed up to {meta['pack_tokens']} tokens per decode"
            if meta["pack_tokens"]
            else ", one passage per decode"
        )
        + "; passages of ≤ 180 words; "
        "RRF k = 60; sample seed " + str(meta["seed"]) + ".",
        "",
        "| data | documents | passages | questions asked (verbatim answers / answerable) | method | recall@1 "
        "| recall@3 | recall@5 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for m, rec in r["recall"].items():
            lines.append(
                f"| {r['file']} | {r['documents']} | {r['passages']} | {r['asked']} ({r['verbatim']} / "
                f"{r['answerable']}) | {m} | {rec[1]:.3f} | {rec[3]:.3f} | {rec[5]:.3f} |"
            )
    lines += ["", "| data | BM25 indexing | vectors | query p50 / p95 (ms) |", "| --- | --- | --- | --- |"]
    for r in results:
        lat = r["latency_ms"]
        q = "; ".join(f"{m} {v['p50']:.1f} / {v['p95']:.1f}" for m, v in lat.items())
        emb = (
            f"{r['passages'] / r['embed_seconds']:.1f} passages/s ({r['embed_seconds']:.0f} s)"
            if r["embed_seconds"]
            else "–"
        )
        lines.append(
            f"| {r['file']} | {r['documents'] / r['index_seconds']:.1f} files/s, "
            f"{r['passages'] / r['index_seconds']:.0f} passages/s | {emb} | {q} |"
        )
        if "hybrid" in lat and "bare_embed" in lat:
            ratio = lat["hybrid"]["p50"] / max(lat["bare_embed"]["p50"], 1e-9)
            fts = lat["bm25"]["p50"] / max(lat["bare_fts"]["p50"], 1e-9)
            lines.append(
                f"| | | | ratios at p50: hybrid / bare query embedding {ratio:.2f}; "
                f"BM25 (app) / bare FTS5 MATCH {fts:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=600, help="questions sampled per file (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--pack-tokens", type=int, default=PACK_TOKENS, help="passages per decode up to this many tokens (0: one each)"
    )
    ap.add_argument("--quantize", default=None, help="embed with the model quantized to this type (Q8_0, …)")
    args = ap.parse_args()
    config = load_config(args.config or find_config(), default_paths())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.data:
            r = run_file(path, args.limit, args.seed, config, Path(tmp), args.pack_tokens, args.quantize)
            print(json.dumps(r), flush=True)
            results.append(r)
    meta = {
        "command": "python bench/documents.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores",
        "embedding": (
            source_filename(config.embedding.source) + (f" quantized to {args.quantize}" if args.quantize else "")
        )
        if config.embedding
        else "none (BM25 only)",
        "pack_tokens": args.pack_tokens,
        "seed": args.seed,
    }
    text = markdown(results, meta)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
