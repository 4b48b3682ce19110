"""Filling the library's vectors, measured: passages/s, and how far packed decodes drift from one text per decode.

    nice -n 10 .venv/bin/python bench/embedding_fill.py --data ../shared/data/squad_v2_dev_public.jsonl \
        --passages 160 --pack 0,256,512,1024,2048 --quantize F16,Q8_0 --queries 100 \
        --out docs/results/embedding_fill.md

The passages are the first ``--passages`` of the library bench/documents.py builds from the file (one Markdown
document per SQuAD article, ~180-word passages, indexed by the app's own code), embedded by the app's
``LlamaEmbedder.embed_documents`` with ``document_prefix``:

- per model: the configured ``[embedding]`` file (F16 for the packaged default) and each ``--quantize`` type made
  from it by ``bench/gguf_quantize.py`` (llama.cpp's ``llama_model_quantize``) in a temporary
  folder (the seconds that took are reported);
- per ``--pack`` value: passages packed into one llama.cpp decode up to that many tokens (0: one text per decode,
  as before issue 24), each its own sequence;
- passages/s (wall clock) and CPU seconds, after one warm-up call; the cosine between each passage's vector
  and the same model's one-text-per-decode vector (min, mean; and the largest component difference); for a
  quantized model, the cosine to the F16 one-per-decode vector;
- ``--queries`` questions of the file embedded alone (``embed_query``, no cache: each question once), p50 / p95.

Retrieval recall with each setting is measured by bench/documents.py (``--pack-tokens``, ``--quantize``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as automix_local does: numpy reads it when it loads

import numpy as np  # noqa: E402

from automix_local.backends.embed import LlamaEmbedder  # noqa: E402
from automix_local.config import find_config, load_config, source_filename  # noqa: E402
from automix_local.documents.library import Library  # noqa: E402
from automix_local.documents.vectors import open_embedder  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from documents import build_documents  # noqa: E402
from gguf_quantize import quantize  # noqa: E402


def pct(values: list[float], q: int) -> float:
    return 1000 * statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else 1000 * values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--passages", type=int, default=160)
    ap.add_argument("--pack", default="0,512", help="token budgets per decode, comma-separated (0: one text each)")
    ap.add_argument("--quantize", default="F16", help="F16 (the configured file) and/or llama.cpp types: Q8_0,…")
    ap.add_argument("--threads", type=int, default=None, help="n_threads (default: the config's, else all cores)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    config = load_config(args.config or find_config(), default_paths())
    base = open_embedder(config)
    if base is None or config.embedding is None:
        print("the embedding model is needed: automix-local models pull embedding", file=sys.stderr)
        return 1
    cfg = config.embedding if args.threads is None else replace(config.embedding, n_threads=args.threads)
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8")]
    questions = random.Random(args.seed).sample([r["question"] for r in rows], args.queries)
    packs = [int(p) for p in args.pack.split(",")]
    results = []
    reference: np.ndarray | None = None  # F16, one text per decode
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_documents(rows, work / "docs")
        with Library(work / "library.sqlite") as lib:
            lib.add([work / "docs"])
            texts = [p.text for p in lib.passages()][: args.passages]
        for kind in args.quantize.split(","):
            path, made = base.model_path, None
            if kind.upper() != "F16":
                path = work / f"embedding.{kind}.gguf"
                t0 = time.perf_counter()
                quantize(base.model_path, path, kind)
                made = time.perf_counter() - t0
            emb = LlamaEmbedder(cfg, path)
            emb.load()
            llm = emb._llm
            tokens = sum(len(llm.tokenize((cfg.document_prefix + t).encode(), add_bos=True)) for t in texts)
            emb.pack_tokens = 0
            emb.embed_documents(texts[:2])  # warm-up
            single: np.ndarray | None = None
            for pack in packs:
                emb.pack_tokens = pack
                t0, c0 = time.perf_counter(), time.process_time()
                vecs = emb.embed_documents(texts)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                if pack == 0:
                    single = vecs
                    if kind.upper() == "F16":
                        reference = vecs
                row = {
                    "model": kind.upper(),
                    "file_mb": path.stat().st_size / 1e6,
                    "quantize_s": made,
                    "pack": pack,
                    "passages": len(texts),
                    "tokens": tokens,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "per_s": len(texts) / wall,
                }
                if single is not None:
                    cos = (vecs * single).sum(axis=1)
                    row |= {"drift_min": float(cos.min()), "drift_mean": float(cos.mean())}
                    row["max_abs"] = float(np.abs(vecs - single).max())
                if reference is not None and kind.upper() != "F16":
                    cos = (vecs * reference).sum(axis=1)
                    row |= {"vs_f16_min": float(cos.min()), "vs_f16_mean": float(cos.mean())}
                print(json.dumps(row), flush=True)
                results.append(row)
            lat = []
            for q in questions:
                t0 = time.perf_counter()
                emb.embed_query(q)
                lat.append(time.perf_counter() - t0)
            results.append({"model": kind.upper(), "query_p50_ms": pct(lat, 50), "query_p95_ms": pct(lat, 95)})
            print(json.dumps(results[-1]), flush=True)
            emb.close()
    base.close()
    text = markdown(results, args, config)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


def markdown(results: list[dict], args: argparse.Namespace, config) -> str:  # type: ignore[no-untyped-def]
    load = os.getloadavg()[0]
    lines = [
        "# Filling the library's vectors",
        "",
        f"`python bench/embedding_fill.py {' '.join(sys.argv[1:])}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (load average {load:.1f} at the end); "
        f"model: {source_filename(config.embedding.source)} and what was quantized from it; "
        f"threads: {args.threads or config.embedding.n_threads or os.cpu_count()}.",
        "",
        "| model | file MB | pack (tokens per decode) | passages/s | CPU s | cosine to one-per-decode (min / mean) "
        "| largest component change | cosine to F16 one-per-decode (min / mean) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if "pack" not in r:
            continue
        drift = f"{r['drift_min']:.6f} / {r['drift_mean']:.6f}" if "drift_min" in r else "–"
        vs = f"{r['vs_f16_min']:.5f} / {r['vs_f16_mean']:.5f}" if "vs_f16_min" in r else "–"
        made = f" (made in {r['quantize_s']:.1f} s)" if r["quantize_s"] else ""
        lines.append(
            f"| {r['model']}{made} | {r['file_mb']:.0f} | {r['pack'] or 'one text'} | {r['per_s']:.2f} | "
            f"{r['cpu_s']:.1f} | {drift} | {r.get('max_abs', 0):.1e} | {vs} |"
        )
    lines += ["", "| model | query embedding p50 / p95 (ms) |", "| --- | --- |"]
    for r in results:
        if "query_p50_ms" in r:
            lines.append(f"| {r['model']} | {r['query_p50_ms']:.1f} / {r['query_p95_ms']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
