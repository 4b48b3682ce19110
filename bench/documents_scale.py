"""Query latency of the document library at 1,000 and 10,000 passages, beside the bare operations.

    nice -n 10 .venv/bin/python bench/documents_scale.py --data ../shared/data/squad_v2_dev_public.jsonl \
        --data ../shared/data/fairytaleqa_val.jsonl --data ../shared/data/boolq_dev.jsonl \
        --sizes 1000,10000 --queries 200 --seed 1 --out docs/results/documents_scale.md

The library is built with the app's own code from the files' texts (one Markdown document per SQuAD
article, FairyTaleQA story or BoolQ passage), repeated as numbered copies until it holds the number of
passages asked for. Latency does not depend on what the vectors say, only on how many there are, so
every passage gets a seeded random unit vector of the embedding model's width instead of its real
embedding (filling 10,000 real ones takes ~40 min on this machine at ~4 passages/s); recall is measured
in bench/documents.py, not here. The questions are distinct questions sampled from the files; each is
timed three times, as the app meets it (``documents.asking.query_vector``, then the retrieval functions):

- **cold**: the first time the question is seen — its embedding is computed (and stored in the library);
- **warm**: the same question again in the same process — its vector from the embedder's memory;
- **stored**: the same question in a new process (a fresh embedder that has not loaded the model) — its
  vector from the library's store of asked questions.

Each of them is `hybrid`: what `ask --all` does before packing: the question's vector, BM25, the dense scan,
RRF. Beside them, in the cold pass:

- `bm25`: the app's BM25 ranking (FTS5 MATCH, bm25(), document filter), top 20;
- `dense scan`: the app's cosine ranking over every stored vector (one matrix product over the vectors held
  in memory; reading them from SQLite happens once per process and change, reported apart as "vectors read");
- `bare FTS5`: `SELECT rowid FROM passages_fts WHERE passages_fts MATCH ? ORDER BY rank LIMIT 20` on the
  same table (FTS5's own BM25 ranking, nothing else);
- `question's vector, cold`: the cold pass's vector alone (a lookup in the library's store that finds nothing,
  the embedding model's call, the vector stored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as automix_local does: numpy reads it when it loads
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.backends.embed import LlamaEmbedder  # noqa: E402
from automix_local.config import find_config, load_config  # noqa: E402
from automix_local.documents.asking import query_vector  # noqa: E402
from automix_local.documents.library import Library  # noqa: E402
from automix_local.documents.retrieval import bm25, dense, fts_query, fuse, vector_matrix  # noqa: E402
from automix_local.documents.vectors import model_key, open_embedder  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402


def documents(paths: list[Path], out: Path) -> tuple[list[Path], list[str]]:
    """One Markdown file per article / story / passage of each file; and every question, for queries."""
    groups: dict[str, dict[int, str]] = {}
    questions: list[str] = []
    for path in paths:
        for line in path.open(encoding="utf-8"):
            r = json.loads(line)
            questions.append(r["question"])
            doc, _, part = r["context_id"].partition("#")
            groups.setdefault(f"{path.stem}-{doc}", {})[int(part) if part.isdigit() else 0] = r["context"]
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for doc, parts in groups.items():
        name = re.sub(r"[^\w.-]+", "_", doc)[:80] + ".md"
        body = "\n\n".join(parts[i].strip() for i in sorted(parts))
        (out / name).write_text(f"# {doc}\n\n{body}\n", encoding="utf-8")
        files.append(out / name)
    return files, questions


def build(files: list[Path], size: int, work: Path, dim: int, key: str, seed: int) -> Library:
    """A library of at least ``size`` passages: the files, then numbered copies of them, until it is full."""
    lib = Library(work / f"library-{size}.sqlite")
    copy = 0
    while True:
        for f in files:
            if lib.db.execute("SELECT count(*) FROM passages").fetchone()[0] >= size:
                break
            target = f if copy == 0 else work / f"copy{copy}" / f.name
            if copy:
                target.parent.mkdir(exist_ok=True)
                target.write_text(f.read_text(encoding="utf-8") + f"\n(copy {copy})\n", encoding="utf-8")
            lib.add([target])
        else:
            copy += 1
            continue
        break
    rng = np.random.default_rng(seed)
    while batch := lib.missing_embeddings(key, limit=1000):
        vecs = rng.standard_normal((len(batch), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        lib.store_embeddings(key, [(p.id, v.tobytes(), dim) for p, v in zip(batch, vecs, strict=True)])
    return lib


def pct(values: list[float], q: int) -> float:
    return 1000 * statistics.quantiles(values, n=100)[q - 1]


def timed_query(lib: Library, q: str, embedder: LlamaEmbedder, key: str) -> tuple[float, float, float, float]:
    """(embedding, bm25, dense scan, hybrid) seconds for one question, the app's way."""
    t0 = time.perf_counter()
    vec = query_vector(lib, q, embedder.embed_query, embedder)
    t_embed = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = bm25(lib, q, None, 20)
    t_bm25 = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = dense(lib, vec, key, None, 20)
    t_dense = time.perf_counter() - t0
    fuse([b, d])
    return t_embed, t_bm25, t_dense, time.perf_counter() - t0 + t_embed + t_bm25


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    config = load_config(find_config(), default_paths())
    probe = open_embedder(config)
    if probe is None or config.embedding is None:
        print("the embedding model is needed: automix-local models pull embedding", file=sys.stderr)
        return 1
    key = model_key(config.embedding)
    dim = int(probe.embed_query("width").shape[0])
    probe.close()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files, questions = documents(args.data, work / "docs")
        queries = random.Random(args.seed).sample(sorted(set(questions)), args.queries)
        for size in (int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            lib = build(files, size, work, dim, key, args.seed)
            built = time.perf_counter() - t0
            n_docs = len(lib.documents())
            n = lib.db.execute("SELECT count(*) FROM passages").fetchone()[0]
            t0 = time.perf_counter()
            vector_matrix(lib, key)  # what the first question of a process pays once
            read_s = time.perf_counter() - t0
            embedder = open_embedder(config)  # nothing in its memory: every question is new to it
            assert embedder is not None
            embedder.load()
            lat: dict[str, list[float]] = {
                k: [] for k in ("bm25", "dense scan", "cold", "warm", "stored", "bare FTS5", "embed")
            }
            for q in queries:
                t_embed, t_bm25, t_dense, t_hybrid = timed_query(lib, q, embedder, key)
                match = fts_query(q)
                t0 = time.perf_counter()
                if match:
                    lib.db.execute(
                        "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ? ORDER BY rank LIMIT 20", (match,)
                    ).fetchall()
                t_fts = time.perf_counter() - t0
                for k, v in zip(
                    ("bm25", "dense scan", "cold", "bare FTS5", "embed"),
                    (t_bm25, t_dense, t_hybrid, t_fts, t_embed),
                    strict=True,
                ):
                    lat[k].append(v)
            for q in queries:
                lat["warm"].append(timed_query(lib, q, embedder, key)[3])
            assert embedder.query_hits == len(queries)
            embedder.close()
            fresh = open_embedder(config)  # as a new process: the model not loaded, the library's store
            assert fresh is not None
            for q in queries:
                lat["stored"].append(timed_query(lib, q, fresh, key)[3])
            assert not fresh.loaded
            rows.append(
                {"size": size, "passages": n, "documents": n_docs, "build_s": built, "read_s": read_s, "lat": lat}
            )
            print(size, n, {k: round(pct(v, 50), 2) for k, v in lat.items()}, flush=True)
            lib.close()
    lines = [
        "# Document library: query latency at scale",
        "",
        f"`python bench/documents_scale.py {' '.join(sys.argv[1:])}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the end); "
        f"{args.queries} distinct questions sampled from {', '.join(p.name for p in args.data)} (seed {args.seed}); "
        f"vectors: seeded random unit vectors of the embedding model's width ({dim}), since latency depends on "
        "their number, not their values; milliseconds per query, p50 / p95. Hybrid = the question's vector, "
        "BM25, the dense scan and RRF: cold (the question's first time: embedded), warm (asked again in the "
        "process: from memory), stored (asked again in a new process: from the library).",
        "",
        "| passages | documents | vectors read (once) | bm25 | dense scan | hybrid cold | hybrid warm | hybrid stored "
        "| bare FTS5 MATCH | question's vector, cold |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lat = r["lat"]
        cells = [f"{pct(lat[k], 50):.1f} / {pct(lat[k], 95):.1f}" for k in lat]
        lines.append(
            f"| {r['passages']:,} | {r['documents']:,} | {1000 * r['read_s']:.0f} | " + " | ".join(cells) + " |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
