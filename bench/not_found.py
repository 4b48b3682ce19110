"""Calibrating "not in your documents": the best passage's cosine similarity, on-topic against off-topic.

    .venv/bin/python bench/not_found.py --fit ../shared/data/squad_v2_dev_public.jsonl \
        --check ../shared/data/fairytaleqa_val.jsonl --n 200 --seed 2 --out docs/results/not_found.md

A library is built from each file as in bench/documents.py. On-topic questions: answerable questions
of that file (asked of its own library). Off-topic questions: questions of the other file (a SQuAD
question asked of fairy tales, and the reverse). For every question the highest cosine similarity
between its embedding and a passage's is recorded. The floor is fitted on the --fit library only —
the highest value that keeps ≥ 99 % of its on-topic questions — and then scored, unchanged, on the
--check library, which played no part in choosing it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from documents import build_documents  # noqa: E402

from automix_local.config import find_config, load_config  # noqa: E402
from automix_local.documents.library import Library  # noqa: E402
from automix_local.documents.vectors import fill, model_key, open_embedder  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402


def best_cosines(lib: Library, embedder, key: str, questions: list[str]) -> np.ndarray:
    vecs = np.vstack([np.frombuffer(b, dtype=np.float32) for _, b in lib.embeddings(key)])
    return np.array([float((vecs @ embedder.embed_query(q)).max()) for q in questions])


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fit", type=Path, required=True)
    ap.add_argument("--check", type=Path, required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    config = load_config(find_config(), default_paths())
    embedder = open_embedder(config)
    if embedder is None or config.embedding is None:
        sys.exit("the embedding model is not available: automix-local models pull embedding")
    key = model_key(config.embedding)
    rng = random.Random(args.seed)
    data = {p: load(p) for p in (args.fit, args.check)}
    sims: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for own, other in ((args.fit, args.check), (args.check, args.fit)):
            build_documents(data[own], Path(tmp) / own.stem)
            lib = Library(Path(tmp) / f"{own.stem}.sqlite")
            lib.add([Path(tmp) / own.stem])
            fill(lib, embedder, key)
            on = [r["question"] for r in data[own] if r.get("answers") and not r.get("unanswerable")]
            off = [r["question"] for r in data[other]]
            sims[own.name] = {
                "on": best_cosines(lib, embedder, key, rng.sample(on, min(args.n, len(on)))),
                "off": best_cosines(lib, embedder, key, rng.sample(off, min(args.n, len(off)))),
            }
            lib.close()
            print(
                own.name,
                {
                    k: [round(float(np.percentile(v, q)), 3) for q in (1, 5, 50, 95, 99)]
                    for k, v in sims[own.name].items()
                },
            )
    embedder.close()
    fit = sims[args.fit.name]
    floor = float(np.quantile(fit["on"], 0.01))  # keeps 99 % of on-topic questions on the fit library
    rows = []
    for name, s in sims.items():
        rows.append(
            (
                name,
                "fit" if name == args.fit.name else "check",
                float((s["on"] >= floor).mean()),
                float((s["off"] < floor).mean()),
            )
        )
    lines = [
        "# Not in your documents: a floor on the best passage's cosine similarity",
        "",
        f"`python bench/not_found.py {' '.join(sys.argv[1:])}`",
        "",
        f"Floor fitted on `{args.fit.name}` (keeps 99 % of its on-topic questions): **{floor:.3f}**; "
        f"{args.n} questions of each kind per library, seed {args.seed}, embedding model {key[:12]}….",
        "",
        '| library | role | on-topic kept | off-topic said "not in your documents" |',
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {n} | {role} | {kept:.1%} | {rejected:.1%} |" for n, role, kept, rejected in rows]
    lines += ["", "Percentiles (1, 5, 50, 95, 99) of the best cosine similarity:", ""]
    for name, s in sims.items():
        for kind, v in s.items():
            pcts = ", ".join(f"{np.percentile(v, q):.3f}" for q in (1, 5, 50, 95, 99))
            lines.append(f"- {name}, {kind}-topic: {pcts}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(
            json.dumps({"floor": floor, "rows": rows, "n": args.n, "seed": args.seed}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
