"""What redacting names costs the remote tier's answers: the same questions through the real cascade, the
remote tier receiving the context whole, once without redaction and once under each redaction policy.

    .venv/bin/python bench/redaction_quality.py --n 100 --seed 7 --out docs/results/redaction_quality.md

The remote tier is the real `python -m llama_cpp.server` (tests/remote_server.py's LlamaServer) serving the
default large model (Qwen2.5-Coder-1.5B) behind the real OpenAI-compatible backend; the small tier is the
default small model; the router sends every question on (`random`, p = 1); `[policy] remote = "allow"`,
`send = "full"`. So each answer is exactly what a user would see from a remote tier that received the
redacted request, with the placeholders put back locally. Questions: answerable SQuAD 2.0 dev questions
(`--data`), drawn by `--seed`, one per context at most — public prose full of names, the worst case for a
redaction that must replace every name.

Reported per policy: F1 and exact match against the gold answers (SQuAD's normalisation), the share of
answers that differ from the unredacted run's, the share of the context's letters replaced, placeholders per
request, and answers that still hold a placeholder after restoring (the remote model invented or mangled
one). Seconds are wall time on this machine, both tiers included.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.cascade import Cascade  # noqa: E402
from automix_local.config import load_config  # noqa: E402
from automix_local.names import load as load_ner  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402
from automix_local.redact import Redactor  # noqa: E402
from automix_local.scoring import exact_match, normalize_answer, token_f1  # noqa: E402
from automix_local.sources import ensure_verified, ner_model_path  # noqa: E402
from tests.remote_server import LlamaServer  # noqa: E402

POLICIES = {"none": "[]", "names": '["names"]', "all + names": '["all", "names"]'}
PLACEHOLDER = r"\[[A-Z][A-Z_]*_\d+\]"


def items(path: Path, n: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if not r.get("unanswerable") and r.get("answers")]
    random.Random(seed).shuffle(rows)
    out: list[dict] = []
    seen: set[str] = set()
    for r in rows:
        if r["context_id"] in seen:
            continue
        seen.add(r["context_id"])
        out.append(r)
        if len(out) == n:
            break
    return out


def config_text(small: Path, url: str, redact: str, ner: Path) -> str:
    return (
        f'[[tiers]]\nname = "small"\npath = "{small}"\nn_ctx = 4096\nmax_tokens = 48\ncost = 1.0\n'
        f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{url}"\nmodel = "large"\ntimeout = 120\n'
        "max_tokens = 48\ncost = 3.0\n"
        f'[ner]\npath = "{ner}"\n'
        '[cascade]\nrouter = "random"\nrandom_p = 1.0\n'
        f'[policy]\nremote = "allow"\nsend = "full"\nredact = {redact}\n'
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "squad_v2_dev_public.jsonl")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import re

    packaged = load_config(ROOT / "automix_local" / "data" / "models.toml", default_paths())
    small = ensure_verified(packaged.tiers[0], packaged.paths)
    large = ensure_verified(packaged.tiers[1], packaged.paths)
    ner_file = ner_model_path(packaged)  # the packaged [ner], pulled
    ner = load_ner(ner_file, packaged.paths.cache_dir)
    qs = items(args.data, args.n, args.seed)
    results: dict[str, list[dict]] = {name: [] for name in POLICIES}
    with tempfile.TemporaryDirectory() as tmp, LlamaServer(large, alias="large", n_ctx=4096, n_threads=2) as server:
        for name, redact in POLICIES.items():
            cfg_file = Path(tmp) / f"{name.replace(' ', '')}.toml"
            cfg_file.write_text(config_text(small, server.base_url, redact, ner_file))
            config = load_config(cfg_file, default_paths())
            redactor = Redactor(json.loads(redact), ner=ner) if redact != "[]" else None
            cascade = Cascade(config, measure_speeds=False)
            try:
                for i, q in enumerate(qs):
                    t0 = time.perf_counter()
                    trace = cascade.ask(q["context"], q["question"], lambda e: None)
                    seconds = time.perf_counter() - t0
                    answer = trace.answer or ""
                    replaced = placeholders = 0
                    if redactor is not None:
                        spans = redactor.find(q["context"])
                        replaced = sum(sum(c.isalnum() for c in s.text) for s in spans)
                        placeholders = len(spans) + len(redactor.find(q["question"]))
                    letters = sum(c.isalnum() for c in q["context"])
                    results[name].append(
                        {
                            "id": q["id"],
                            "answer": answer,
                            "tier": trace.tier,
                            "f1": max(token_f1(answer, g) for g in q["answers"]),
                            "em": max(exact_match(answer, g) for g in q["answers"]),
                            "replaced_share": replaced / max(1, letters),
                            "placeholders": placeholders,
                            "left_placeholder": bool(re.search(PLACEHOLDER, answer)),
                            "seconds": seconds,
                        }
                    )
                    print(f"{name:12s} {i + 1:3d}/{len(qs)} {answer[:60]!r}", file=sys.stderr, flush=True)
            finally:
                cascade.close()
    base = {r["id"]: normalize_answer(r["answer"]) for r in results["none"]}
    rows = []
    for name, rs in results.items():
        n = len(rs)
        remote = sum(r["tier"] == "remote" for r in rs)
        rows.append(
            {
                "policy": name,
                "questions": n,
                "answered_by_remote": remote,
                "f1": sum(r["f1"] for r in rs) / n,
                "em": sum(r["em"] for r in rs) / n,
                "changed": sum(normalize_answer(r["answer"]) != base[r["id"]] for r in rs) / n,
                "replaced_share": sum(r["replaced_share"] for r in rs) / n,
                "placeholders": sum(r["placeholders"] for r in rs) / n,
                "left_placeholder": sum(r["left_placeholder"] for r in rs),
                "seconds": sum(r["seconds"] for r in rs) / n,
            }
        )
    command = "python bench/redaction_quality.py " + " ".join(sys.argv[1:])
    md = [
        "# What redacting names costs the remote tier's answers",
        "",
        f"`{command}`",
        "",
        f"{len(qs)} answerable questions of {args.data.name} (seed {args.seed}, one per context); the remote tier "
        "is `llama_cpp.server` serving the default large model (Qwen2.5-Coder-1.5B), the small tier the default "
        'small model, every question escalated, `send = "full"`; the answers are shown as a user sees them, '
        "placeholders put back locally.",
        "",
        "| redact | F1 | exact match | answers changed vs none | context letters replaced | placeholders "
        "per request | answers with a placeholder left | s / question |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        md.append(
            f"| `{POLICIES[r['policy']]}` | {r['f1']:.3f} | {r['em']:.3f} | {r['changed']:.0%} | "
            f"{r['replaced_share']:.1%} | {r['placeholders']:.1f} | {r['left_placeholder']} | {r['seconds']:.1f} |"
        )
    text = "\n".join(md) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "answers": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
